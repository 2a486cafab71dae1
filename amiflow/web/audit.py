"""The auditors' pages: open a dossier by its id, the dossiers they may open, the verification of the
journal's chains (all of it or one dossier's) in French, and the download of a dossier's self-verifying
bundle. Whoever is not an auditor gets a French 403.

    GET /audit                               the form, the verification button, the dossier list
    GET /audit/ouvrir?dossier=ID             to that dossier's page
    GET /audit/verification[?dossier=ID]     the VerifyReport, in French
    GET /audit/dossiers/{id}/export          the bundle (tar.gz)
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from amiflow.services import audit as audit_service
from amiflow.web.kit import Rt, Viewer, now, render

router = APIRouter(include_in_schema=False)

BREAK_KINDS = {
    "changed": "événement modifié", "deleted": "événement supprimé", "inserted": "événement inséré",
    "reordered": "événements réordonnés", "truncated": "journal tronqué", "missing_dossier": "dossier manquant",
    "anchor": "ancre qui ne correspond plus",
}


@router.get("/audit")
async def audit_home(request: Request, rt: Rt, who: Viewer, apres: str | None = None) -> Response:
    """The auditor's desk."""
    page = await audit_service.auditor_listing(rt, who, now(), after=apres or None)
    return render(request, "audit/accueil.html", page=page, after=apres or "")


@router.get("/audit/ouvrir")
async def open_dossier(who: Viewer, dossier: str = "") -> Response:
    """The dossier typed in the form, on its own page."""
    return RedirectResponse(f"/dossiers/{quote(dossier.strip(), safe='')}" if dossier.strip() else "/audit", 303)


@router.get("/audit/verification")
async def verification(request: Request, rt: Rt, who: Viewer, dossier: str | None = None) -> Response:
    """The chains recomputed against their head and anchors: what was checked, what broke."""
    report = await audit_service.verify(rt, dossier or None, who=who)
    return render(request, "audit/verification.html", report=report, dossier=dossier or "", kinds=BREAK_KINDS)


@router.get("/audit/dossiers/{dossier_id}/export")
async def export(rt: Rt, who: Viewer, dossier_id: str) -> Response:
    """The dossier's bundle, as a download; the export is in its read log."""
    name, data = await audit_service.export_archive(rt, who, dossier_id, now())
    return Response(data, media_type="application/gzip", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"})
