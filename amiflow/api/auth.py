"""Who calls the API: ONE dependency, `current_principal`, asks each credential source in turn (a
personal token in `Authorization: Bearer`; the browser's session cookie is another source, added by
the sign-in). Every call also takes from a rate bucket of its address and, once known, of its token
(`domain.throttle`); too many answer 429 with Retry-After."""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import Request

from amiflow.api.problems import ApiRefusal
from amiflow.bootstrap import Runtime
from amiflow.services import people
from amiflow.services.errors import Unauthenticated
from amiflow.services.principal import Principal
from domain.throttle import Bucket, Rate, take

# A source reads the request and answers the principal it proves, or None when it carries none of its
# credential (an invalid credential raises `Unauthenticated`).
Source = Callable[[Request, Runtime, datetime], Awaitable[Principal | None]]


async def bearer_token(request: Request, rt: Runtime, now: datetime) -> Principal | None:
    """A personal token in the `Authorization: Bearer` header (never in the URL)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("En-tête Authorization attendu : « Bearer JETON » (amiflow tokens issue).")
    return await people.authenticate_token(rt, token.strip(), now)


class RateLimiter:
    """The buckets of the callers seen lately (the oldest forgotten past `keep`); in-process."""

    def __init__(self, per_address: Rate, per_token: Rate, keep: int = 10_000) -> None:
        self.policies = {"address": per_address, "token": per_token}
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()
        self.keep = keep

    def check(self, kind: str, key: str) -> None:
        """Take one call from the caller's bucket.

        Raises:
            ApiRefusal: the bucket is empty (429, with the seconds to wait).
        """
        name = f"{kind}:{key}"
        allowed, bucket, wait = take(self.buckets.get(name), self.policies[kind], time.monotonic())
        self.buckets[name] = bucket
        self.buckets.move_to_end(name)
        while len(self.buckets) > self.keep:
            self.buckets.popitem(last=False)
        if not allowed:
            seconds = max(1, math.ceil(min(wait, 86_400.0)))
            raise ApiRefusal(f"Trop de requêtes : réessayez dans {seconds} s.", "rate_limited",
                             {"Retry-After": str(seconds)})


async def current_principal(request: Request) -> Principal:
    """The person calling, proven by one of the app's sources (see `Source`).

    Raises:
        ApiRefusal: too many calls from this address or with this token (429).
        Unauthenticated: no credential, or one that is unknown, expired or revoked (401).
    """
    state = request.app.state
    limiter: RateLimiter = state.limiter
    limiter.check("address", request.client.host if request.client else "?")
    now = datetime.now(UTC)
    sources: list[Source] = state.principal_sources
    for source in sources:
        found = await source(request, state.rt, now)
        if found is not None:
            credential = request.headers.get("authorization", "") or found.person or str(found.actor)
            limiter.check("token", hashlib.sha256(credential.encode()).hexdigest()[:32])
            return found
    raise Unauthenticated("Authentification requise : donnez un jeton personnel (Authorization: Bearer JETON).")


async def browser_session(request: Request, rt: Runtime, now: datetime) -> Principal | None:
    """The person signed in on this browser (OpenID Connect or an invitation, `amiflow.signin`). A
    cookie alone may read; it may change something only from amiflow's own pages."""
    from amiflow import signin  # the sign-in installs the session; the API only reads it

    who = await signin.signed_in(request, rt)
    if who is None:
        return None
    if not signin.session_may_act(request, rt.settings):
        raise ApiRefusal("Requête refusée : venue d’un autre site avec la session d’amiflow.", "cross_site")
    return who


def default_sources() -> list[Source]:
    """The credential sources of the API, in the order they are asked: a personal token, then the
    browser's session."""
    return [bearer_token, browser_session]
