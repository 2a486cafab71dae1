"""The size of a request body: bounded before the app reads it (a JSON body whole in memory must stay
small; a document upload streams to disk with its own limit, `amiflow.api.uploads`)."""

from __future__ import annotations

from typing import Any

from amiflow.api.problems import problem
from amiflow.api.uploads import UPLOAD_MAX_BYTES
from domain.inputs import DOSSIER_FILE_MAX

JSON_MAX_BYTES = 4 * DOSSIER_FILE_MAX  # a dossier file (domain.inputs.DOSSIER_FILE_MAX), as JSON, with room to spare


class BodyLimit:
    """ASGI middleware: 413 for a declared length past the limit, and a body cut off once it passes it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = UPLOAD_MAX_BYTES if scope["path"].endswith("/documents") else JSON_MAX_BYTES
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await problem(413, f"Requête trop volumineuse : au plus {limit // 1024} Kio.", "too_large")(
                scope, receive, send)
            return
        seen = 0

        async def bounded() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    from amiflow.api.problems import ApiRefusal

                    raise ApiRefusal(f"Requête trop volumineuse : au plus {limit // 1024} Kio.", "too_large")
            return message

        await self.app(scope, bounded, send)
