"""The headers every page is served with: a strict Content-Security-Policy (nothing inline, nothing from
elsewhere; forms post here, or to the identity provider for sign-out), no framing, no sniffing, no
referrer outside the site."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

API_PREFIX = "/api/"


def content_security_policy(issuer: str) -> str:
    """The policy of the pages: only this origin's scripts, styles and images; forms may leave only
    for the provider (sign-out goes through its `end_session`, a redirect a form's policy covers)."""
    provider = urlsplit(issuer)
    leave = f" {provider.scheme}://{provider.netloc}" if provider.scheme and provider.netloc else ""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
            f"connect-src 'self'; form-action 'self'{leave}; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    """ASGI middleware adding the security headers to every answer (the API's too: they cost nothing)."""

    def __init__(self, app: Any, issuer: str = "") -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(issuer).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self.headers if name not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
