"""Sign-in's rules: how many attempts an address may make, where a person may be sent back after
signing in, and what the OpenID exchange's random values must be. Pure."""

from __future__ import annotations

import re

from domain.throttle import Rate

# ProConnect asks for `state` and `nonce` of at least 32 characters.
RANDOM_MIN_LENGTH = 32

# Sign-in attempts from one address (starting a sign-in, coming back from the provider, using an
# invitation link): 20 at once, then one every 15 seconds (`domain.throttle`'s token bucket).
SIGN_IN_RATE = Rate(per_second=1 / 15, burst=20)


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


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_site_request(method: str, origin: str | None, referer: str | None, site: str) -> bool:
    """Whether a request carried by the session cookie may act: reads always; anything else only when
    the browser says it comes from amiflow's own pages (`Origin`, else `Referer`, at `site`, e.g.
    `https://amiflow.region.example`). Another site's form or script cannot act as the signed-in person."""
    if method.upper() in SAFE_METHODS:
        return True
    site = site.rstrip("/")
    if origin:
        return origin.rstrip("/") == site
    return bool(referer) and (referer == site or str(referer).startswith(f"{site}/"))
