"""The holders' pages: their dossiers, the calls open for deposit, a draft built from the call's
sections (saved as `update-draft`), its attachments (with upload progress), its submission, and the
answer to a complement request — the rules' refusals next to the field they are about
(`DomainError.field`). Reports and withdrawal are the dossier page's generic forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from amiflow.api import problems, uploads
from amiflow.bootstrap import Runtime
from amiflow.services import calls as call_service
from amiflow.services import dossiers as dossier_service
from amiflow.services.principal import Principal
from amiflow.services.views import DossierView
from amiflow.web.kit import (
    CSRF_FIELD,
    CSRF_HEADER,
    Rt,
    Viewer,
    back_to,
    check_csrf,
    check_same_site,
    now,
    posted,
    render,
)
from domain import Call
from domain.calls import Phase
from domain.errors import DomainError
from domain.schemes import NeedKind
from domain.state import DEADLINE_LABELS, DeadlineKind, DossierContent, Status

router = APIRouter(include_in_schema=False)

GENERAL = "formulaire"  # the errors key of a refusal about no one field: shown at the top of the form
DRAFT_STATUSES = (Status.DRAFT, Status.COMPLEMENT_REQUESTED)  # those the draft page edits


def draft_path(dossier_id: str) -> str:
    return f"/dossiers/{dossier_id}/brouillon"


def dossier_path(item_id: str, status: Status) -> str:
    """Where a holder's list leads: the draft page while there is something to write, else the dossier."""
    return draft_path(item_id) if status in DRAFT_STATUSES else f"/dossiers/{item_id}"


def deadline_label(kind: str | None) -> str:
    return DEADLINE_LABELS[DeadlineKind(kind)] if kind in set(DeadlineKind) else (kind or "")


# --- the form <-> the content ------------------------------------------------------------------------


def field_name(path: str | None, known: set[str]) -> str:
    """The form field a refusal's `field` (`content.sections.x`, `content.partners[2]`) is about."""
    if not path:
        return GENERAL
    name = path.removeprefix("content.").split("[", 1)[0]
    return name if name in known else GENERAL


def field_names(call: Call) -> set[str]:
    return {"reference", "holder_name", "holder_type", "region", "territory", "theme", "partners",
            "financing_need", "financing_need.kinds", "financing_need.amount_eur", "financing_need.description",
            "note", "file", *(f"sections.{s.id}" for s in call.sections)}


def content_of(form: FormData, call: Call) -> dict[str, Any]:
    """The dossier's content as the form gives it (the rules check it)."""
    def text(name: str) -> str:
        value = form.get(name)
        return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""

    content: dict[str, Any] = {
        "holder_name": text("holder_name"), "holder_type": text("holder_type"), "region": text("region"),
        "territory": text("territory"),
        "partners": [line.strip() for line in text("partners").split("\n") if line.strip()],
        "sections": {s.id: text(f"sections.{s.id}") for s in call.sections if text(f"sections.{s.id}")},
    }
    if text("theme"):
        content["theme"] = text("theme")
    kinds = [k for k in form.getlist("financing_need.kinds") if isinstance(k, str)]
    amount, description = text("financing_need.amount_eur"), text("financing_need.description")
    if kinds or amount or description:
        content["financing_need"] = {"kinds": kinds, "amount_eur": amount or None, "description": description}
    return content


def values_of(content: DossierContent | None) -> dict[str, Any]:
    """The form's values from a saved content."""
    if content is None:
        return {}
    need = content.financing_need
    return {
        "holder_name": content.holder_name, "holder_type": content.holder_type.value, "region": content.region,
        "territory": content.territory, "theme": content.theme or "", "partners": "\n".join(content.partners),
        **{f"sections.{k}": v for k, v in content.sections.items()},
        "financing_need.kinds": [k.value for k in need.kinds] if need else [],
        "financing_need.amount_eur": "" if need is None or need.amount_eur is None else str(need.amount_eur),
        "financing_need.description": need.description if need else "",
    }


def posted_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    values["financing_need.kinds"] = [k for k in form.getlist("financing_need.kinds") if isinstance(k, str)]
    return values


def refused(exc: DomainError, call: Call) -> tuple[int, dict[str, str]]:
    """A refusal's status and the form's errors: its French message next to the field it is about."""
    status, detail, _, _ = problems.refusal(exc)
    return status, {field_name(exc.field, field_names(call)): detail}


def form_context(call: Call, phase: Phase) -> dict[str, Any]:
    """What the draft form offers: the phase's eligible holder types, the call's themes and sections."""
    return {
        "call": call, "phase": phase,
        "holder_types": [(t.value, t.label) for t in phase.holder_types],
        "themes": [("", "— choisir un thème —")] + [(t.id, t.label) for t in call.themes] if call.themes else [],
        "need_kinds": [(k.value, k.label) for k in NeedKind],
    }


# --- the holder's dossiers and the open calls -----------------------------------------------------------


@router.get("/mes-dossiers")
async def my_dossiers(request: Request, who: Viewer, rt: Rt) -> Response:
    """The holder's dossiers, drafts included, by next deadline."""
    at = now()
    found = await dossier_service.listing(rt, at, who=who, order="deadline")
    return render(request, "holder/dossiers.html", title="Mes dossiers", items=found.items, at=at,
                  dossier_path=dossier_path, deadline_label=deadline_label)


