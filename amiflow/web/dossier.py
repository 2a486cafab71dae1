"""The dossier page, for every role: its summary, its content and documents for those who may read them,
its deadlines, its timeline, the clearances granted, and the actions the rules allow this person now,
each a form built from the command's fields (irreversible ones ask for a confirmation first, without
JavaScript; a refusal is shown in French next to its form). `?au=AAAA-MM-JJTHH:MM`: the dossier as it
stood then.

    GET  /dossiers/{id}                        the page (?au= : as of that Paris time)
    GET  /dossiers/{id}/chronologie            the whole timeline
    GET  /dossiers/{id}/documents/{doc}        a document, as a download
    POST /dossiers/{id}/commandes/{command}    a command's form (confirme=oui once confirmed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from amiflow.api.problems import refusal
from amiflow.services import dossiers as dossier_service
from amiflow.services.commands import parse_instant
from amiflow.services.commands import spec as command_spec
from amiflow.services.errors import ReadRefused
from amiflow.services.principal import Principal
from amiflow.services.views import CommandOption, CommandSpec, DossierView, TimelineEntry
from amiflow.web.kit import CSRF_FIELD, Rt, Viewer, back_to, now, posted, render
from domain.access import AuditOperation, may_audit
from domain.actions import AS_OF_ROLES, choices, confirmation, event_label, is_irreversible, read_label
from domain.errors import DomainError

router = APIRouter(include_in_schema=False)

# Commands with a page of their own (another area of the back office): offered as a link to it.
DEDICATED: dict[str, str] = {
    "declare-interests": "expertise", "submit-review": "expertise",
    "decide": "decision",
    "update-draft": "brouillon", "submit": "brouillon", "provide-complement": "brouillon",
}
CONFIRMED = "confirme"
TIMELINE_SHOWN = 20

# How each field of a command reads in a form.
OPTION_LABELS: dict[str, str] = {
    "due": "Échéance", "until": "Nouvelle échéance", "reviewers": "Experts", "pieces": "Pièces demandées",
    "reason": "Motif", "reasons": "Motifs de la décision", "note": "Note", "summary": "Rapport de suivi",
    "opinion": "Avis", "statement": "Déclaration", "conflict": "Conflit d’intérêts", "retained": "Lauréat",
    "period": "Période de suivi", "scheme-id": "Dispositif", "outcome": "Suivi de la demande",
    "amount-eur": "Montant (euros)", "kind": "Point de suivi", "deadline": "Échéance à prolonger",
    "auditor": "Auditeur (son identifiant)", "content": "Contenu", "scores": "Notes",
}
KIND_HINTS: dict[str, str] = {
    "date": "Heure de Paris (AAAA-MM-JJ HH:MM).",
    "liste": "Plusieurs valeurs séparées par des virgules.",
    "notes": "Une note par critère : critere=note, séparées par des virgules.",
}
HTML_KINDS = {"date": "datetime-local", "texte": "textarea", "nombre": "number", "oui/non": "radios",
              "valeur": "select"}


@dataclass
class Field:
    """One field of an action's form."""

    name: str  # command.option: unique on the page
    label: str
    kind: str  # text, textarea, select, datetime-local, number, radios
    required: bool
    value: str = ""
    hint: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Action:
    """A command this person may give now: a form, or a link to its own page."""

    name: str
    label: str
    fields: list[Field]
    irreversible: bool
    link: str | None = None
    error: str | None = None


def form_name(command: str, option: str) -> str:
    return f"{command}.{option}"


def _field(command: str, option: CommandOption, view: DossierView, values: dict[str, str]) -> Field:
    name = form_name(command, option.name)
    kind = HTML_KINDS.get(option.kind, "text")
    options = choices(command, option.name) if kind == "select" else []
    if option.name == "scheme-id" and view.state.filings:
        kind, options = "select", [(f.scheme_id, f.scheme_name) for f in view.state.filings]
    if kind == "select" and not options:
        kind = "text"
    if option.name == "auditor":  # a name of the directory: one line
        kind = "text"
    if kind == "select" and not option.required:
        options = [("", "— aucun —"), *options]
    if kind == "radios":
        options = [("true", "Oui"), ("false", "Non")]
    return Field(name=name, label=OPTION_LABELS.get(option.name, option.name), kind=kind, required=option.required,
                 value=values.get(name, ""), hint=KIND_HINTS.get(option.kind, ""), options=options)


def actions(dossier_id: str, specs: list[CommandSpec], view: DossierView, values: dict[str, str],
            errors: dict[str, str]) -> list[Action]:
    """The forms (and links) of the commands offered."""
    out = []
    for spec in specs:
        label = spec.label[:1].upper() + spec.label[1:]
        page = DEDICATED.get(spec.name)
        out.append(Action(
            name=spec.name, label=label, irreversible=is_irreversible(spec.name),
            fields=[] if page else [_field(spec.name, o, view, values) for o in spec.options],
            link=f"/dossiers/{quote(dossier_id)}/{page}" if page else None, error=errors.get(spec.name)))
    return out


