"""The staff's pages: their home (their calls, the count per tab, what falls due in the next 7 days,
the call files refused), a call's dossiers in tabs (filters, next-deadline order, pages, exports in
CSV, XLSX and ODS), and the call page (its phases in Paris time, assumed dates marked, a phase's
extension previewed then confirmed).

    GET  /appels                                             the staff's home
    GET  /appels/{call}                                      the call page
    GET  /appels/{call}/dossiers?onglet=&phase=&type=&territoire=&en_retard=1&apres=&par_page=
    GET  /appels/{call}/dossiers.csv|.xlsx|.ods              the current list (same filters, every page)
    POST /appels/{call}/phases/{phase}/prolongation          the preview of an extension
    POST /appels/{call}/phases/{phase}/prolongation/confirmer

Who may see what is the services' decision (`calls.desk`, `dossiers.listing`): staff of another call
are answered as if the call did not exist (404)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from amiflow.api import problems
from amiflow.services import calls as call_service
from amiflow.services import dossiers as dossier_service
from amiflow.services import exports as export_service
from amiflow.services.commands import parse_instant
from amiflow.services.errors import NotFound
from amiflow.services.views import CallDesk, PhaseView
from amiflow.web.kit import Rt, Viewer, back_to, now, paris_long, posted, render
from domain.calendar import PARIS
from domain.calls import HOLDER_TYPE_LABELS
from domain.errors import DomainError, InvalidInput
from domain.state import DEADLINE_LABELS, Status
from domain.tabs import TABS, Tab
from domain.text import visible

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50  # dossiers per page of a list (`par_page` changes it, from 1 to PAGE_SIZE_MAX)
PAGE_SIZE_MAX = 200
FORMATS = ("csv", "xlsx", "ods")
HOLDER_TYPES = {k.value: v for k, v in HOLDER_TYPE_LABELS.items()}
DEADLINE_KINDS = {k.value: v for k, v in DEADLINE_LABELS.items()}
TAB_LABELS = {t.value: t.label for t in TABS}


# --- home -------------------------------------------------------------------------------------------


@router.get("/appels")
async def home(request: Request, who: Viewer, rt: Rt) -> Response:
    """The staff's calls with their counts per tab, the deadlines and closings of the next 7 days, and
    the call files the catalogue refused."""
    refused = call_service.refused_files(rt, who)
    overview = await dossier_service.overview(rt, who, now())
    return render(request, "staff/home.html", title="Mes appels", overview=overview, refused=refused,
                  tabs=TABS, deadline_kinds=DEADLINE_KINDS, status_labels={s.value: s.label for s in Status})


# --- a call's dossiers ------------------------------------------------------------------------------


def _filters(phase: str | None, holder_type: str | None, territory: str | None, overdue: bool) -> dict[str, str]:
    """The list's filters as the page's address carries them (empty ones left out)."""
    given = {"phase": phase or "", "type": holder_type or "", "territoire": (territory or "").strip(),
             "en_retard": "1" if overdue else ""}
    return {k: v for k, v in given.items() if v}


def _address(path: str, **params: str | int | None) -> str:
    """`path` with its query string (empty values left out)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


Text = Annotated[str | None, Query(max_length=200)]


@router.get("/appels/{call_id}/dossiers")
async def dossiers(request: Request, who: Viewer, rt: Rt, call_id: str, onglet: Text = Tab.A_TRAITER.value,
                   phase: Text = None, type: Text = None, territoire: Text = None,  # noqa: A002 - the address's word
                   en_retard: Text = None, apres: Annotated[str | None, Query(max_length=600)] = None,
                   par_page: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE) -> Response:
    """One tab of the call's dossiers, filtered, by next deadline, a page at a time."""
    instant = now()
    desk = await call_service.desk(rt, who, call_id, instant)
    filters = _filters(phase, type, territoire, bool(en_retard))
    tab = onglet or Tab.A_TRAITER.value
    page = await dossier_service.listing(
        rt, instant, desk.call.id, None, filters.get("phase"), "en_retard" in filters, apres or None, par_page,
        who=who, tab=tab, holder_type=filters.get("type"), territory=filters.get("territoire"), order="deadline",
        exact=True)
    base = f"/appels/{desk.call.id}/dossiers"
    size = par_page if par_page != PAGE_SIZE else None
    return render(
        request, "staff/dossiers.html", title=f"Dossiers {TAB_LABELS.get(tab, tab)} — {desk.call.title}",
        desk=desk, page=page, tab=tab, tab_label=TAB_LABELS.get(tab, tab), tabs=TABS, filters=filters,
        first=bool(apres),
        tab_links={t.value: _address(base, onglet=t.value, par_page=size, **filters) for t in TABS},
        next_link=_address(base, onglet=tab, apres=page.next, par_page=size, **filters) if page.next else None,
        first_link=_address(base, onglet=tab, par_page=size, **filters),
        exports={f: _address(f"{base}.{f}", onglet=tab, **filters) for f in FORMATS},
        clear_link=_address(base, onglet=tab),
        phase_options=[("", "Toutes les phases"), *((p.id, p.label) for p in desk.call.phases)],
        type_options=[("", "Tous les types"), *HOLDER_TYPES.items()], holder_types=HOLDER_TYPES,
        deadline_kinds=DEADLINE_KINDS, page_size=size)


