"""Rate limits as token buckets: how many requests a client (an address, a token) may make in a burst,
and how fast its allowance comes back. Pure: the caller keeps the buckets and gives the time (seconds
of a monotonic clock)."""

from __future__ import annotations

from domain.record import Record


class Rate(Record):
    """An allowance: `burst` requests at once, refilled at `per_second`."""

    per_second: float
    burst: int


class Bucket(Record):
    """What is left of a client's allowance at instant `at`."""

    level: float
    at: float


def take(bucket: Bucket | None, rate: Rate, now: float, cost: float = 1.0) -> tuple[bool, Bucket, float]:
    """Whether a request costing `cost` may go now; the bucket after it; and, when refused, how many
    seconds until it would go (for `Retry-After`). A new client starts with a full bucket."""
    level = float(rate.burst) if bucket is None else min(float(rate.burst),
                                                          bucket.level + max(0.0, now - bucket.at) * rate.per_second)
    if level >= cost:
        return True, Bucket(level=level - cost, at=now), 0.0
    wait = (cost - level) / rate.per_second if rate.per_second > 0 else float("inf")
    return False, Bucket(level=level, at=now), wait


def idle(bucket: Bucket, rate: Rate, now: float) -> bool:
    """Whether the bucket has refilled entirely, so that forgetting it changes nothing."""
    return bucket.level + max(0.0, now - bucket.at) * rate.per_second >= rate.burst
