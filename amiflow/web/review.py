"""The reviewers' and the committee's pages: a reviewer's assignments, the conflict-of-interest
declaration first (no content before it), then the dossier and the scoring form; the committee's
dossiers to decide, the score table beside the summary, and the decision with its reasons, confirmed
on a second page (irreversible; no JavaScript needed).

    GET  /expertises                              the reviewer's assignments
    GET  /dossiers/{id}/expertise                 declaration, then content and scoring form
    POST /dossiers/{id}/expertise/declaration     → declare-interests
    POST /dossiers/{id}/expertise/notation        → submit-review
    GET  /comite                                  the committee's dossiers to decide (and under review)
    GET  /dossiers/{id}/decision                  score table, summary, decision form
    POST /dossiers/{id}/decision                  → the confirmation page (nothing decided yet)
    POST /dossiers/{id}/decision/confirmation     → decide
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from amiflow.api.problems import refusal
from amiflow.bootstrap import Runtime
from amiflow.services import review
from amiflow.services.principal import Principal
from amiflow.web.kit import ENVIRONMENT, Rt, Viewer, back_to, now, posted, render
from domain.assignments import NO, YES, Stage
from domain.errors import DomainError
from domain.scores import decimal

router = APIRouter(include_in_schema=False)
ENVIRONMENT.filters["decimal"] = decimal
FORM = "formulaire"  # the key of a refusal that names no field: the summary links to the form itself
YES_NO = [(YES, "Oui"), (NO, "Non")]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _errors(exc: DomainError, fields: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """The status of a refused form and its French reasons by field (`fields` renames a refusal's keys)."""
    if isinstance(exc, review.FormRefusal):
        return 422, {(fields or {}).get(k, k): v for k, v in exc.fields.items()}
    status, detail, _, _ = refusal(exc)
    return status, {FORM: detail}


def score_field(criterion: str) -> str:
    """The form field of a criterion's score."""
    return f"note-{criterion}"


# --- reviewers ------------------------------------------------------------------------------------


@router.get("/expertises")
async def assignments(request: Request, who: Viewer, rt: Rt) -> Response:
    """The reviewer's assignments: dossier, call, review due, interests declared, review given."""
    items = await review.assignments(rt, who, now())
    return render(request, "review/assignments.html", title="Mes expertises", items=items, Stage=Stage)


async def _expertise(request: Request, who: Principal, rt: Runtime, dossier_id: str, status: int = 200,
                     errors: dict[str, str] | None = None, typed: dict[str, str] | None = None) -> Response:
    view = await review.assignment(rt, who, dossier_id, now())
    return render(request, "review/expertise.html", status, title=f"Expertise du dossier {dossier_id}", view=view,
                  Stage=Stage, errors=errors or {}, typed=typed or {}, yes_no=YES_NO, score_field=score_field)


@router.get("/dossiers/{dossier_id}/expertise")
async def expertise(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """Before the declaration, only the declaration form; after it, the dossier and the scoring form."""
    return await _expertise(request, who, rt, dossier_id)


@router.post("/dossiers/{dossier_id}/expertise/declaration")
async def declaration(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """declare-interests: no conflict opens the dossier; a conflict ends the assignment."""
    form = await posted(request)
    typed = {"conflict": _text(form, "conflict"), "statement": _text(form, "statement")}
    try:
        conflict, _ = await review.declare(rt, who, dossier_id, typed["conflict"] or None, typed["statement"])
    except DomainError as exc:
        status, errors = _errors(exc)
        return await _expertise(request, who, rt, dossier_id, status, errors, typed)
    if conflict:
        return back_to(request, "/expertises", f"Conflit d’intérêts déclaré : votre affectation au dossier "
                       f"{dossier_id} prend fin, vous n’en lirez pas le contenu.")
    return back_to(request, f"/dossiers/{dossier_id}/expertise",
                   "Absence de conflit d’intérêts déclarée : le dossier vous est ouvert.")


@router.post("/dossiers/{dossier_id}/expertise/notation")
async def scoring(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """submit-review: one score per criterion of the call and an opinion."""
    form = await posted(request)
    typed = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    scores = {k.removeprefix("note-"): v for k, v in typed.items() if k.startswith("note-")}
    try:
        await review.submit_review(rt, who, dossier_id, scores, typed.get("opinion", ""))
    except DomainError as exc:
        status, errors = _errors(exc, {c: score_field(c) for c in getattr(exc, "fields", {}) if c != "opinion"})
        return await _expertise(request, who, rt, dossier_id, status, errors, typed)
    return back_to(request, "/expertises", f"Expertise du dossier {dossier_id} rendue : merci.")


# --- the committee ------------------------------------------------------------------------------


@router.get("/comite")
async def committee(request: Request, who: Viewer, rt: Rt) -> Response:
    """The dossiers of the member's calls to decide, and those still waiting for their reviews."""
    ready, waiting = await review.to_decide(rt, who, now())
    return render(request, "review/committee.html", title="Dossiers à décider", ready=ready, waiting=waiting)


async def _decision(request: Request, who: Principal, rt: Runtime, dossier_id: str, status: int = 200,
                    errors: dict[str, str] | None = None, typed: dict[str, str] | None = None) -> Response:
    sheet = await review.decision_sheet(rt, who, dossier_id, now())
    return render(request, "review/decision.html", status, title=f"Décision sur le dossier {dossier_id}",
                  sheet=sheet, errors=errors or {}, typed=typed or {}, yes_no=YES_NO)


@router.get("/dossiers/{dossier_id}/decision")
async def decision(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """The score table, the summary the committee reads, and the decision form."""
    return await _decision(request, who, rt, dossier_id)


@router.post("/dossiers/{dossier_id}/decision")
async def decision_check(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """The decision as typed, to confirm on a page of its own (nothing is decided yet); « Modifier »
    comes back here with the values, and shows the form again."""
    form = await posted(request)
    typed = {"retained": _text(form, "retained"), "reasons": _text(form, "reasons")}
    if _text(form, "etape") == "modifier":
        return await _decision(request, who, rt, dossier_id, typed=typed)
    try:
        retained = review.check_decision(typed["retained"] or None, typed["reasons"])
    except DomainError as exc:
        status, errors = _errors(exc)
        return await _decision(request, who, rt, dossier_id, status, errors, typed)
    sheet = await review.decision_sheet(rt, who, dossier_id, now())
    return render(request, "review/confirm.html", title=f"Confirmer la décision sur le dossier {dossier_id}",
                  sheet=sheet, retained=retained, typed=typed)


@router.post("/dossiers/{dossier_id}/decision/confirmation")
async def decision_confirmed(request: Request, who: Viewer, rt: Rt, dossier_id: str) -> Response:
    """decide, once confirmed."""
    form = await posted(request)
    typed = {"retained": _text(form, "retained"), "reasons": _text(form, "reasons")}
    try:
        await review.decide(rt, who, dossier_id, typed["retained"] or None, typed["reasons"])
    except DomainError as exc:
        status, errors = _errors(exc)
        return await _decision(request, who, rt, dossier_id, status, errors, typed)
    return back_to(request, f"/dossiers/{dossier_id}/decision", f"Décision enregistrée sur le dossier {dossier_id}.")
