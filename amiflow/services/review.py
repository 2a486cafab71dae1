"""Use cases of the review and the decision as reviewers and the committee work them in the back office:
a reviewer's assignments and where each stands, one assignment (its content only once interests are
declared, as `domain.reading` rules), the declaration and the scores read from a form; the committee's
dossiers to decide and the decision sheet (score table and summary) of one dossier.

What a form typed is read by `domain.assignments` / `domain.scores`; a refused answer raises
`FormRefusal` with a French reason per field, before anything reaches the dossier's workflow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel

from amiflow.bootstrap import Runtime
from amiflow.services import dossiers
from amiflow.services.errors import ReadRefused
from amiflow.services.principal import Principal
from amiflow.services.views import DossierItem, DossierView
from domain.assignments import Stage, read_decision, read_declaration, stage
from domain.calls import Criterion
from domain.errors import InvalidCommand
from domain.scores import ScoreTable, read_scores, score_table
from domain.tabs import Tab
from workflows.dossier import CommandResult

ALL = dossiers.PAGE_MAX


class FormRefusal(InvalidCommand):
    """A form's answers refused before anything is sent: `fields` gives, by field name, the French reason."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(" ".join(fields.values()))
        self.fields = fields


class AssignmentItem(BaseModel):
    """One line of a reviewer's list: the dossier, its call, the review's due date and the stage."""

    dossier_id: str
    call_id: str
    call_title: str
    review_due: datetime | None
    stage: Stage
    declared: bool
    reviewed: bool


class AssignmentView(BaseModel):
    """One assignment as the reviewer works it: the criteria to score and, once interests are
    declared, the dossier as the reviewer may read it (`dossier`; None before: nothing of the content)."""

    dossier_id: str
    call_id: str
    call_title: str
    review_due: datetime | None
    stage: Stage
    criteria: list[Criterion]
    score_max: int
    dossier: DossierView | None = None


class DecisionSheet(BaseModel):
    """What the committee reads to decide: the dossier as it may see it (summary and reviews), the
    score table, and whether it may decide now."""

    dossier: DossierView
    table: ScoreTable
    may_decide: bool


async def _all(rt: Runtime, who: Principal, now: datetime, tab: str | None = None) -> list[DossierItem]:
    """Every dossier of the person's list (all pages), in the order of their next deadline."""
    items: list[DossierItem] = []
    after: str | None = None
    while True:
        page = await dossiers.listing(rt, now, who=who, tab=tab, order="deadline", after=after, limit=ALL)
        items += page.items
        if page.next is None:
            return items
        after = page.next


async def assignments(rt: Runtime, who: Principal, now: datetime) -> list[AssignmentItem]:
    """A reviewer's assignments (those they did not declare a conflict on), next deadline first."""
    found = []
    for item in await _all(rt, who, now):
        state = await dossiers.current_state(rt, item.dossier_id)
        where = stage(state, who.actor.name)
        if where is None or state.call is None:
            continue
        found.append(AssignmentItem(dossier_id=item.dossier_id, call_id=state.call.id, call_title=state.call.title,
                                    review_due=state.review_due, stage=where,
                                    declared=where is not Stage.TO_DECLARE, reviewed=where is Stage.REVIEWED))
    return found


async def assignment(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> AssignmentView:
    """One of the reviewer's assignments; the content (`show`, logged as a read) only once declared."""
    state = await dossiers.known_state(rt, who, dossier_id, now)
    where = stage(state, who.actor.name)
    if where is None or state.call is None:
        raise ReadRefused(f"Le dossier {dossier_id} ne vous est pas affecté pour expertise.")
    view = AssignmentView(dossier_id=dossier_id, call_id=state.call.id, call_title=state.call.title,
                          review_due=state.review_due, stage=where, criteria=list(state.call.criteria),
                          score_max=state.call.score_max)
    if where is Stage.TO_DECLARE:
        return view
    return view.model_copy(update={"dossier": await dossiers.show(rt, who, dossier_id, now)})


async def declare(rt: Runtime, who: Principal, dossier_id: str, conflict: str | None,
                  statement: str) -> tuple[bool, CommandResult]:
    """Declare interests from the form's « oui »/« non »; whether a conflict was declared (which ends
    the assignment), and the command's result."""
    found, errors = read_declaration(conflict)
    if found is None:
        raise FormRefusal(errors)
    result = await dossiers.command(rt, who, dossier_id, "declare-interests",
                                    {"conflict": found, "statement": statement.strip()})
    return found, result


async def submit_review(rt: Runtime, who: Principal, dossier_id: str, typed: Mapping[str, str],
                        opinion: str) -> CommandResult:
    """Give the review from the form: a score typed per criterion of the call (by criterion id), and
    an opinion; each refused answer is named by its criterion (or `opinion`)."""
    state = await dossiers.current_state(rt, dossier_id)
    if state.call is None or not state.declared_reviewer(who.actor.name):
        # the rules' own refusal, in their words (not assigned, interests not declared yet…): the decider
        # refuses before it reads the scores, so none is checked here (nor the opinion, never empty for it)
        return await dossiers.command(rt, who, dossier_id, "submit-review",
                                      {"scores": {}, "opinion": opinion.strip() or "—"})
    scores, errors = read_scores(state.call, typed)
    if not opinion.strip():
        errors["opinion"] = "Donnez votre avis sur le dossier."
    if errors:
        raise FormRefusal(errors)
    return await dossiers.command(rt, who, dossier_id, "submit-review", {"scores": scores, "opinion": opinion})


async def to_decide(rt: Runtime, who: Principal, now: datetime) -> tuple[list[DossierItem], list[DossierItem]]:
    """The committee's dossiers: those to decide (every review in), and those still waiting for reviews."""
    return await _all(rt, who, now, Tab.A_DECIDER.value), await _all(rt, who, now, Tab.EN_REVUE.value)


async def decision_sheet(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> DecisionSheet:
    """The dossier as the committee reads it (summary and reviews, logged as read), its score table,
    and whether the rules let this person decide now."""
    view = await dossiers.show(rt, who, dossier_id, now)
    may = any(c.name == "decide" for c in await dossiers.available(rt, who, dossier_id, now))
    return DecisionSheet(dossier=view, table=score_table(view.state), may_decide=may)


def check_decision(retained: str | None, reasons: str) -> bool:
    """The decision the form states (retained or not), once its answers hold; else `FormRefusal`."""
    found, errors = read_decision(retained, reasons)
    if found is None:
        raise FormRefusal(errors)
    return found


async def decide(rt: Runtime, who: Principal, dossier_id: str, retained: str | None, reasons: str) -> CommandResult:
    """Take the committee's decision, confirmed, with its reasons."""
    found = check_decision(retained, reasons)
    return await dossiers.command(rt, who, dossier_id, "decide", {"retained": found, "reasons": reasons.strip()})