@router.get("/appels/{call_id}/dossiers.{fmt}")
async def export(who: Viewer, rt: Rt, call_id: str, fmt: str, onglet: Text = Tab.A_TRAITER.value,
                 phase: Text = None, type: Text = None, territoire: Text = None,  # noqa: A002
                 en_retard: Text = None) -> Response:
    """The current list (same tab and filters, every page, by next deadline) as a spreadsheet file."""
    instant = now()
    desk = await call_service.desk(rt, who, call_id, instant)
    filters = _filters(phase, type, territoire, bool(en_retard))
    file = await export_service.export(
        rt, who, instant, fmt, call_id=desk.call.id, phase_id=filters.get("phase"), overdue="en_retard" in filters,
        tab=onglet or Tab.A_TRAITER.value, holder_type=filters.get("type"), territory=filters.get("territoire"),
        order="deadline")
    return Response(file.data, media_type=file.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}",
        "Cache-Control": "no-store"})


# --- the call page and a phase's extension ------------------------------------------------------------


def closing_field(phase_id: str) -> str:
    """The name of a phase's « new closing » field (one form per open phase on the call page)."""
    return f"cloture-{phase_id}"


def _call_page(request: Request, desk: CallDesk, status: int = 200, errors: dict[str, str] | None = None,
               values: dict[str, str] | None = None) -> Response:
    return render(request, "staff/call.html", status, title=desk.call.title, desk=desk, tabs=TABS,
                  errors=errors or {}, values=values or {}, closing_field=closing_field)


@router.get("/appels/{call_id}")
async def call_page(request: Request, who: Viewer, rt: Rt, call_id: str) -> Response:
    """The call: its phases in Paris time (assumed dates marked), its dossiers per tab, and for each
    open phase the form of an extension."""
    try:
        desk = await call_service.desk(rt, who, call_id, now())
    except NotFound:
        refused = call_service.refused_file(rt, who, call_id)
        if refused is None:
            raise
        return render(request, "staff/refused.html", title=f"Fichier d’appel refusé : {refused.file}", file=refused)
    return _call_page(request, desk)


def _phase(desk: CallDesk, phase_id: str) -> PhaseView | None:
    return next((p for p in desk.call.phases if p.id == phase_id), None)


def _refused(request: Request, desk: CallDesk, phase_id: str, exc: DomainError, typed: str) -> Response:
    """The call page again, with the refusal next to the phase's field (status 409 or 422)."""
    status, detail, _code, _headers = problems.refusal(exc)
    name = closing_field(phase_id)
    return _call_page(request, desk, status if status in (409, 422) else 409, {name: detail}, {name: typed})


def _until(typed: str) -> datetime:
    """The new closing typed in the form (a Paris wall-clock time, or an instant with its offset)."""
    if not typed.strip():
        raise InvalidInput("Indiquez la nouvelle date et heure de clôture.")
    return parse_instant(typed.strip())


def _known_phase(desk: CallDesk, phase_id: str) -> PhaseView:
    phase = _phase(desk, phase_id)
    if phase is None:
        raise NotFound(f"L’appel « {desk.call.id} » n’a pas de phase « {visible(phase_id)} ».")
    return phase


@router.post("/appels/{call_id}/phases/{phase_id}/prolongation")
async def extension_preview(request: Request, who: Viewer, rt: Rt, call_id: str, phase_id: str) -> Response:
    """How many open dossiers the extension would touch, and the form that confirms it."""
    form = await posted(request)
    desk = await call_service.desk(rt, who, call_id, now())
    phase = _known_phase(desk, phase_id)
    typed = str(form.get(closing_field(phase_id)) or "")
    try:
        preview = await call_service.extension_preview(rt, who, desk.call.id, phase.id, _until(typed), now())
    except DomainError as exc:
        return _refused(request, desk, phase.id, exc, typed)
    return render(request, "staff/extension.html", title="Confirmer la prolongation", desk=desk, phase=phase,
                  preview=preview, until=preview.until.astimezone(PARIS).isoformat(timespec="minutes"))


@router.post("/appels/{call_id}/phases/{phase_id}/prolongation/confirmer")
async def extension_confirm(request: Request, who: Viewer, rt: Rt, call_id: str, phase_id: str) -> Response:
    """Extend the phase; back to the call page, which shows the new closing."""
    form = await posted(request)
    desk = await call_service.desk(rt, who, call_id, now())
    phase = _known_phase(desk, phase_id)
    typed = str(form.get("cloture") or "")
    try:
        done = await call_service.extend(rt, who, desk.call.id, phase.id, _until(typed))
    except DomainError as exc:
        return _refused(request, desk, phase.id, exc, typed[:16])
    count = len(done.dossiers)
    followers = "aucun dossier ouvert n’était concerné" if not count else (
        f"{count} dossier ouvert suit" if count == 1 else f"{count} dossiers ouverts suivent")
    closes = paris_long(done.closes_at)
    return back_to(request, f"/appels/{desk.call.id}",
                   f"La clôture de la phase « {phase.label} » est reportée au {closes} ; {followers}.")
