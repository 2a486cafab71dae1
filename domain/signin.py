"""Sign-in's rules: how many attempts an address may make, where a person may be sent back after
signing in, and what the OpenID exchange's random values must be. Pure: the instant arrives as an
argument; the entry point keeps each address's window."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from domain.record import Record

# ProConnect asks for `state` and `nonce` of at least 32 characters; PKCE's verifier is 43 to 128.
RANDOM_MIN_LENGTH = 32
VERIFIER_LENGTHS = range(43, 129)


class SignInPolicy(Record):
    """At most `attempts` sign-in attempts (starting a sign-in, coming back from the provider, using an
    invitation link) from one address within `window_seconds`."""

    attempts: int = 20
    window_seconds: int = 300


class SignInWindow(Record):
    """The instants of one address's recent attempts, oldest first."""

    times: tuple[datetime, ...] = ()


class SignInDecision(Record):
    """Whether the attempt goes on, the address's window after it, and how long to wait otherwise."""

    allowed: bool
    window: SignInWindow
    retry_after: int  # whole seconds (HTTP Retry-After), 0 when allowed


def attempt(policy: SignInPolicy, window: SignInWindow | None, now: datetime) -> SignInDecision:
    """One sign-in attempt at `now` from an address whose window is `window` (None: not seen yet). A
    refused attempt is not counted, so waiting `retry_after` is always enough."""
    span = timedelta(seconds=policy.window_seconds)
    recent = tuple(t for t in (window.times if window else ()) if now - t < span)
    if len(recent) < policy.attempts:
        return SignInDecision(allowed=True, window=SignInWindow(times=(*recent, now)), retry_after=0)
    wait = (recent[-policy.attempts] + span - now).total_seconds()
    return SignInDecision(allowed=False, window=SignInWindow(times=recent), retry_after=max(1, math.ceil(wait)))


def forgettable(policy: SignInPolicy, window: SignInWindow, now: datetime) -> bool:
    """Whether an address's window holds nothing that still counts (the entry point may drop it)."""
    return not window.times or now - window.times[-1] >= timedelta(seconds=policy.window_seconds)


def return_path(asked: str | None, default: str = "/") -> str:
    """Where to send a person after signing in: a path of this site only (`/…`, not `//host` nor
    `/\\host`, no scheme, no control character), else `default` — never another site (open redirect)."""
    if not asked or len(asked) > 2000 or not asked.startswith("/") or asked.startswith(("//", "/\\")):
        return default
    if re.search(r"[\x00-\x20\x7f\\]", asked):
        return default
    return asked


def random_value_ok(value: str, minimum: int = RANDOM_MIN_LENGTH) -> bool:
    """Whether a `state` or `nonce` is long enough and of URL-safe characters."""
    return len(value) >= minimum and len(value) <= 512 and re.fullmatch(r"[A-Za-z0-9._~-]+", value) is not None
