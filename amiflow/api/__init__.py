"""The HTTP API (FastAPI): everything under /api/v1/, its OpenAPI document at /api/v1/openapi.json.
`create_app(rt)` builds it on a runtime; `amiflow serve` runs it with uvicorn."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from amiflow import signin, web
from amiflow.api import problems
from amiflow.api.auth import RateLimiter, Source, default_sources
from amiflow.api.limits import BodyLimit
from amiflow.api.routes import DossierFile, router
from amiflow.bootstrap import Runtime
from domain.signin import SIGN_IN_RATE
from domain.throttle import Rate

PER_ADDRESS = Rate(burst=300, per_second=50.0)  # one address may carry many people (a proxy, a NAT)
PER_TOKEN = Rate(burst=120, per_second=20.0)  # a script, not a flood

__all__ = ["PER_ADDRESS", "PER_TOKEN", "create_app"]


def create_app(rt: Runtime, *, per_address: Rate = PER_ADDRESS, per_token: Rate = PER_TOKEN,
               sources: list[Source] | None = None, sign_in_rate: Rate = SIGN_IN_RATE) -> FastAPI:
    """The API on `rt`. No page loads anything from elsewhere: the interactive docs are off, the
    OpenAPI document is served as JSON."""
    app = FastAPI(
        title="amiflow", version="1", summary="Les dossiers des appels à manifestation d’intérêt (AMI).",
        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
        description="Chaque appel porte un jeton personnel (`Authorization: Bearer JETON`, "
                    "`amiflow tokens issue`). Les erreurs sont en application/problem+json (RFC 9457).",
    )
    app.state.rt = rt
    app.state.limiter = RateLimiter(per_address, per_token)
    app.state.principal_sources = list(sources) if sources is not None else default_sources()
    problems.install(app)
    app.include_router(router)
    signin.install(app, rt, sign_in_rate)  # /auth: sign-in through OpenID Connect, the session cookie
    web.install(app, rt)  # the back office's pages, in French
    app.add_middleware(BodyLimit)
    _bearer_scheme(app)
    return app


def _bearer_scheme(app: FastAPI) -> None:
    """Say in the OpenAPI document that every endpoint takes a bearer token."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "jeton": {"type": "http", "scheme": "bearer", "description": "Un jeton personnel."}}
            schema["security"] = [{"jeton": []}]
            problems.document_problems(schema)
            schema["components"].setdefault("schemas", {})["DossierFile"] = DossierFile.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