def _as_of(text: str | None) -> datetime | None:
    return parse_instant(text.strip()) if text and text.strip() else None


async def dossier_page(request: Request, rt: Any, who: Principal, dossier_id: str, as_of: datetime | None = None,
                       values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                       status: int = 200) -> Response:
    """The dossier page (also re-rendered with a form's refusal next to that form)."""
    instant = now()
    view = await dossier_service.show(rt, who, dossier_id, instant, as_of)
    specs = await dossier_service.available(rt, who, dossier_id, instant) if as_of is None else []
    timeline: list[TimelineEntry] | None = None
    timeline_refused = ""
    try:
        timeline = (await dossier_service.timeline(rt, who, dossier_id, instant)).entries
    except ReadRefused as refused:
        timeline_refused = refused.message
    if timeline is not None and as_of is not None:
        timeline = [e for e in timeline if e.at <= as_of]
    clearances = await dossier_service.clearances(rt, who, dossier_id)
    errors = errors or {}
    return render(
        request, "dossier/page.html", status, view=view, dossier_id=dossier_id,
        actions=actions(dossier_id, specs, view, values or {}, errors),
        errors={f"commande-{k}": v for k, v in errors.items()},
        timeline=timeline[-TIMELINE_SHOWN:] if timeline is not None else None,
        timeline_total=len(timeline or []), timeline_refused=timeline_refused, clearances=clearances,
        as_of_offered=who.actor.role in AS_OF_ROLES, as_of_value=request.query_params.get("au", ""),
        auditing=may_audit(who.actor, AuditOperation.EXPORT).granted, event_label=event_label,
        read_label=read_label, sections={s.id: s.label for s in view.state.call.sections} if view.state.call else {})


@router.get("/dossiers/{dossier_id}")
async def dossier(request: Request, rt: Rt, who: Viewer, dossier_id: str, au: str | None = None) -> Response:
    """The dossier as this person may see it (as of `au`, Paris time, when given)."""
    return await dossier_page(request, rt, who, dossier_id, _as_of(au))


@router.get("/dossiers/{dossier_id}/chronologie")
async def whole_timeline(request: Request, rt: Rt, who: Viewer, dossier_id: str) -> Response:
    """Every event and read of the dossier, in order."""
    view = await dossier_service.timeline(rt, who, dossier_id, now())
    return render(request, "dossier/chronologie.html", dossier_id=dossier_id, entries=view.entries,
                  event_label=event_label, read_label=read_label)


@router.get("/dossiers/{dossier_id}/documents/{document_id}")
async def document(rt: Rt, who: Viewer, dossier_id: str, document_id: str) -> Response:
    """A document of the dossier, downloaded (never shown inline)."""
    ref, data = await dossier_service.document(rt, who, dossier_id, document_id, now())
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(ref.name)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def _typed(form: FormData, command: str) -> dict[str, str]:
    """The values typed in a command's form, by form name (kept when the form is shown again)."""
    prefix = command + "."
    return {k: v for k, v in form.items() if isinstance(v, str) and k.startswith(prefix)}


@router.post("/dossiers/{dossier_id}/commandes/{command}")
async def give(request: Request, rt: Rt, who: Viewer, dossier_id: str, command: str) -> Response:
    """A command's form: confirmed first if irreversible; done, back to the page; refused, the page again
    with the refusal next to the form."""
    form = await posted(request)
    if command in DEDICATED:
        return RedirectResponse(f"/dossiers/{quote(dossier_id)}/{DEDICATED[command]}", 303)
    typed = _typed(form, command)
    fields = {k.split(".", 1)[1]: v.strip() for k, v in typed.items() if v.strip()}
    if is_irreversible(command) and form.get(CONFIRMED) != "oui":
        await dossier_service.known_state(rt, who, dossier_id, now())  # who may not know it: « inconnu »
        return render(request, "dossier/confirmer.html", question=confirmation(command, dossier_id),
                      dossier_id=dossier_id, command=command, typed=typed, csrf_name=CSRF_FIELD,
                      shown=[(k.split(".", 1)[1], v) for k, v in typed.items() if v.strip()],
                      labels=OPTION_LABELS)
    try:
        await dossier_service.command(rt, who, dossier_id, command, fields)
    except DomainError as exc:
        status, detail, _code, _ = refusal(exc)
        if status not in (409, 422):
            raise
        return await dossier_page(request, rt, who, dossier_id, values=typed, errors={command: detail},
                                  status=status)
    label = command_spec(command).label
    return back_to(request, f"/dossiers/{quote(dossier_id)}", f"« {label[:1].upper() + label[1:]} » : c’est fait.")
