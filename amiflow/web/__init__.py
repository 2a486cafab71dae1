"""The web back office: server-rendered pages in French on the same ASGI app as the API. Every page
reads and acts through the service layer, as the person signed in through OpenID Connect
(`amiflow.signin`); forms work without JavaScript and carry a CSRF token; the static files are
vendored here (no CDN) and a strict Content-Security-Policy allows no inline script.

    web.install(app, rt)   # after signin.install: pages, /static, security headers, HTML error pages

Each area of the back office is a router in its own module (`home`, …), listed in `AREAS`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from amiflow.bootstrap import Runtime
from amiflow.web import audit, dossier, holder, home, kit, review, staff
from amiflow.web.security import SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"
AREAS = [home.router, staff.router, holder.router, dossier.router, audit.router, review.router]


def install(app: FastAPI, rt: Runtime) -> None:
    """Give `app` the back office's pages."""
    kit.install(app)
    for router in AREAS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders, issuer=rt.settings.oidc_issuer)
