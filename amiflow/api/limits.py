"""The size of a request body: bounded at the edge, before the app reads it. A JSON body is read
whole (at most JSON_MAX_BYTES, in memory) and refused with 413 as soon as it passes the limit, declared
or not, before anything parses it; a document upload streams to disk with its own limit
(`amiflow.api.uploads`)."""

from __future__ import annotations

from typing import Any

from amiflow.api import uploads
from amiflow.api.problems import problem
from amiflow.api.uploads import UPLOAD_MAX_BYTES
from domain.inputs import DOSSIER_FILE_MAX

JSON_MAX_BYTES = 4 * DOSSIER_FILE_MAX  # a dossier file (domain.inputs.DOSSIER_FILE_MAX), as JSON, with room to spare


class BodyLimit:
    """ASGI middleware: 413 for a declared length past the limit; a JSON body past it (sent without a
    length, in chunks) answered 413 here too; an upload cut off once it passes its limit."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"].endswith("/documents")
        limit = UPLOAD_MAX_BYTES if upload else JSON_MAX_BYTES
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await problem(413, _refusal(upload), "too_large")(scope, receive, send)
            return
        if upload:
            await self.app(scope, _bounded(receive, limit), send)
            return
        body, first = await _read(receive, limit)
        if body is None:
            await problem(413, _refusal(upload), "too_large")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return first if first is not None else {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read(receive: Any, limit: int) -> tuple[bytes | None, dict[str, Any] | None]:
    """The whole body (None past `limit`), and the message to give the app instead when the client
    went away before the end."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", message
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _bounded(receive: Any, limit: int) -> Any:
    """`receive`, refusing (`too_large`) once the body passes `limit`: the upload's route reads the
    stream itself, so the refusal reaches the app's error handlers."""
    seen = 0

    async def bounded() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise uploads.too_large()
        return message

    return bounded


def _refusal(upload: bool) -> str:
    """The words of a 413 at the edge: the rules' for a document, the API's for a JSON body."""
    if upload:
        return uploads.too_large().message
    return f"Requête trop volumineuse : au plus {JSON_MAX_BYTES // 1024} Kio."