@router.get("/depot")
async def deposit(request: Request, who: Viewer, rt: Rt) -> Response:
    """The calls with a phase open now, each open phase with its closing."""
    return render(request, "holder/depot.html", title="Déposer un dossier",
                  calls=await call_service.open_for_deposit(rt, now()), at=now())


@router.get("/depot/{call_id}/{phase_id}")
async def new_draft(request: Request, who: Viewer, rt: Rt, call_id: str, phase_id: str) -> Response:
    """The draft form of a call's open phase."""
    call, phase = await call_service.for_draft(rt, call_id, phase_id, now())
    return render(request, "holder/brouillon.html", title=f"Nouveau dossier — {call.title}", view=None,
                  values={"reference": f"{who.person or who.actor.name} — {call.title}"[:120]}, errors={},
                  **form_context(call, phase))


@router.post("/depot/{call_id}/{phase_id}")
async def save_new_draft(request: Request, who: Viewer, rt: Rt, call_id: str, phase_id: str) -> Response:
    """Save the first version of the draft (it starts the dossier), then edit it on its own page."""
    form = await posted(request)
    at = now()
    call, phase = await call_service.for_draft(rt, call_id, phase_id, at)
    reference = form.get("reference")
    try:
        result = await dossier_service.save_draft(rt, who, call_id, phase_id,
                                                  reference.strip() if isinstance(reference, str) else "",
                                                  content_of(form, call), at, new=True)
    except DomainError as exc:
        status, errors = refused(exc, call)
        return render(request, "holder/brouillon.html", status, title=f"Nouveau dossier — {call.title}", view=None,
                      values=posted_values(form), errors=errors, **form_context(call, phase))
    return back_to(request, draft_path(result.dossier_id), "Brouillon enregistré.")


# --- a draft, or a complement to give ----------------------------------------------------------------------


async def _draft_page(request: Request, who: Principal, rt: Runtime, dossier_id: str, status: int = 200,
                      errors: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> Response:
    view: DossierView = await dossier_service.show(rt, who, dossier_id, now())
    state = view.state
    if state.status not in DRAFT_STATUSES or state.call is None:
        return back_to(request, f"/dossiers/{dossier_id}")  # nothing to write any more: the dossier's own page
    phase = state.call.phase(state.phase_id)
    assert phase is not None
    complement = state.status is Status.COMPLEMENT_REQUESTED
    title = ("Répondre à la demande de complément" if complement else "Brouillon") + f" — {state.reference}"
    return render(request, "holder/brouillon.html", status, title=title, view=view, complement=complement,
                  values=values if values is not None else {"reference": state.reference, **values_of(state.content)},
                  errors=errors or {}, deadline_label=deadline_label, at=now(), **form_context(state.call, phase))


@router.get("/dossiers/{dossier_id}/brouillon")
async def draft(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """The draft's form, filled; or, after a complement request, the form of the answer."""
    return await _draft_page(request, who, rt, dossier_id)


@router.post("/dossiers/{dossier_id}/brouillon")
async def save_draft(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """Save the draft (`update-draft`), and submit it (« Déposer le dossier »); or give the complement."""
    form = await posted(request)
    state = await dossier_service.known_state(rt, who, dossier_id, now())  # nothing shown: no read logged
    call = state.call
    if call is None:
        return back_to(request, f"/dossiers/{dossier_id}")
    content = content_of(form, call)
    action = form.get("action")
    try:
        if state.status is Status.COMPLEMENT_REQUESTED:
            note = form.get("note")
            await dossier_service.command(rt, who, dossier_id, "provide-complement",
                                          {"note": note.strip() if isinstance(note, str) else "", "content": content})
            return back_to(request, "/mes-dossiers", "Complément envoyé : le dossier retourne en instruction.")
        await dossier_service.command(rt, who, dossier_id, "update-draft", {"content": content})
        if action == "deposer":
            await dossier_service.command(rt, who, dossier_id, "submit", {})
            return back_to(request, "/mes-dossiers", "Dossier déposé.")
    except DomainError as exc:
        status, errors = refused(exc, call)
        return await _draft_page(request, who, rt, dossier_id, status, errors, posted_values(form))
    return back_to(request, draft_path(dossier_id), "Brouillon enregistré.")


@router.post("/dossiers/{dossier_id}/documents")
async def attach(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """Attach a document, streamed to disk as it arrives (multipart field `file`; the CSRF token in the
    form's `csrf` field or, from the page's script, the X-CSRF-Token header)."""
    header = request.headers.get(CSRF_HEADER)
    check_same_site(request)  # from another site: refused before its body is read
    if header is not None:
        check_csrf(request, header)

    def token_first(fields: dict[str, str]) -> None:  # a form sent without the page's script: the token
        check_csrf(request, fields.get(CSRF_FIELD))  # field comes before the file, checked before it is written

    try:
        with uploads.scratch(rt.settings.data_dir / "uploads") as folder:
            received = await uploads.receive(request, Path(folder), None if header is not None else token_first)
            done = await dossier_service.upload(rt, who, dossier_id, received.path, received.media_type)
    except DomainError as exc:
        if exc.code in ("cross_site", "not_found", "read_refused"):
            raise
        status, detail, _, _ = problems.refusal(exc)
        return await _draft_page(request, who, rt, dossier_id, status, {"file": detail})
    back = back_to(request, draft_path(dossier_id), f"Document « {done.document.name} » joint.")
    if header is not None:  # the page's script: told where to go, rather than following a redirect itself
        return JSONResponse({"location": back.headers["location"]})
    return back
