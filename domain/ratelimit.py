"""How often one token (or one address) may call the API: a token bucket, decided here, kept by the
entry point. Pure: the instant arrives as an argument."""

from __future__ import annotations

import math

from domain.record import Record


class RatePolicy(Record):
    """`burst` calls at once, then `per_second` calls a second on average."""

    burst: int = 60
    per_second: float = 10.0


class Bucket(Record):
    """What is left of one caller's bucket at the instant `at` (seconds, any monotonic origin)."""

    tokens: float
    at: float


class RateDecision(Record):
    """Whether the call goes through, the bucket after it, and how long to wait when it does not."""

    allowed: bool
    bucket: Bucket
    retry_after: int  # whole seconds (HTTP Retry-After), 0 when allowed


def take(policy: RatePolicy, bucket: Bucket | None, now: float) -> RateDecision:
    """One call at `now` against the caller's bucket (None: a caller not seen yet, full)."""
    if bucket is None:
        tokens = float(policy.burst)
    else:
        tokens = min(float(policy.burst), bucket.tokens + max(0.0, now - bucket.at) * policy.per_second)
    if tokens >= 1.0:
        return RateDecision(allowed=True, bucket=Bucket(tokens=tokens - 1.0, at=now), retry_after=0)
    wait = max(1, math.ceil((1.0 - tokens) / policy.per_second))
    return RateDecision(allowed=False, bucket=Bucket(tokens=tokens, at=now), retry_after=wait)
