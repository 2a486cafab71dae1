"""The home page: each role lands on its own first page (its first item of navigation)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from amiflow.web.kit import NAV, Viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, who: Viewer) -> Response:
    """Staff go to their calls, holders to their dossiers, reviewers to their assignments…"""
    first = NAV.get(who.actor.role)
    if first:
        return RedirectResponse(first[0][0], 303)
    return render(request, "error.html", 403, heading="Accès refusé", code="read_refused",
                  detail="Ce compte n’a aucune page dans amiflow.")
