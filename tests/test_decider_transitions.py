"""What the decider accepts and refuses, command by command: arguments, instants, order, messages.
(Who may give which command in which status: tests/test_permission_matrix.py.)

The dossiers are driven to each status through real commands on the PMCB call (rolling review,
open from 1 July 2025 for three years, Paris time: the shipped file, at fixed instants of 2026, so
these tests do not depend on today); the CREC 2018 call covers themes and review after closing.
A refused command must change nothing; an accepted one must follow LIFECYCLE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from pydantic import ValidationError

from amiflow.catalogue import CALLS_DIR, load_call, load_dossier, load_schemes
from domain.access import SYSTEM, Actor, Role
from domain.calendar import PARIS, show, to_utc
from domain.calls import HolderType, Section
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    AttachDocument,
    Close,
    Command,
    DeclareComplete,
    DeclareInterests,
    DestroyContent,
    EscalateComplement,
    EscalateReview,
    ExpireDraft,
    ExtendDeadline,
    FileReport,
    FlagLateReport,
    GrantClearance,
    LiftLegalHold,
    Orient,
    ProvideComplement,
    RecordFiling,
    RecordFollowUp,
    RequestComplement,
    SetLegalHold,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
    UpdateDraft,
    Withdraw,
)
from domain.deadlines import deadlines, report_count, report_due
from domain.decider import PERMISSIONS, decide, evolve, replay
from domain.errors import (
    DomainError,
    IncompleteDossier,
    InvalidCommand,
    InvalidTransition,
    NoFittingScheme,
    NotAllowed,
    NotEligible,
    PhaseClosed,
)
from domain.events import ComplementOverdue, DossierSubmitted, DraftStarted, Event, ReviewerRecused, ReviewOverdue
from domain.schemes import recommend
from domain.state import (
    FILING_STEPS,
    LIFECYCLE,
    DeadlineKind,
    DocumentRef,
    DossierContent,
    DossierState,
    FilingStatus,
    FollowUpKind,
    Status,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
PMCB = load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")
CREC = load_call(CALLS_DIR / "normandie-crec-2018.yaml")
SCHEMES = load_schemes()
PMCB_EXAMPLE = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml")
CREC_EXAMPLE = load_dossier(EXAMPLES / "normandie-crec-2018.yaml")
CONTENT = PMCB_EXAMPLE.content
PHASE = PMCB.phases[0]
CREC_PHASE = CREC.phases[0]

HOLDER = Actor(role=Role.HOLDER, name="acme")
OTHER_HOLDER = Actor(role=Role.HOLDER, name="other")
STAFF = Actor(role=Role.STAFF, name="amelie")
REVIEWER = Actor(role=Role.REVIEWER, name="rita")
COMMITTEE = Actor(role=Role.COMMITTEE, name="cora")
AUDITOR = Actor(role=Role.AUDITOR, name="aude")
ACTORS: dict[Role, Actor] = {
    Role.HOLDER: HOLDER, Role.STAFF: STAFF, Role.REVIEWER: REVIEWER, Role.COMMITTEE: COMMITTEE,
    Role.SYSTEM: SYSTEM, Role.AUDITOR: AUDITOR,
}

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)  # inside the PMCB phase
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)  # the drive to a status happens before NOW
COMPLEMENT_DUE = NOW + timedelta(days=21)
REVIEW_DUE = NOW + timedelta(days=30)
SCORES = {c.id: 3 for c in PMCB.criteria}

# Words or signs that only a French message would carry; English messages match none of them.
FRENCH = re.compile(
    r"[àâçéèêëîïôûùœ’«»]|\b(le|la|les|un|une|des|du|de|est|ce|vous|dossier|aucun|aucune|pas)\b",
    re.IGNORECASE,
)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


# --- driving a dossier ----------------------------------------------------------------------


def apply(state: DossierState, command: Command, actor: Actor, now: datetime) -> DossierState:
    """Decide and fold, as the workflow does."""
    return replay(decide(state, command, actor, now), state)


def accepted(state: DossierState, command: Command, actor: Actor, now: datetime) -> DossierState:
    """Run an accepted command and check what every accepted command must satisfy."""
    before = state.model_copy(deep=True)
    events = decide(state, command, actor, now)
    assert events, f"{command.type} accepted but produced no event"
    assert all(e.actor == actor and e.at == to_utc(now) for e in events)
    assert actor.role is PERMISSIONS[command.type]
    new = replay(events, state)
    assert new.status is state.status or new.status in LIFECYCLE[state.status], (
        f"{command.type}: {state.status} → {new.status} is not in LIFECYCLE"
    )
    assert new.version == state.version + len(events)
    assert state == before, "decide or evolve changed the state in place"
    return new


def refused(
    state: DossierState, command: Command, actor: Actor, now: datetime, error: type[DomainError]
) -> DomainError:
    """Check the command is refused with exactly `error`, a French message, and no change."""
    before = state.model_copy(deep=True)
    command_before = command.model_copy(deep=True)
    with pytest.raises(DomainError) as info:
        decide(state, command, actor, now)
    exc = info.value
    assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc.message}"
    assert state == before, "a refused command changed the state"
    assert command == command_before
    assert exc.message.strip() and str(exc) == exc.message
    assert FRENCH.search(exc.message), f"not a French message: {exc.message!r}"
    return exc


Step = tuple[Command, Actor, datetime | None]  # None: one hour after the previous step

# Each status is reached from its parent by a few real commands.
PARENT: dict[Status, Status] = {
    Status.DRAFT: Status.NEW, Status.SUBMITTED: Status.DRAFT, Status.ACKNOWLEDGED: Status.SUBMITTED,
    Status.COMPLEMENT_REQUESTED: Status.ACKNOWLEDGED, Status.COMPLETE: Status.ACKNOWLEDGED,
    Status.UNDER_REVIEW: Status.COMPLETE, Status.RETAINED: Status.UNDER_REVIEW,
    Status.NOT_RETAINED: Status.UNDER_REVIEW, Status.ORIENTED: Status.RETAINED,
    Status.FOLLOW_UP: Status.ORIENTED, Status.CLOSED: Status.ACKNOWLEDGED,
    Status.WITHDRAWN: Status.SUBMITTED, Status.EXPIRED: Status.DRAFT,
}


def _last_steps(status: Status, content: DossierContent) -> list[Step]:
    review: list[Step] = [
        (DeclareInterests(conflict=False, statement="Aucun lien avec le porteur"), REVIEWER, None),
        (SubmitReview(scores=SCORES, opinion="Consortium solide"), REVIEWER, None),
    ]
    steps: dict[Status, list[Step]] = {
        Status.DRAFT: [(StartDraft(call=PMCB, phase_id="unique", reference=PMCB_EXAMPLE.reference,
                                   content=content), HOLDER, None)],
        Status.SUBMITTED: [(Submit(), HOLDER, None)],
        Status.ACKNOWLEDGED: [(Acknowledge(), STAFF, None)],
        Status.COMPLEMENT_REQUESTED: [
            (RequestComplement(pieces="Kbis de moins de trois mois", due=COMPLEMENT_DUE), STAFF, None)
        ],
        Status.COMPLETE: [(DeclareComplete(), STAFF, None)],
        Status.UNDER_REVIEW: [(AssignReviewers(reviewers=("rita",), due=REVIEW_DUE), STAFF, None)],
        Status.RETAINED: [*review, (TakeDecision(retained=True, reasons="Projet structurant"),
                                    COMMITTEE, None)],
        Status.NOT_RETAINED: [*review, (TakeDecision(retained=False, reasons="Hors champ"),
                                        COMMITTEE, None)],
        Status.ORIENTED: [(Orient(catalogue=SCHEMES), STAFF, None)],
        Status.FOLLOW_UP: [(RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, None)],
        Status.CLOSED: [(Close(reason="Projet hors du champ de l’AMI"), STAFF, None)],
        Status.WITHDRAWN: [(Withdraw(reason="Projet abandonné"), HOLDER, None)],
        Status.EXPIRED: [(ExpireDraft(), SYSTEM, PHASE.closes_at)],
    }
    return steps[status]


def journey(status: Status, content: DossierContent = CONTENT) -> tuple[DossierState, list[Event]]:
    """The state at `status` on the PMCB call, and the events that built it."""
    if status is Status.NEW:
        return DossierState(), []
    state, events = journey(PARENT[status], content)
    for command, actor, at in _last_steps(status, content):
        when = at if at is not None else T0 + timedelta(hours=state.version)
        new_events = decide(state, command, actor, when)
        state = replay(new_events, state)
        events = [*events, *new_events]
    assert state.status is status
    return state, events


@cache
def reach(status: Status) -> DossierState:
    """A PMCB dossier of acme at `status` (states are immutable: sharing them is safe)."""
    return journey(status)[0]


def crec_acknowledged() -> DossierState:
    """A CREC dossier of acme, submitted and acknowledged during the session (June 2018)."""
    start = StartDraft(call=CREC, phase_id=CREC_PHASE.id, reference=CREC_EXAMPLE.reference,
                       content=CREC_EXAMPLE.content)
    state = apply(DossierState(), start, HOLDER, paris(2018, 6, 1, 10))
    state = apply(state, Submit(), HOLDER, paris(2018, 6, 1, 11))
    return apply(state, Acknowledge(), STAFF, paris(2018, 6, 4, 9))


def crec_complete() -> DossierState:
    return apply(crec_acknowledged(), DeclareComplete(), STAFF, paris(2018, 6, 5, 9))


# --- valid commands, and what they lead to --------------------------------------------------

DOCUMENT = DocumentRef(id="doc-0123456789abcdef", name="budget.pdf", sha256="ab" * 32, size=1024,
                       media_type="application/pdf")

VALID: dict[str, Callable[[DossierState], Command]] = {
    "start-draft": lambda s: StartDraft(call=PMCB, phase_id="unique", reference="REF-NOUVEAU",
                                        content=CONTENT),
    "update-draft": lambda s: UpdateDraft(content=CONTENT.model_copy(update={"territory": "Lens"})),
    "submit": lambda s: Submit(),
    "withdraw": lambda s: Withdraw(reason="Le consortium se dissout"),
    "provide-complement": lambda s: ProvideComplement(note="Kbis joint"),
    "file-report": lambda s: FileReport(period=1, summary="Bail signé, site en travaux"),
    "acknowledge": lambda s: Acknowledge(),
    "request-complement": lambda s: RequestComplement(pieces="Budget détaillé",
                                                      due=NOW + timedelta(days=14)),
    "declare-complete": lambda s: DeclareComplete(),
    "assign-reviewers": lambda s: AssignReviewers(reviewers=("remi",), due=NOW + timedelta(days=30)),
    "orient": lambda s: Orient(catalogue=SCHEMES),
    "record-filing": lambda s: RecordFiling(scheme_id="fratri", outcome=FilingStatus.FILED),
    "record-follow-up": lambda s: RecordFollowUp(
        kind=FollowUpKind.MEETING_ATTENDED if s.status is Status.FOLLOW_UP
        else FollowUpKind.CHARTER_SIGNED
    ),
    "close": lambda s: Close(reason="Projet hors du champ de l’AMI"),
    "extend-deadline": lambda s: ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING,
                                                until=PHASE.closes_at + timedelta(days=30)),
    "declare-interests": lambda s: DeclareInterests(conflict=False, statement="Aucun lien"),
    "submit-review": lambda s: SubmitReview(scores=SCORES, opinion="Projet solide"),
    "decide": lambda s: TakeDecision(retained=True, reasons="Projet structurant"),
    "expire-draft": lambda s: ExpireDraft(),
    "escalate-complement": lambda s: EscalateComplement(),
    "escalate-review": lambda s: EscalateReview(),
    "flag-late-report": lambda s: FlagLateReport(period=1),
    "attach-document": lambda s: AttachDocument(document=DOCUMENT),
    "grant-clearance": lambda s: GrantClearance(auditor="odile", reason="Contrôle FEDER 2027"),
    "set-legal-hold": lambda s: SetLegalHold(reason="Contentieux en cours"),
    "lift-legal-hold": lambda s: LiftLegalHold(reason="Contentieux clos"),
    "destroy-content": lambda s: DestroyContent(),
}

# Right role, right status, valid arguments, and still refused at NOW on the reached state, for a
# reason of the command itself; each has a test below where it is then accepted.
DOCUMENTED_REFUSALS: dict[tuple[Status, str], tuple[type[DomainError], str]] = {
    (Status.DRAFT, "expire-draft"): (InvalidCommand, "n’est pas atteinte"),  # before the closing
    (Status.COMPLEMENT_REQUESTED, "escalate-complement"): (InvalidCommand, "n’est pas atteinte"),
    (Status.UNDER_REVIEW, "escalate-review"): (InvalidCommand, "n’est pas atteinte"),
    (Status.FOLLOW_UP, "flag-late-report"): (InvalidCommand, "n’est pas atteinte"),
    (Status.UNDER_REVIEW, "submit-review"): (NotAllowed, "Déclarez d’abord"),  # rita undeclared
    (Status.UNDER_REVIEW, "decide"): (InvalidTransition, "aucune expertise"),
    # Nothing is under a legal hold to lift; no retention has run out at NOW.
    **{(s, "lift-legal-hold"): (InvalidCommand, "pas sous conservation légale") for s in Status if s is not Status.NEW},
    **{(s, "destroy-content"): (InvalidCommand, "durée de conservation") for s in Status
       if not s.is_open and s is not Status.NEW},
}


def test_tables_name_every_status() -> None:
    assert set(LIFECYCLE) == set(Status)
    assert set(PARENT) | {Status.NEW} == set(Status)


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_reach_drives_through_real_commands(status: Status) -> None:
    state, events = journey(status)
    assert state.status is status
    assert replay(events) == state == reach(status)
    assert state.version == len(events)


# --- documented refusals, then accepted -----------------------------------------------------
# Who may give which command in which status is tests/test_permission_matrix.py, from a table of its own.


def test_documented_refusals_give_their_own_reason() -> None:
    """Right role, right status, valid arguments: refused at NOW on the reached state for a reason of
    the command itself (the permission matrix tries these cells where they are accepted)."""
    for (status, name), (error, fragment) in DOCUMENTED_REFUSALS.items():
        state = reach(status)
        exc = refused(state, VALID[name](state), ACTORS[PERMISSIONS[name]], NOW, error)
        assert fragment in exc.message, (status, name, exc.message)


def test_expire_draft_only_at_or_after_the_closing() -> None:
    draft = reach(Status.DRAFT)
    closes = PHASE.closes_at
    exc = refused(draft, ExpireDraft(), SYSTEM, closes - timedelta(microseconds=1), InvalidCommand)
    assert show(closes) in exc.message
    assert accepted(draft, ExpireDraft(), SYSTEM, closes).status is Status.EXPIRED
    expired = accepted(draft, ExpireDraft(), SYSTEM, closes + timedelta(days=40))
    assert expired.status is Status.EXPIRED and expired.submitted_at is None


def test_expire_draft_waits_for_an_extended_closing() -> None:
    until = PHASE.closes_at + timedelta(days=30)
    draft = accepted(reach(Status.DRAFT), ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING,
                                                         until=until), STAFF, NOW)
    refused(draft, ExpireDraft(), SYSTEM, PHASE.closes_at, InvalidCommand)
    assert accepted(draft, Submit(), HOLDER, PHASE.closes_at + timedelta(days=1)).status is (
        Status.SUBMITTED
    )
    assert accepted(draft, ExpireDraft(), SYSTEM, until).status is Status.EXPIRED


def test_escalate_complement_at_due_then_once_only() -> None:
    state = reach(Status.COMPLEMENT_REQUESTED)
    refused(state, EscalateComplement(), SYSTEM, COMPLEMENT_DUE - timedelta(seconds=1), InvalidCommand)
    events = decide(state, EscalateComplement(), SYSTEM, COMPLEMENT_DUE)
    assert [type(e) for e in events] == [ComplementOverdue]
    overdue = accepted(state, EscalateComplement(), SYSTEM, COMPLEMENT_DUE)
    assert overdue.complement_overdue and overdue.status is Status.COMPLEMENT_REQUESTED
    exc = refused(overdue, EscalateComplement(), SYSTEM, COMPLEMENT_DUE + timedelta(days=3),
                  InvalidCommand)
    assert "déjà signalé" in exc.message


def test_escalate_review_at_due_unless_every_review_is_in() -> None:
    state = reach(Status.UNDER_REVIEW)
    refused(state, EscalateReview(), SYSTEM, REVIEW_DUE - timedelta(seconds=1), InvalidCommand)
    assert [type(e) for e in decide(state, EscalateReview(), SYSTEM, REVIEW_DUE)] == [ReviewOverdue]
    overdue = accepted(state, EscalateReview(), SYSTEM, REVIEW_DUE)
    assert overdue.review_overdue
    refused(overdue, EscalateReview(), SYSTEM, REVIEW_DUE + timedelta(days=1), InvalidCommand)
    reviewed = accepted(state, DeclareInterests(conflict=False), REVIEWER, NOW)
    reviewed = accepted(reviewed, SubmitReview(scores=SCORES, opinion="Bien"), REVIEWER, NOW)
    exc = refused(reviewed, EscalateReview(), SYSTEM, REVIEW_DUE, InvalidCommand)
    assert "rendues" in exc.message


def test_submit_review_after_declaring_interests() -> None:
    state = accepted(reach(Status.UNDER_REVIEW), DeclareInterests(conflict=False), REVIEWER, NOW)
    assert state.assignment("rita") is not None and state.assignment("rita").declared  # type: ignore[union-attr]
    state = accepted(state, SubmitReview(scores=SCORES, opinion="Solide"), REVIEWER, NOW)
    review = state.review_of("rita")
    assert review is not None and review.scores == SCORES


@pytest.mark.parametrize("retained", [True, False])
def test_committee_decides_once_a_review_is_in(retained: bool) -> None:
    state = reach(Status.UNDER_REVIEW)
    refused(state, TakeDecision(retained=retained, reasons="Vu"), COMMITTEE, NOW, InvalidTransition)
    declared = accepted(state, DeclareInterests(conflict=False), REVIEWER, NOW)
    # Declared but not reviewed: still no review to decide on.
    refused(declared, TakeDecision(retained=retained, reasons="Vu"), COMMITTEE, NOW, InvalidTransition)
    reviewed = accepted(declared, SubmitReview(scores=SCORES, opinion="Solide"), REVIEWER, NOW)
    decided = accepted(reviewed, TakeDecision(retained=retained, reasons="Vu"), COMMITTEE, NOW)
    assert decided.status is (Status.RETAINED if retained else Status.NOT_RETAINED)
    assert decided.decision is not None and decided.decision.retained is retained


def test_flag_late_report_only_once_due() -> None:
    state = reach(Status.FOLLOW_UP)
    assert state.follow_up_started_at is not None
    due = report_due(PMCB, state.follow_up_started_at, 1)
    exc = refused(state, FlagLateReport(period=1), SYSTEM, due - timedelta(seconds=1), InvalidCommand)
    assert show(due) in exc.message
    flagged = accepted(state, FlagLateReport(period=1), SYSTEM, due)
    assert flagged.late_reports == (1,)
    exc = refused(flagged, FlagLateReport(period=1), SYSTEM, due + timedelta(days=1), InvalidCommand)
    assert "déjà reçu ou signalé" in exc.message
    # Period 2 is not due yet; a period beyond the follow-up does not exist.
    refused(flagged, FlagLateReport(period=2), SYSTEM, due + timedelta(days=1), InvalidCommand)
    total = report_count(PMCB)
    exc = refused(state, FlagLateReport(period=total + 1), SYSTEM, due + timedelta(days=3650),
                  InvalidCommand)
    assert f"{total} périodes" in exc.message
    # A report already received cannot be flagged late.
    filed = accepted(state, FileReport(period=1, summary="T1"), HOLDER, NOW)
    refused(filed, FlagLateReport(period=1), SYSTEM, due, InvalidCommand)


# --- submission -----------------------------------------------------------------------------


def test_submission_after_the_phase_closed_shows_the_closing_in_paris_time() -> None:
    draft = reach(Status.DRAFT)
    closes = PHASE.closes_at
    assert closes == paris(2028, 7, 1)  # « avant le 1er juillet 2028 », three years after the opening
    assert accepted(draft, Submit(), HOLDER, closes - timedelta(microseconds=1)).status is (
        Status.SUBMITTED
    )
    for when in (closes, closes + timedelta(days=90)):
        exc = refused(draft, Submit(), HOLDER, when, PhaseClosed)
        assert f"{paris(2028, 7, 1).isoformat(timespec='minutes')} (heure de Paris)" in exc.message  # +02:00


def test_crec_submission_after_the_session_closed() -> None:
    start = StartDraft(call=CREC, phase_id=CREC_PHASE.id, reference="R", content=CREC_EXAMPLE.content)
    draft = apply(DossierState(), start, HOLDER, paris(2018, 6, 1))
    exc = refused(draft, Submit(), HOLDER, paris(2018, 9, 8), PhaseClosed)
    assert "2018-09-08T00:00+02:00" in exc.message and "heure de Paris" in exc.message
    assert accepted(draft, Submit(), HOLDER, paris(2018, 9, 7, 23, 59)).status is Status.SUBMITTED


def test_no_draft_before_the_phase_opens_nor_after_it_closes() -> None:
    start = VALID["start-draft"](DossierState())
    exc = refused(DossierState(), start, HOLDER, PHASE.opens_at - timedelta(seconds=1), PhaseClosed)
    assert "2025-07-01T00:00+02:00" in exc.message
    refused(DossierState(), start, HOLDER, PHASE.closes_at, PhaseClosed)
    assert accepted(DossierState(), start, HOLDER, PHASE.opens_at).status is Status.DRAFT
    unknown = start.model_copy(update={"phase_id": "phase-9"})
    assert "phase-9" in refused(DossierState(), unknown, HOLDER, NOW, InvalidCommand).message
    unusable = start.model_copy(update={"reference": "???"})
    refused(DossierState(), unusable, HOLDER, NOW, InvalidCommand)


INELIGIBLE = sorted(set(HolderType) - set(PHASE.holder_types))


@pytest.mark.parametrize("holder_type", INELIGIBLE, ids=str)
def test_ineligible_holder_type_is_refused(holder_type: HolderType) -> None:
    content = CONTENT.model_copy(update={"holder_type": holder_type})
    start = StartDraft(call=PMCB, phase_id="unique", reference="R", content=content)
    exc = refused(DossierState(), start, HOLDER, NOW, NotEligible)
    assert holder_type.label in exc.message and PHASE.label in exc.message
    refused(reach(Status.DRAFT), UpdateDraft(content=content), HOLDER, NOW, NotEligible)
    # The submission re-checks eligibility (defence in depth), on a draft recorded before.
    draft = evolve(DossierState(), DraftStarted(
        actor=HOLDER, at=T0, dossier_id="hdf-pmcb-reemploi.r", call=PMCB, phase_id="unique",
        reference="R", content=content))
    refused(draft, Submit(), HOLDER, NOW, NotEligible)


@pytest.mark.parametrize("section", PMCB.sections, ids=lambda s: s.id)
@pytest.mark.parametrize("blank", ["", "  \n "], ids=["missing", "blank"])
def test_submission_with_an_empty_section_names_its_label(section: Section, blank: str) -> None:
    sid, label = section.id, section.label
    sections = dict(CONTENT.sections)
    if blank:
        sections[sid] = blank
    else:
        del sections[sid]
    content = CONTENT.model_copy(update={"sections": sections})
    draft = accepted(reach(Status.DRAFT), UpdateDraft(content=content), HOLDER, NOW)  # drafts may be partial
    exc = refused(draft, Submit(), HOLDER, NOW, IncompleteDossier)
    assert label in exc.message
    others = [s.label for s in PMCB.sections if s.id != sid]
    assert not any(f" {other}" in exc.message for other in others if other not in label)


def test_unknown_section_is_refused() -> None:
    content = CONTENT.model_copy(update={"sections": {**CONTENT.sections, "annexe": "x"}})
    exc = refused(reach(Status.DRAFT), UpdateDraft(content=content), HOLDER, NOW, InvalidCommand)
    assert "annexe" in exc.message


def test_crec_dossier_needs_a_theme() -> None:
    content = CREC_EXAMPLE.content.model_copy(update={"theme": None})
    start = StartDraft(call=CREC, phase_id=CREC_PHASE.id, reference="R", content=content)
    draft = accepted(DossierState(), start, HOLDER, paris(2018, 6, 1))
    exc = refused(draft, Submit(), HOLDER, paris(2018, 6, 2), IncompleteDossier)
    assert "thème" in exc.message and "reemploi-recyclage" in exc.message
    themed = accepted(draft, UpdateDraft(content=CREC_EXAMPLE.content), HOLDER, paris(2018, 6, 2))
    assert accepted(themed, Submit(), HOLDER, paris(2018, 6, 3)).status is Status.SUBMITTED
    unknown = start.model_copy(update={"content": content.model_copy(update={"theme": "peche"})})
    assert "peche" in refused(DossierState(), unknown, HOLDER, paris(2018, 6, 1), InvalidCommand).message


def test_crec_complement_cannot_drop_the_theme() -> None:
    """Submission requires a theme on a call with themes; corrected content given with a
    complement must not remove it (the complement already refuses emptied sections)."""
    state = apply(crec_acknowledged(), RequestComplement(pieces="Budget", due=paris(2018, 7, 1)), STAFF,
                  paris(2018, 6, 6))
    no_theme = CREC_EXAMPLE.content.model_copy(update={"theme": None})
    refused(state, ProvideComplement(note="Budget joint", content=no_theme), HOLDER, paris(2018, 6, 7),
            IncompleteDossier)


# --- ownership and assignment ---------------------------------------------------------------

HOLDER_OWNED = ["update-draft", "submit", "withdraw", "provide-complement", "file-report", "attach-document"]


def test_another_holder_is_told_the_dossier_is_not_theirs() -> None:
    """Whatever the status (the permission matrix has the cells), the refusal says why."""
    for status in Status:
        if status is Status.NEW:
            continue
        state = reach(status)
        for name in HOLDER_OWNED:
            exc = refused(state, VALID[name](state), OTHER_HOLDER, NOW, NotAllowed)
            assert "autre porteur" in exc.message, (status, name)


def test_any_holder_may_start_a_draft_and_owns_it() -> None:
    state = accepted(DossierState(), VALID["start-draft"](DossierState()), OTHER_HOLDER, NOW)
    assert state.holder == "other"
    refused(state, Submit(), HOLDER, NOW, NotAllowed)


@pytest.mark.parametrize(
    "command",
    [DeclareInterests(conflict=False), SubmitReview(scores=SCORES, opinion="Vu")],
    ids=["declare-interests", "submit-review"],
)
def test_a_reviewer_not_assigned_cannot_act(command: Command) -> None:
    exc = refused(reach(Status.UNDER_REVIEW), command, Actor(role=Role.REVIEWER, name="rex"), NOW,
                  NotAllowed)
    assert "pas affecté" in exc.message


def test_declaring_interests_twice_is_refused() -> None:
    state = accepted(reach(Status.UNDER_REVIEW), DeclareInterests(conflict=False), REVIEWER, NOW)
    refused(state, DeclareInterests(conflict=False), REVIEWER, NOW, InvalidCommand)
    refused(state, DeclareInterests(conflict=True), REVIEWER, NOW, InvalidCommand)


def test_a_reviewer_declaring_a_conflict_is_removed_and_cannot_come_back() -> None:
    state = reach(Status.UNDER_REVIEW)
    events = decide(state, DeclareInterests(conflict=True, statement="Ancien associé"), REVIEWER, NOW)
    assert [type(e) for e in events] == [ReviewerRecused]
    recused = accepted(state, DeclareInterests(conflict=True, statement="Ancien associé"), REVIEWER, NOW)
    assert recused.status is Status.UNDER_REVIEW
    assert recused.assignment("rita") is None and recused.recused == ("rita",)
    exc = refused(recused, AssignReviewers(reviewers=("rita",), due=REVIEW_DUE), STAFF, NOW,
                  InvalidCommand)
    assert "conflit" in exc.message
    refused(recused, AssignReviewers(reviewers=("remi", "rita"), due=REVIEW_DUE), STAFF, NOW,
            InvalidCommand)
    refused(recused, DeclareInterests(conflict=False), REVIEWER, NOW, NotAllowed)
    refused(recused, SubmitReview(scores=SCORES, opinion="Vu"), REVIEWER, NOW, NotAllowed)
    # Another reviewer can still be assigned.
    replaced = accepted(recused, AssignReviewers(reviewers=("remi",), due=REVIEW_DUE), STAFF, NOW)
    assert [a.reviewer for a in replaced.assignments] == ["remi"]


def test_assign_reviewers_refuses_duplicates_and_reassignment() -> None:
    complete = reach(Status.COMPLETE)
    refused(complete, AssignReviewers(reviewers=("remi", "remi"), due=REVIEW_DUE), STAFF, NOW,
            InvalidCommand)
    under = reach(Status.UNDER_REVIEW)
    exc = refused(under, AssignReviewers(reviewers=("rita",), due=REVIEW_DUE), STAFF, NOW, InvalidCommand)
    assert "déjà affecté" in exc.message
    for due in (NOW, NOW - timedelta(days=1)):
        refused(complete, AssignReviewers(reviewers=("remi",), due=due), STAFF, NOW, InvalidCommand)


def test_a_reviewer_who_has_not_declared_interests_cannot_review() -> None:
    exc = refused(reach(Status.UNDER_REVIEW), SubmitReview(scores=SCORES, opinion="Vu"), REVIEWER, NOW,
                  NotAllowed)
    assert "declare-interests" in exc.message


def test_crec_reviewers_are_assigned_only_after_the_session_closed() -> None:
    complete = crec_complete()
    closes = CREC_PHASE.closes_at
    command = AssignReviewers(reviewers=("rita",), due=paris(2018, 10, 15))
    for when in (paris(2018, 6, 5, 10), closes - timedelta(seconds=1)):
        exc = refused(complete, command, STAFF, when, InvalidTransition)
        assert "2018-09-08T00:00+02:00" in exc.message and "après clôture" in exc.message
    assert accepted(complete, command, STAFF, closes).status is Status.UNDER_REVIEW
    assert accepted(complete, command, STAFF, paris(2018, 9, 20, 14)).status is Status.UNDER_REVIEW


def test_pmcb_reviewers_are_assigned_as_dossiers_arrive() -> None:
    """Rolling review: no wait for the closing (which is in 2028)."""
    command = AssignReviewers(reviewers=("rita",), due=REVIEW_DUE)
    assert accepted(reach(Status.COMPLETE), command, STAFF, NOW).status is Status.UNDER_REVIEW


# --- review scores --------------------------------------------------------------------------

CRITERIA = [c.id for c in PMCB.criteria]
GOOD_SCORES = [
    {c: 0 for c in CRITERIA},
    {c: PMCB.score_max for c in CRITERIA},
    dict(zip(CRITERIA, [0, 3, PMCB.score_max], strict=True)),
]
BAD_SCORES = [
    {},
    {c: 3 for c in CRITERIA[:-1]},  # one criterion missing
    {**SCORES, "originalite": 3},  # a criterion the call does not have
    {**SCORES, CRITERIA[0]: -1},
    {**SCORES, CRITERIA[0]: PMCB.score_max + 1},
]


def _declared() -> DossierState:
    return accepted(reach(Status.UNDER_REVIEW), DeclareInterests(conflict=False), REVIEWER, NOW)


@pytest.mark.parametrize("scores", GOOD_SCORES, ids=["zeros", "max", "mixed"])
def test_review_scores_every_criterion_within_the_scale(scores: dict[str, int]) -> None:
    state = accepted(_declared(), SubmitReview(scores=scores, opinion="Vu"), REVIEWER, NOW)
    assert state.reviews[0].scores == scores
    exc = refused(state, SubmitReview(scores=scores, opinion="Encore"), REVIEWER, NOW, InvalidCommand)
    assert "déjà rendu" in exc.message


@pytest.mark.parametrize("scores", BAD_SCORES, ids=["none", "missing", "extra", "negative", "above-max"])
def test_review_with_wrong_scores_is_refused(scores: dict[str, int]) -> None:
    exc = refused(_declared(), SubmitReview(scores=scores, opinion="Vu"), REVIEWER, NOW, InvalidCommand)
    if set(scores) != set(CRITERIA):
        assert "manquants" in exc.message
        for name in set(scores) ^ set(CRITERIA):
            assert name in exc.message
    else:
        assert f"de 0 à {PMCB.score_max}" in exc.message


# --- orientation and filings ----------------------------------------------------------------


def test_orient_without_a_financing_need_is_refused() -> None:
    content = CONTENT.model_copy(update={"financing_need": None})
    retained = journey(Status.RETAINED, content)[0]
    exc = refused(retained, Orient(catalogue=SCHEMES), STAFF, NOW, InvalidCommand)
    assert "besoin de financement" in exc.message
    # Such a laureate goes straight to follow-up.
    charter = RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED)
    assert accepted(retained, charter, STAFF, NOW).status is Status.FOLLOW_UP


def test_orient_recommends_the_schemes_that_fit() -> None:
    retained = reach(Status.RETAINED)
    oriented = accepted(retained, Orient(catalogue=SCHEMES), STAFF, NOW)
    ids = [f.scheme_id for f in oriented.filings]
    assert {"fratri", "feder-hdf"} <= set(ids)
    assert "feder-grand-est" not in ids and "interreg-grand-est" not in ids
    need = CONTENT.financing_need
    assert need is not None
    fitting = recommend(SCHEMES, need.kinds, CONTENT.holder_type, CONTENT.region)
    assert ids == [s.id for s in fitting]  # catalogue order
    for scheme in SCHEMES:
        assert (scheme.id in ids) is scheme.fits(need.kinds, CONTENT.holder_type, CONTENT.region)
    assert all(f.status is FilingStatus.RECOMMENDED for f in oriented.filings)


def test_orient_with_no_fitting_scheme_is_refused() -> None:
    grand_est = tuple(s for s in SCHEMES if s.id == "feder-grand-est")
    exc = refused(reach(Status.RETAINED), Orient(catalogue=grand_est), STAFF, NOW, NoFittingScheme)
    assert "Hauts-de-France" in exc.message


ALLOWED_FILING_STEPS = {
    (FilingStatus.RECOMMENDED, FilingStatus.FILED), (FilingStatus.RECOMMENDED, FilingStatus.ABANDONED),
    (FilingStatus.FILED, FilingStatus.GRANTED), (FilingStatus.FILED, FilingStatus.REFUSED),
    (FilingStatus.FILED, FilingStatus.ABANDONED),
}
# How to bring the "fratri" filing to each sub-status.
FILING_PATHS: dict[FilingStatus, list[FilingStatus]] = {
    FilingStatus.RECOMMENDED: [],
    FilingStatus.FILED: [FilingStatus.FILED],
    FilingStatus.GRANTED: [FilingStatus.FILED, FilingStatus.GRANTED],
    FilingStatus.REFUSED: [FilingStatus.FILED, FilingStatus.REFUSED],
    FilingStatus.ABANDONED: [FilingStatus.ABANDONED],
}
FILING_CASES = [
    (status, old, new)
    for status in (Status.ORIENTED, Status.FOLLOW_UP)
    for old in FilingStatus for new in FilingStatus
]


def test_filing_steps_table() -> None:
    assert {(a, b) for a, nexts in FILING_STEPS.items() for b in nexts} == ALLOWED_FILING_STEPS


@pytest.mark.parametrize(
    ("status", "old", "new"), FILING_CASES, ids=[f"{s}-{a}-{b}" for s, a, b in FILING_CASES]
)
def test_record_filing_follows_its_steps(status: Status, old: FilingStatus, new: FilingStatus) -> None:
    state = reach(status)
    for outcome in FILING_PATHS[old]:
        state = accepted(state, RecordFiling(scheme_id="fratri", outcome=outcome), STAFF, NOW)
    command = RecordFiling(scheme_id="fratri", outcome=new,
                           amount_eur=250_000 if new is FilingStatus.GRANTED else None)
    if (old, new) in ALLOWED_FILING_STEPS:
        after = accepted(state, command, STAFF, NOW)
        filing = next(f for f in after.filings if f.scheme_id == "fratri")
        assert filing.status is new and after.status is status
        assert filing.amount_eur == (250_000 if new is FilingStatus.GRANTED else None)
        others = [f for f in after.filings if f.scheme_id != "fratri"]
        assert all(f.status is FilingStatus.RECOMMENDED for f in others)
    else:
        refused(state, command, STAFF, NOW, InvalidTransition)


def test_record_filing_refuses_unknown_schemes_and_misplaced_amounts() -> None:
    oriented = reach(Status.ORIENTED)
    exc = refused(oriented, RecordFiling(scheme_id="feder-grand-est", outcome=FilingStatus.FILED), STAFF,
                  NOW, InvalidCommand)
    assert "feder-grand-est" in exc.message and "fratri" in exc.message
    refused(oriented, RecordFiling(scheme_id="fratri", outcome=FilingStatus.FILED, amount_eur=10), STAFF,
            NOW, InvalidCommand)
    # A laureate who went straight to follow-up has no recommended scheme.
    direct = accepted(reach(Status.RETAINED), RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, NOW)
    exc = refused(direct, RecordFiling(scheme_id="fratri", outcome=FilingStatus.FILED), STAFF, NOW,
                  InvalidCommand)
    assert "aucun" in exc.message


# --- follow-up ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.RETAINED, Status.ORIENTED], ids=str)
def test_charter_signed_starts_the_follow_up(status: Status) -> None:
    state = reach(status)
    refused(state, RecordFollowUp(kind=FollowUpKind.MEETING_ATTENDED), STAFF, NOW, InvalidTransition)
    following = accepted(state, RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, NOW)
    assert following.status is Status.FOLLOW_UP
    assert following.follow_up_started_at == to_utc(NOW)
    assert following.decision is not None and following.decision.retained
    exc = refused(following, RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, NOW,
                  InvalidTransition)
    assert "déjà signée" in exc.message
    met = accepted(following, RecordFollowUp(kind=FollowUpKind.MEETING_ATTENDED), STAFF, NOW)
    assert met.meetings_attended == 1 and met.last_meeting_at == to_utc(NOW)
    assert met.status is Status.FOLLOW_UP


def test_reports_come_in_order_and_late_ones_are_marked() -> None:
    state = reach(Status.FOLLOW_UP)
    start = state.follow_up_started_at
    assert start is not None
    exc = refused(state, FileReport(period=2, summary="T2"), HOLDER, NOW, InvalidCommand)
    assert "période 1" in exc.message
    first = accepted(state, FileReport(period=1, summary="T1"), HOLDER, NOW)
    assert [(r.period, r.late) for r in first.reports] == [(1, False)]
    refused(first, FileReport(period=1, summary="T1 bis"), HOLDER, NOW, InvalidCommand)
    late_at = report_due(PMCB, start, 2) + timedelta(days=3)
    second = accepted(first, FileReport(period=2, summary="T2"), HOLDER, late_at)
    assert [(r.period, r.late) for r in second.reports] == [(1, False), (2, True)]
    # A report flagged late can still be filed, and is marked late.
    due = report_due(PMCB, start, 1)
    flagged = accepted(state, FlagLateReport(period=1), SYSTEM, due)
    filed = accepted(flagged, FileReport(period=1, summary="T1"), HOLDER, due + timedelta(days=2))
    assert filed.reports[0].late and filed.late_reports == (1,)


def test_report_filed_at_its_due_instant_is_late() -> None:
    """At the due instant the system may already flag the report late (flag-late-report is
    accepted when now >= due, and deadlines() lists it overdue): a report filed then is late too."""
    state = reach(Status.FOLLOW_UP)
    assert state.follow_up_started_at is not None
    due = report_due(PMCB, state.follow_up_started_at, 1)
    accepted(state, FlagLateReport(period=1), SYSTEM, due)  # the system calls it late at `due`
    filed = accepted(state, FileReport(period=1, summary="T1"), HOLDER, due)
    assert filed.reports[0].late


def test_no_report_beyond_the_follow_up() -> None:
    state = reach(Status.FOLLOW_UP)
    total = report_count(PMCB)
    assert total == 12
    for period in range(1, total + 1):
        state = accepted(state, FileReport(period=period, summary=f"T{period}"), HOLDER, NOW)
    exc = refused(state, FileReport(period=total + 1, summary="encore"), HOLDER, NOW, InvalidCommand)
    assert f"{total} rapports" in exc.message


# --- deadlines, closing, withdrawal ---------------------------------------------------------


def test_extending_the_phase_closing_must_move_it_later() -> None:
    draft = reach(Status.DRAFT)
    closes = PHASE.closes_at
    for until in (closes, closes - timedelta(days=1)):
        exc = refused(draft, ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=until), STAFF,
                      NOW, InvalidCommand)
        assert "repousse" in exc.message
    past = ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=NOW - timedelta(days=1))
    assert "futur" in refused(draft, past, STAFF, NOW, InvalidCommand).message
    later = closes + timedelta(days=1)
    extended = accepted(draft, ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=later), STAFF,
                        NOW)
    assert extended.phase_closes_at == later


def test_extending_the_complement_due() -> None:
    state = reach(Status.COMPLEMENT_REQUESTED)
    refused(state, ExtendDeadline(deadline=DeadlineKind.COMPLEMENT_DUE, until=COMPLEMENT_DUE), STAFF,
            NOW, InvalidCommand)
    overdue = accepted(state, EscalateComplement(), SYSTEM, COMPLEMENT_DUE)
    until = COMPLEMENT_DUE + timedelta(days=7)
    extended = accepted(overdue, ExtendDeadline(deadline=DeadlineKind.COMPLEMENT_DUE, until=until), STAFF,
                        COMPLEMENT_DUE + timedelta(hours=1))
    assert extended.complement_due == until and not extended.complement_overdue
    exc = refused(reach(Status.ACKNOWLEDGED), ExtendDeadline(deadline=DeadlineKind.COMPLEMENT_DUE,
                                                             until=until), STAFF, NOW, InvalidTransition)
    assert "complément" in exc.message


def test_extending_the_review_due() -> None:
    state = reach(Status.UNDER_REVIEW)
    refused(state, ExtendDeadline(deadline=DeadlineKind.REVIEW_DUE, until=REVIEW_DUE - timedelta(days=1)),
            STAFF, NOW, InvalidCommand)
    overdue = accepted(state, EscalateReview(), SYSTEM, REVIEW_DUE)
    until = REVIEW_DUE + timedelta(days=14)
    extended = accepted(overdue, ExtendDeadline(deadline=DeadlineKind.REVIEW_DUE, until=until), STAFF,
                        REVIEW_DUE + timedelta(hours=2))
    assert extended.review_due == until and not extended.review_overdue
    exc = refused(reach(Status.COMPLETE), ExtendDeadline(deadline=DeadlineKind.REVIEW_DUE, until=until),
                  STAFF, NOW, InvalidTransition)
    assert "expertise" in exc.message


@pytest.mark.parametrize("due_offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-30)],
                         ids=["now", "a-second-ago", "a-month-ago"])
@pytest.mark.parametrize("status", [Status.SUBMITTED, Status.ACKNOWLEDGED], ids=str)
def test_request_complement_due_in_the_past_is_refused(status: Status, due_offset: timedelta) -> None:
    command = RequestComplement(pieces="Kbis", due=NOW + due_offset)
    exc = refused(reach(status), command, STAFF, NOW, InvalidCommand)
    assert show(NOW) in exc.message and "futur" in exc.message


def test_provide_complement_returns_to_instruction_and_may_correct_the_content() -> None:
    state = reach(Status.COMPLEMENT_REQUESTED)
    corrected = CONTENT.model_copy(update={"territory": "Artois"})
    after = accepted(state, ProvideComplement(note="Kbis joint", content=corrected), HOLDER, NOW)
    assert after.status is Status.ACKNOWLEDGED and after.content == corrected
    assert after.complement_due is None and not after.complement_overdue
    emptied = CONTENT.model_copy(update={"sections": {**CONTENT.sections, "impacts": " "}})
    exc = refused(state, ProvideComplement(note="x", content=emptied), HOLDER, NOW, IncompleteDossier)
    assert "Impacts" in exc.message


def test_close_needs_a_reason() -> None:
    state = reach(Status.ACKNOWLEDGED)
    assert "raison" in refused(state, Close(reason="   "), STAFF, NOW, InvalidCommand).message
    with pytest.raises(ValidationError):
        Close(reason="")
    closed = accepted(state, Close(reason="Doublon"), STAFF, NOW)
    assert closed.closed_reason == "Doublon" and closed.closed_at == to_utc(NOW)


OPEN_STATUSES = [s for s in Status if s.is_open]


@pytest.mark.parametrize("status", OPEN_STATUSES, ids=str)
def test_withdraw_works_from_every_open_status(status: Status) -> None:
    withdrawn = accepted(reach(status), Withdraw(reason="Abandon"), HOLDER, NOW)
    assert withdrawn.status is Status.WITHDRAWN
    assert withdrawn.closed_reason == "Abandon" and withdrawn.closed_at == to_utc(NOW)


def test_evolve_refuses_an_event_stream_that_breaks_the_lifecycle() -> None:
    with pytest.raises(ValueError, match="transition interdite"):
        evolve(DossierState(), DossierSubmitted(actor=HOLDER, at=NOW))
    with pytest.raises(ValueError, match="transition interdite"):
        evolve(reach(Status.CLOSED), DossierSubmitted(actor=HOLDER, at=NOW))


def test_review_escalates_when_every_reviewer_recused() -> None:
    """A dossier whose only reviewer declared a conflict still waits for a review: staff are told."""
    state = reach(Status.UNDER_REVIEW)
    state = accepted(state, DeclareInterests(conflict=True, statement="Ancien employeur."), REVIEWER, NOW)
    assert state.assignments == () and state.reviews_missing
    (due,) = [d for d in deadlines(state, PMCB, NOW) if d.kind is DeadlineKind.REVIEW_DUE]
    accepted(state, EscalateReview(), SYSTEM, due.at)
