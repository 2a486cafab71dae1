"""The codec server: decodes amiflow's sealed payloads for the Temporal Web UI and CLI, for a person
whose token grants the dossier the payloads belong to, and records every decode in the read log.

Protocol (Temporal's remote codec): `POST {endpoint}/decode` (and `/encode`) with
`{"payloads": [...]}` in protobuf JSON. The token travels as `Authorization: Bearer TOKEN` (the
`temporal` CLI's `--codec-auth`) or in the endpoint's path, `/t/TOKEN/decode`, for the Web UI whose
codec endpoint a person sets in their browser. No token or an unknown one: 401. A token whose person
may not read a dossier of the request: 403, with the reason, and the refusal in the read log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from amiflow.codec import EnvelopeCodec
from amiflow.services import Principal, ReadRefused
from amiflow.services import codec as codec_service
from domain import Actor
from journal.keys import DossierKeys, KeyProblem, write_private
from journal.store import JournalStore

TOKENS = Path("keys") / "codec-tokens.json"
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


@dataclass
class Tokens:
    """Codec tokens: only their SHA-256 is stored (file mode 0600), with the person and an expiry."""

    path: Path

    def issue(self, actor: Actor, days: int, now: datetime) -> str:
        """A new token for `actor`, valid `days` days; returned once, never stored in clear."""
        token = secrets.token_urlsafe(32)
        entries = self._read()
        entries[_digest(token)] = {"actor": str(actor), "expires": (now + timedelta(days=days)).isoformat()}
        write_private(self.path, json.dumps(entries, indent=1))
        return token

    def actor(self, token: str, now: datetime) -> Actor | None:
        """The person a valid, unexpired token stands for."""
        entry = self._read().get(_digest(token))
        if entry is None or datetime.fromisoformat(entry["expires"]) <= now:
            return None
        return Actor.parse(entry["actor"])

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CodecServer:
    """The aiohttp application and what it needs: the keys, the journal (to decide need-to-know on
    the dossier's state) and the tokens."""

    def __init__(self, keys: DossierKeys, store: JournalStore, tokens: Tokens, origins: tuple[str, ...] = ()) -> None:
        self.keys = keys
        self.store = store
        self.tokens = tokens
        self.origins = origins
        self.codec = EnvelopeCodec(keys)

    def app(self) -> web.Application:
        """Routes: /decode, /encode, and the same under /t/{token}/."""
        app = web.Application(middlewares=[self._cors], client_max_size=8 * 1024 * 1024)
        for prefix in ("", "/t/{token}"):
            app.router.add_post(prefix + "/decode", self.decode)
            app.router.add_post(prefix + "/encode", self.encode)
            app.router.add_route("OPTIONS", prefix + "/{op:(de|en)code}", self.preflight)
        return app

    @web.middleware
    async def _cors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The browser reads answers, refusals included, only with these headers."""
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            self._allow(request, exc.headers)
            raise
        self._allow(request, response.headers)
        return response

    def _allow(self, request: web.Request, headers: Any) -> None:
        origin = request.headers.get("Origin", "")
        if origin and (origin in self.origins or not self.origins):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            headers["Vary"] = "Origin"

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight of the browser."""
        return web.Response(status=204)

    def _who(self, request: web.Request) -> Actor:
        token = request.match_info.get("token") or ""
        header = request.headers.get("Authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        actor = self.tokens.actor(token, datetime.now(UTC)) if token else None
        if actor is None:
            raise _error(web.HTTPUnauthorized, "jeton absent, inconnu ou expiré (amiflow codec token --as …)")
        return actor

    async def decode(self, request: web.Request) -> web.Response:
        """Open the payloads if the person may read every dossier they belong to, whole."""
        who = Principal(self._who(request), via="codec", proven=True)
        payloads = await _payloads(request)
        try:
            opened = await codec_service.decode(self.store, self.keys, who, payloads, datetime.now(UTC))
        except ReadRefused as exc:
            raise _error(web.HTTPForbidden, exc.message) from None
        except KeyProblem as exc:
            raise _error(web.HTTPUnprocessableEntity, exc.message) from None
        return _answer(opened)

    async def encode(self, request: web.Request) -> web.Response:
        """Seal payloads (the UI's own inputs, e.g. a signal) with the active master key."""
        self._who(request)
        return _answer(await self.codec.encode(await _payloads(request)))


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def _payloads(request: web.Request) -> list[Payload]:
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("un objet JSON est attendu")
        parsed = json_format.ParseDict(body, Payloads())
    except (ValueError, TypeError, json_format.ParseError) as exc:
        raise _error(web.HTTPBadRequest, f"corps JSON attendu : {{\"payloads\": [...]}} ({exc})") from None
    return list(parsed.payloads)


def _answer(payloads: list[Payload]) -> web.Response:
    body = json_format.MessageToDict(Payloads(payloads=payloads))
    return web.json_response({"payloads": body.get("payloads", [])})


async def serve(keys: DossierKeys, store: JournalStore, tokens: Tokens, host: str, port: int,
                origins: tuple[str, ...], stop: asyncio.Event) -> None:
    """Run the codec server until `stop` is set."""
    runner = web.AppRunner(CodecServer(keys, store, tokens, origins).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Entry point for `amiflow up`: `python -m amiflow.codec_server` with the stack's environment
    (AMIFLOW_DATABASE_URL, AMIFLOW_KEYRING, AMIFLOW_CODEC_PORT, AMIFLOW_UI_ORIGIN)."""
    import signal

    from amiflow.bootstrap import NeedTemporal, runtime
    from amiflow.logs import configure
    from amiflow.settings import load_settings

    settings = load_settings()
    configure(settings.log_format)
    port = int(os.environ.get("AMIFLOW_CODEC_PORT", "8234"))
    origins = tuple(o for o in os.environ.get("AMIFLOW_UI_ORIGIN", "").split(",") if o)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with runtime(settings, NeedTemporal.NONE) as rt:
            await serve(rt.keys, rt.store, Tokens(settings.data_dir / TOKENS), "127.0.0.1", port, origins, stop)

    asyncio.run(run())
    os._exit(0)


if __name__ == "__main__":
    main()
