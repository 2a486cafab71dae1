"""The codec server: decodes amiflow's sealed payloads for the Temporal Web UI and CLI, for a person
whose personal token grants the dossier the payloads belong to, and records every decode in the read log.

Protocol (Temporal's remote codec): `POST /decode` (and `/encode`) with `{"payloads": [...]}` in
protobuf JSON. The token is a personal access token of the directory (`amiflow codec token`, `amiflow
tokens issue`), sent only as `Authorization: Bearer TOKEN` (the `temporal` CLI's `--codec-auth`; the
Web UI's « pass access token »): never in a URL, where proxies and browser histories keep it.

Answers: 401 without a valid token (absent, unknown, expired, revoked); 403 when the person may not
read a dossier of the request (the refusal is in the read log); 404 for a dossier the journal does not
know (nothing logged); 413 over the caps; 429 when a client or a token asks too fast; 503 when the
journal is out of reach. Every refusal is an `application/problem+json` in French, without key ids or
paths; nothing answers 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from amiflow.bootstrap import Runtime
from amiflow.logs import logger
from amiflow.services import Principal
from amiflow.services import codec as codec_service
from amiflow.services import people as people_service
from amiflow.services.errors import Unauthenticated
from domain.codec_policy import CodecLimits, TooLarge
from domain.errors import DomainError, InvalidCommand, NotAllowed
from domain.throttle import Bucket, Rate, idle, take

ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
PROBLEM = "application/problem+json"
BUCKETS_MAX = 10_000  # clients remembered at once; idle ones are forgotten first

TITLES = {400: "Requête invalide", 401: "Authentification requise", 403: "Accès refusé", 404: "Introuvable",
          405: "Méthode non permise", 413: "Requête trop volumineuse", 422: "Charge utile illisible",
          429: "Trop de requêtes", 503: "Service indisponible"}


class Throttled(DomainError):
    """A client or a token over its rate limit."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Buckets:
    """The rate limits' buckets, per key (an address, a token's digest), in this process."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.kept: dict[str, Bucket] = {}

    def take(self, key: str, now: float) -> float | None:
        """None when the request may go; else the seconds to wait."""
        allowed, bucket, wait = take(self.kept.get(key), self.rate, now)
        self.kept[key] = bucket
        if len(self.kept) > BUCKETS_MAX:
            self.kept = {k: b for k, b in self.kept.items() if not idle(b, self.rate, now)}
        return None if allowed else wait

    def blocked(self, key: str, now: float) -> float | None:
        """Whether a request would be refused now (None: it would go), without taking anything."""
        allowed, _, wait = take(self.kept.get(key), self.rate, now)
        return None if allowed else wait


def problem(status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem, in French."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Refusé"), "status": status, "detail": detail,
            "code": code}
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False), content_type=PROBLEM,
                        headers=headers)


def _status(exc: DomainError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Throttled):
        return 429
    if isinstance(exc, codec_service.NotFound):
        return 404
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, codec_service.Unreadable):
        return 422
    if isinstance(exc, InvalidCommand):
        return 400
    if isinstance(exc, NotAllowed):
        return 403
    return 400


class CodecServer:
    """The aiohttp application and what it needs: the journal's store and the keys (in `rt`), the
    origins the Web UI is served from, the caps and rate limits, and the server's operators (who
    alone decode payloads that name no dossier)."""

    def __init__(self, rt: Runtime, origins: tuple[str, ...] = (), limits: CodecLimits | None = None,
                 operators: frozenset[str] = frozenset()) -> None:
        self.rt = rt
        self.origins = frozenset(origins)
        self.limits = limits or CodecLimits()
        self.operators = operators
        self.clients = Buckets(self.limits.per_client)
        self.failures = Buckets(self.limits.failures_per_client)
        self.per_token = Buckets(self.limits.per_token)

    def app(self) -> web.Application:
        """Routes: /decode and /encode (POST), their CORS preflight."""
        app = web.Application(middlewares=[self._guard], client_max_size=self.limits.body_bytes)
        app.router.add_post("/decode", self.decode)
        app.router.add_post("/encode", self.encode)
        app.router.add_route("OPTIONS", "/{op:(de|en)code}", self.preflight)
        return app

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Rate limit, refusals as French problems, CORS headers on every answer, and never a 500."""
        try:
            if request.method != "OPTIONS":
                self._throttle(self.clients, _client(request), "cette adresse")
            response = await handler(request)
        except DomainError as exc:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if isinstance(exc, Throttled) else {}
            if isinstance(exc, Unauthenticated):
                headers["WWW-Authenticate"] = 'Bearer realm="amiflow"'
            response = problem(_status(exc), exc.message, exc.code, headers)
        except web.HTTPException as exc:  # aiohttp's own: unknown path, method, body too large
            detail = {404: "Adresse inconnue : /decode ou /encode.", 405: "Méthode non permise : POST.",
                      413: f"Corps de requête au-delà de {self.limits.body_bytes // (1024 * 1024)} Mio."}
            response = problem(exc.status if exc.status in TITLES else 400,
                               detail.get(exc.status, "Requête refusée."), "http")
        except Exception as exc:  # the journal or the keys out of reach, or a bug: said, never a 500
            logger().error("codec.failed", error=type(exc).__name__, path=request.path)
            response = problem(503, "Service momentanément indisponible : réessayez dans un instant.", "unavailable",
                               {"Retry-After": "5"})
        self._allow(request, response.headers)
        return response

    def _throttle(self, buckets: Buckets, key: str, what: str) -> None:
        wait = buckets.take(key, time.monotonic())
        if wait is not None:
            raise Throttled(f"Trop de requêtes pour {what} : réessayez dans {max(1, round(wait))} s.", wait)

    def _allow(self, request: web.Request, headers: Any) -> None:
        """CORS for the origins of the allow-list only, never the one a request claims."""
        origin = request.headers.get("Origin", "")
        headers["Vary"] = "Origin"
        if origin and origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            headers["Access-Control-Max-Age"] = "600"

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight of the browser."""
        return web.Response(status=204)

    async def _who(self, request: web.Request) -> Principal:
        """The person of the `Authorization: Bearer` token; failures are rate limited per address."""
        address = _client(request)
        wait = self.failures.blocked(address, time.monotonic())
        if wait is not None:  # too many refused tokens from there: not even looked at
            raise Throttled(f"Trop de jetons refusés depuis cette adresse : réessayez dans {max(1, round(wait))} s.",
                            wait)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise Unauthenticated()
            person = await people_service.authenticate_token(self.rt, token.strip(), datetime.now(UTC))
        except Unauthenticated:
            self.failures.take(address, time.monotonic())
            raise Unauthenticated("Jeton absent, inconnu, expiré ou révoqué : Authorization: Bearer JETON "
                                  "(amiflow codec token --as ROLE:NOM).") from None
        self._throttle(self.per_token, hashlib.sha256(token.strip().encode()).hexdigest(), "ce jeton")
        return Principal(person.actor, via="codec", proven=True, person=person.person)

    async def decode(self, request: web.Request) -> web.Response:
        """Open the payloads if the person may read every dossier they belong to, whole."""
        who = await self._who(request)
        payloads = await _payloads(request)
        opened = await codec_service.decode(self.rt.store, self.rt.keys, who, payloads, datetime.now(UTC),
                                            self.limits, self.operators)
        return _answer(opened)

    async def encode(self, request: web.Request) -> web.Response:
        """Seal payloads (the UI's own inputs, e.g. a signal) with the active master key."""
        who = await self._who(request)
        return _answer(await codec_service.encode(self.rt.keys, who, await _payloads(request), self.limits))


def _client(request: web.Request) -> str:
    return request.remote or "inconnu"


async def _payloads(request: web.Request) -> list[Payload]:
    try:
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            raise ValueError("un objet JSON est attendu")
        parsed = json_format.ParseDict(body, Payloads())
    except (ValueError, TypeError, RecursionError, json_format.ParseError):
        raise InvalidCommand('Corps JSON attendu : {"payloads": [...]} (protocole de codec de Temporal).') from None
    return list(parsed.payloads)


def _answer(payloads: list[Payload]) -> web.Response:
    body = json_format.MessageToDict(Payloads(payloads=payloads))
    return web.json_response({"payloads": body.get("payloads", [])})


async def serve(rt: Runtime, host: str, port: int, origins: tuple[str, ...], stop: asyncio.Event,
                operators: frozenset[str] = frozenset()) -> None:
    """Run the codec server until `stop` is set."""
    runner = web.AppRunner(CodecServer(rt, origins, operators=operators).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _names(text: str) -> frozenset[str]:
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def main() -> None:
    """Entry point for `amiflow up`: `python -m amiflow.codec_server` with the stack's environment
    (AMIFLOW_DATABASE_URL, AMIFLOW_KEYRING, AMIFLOW_CODEC_PORT, AMIFLOW_UI_ORIGIN, and
    AMIFLOW_CODEC_OPERATORS: the directory names of the server's operators)."""
    import signal

    from amiflow.bootstrap import NeedTemporal, runtime
    from amiflow.logs import configure
    from amiflow.settings import load_settings

    settings = load_settings()
    configure(settings.log_format)
    port = int(os.environ.get("AMIFLOW_CODEC_PORT", "8234"))
    origins = tuple(_names(os.environ.get("AMIFLOW_UI_ORIGIN", "")))
    operators = _names(os.environ.get("AMIFLOW_CODEC_OPERATORS", ""))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with runtime(settings, NeedTemporal.NONE) as rt:
            await serve(rt, "127.0.0.1", port, origins, stop, operators)

    asyncio.run(run())
    os._exit(0)


if __name__ == "__main__":
    main()
