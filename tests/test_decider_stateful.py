"""Random command sequences, by random actors, at random instants: the decider's invariants hold.

Two machines, one per call: PMCB (rolling review, open 1 July 2025 to 1 July 2028, Paris time) and
CREC 2018 (themes, review after the session closed on 2018-09-08). The clock only moves forward,
by seconds to months; it is sometimes parked just before a DST change, or exactly on (or a hair
around) an instant the dossier waits for. Commands are mostly the sensible next step (right role,
the owner, dates in the future, real criteria) so that runs reach the late statuses; some are wrong
on purpose, and some are drawn from everything by anyone. Each run starts with a head start of 0 to 20
sensible steps, so that runs spread over the whole lifecycle; a test fails if too few of them reach
the follow-up or a closed dossier.

`pytest --hypothesis-show-statistics` shows how often runs reached each status (events "reached …").
"""

from __future__ import annotations

import calendar
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar

import pytest
from hypothesis import Phase, core, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from amiflow.catalogue import CALLS_DIR, load_call, load_dossier, load_schemes
from domain.access import SYSTEM, Actor, Role
from domain.calendar import PARIS
from domain.calls import Call, HolderType
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
from domain.errors import DomainError
from domain.events import DossierSubmitted, Event
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
from tests.test_permission_matrix import WHO

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
PMCB = load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")
CREC = load_call(CALLS_DIR / "normandie-crec-2018.yaml")
SCHEMES = load_schemes()
CATALOGUES = {  # drawn by name, so that a failing example stays readable
    "deploy/schemes.yaml": SCHEMES,
    "feder-grand-est": tuple(s for s in SCHEMES if s.id == "feder-grand-est"),  # fits no dossier here
}

HOLDERS = [Actor(role=Role.HOLDER, name=n) for n in ("acme", "other", "bob")]
STAFF = [Actor(role=Role.STAFF, name=n) for n in ("amelie", "guichet", "sam")]  # sam: on no call
REVIEWER_NAMES = ["rita", "remi", "rex", "roxane"]
REVIEWERS = [Actor(role=Role.REVIEWER, name=n) for n in REVIEWER_NAMES]
COMMITTEE = [Actor(role=Role.COMMITTEE, name=n) for n in ("cora", "cyril")]
SYSTEMS = [SYSTEM, Actor(role=Role.SYSTEM, name="cron")]
AUDITORS = [Actor(role=Role.AUDITOR, name=n) for n in ("aude", "alain")]
EVERYONE = [*HOLDERS, *STAFF, *REVIEWERS, *COMMITTEE, *SYSTEMS, *AUDITORS]
ANYONE = st.sampled_from(EVERYONE)
ANY_COMMAND = st.sampled_from(sorted(PERMISSIONS))
REFERENCES = st.sampled_from(["REF-2026-01", "Réf. n° 2"])
BY_ROLE: dict[Role, list[Actor]] = {
    Role.HOLDER: HOLDERS, Role.STAFF: STAFF, Role.REVIEWER: REVIEWERS, Role.COMMITTEE: COMMITTEE,
    Role.SYSTEM: SYSTEMS, Role.AUDITOR: AUDITORS,
}

# Which role produces each kind of event: an independent reading of PERMISSIONS.
EVENT_ROLES: dict[str, Role] = {
    "document_attached": Role.HOLDER, "clearance_granted": Role.STAFF, "legal_hold_set": Role.STAFF,
    "legal_hold_lifted": Role.STAFF, "content_destroyed": Role.STAFF,
    **dict.fromkeys(["draft_started", "draft_updated", "submitted", "withdrawn", "complement_provided",
                     "report_filed"], Role.HOLDER),
    **dict.fromkeys(["acknowledged", "complement_requested", "declared_complete", "reviewers_assigned",
                     "oriented", "filing_recorded", "follow_up_recorded", "closed", "deadline_extended"],
                    Role.STAFF),
    **dict.fromkeys(["interests_declared", "reviewer_recused", "review_submitted"], Role.REVIEWER),
    "decision_taken": Role.COMMITTEE,
    **dict.fromkeys(["draft_expired", "complement_overdue", "review_overdue", "report_late"], Role.SYSTEM),
}

AFTER_SUBMISSION = frozenset(
    {Status.SUBMITTED, Status.ACKNOWLEDGED, Status.COMPLEMENT_REQUESTED, Status.COMPLETE,
     Status.UNDER_REVIEW, Status.RETAINED, Status.NOT_RETAINED, Status.ORIENTED, Status.FOLLOW_UP,
     Status.CLOSED}
)
DECIDED = frozenset({Status.RETAINED, Status.NOT_RETAINED, Status.ORIENTED, Status.FOLLOW_UP})


def _last_sunday(year: int, month: int) -> int:
    return max(week[calendar.SUNDAY] for week in calendar.monthcalendar(year, month))


# Europe/Paris changes offset at 01:00 UTC on the last Sundays of March and October.
DST_CHANGES = tuple(
    datetime(year, month, _last_sunday(year, month), 1, tzinfo=UTC)
    for year in range(2018, 2080) for month in (3, 10)
)


def clock_steps(max_months: int) -> st.SearchStrategy[timedelta]:
    """Clock steps from seconds to months."""
    return st.one_of(
        st.integers(0, 59).map(lambda n: timedelta(seconds=n)),
        st.integers(1, 600).map(lambda n: timedelta(minutes=n)),
        st.integers(1, 72).map(lambda n: timedelta(hours=n)),
        st.integers(1, 60).map(lambda n: timedelta(days=n)),
        st.integers(1, max_months).map(lambda n: timedelta(days=30 * n)),
    )


SHORT_WAITS = st.sampled_from([timedelta(0)] * 4 + [timedelta(seconds=7), timedelta(hours=5),
                                                   timedelta(days=2), timedelta(days=20)])
DST_APPROACHES = {"-1s": timedelta(seconds=1), "-30min": timedelta(minutes=30), "-3h": timedelta(hours=3)}
# Offsets of due dates: in the future (usual), or now and in the past (wrong).
FUTURE = st.one_of(
    st.integers(1, 90).map(lambda n: timedelta(days=n)),
    st.integers(1, 90).map(lambda n: timedelta(days=n, hours=3)),
    st.integers(1, 3600).map(lambda n: timedelta(seconds=n)),
)
PAST = st.sampled_from([timedelta(0), timedelta(seconds=-1), timedelta(days=-10)])
# An extension: after both the current deadline and now (usual), or at or before the current one.
LATER = FUTURE.map(lambda d: (True, d))
NOT_LATER = PAST.map(lambda d: (False, d))
Extendable = Literal[DeadlineKind.PHASE_CLOSING, DeadlineKind.COMPLEMENT_DUE, DeadlineKind.REVIEW_DUE]
EXTENDABLE: list[Extendable] = [DeadlineKind.PHASE_CLOSING, DeadlineKind.COMPLEMENT_DUE,
                                DeadlineKind.REVIEW_DUE]

WITHOUT_ARGUMENTS: dict[str, Callable[[], Command]] = {
    "submit": Submit, "acknowledge": Acknowledge, "declare-complete": DeclareComplete,
    "expire-draft": ExpireDraft, "escalate-complement": EscalateComplement,
    "escalate-review": EscalateReview,
}

T = TypeVar("T")


@cache
def choose(values: tuple[T, ...]) -> st.SearchStrategy[T]:
    """`sampled_from(values)`, built once per tuple: building and validating a strategy at every step
    cost more than the step itself."""
    return st.sampled_from(values)


HEAD_STARTS = st.sampled_from(range(21))
WRONG = st.sampled_from([False, False, False, True])  # one draw in four takes the other value
DST_STEPS = st.sampled_from(sorted(DST_APPROACHES))
DEADLINE_OFFSETS = st.sampled_from([timedelta(0), timedelta(0), timedelta(microseconds=-1), timedelta(seconds=1)])
ANY_REVIEWERS = st.lists(st.sampled_from(REVIEWER_NAMES), min_size=1, max_size=3).map(tuple)


class Pick(Protocol):
    """Draw the usual value, or (unless on the happy path) sometimes another one."""

    def __call__(self, label: str, usual: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> T: ...


def score_strategies(call: Call) -> tuple[st.SearchStrategy[dict[str, int]], st.SearchStrategy[dict[str, int]]]:
    """Scores for `call`: valid ones, and wrong ones (a criterion missing or unknown, out of range)."""
    criteria = [c.id for c in call.criteria]
    top = call.score_max
    valid = st.fixed_dictionaries({c: st.integers(0, top) for c in criteria})
    wrong = st.one_of(
        st.fixed_dictionaries({c: st.integers(0, top) for c in criteria[1:]}),  # one missing
        valid.map(lambda d: {**d, "originalite": 2}),  # unknown criterion
        valid.map(lambda d: {**d, criteria[0]: top + 1}),
        valid.map(lambda d: {**d, criteria[-1]: -1}),
    )
    return valid, wrong


def paris_window(start: datetime, end: datetime) -> st.SearchStrategy[datetime]:
    return st.datetimes(min_value=start, max_value=end, timezones=st.just(PARIS), allow_imaginary=False)


class DossierMachine(RuleBasedStateMachine):
    """One dossier on `call`; subclasses choose the call, its example content and the clock's start."""

    call: ClassVar[Call]
    content: ClassVar[DossierContent]
    first_instants: ClassVar[st.SearchStrategy[datetime]]
    waits: ClassVar[st.SearchStrategy[timedelta]]
    scores: ClassVar[tuple[st.SearchStrategy[dict[str, int]], st.SearchStrategy[dict[str, int]]]]

    def __init__(self) -> None:
        super().__init__()
        self.state = DossierState()
        self.events: list[Event] = []
        self.now = datetime(2000, 1, 1, tzinfo=UTC)  # set by `start_clock`; kept in UTC
        self.reached: set[Status] = set()  # every status this run entered

    def _edited(self, data: st.DataObject, base: DossierContent) -> DossierContent:
        """`base` with one edit: a harmless correction, or a mistake the decider should catch."""
        edits = ["territory", "blank-section", "unknown-section", "no-need", "ineligible"]
        if self.call.themes:
            edits.append("no-theme")
        edit = data.draw(choose(tuple(edits)), label="edit")
        sections = dict(base.sections)
        first = self.call.sections[0].id
        updates: dict[str, dict[str, object]] = {
            "territory": {"territory": "Autre territoire"},
            "blank-section": {"sections": {**sections, first: "  "}},
            "unknown-section": {"sections": {**sections, "annexe": "Lettre de soutien"}},
            "no-need": {"financing_need": None},
            "ineligible": {"holder_type": next(t for t in HolderType
                                               if t not in self.call.phases[0].holder_types)},
            "no-theme": {"theme": None},
        }
        return base.model_copy(update=updates[edit])

    # --- the clock -------------------------------------------------------------------------

    @initialize(data=st.data())
    def start_clock(self, data: st.DataObject) -> None:
        """Set the clock, then take a head start of up to 20 sensible steps forward (waiting when one
        is refused): runs start anywhere from `new` to the follow-up, and spend their steps there."""
        self.now = data.draw(self.first_instants, label="first instant").astimezone(UTC)
        for _ in range(data.draw(HEAD_STARTS, label="head start")):
            if self.state.status.is_final:
                break
            if not self._forward(data):
                self.now += data.draw(self.waits, label="wait")

    @rule(data=st.data())
    def wait(self, data: st.DataObject) -> None:
        """Move the clock forward, or park it just before the next DST change (e.g. "-30min")."""
        if not data.draw(WRONG, label="to a DST change?"):
            self.now += data.draw(self.waits, label="step")
            return
        step = data.draw(DST_STEPS, label="step")
        before = DST_APPROACHES[step]
        upcoming = [change for change in DST_CHANGES if change - before > self.now]
        if upcoming:
            self.now = upcoming[0] - before

    @rule(data=st.data())
    def wait_until_a_deadline(self, data: st.DataObject) -> None:
        """Park the clock on an instant the dossier waits for (closing, dues), or a hair around it:
        the boundaries where "before" turns into "late"."""
        ahead = [d.at for d in deadlines(self.state, self.call, self.now)
                 if d.kind is not DeadlineKind.REMINDER and d.at > self.now]
        if not ahead:
            return
        index = data.draw(choose(tuple(range(-3, len(ahead)))), label="deadline")  # the first, mostly
        offset = data.draw(DEADLINE_OFFSETS, label="offset")
        self.now = max(self.now, ahead[max(index, 0)] + offset)

    # --- acting ----------------------------------------------------------------------------

    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        """A step a person could take in this status, by the right person; arguments mostly valid."""
        self.now += data.draw(SHORT_WAITS, label="wait")
        name = data.draw(choose((*self._progress() * 2, *self._side())), label="command")
        self._apply(self._command(name, data, happy=False), self._sensible_actor(name, data, happy=False))

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Only forward steps with valid arguments: runs reach retained and follow-up."""
        self._forward(data)

    def _forward(self, data: st.DataObject) -> bool:
        """A sensible step forward, with valid arguments; whether it was accepted."""
        self.now += data.draw(SHORT_WAITS, label="wait")
        name = data.draw(choose(tuple(self._progress())), label="command")
        return self._apply(self._command(name, data, happy=True), self._sensible_actor(name, data, happy=True))

    @rule(data=st.data())
    def act_at_random(self, data: st.DataObject) -> None:
        """Any command, by anyone: owners or not, assigned or not, auditors included."""
        name = data.draw(ANY_COMMAND, label="command")
        actor = data.draw(ANYONE, label="actor")
        self._apply(self._command(name, data, happy=False), actor)

    def _progress(self) -> list[str]:
        s = self.state
        if s.status is Status.UNDER_REVIEW:
            names = []
            if any(not a.declared for a in s.assignments):
                names.append("declare-interests")
            if any(a.declared and s.review_of(a.reviewer) is None for a in s.assignments):
                names.append("submit-review")
            if s.reviews:
                names += ["decide"] * 2
            return names or ["assign-reviewers"]
        return {
            Status.NEW: ["start-draft"],
            Status.DRAFT: ["submit", "submit", "update-draft"],
            Status.SUBMITTED: ["acknowledge", "request-complement"],
            Status.ACKNOWLEDGED: ["declare-complete", "declare-complete", "request-complement"],
            Status.COMPLEMENT_REQUESTED: ["provide-complement"],
            Status.COMPLETE: ["assign-reviewers"],
            Status.RETAINED: ["orient", "record-follow-up"],
            Status.ORIENTED: ["record-follow-up", "record-filing"],
            Status.FOLLOW_UP: ["file-report", "file-report", "record-filing", "record-follow-up",
                               "flag-late-report"],
        }.get(s.status, sorted(PERMISSIONS))

    def _side(self) -> list[str]:
        side = {
            Status.DRAFT: ["expire-draft", "extend-deadline"],
            Status.COMPLEMENT_REQUESTED: ["escalate-complement", "extend-deadline"],
            Status.UNDER_REVIEW: ["escalate-review", "extend-deadline", "assign-reviewers"],
        }.get(self.state.status, ["extend-deadline"])
        return [*side, "withdraw", "close"]

    def _sensible_actor(self, name: str, data: st.DataObject, happy: bool) -> Actor:
        """The owner, an assigned reviewer; staff of the call (or, unless on the happy path, sometimes
        a staff member who is not: "sam")."""
        role = PERMISSIONS[name]
        s = self.state
        if role is Role.HOLDER:
            return Actor(role=Role.HOLDER, name=s.holder or "acme")
        if role is Role.REVIEWER:
            if name == "declare-interests":
                names = [a.reviewer for a in s.assignments if not a.declared]
            else:
                names = [a.reviewer for a in s.assignments if a.declared and s.review_of(a.reviewer) is None]
            if names:
                return Actor(role=Role.REVIEWER, name=data.draw(choose(tuple(names)), label="reviewer"))
        if role is Role.STAFF and (happy or not data.draw(WRONG, label="outsider?")):
            return data.draw(choose(tuple(a for a in STAFF if self.call.has_staff(a.name))), label="actor")
        return data.draw(choose(tuple(BY_ROLE[role])), label="actor")

    def _command(self, name: str, data: st.DataObject, happy: bool) -> Command:  # noqa: PLR0915
        """Arguments for `name`: the usual, valid ones when `happy`; otherwise mostly those, and
        sometimes wrong ones (due in the past, blank section, unknown criterion...)."""
        s, now, call = self.state, self.now, self.call
        total = report_count(call)
        filed = {r.period for r in s.reports}

        def pick(label: str, usual: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> T:
            if happy or not data.draw(WRONG, label=f"{label}: other?"):
                return data.draw(usual, label=label)
            return data.draw(other, label=label)

        if name in WITHOUT_ARGUMENTS:
            return WITHOUT_ARGUMENTS[name]()
        match name:
            case "start-draft":
                phase = pick("phase", st.just(call.phases[0].id), st.just("phase-inconnue"))
                reference = pick("reference", REFERENCES, st.just("???"))
                edit = not happy and data.draw(WRONG, label="edit?")
                draft = self._edited(data, self.content) if edit else self.content
                return StartDraft(call=call, phase_id=phase, reference=reference, content=draft)
            case "update-draft":
                base = s.content or self.content
                return UpdateDraft(content=self.content if happy else self._edited(data, base))
            case "withdraw":
                return Withdraw(reason=data.draw(choose(("", "Projet abandonné"))))
            case "provide-complement":
                # The holder answers with a note only, or with corrected (or miscorrected) content.
                choice = "note" if happy else data.draw(choose(("note", "same", "edited")))
                current = s.content or self.content
                answer = None if choice == "note" else current
                if choice == "edited":
                    answer = self._edited(data, current)
                return ProvideComplement(note="Pièces jointes", content=answer)
            case "file-report":
                expected = next((p for p in range(1, total + 1) if p not in filed), total + 1)
                period = pick("period", st.just(expected), choose(tuple(range(1, total + 2))))
                return FileReport(period=period, summary="Avancement conforme")
            case "request-complement":
                return RequestComplement(pieces="Kbis", due=now + pick("due in", FUTURE, PAST))
            case "assign-reviewers":
                fresh = [r for r in REVIEWER_NAMES if s.assignment(r) is None and r not in s.recused]
                usual = choose(tuple((r,) for r in fresh)) if fresh else st.just(("rita",))
                reviewers = pick("reviewers", usual, ANY_REVIEWERS)
                return AssignReviewers(reviewers=reviewers, due=now + pick("due in", FUTURE, PAST))
            case "orient":
                catalogue = pick("catalogue", st.just("deploy/schemes.yaml"), st.just("feder-grand-est"))
                return Orient(catalogue=CATALOGUES[catalogue])
            case "record-filing":
                return self._filing(pick)
            case "record-follow-up":
                kind = FollowUpKind.MEETING_ATTENDED if s.status is Status.FOLLOW_UP else (
                    FollowUpKind.CHARTER_SIGNED)
                return RecordFollowUp(kind=pick("kind", st.just(kind), choose(tuple(FollowUpKind))))
            case "close":
                return Close(reason=pick("reason", choose(("Doublon", "Hors champ")), st.just("  ")))
            case "extend-deadline":
                return self._extension(data, pick)
            case "declare-interests":
                conflict = pick("conflict", st.just(False), st.just(True))
                return DeclareInterests(conflict=conflict, statement="Déclaration")
            case "submit-review":
                return SubmitReview(scores=self._scores(pick), opinion="Avis motivé")
            case "decide":
                retained = pick("retained", choose((True, True, True, False)), st.just(False))
                return TakeDecision(retained=retained, reasons="Délibération du comité")
            case "attach-document":
                n = len(self.state.documents)
                ident = pick("document", st.just(f"doc-{n:016x}"), st.just("doc-0000000000000000"))
                return AttachDocument(document=DocumentRef(id=ident, name=f"piece-{n}.pdf", sha256="0" * 64,
                                                           size=n, media_type="application/pdf"))
            case "set-legal-hold":
                return SetLegalHold(reason="Contentieux")
            case "lift-legal-hold":
                return LiftLegalHold(reason="Contentieux clos")
            case "destroy-content":
                return DestroyContent()
            case "grant-clearance":
                auditor = pick("auditor", st.just(f"auditeur-{len(self.state.clearances)}"), st.just("auditeur-0"))
                return GrantClearance(auditor=auditor, reason="Contrôle d’opération")
            case "flag-late-report":
                first = next((p for p in range(1, total + 1)
                              if p not in filed and p not in s.late_reports), total + 1)
                return FlagLateReport(period=pick("period", st.just(first), choose(tuple(range(1, total + 2)))))
        raise AssertionError(name)  # pragma: no cover

    def _filing(self, pick: Pick) -> RecordFiling:
        ids = [f.scheme_id for f in self.state.filings] or ["fratri"]
        scheme_id = pick("scheme", choose(tuple(ids)), st.just("inconnu"))
        filing = next((f for f in self.state.filings if f.scheme_id == scheme_id), None)
        nexts = sorted(FILING_STEPS[filing.status]) if filing is not None else []
        outcome = pick("outcome", choose(tuple(nexts or FilingStatus)), choose(tuple(FilingStatus)))
        granted = outcome is FilingStatus.GRANTED
        amount = pick("amount", st.just(120_000 if granted else None), st.just(5_000))
        return RecordFiling(scheme_id=scheme_id, outcome=outcome, amount_eur=amount)

    def _extension(self, data: st.DataObject, pick: Pick) -> ExtendDeadline:
        s = self.state
        by_status: dict[Status, Extendable] = {
            Status.COMPLEMENT_REQUESTED: DeadlineKind.COMPLEMENT_DUE,
            Status.UNDER_REVIEW: DeadlineKind.REVIEW_DUE,
        }
        usual = by_status.get(s.status, DeadlineKind.PHASE_CLOSING)
        kind = pick("deadline", st.just(usual), choose(tuple(EXTENDABLE)))
        current = {
            DeadlineKind.PHASE_CLOSING: s.phase_closes_at,
            DeadlineKind.COMPLEMENT_DUE: s.complement_due,
            DeadlineKind.REVIEW_DUE: s.review_due,
        }[kind] or self.now
        later, offset = pick("until", LATER, NOT_LATER)
        return ExtendDeadline(deadline=kind, until=(max(current, self.now) if later else current) + offset)

    def _scores(self, pick: Pick) -> dict[str, int]:
        return pick("scores", *self.scores)

    # --- one step, checked -----------------------------------------------------------------

    def _apply(self, command: Command, actor: Actor) -> bool:
        before = self.state
        snapshot = before.model_dump()  # new containers: an in-place change would show
        shown = self.now.astimezone(PARIS)  # the decider takes any aware instant
        try:
            events = decide(before, command, actor, shown)
        except DomainError as exc:
            assert before.model_dump() == snapshot, f"refused {command.type} changed the state"
            assert exc.message.strip(), f"{type(exc).__name__} without a message"
            event(f"refused {type(exc).__name__}")
            return False
        assert events, f"{command.type} accepted without an event"
        assert actor.role is WHO[command.type], f"{actor} produced events with {command.type}"  # the README's
        assert actor.role is not Role.AUDITOR
        state = before
        for e in events:
            assert e.actor == actor and e.at == self.now
            following = evolve(state, e)
            assert following.status is state.status or following.status in LIFECYCLE[state.status], (
                f"{command.type}: {state.status} → {following.status}"
            )
            state = following
        assert before.model_dump() == snapshot, f"{command.type} changed the previous state in place"
        if state.status is not before.status:
            event(f"reached {state.status}")
            self.reached.add(state.status)
        self.state = state
        self.events.extend(events)
        return True

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def replay_rebuilds_the_state(self) -> None:
        assert self.state.version == len(self.events)
        assert replay(self.events) == self.state

    @invariant()
    def events_come_from_their_role_in_time_order(self) -> None:
        assert all(e.actor.role is EVENT_ROLES[e.type] for e in self.events)
        assert all(e.actor.role is not Role.AUDITOR for e in self.events)
        assert all(a.at <= b.at for a, b in zip(self.events, self.events[1:], strict=False))
        if self.events:
            owner = self.events[0].actor.name
            assert self.state.holder == owner
            assert all(e.actor.name == owner for e in self.events if e.actor.role is Role.HOLDER)

    @invariant()
    def status_invariants(self) -> None:
        s = self.state
        if s.status is Status.NEW:
            assert s == DossierState()
            return
        assert s.call == self.call and s.content is not None and s.started_at is not None
        phase = self.call.phases[0]
        assert s.phase_closes_at is not None and s.phase_closes_at >= phase.closes_at
        submitted = any(isinstance(e, DossierSubmitted) for e in self.events)
        if s.status in AFTER_SUBMISSION or (s.status is Status.WITHDRAWN and submitted):
            assert s.submitted_at is not None
            assert phase.opens_at <= s.submitted_at < s.phase_closes_at
            for section in self.call.sections:
                assert s.content.sections.get(section.id, "").strip(), f"{section.id} empty in {s.status}"
            assert s.content.holder_type in phase.holder_types
            if self.call.themes:
                assert s.content.theme is not None, f"no theme in {s.status}"
        if s.status in (Status.DRAFT, Status.EXPIRED):
            assert s.submitted_at is None
        if s.status is Status.EXPIRED:
            assert s.closed_at is not None and s.closed_at >= s.phase_closes_at
        if s.status in DECIDED:
            assert s.decision is not None and s.reviews
            assert s.decision.retained is (s.status is not Status.NOT_RETAINED)
        if s.decision is not None:
            assert s.reviews and all(r.at <= s.decision.at for r in s.reviews)
        if s.status is Status.ORIENTED:
            assert s.filings
        if s.filings:
            assert s.decision is not None and s.decision.retained
        if s.status is Status.FOLLOW_UP:
            assert s.follow_up_started_at is not None
            assert s.decision is not None and s.decision.retained
        if s.follow_up_started_at is None:
            assert not s.reports and not s.late_reports and not s.meetings_attended
        if s.status is Status.COMPLEMENT_REQUESTED:
            assert s.complement_due is not None
        if s.status is Status.UNDER_REVIEW:
            assert s.review_due is not None and (s.assignments or s.recused)
        if s.status is Status.CLOSED:
            assert s.closed_reason.strip() and s.closed_at is not None
        if s.status is Status.WITHDRAWN:
            assert s.closed_at is not None

    @invariant()
    def reviewers_and_reports_are_consistent(self) -> None:
        s = self.state
        assigned = [a.reviewer for a in s.assignments]
        assert len(assigned) == len(set(assigned)), "a reviewer assigned twice"
        assert not set(assigned) & set(s.recused), "a reviewer both assigned and recused"
        assert len(s.recused) == len(set(s.recused))
        reviewers = [r.reviewer for r in s.reviews]
        assert len(reviewers) == len(set(reviewers)), "two reviews by one reviewer"
        for review in s.reviews:
            assignment = s.assignment(review.reviewer)
            assert assignment is not None and assignment.declared
            assert set(review.scores) == {c.id for c in self.call.criteria}
            assert all(0 <= v <= self.call.score_max for v in review.scores.values())
        total = report_count(self.call)
        assert [r.period for r in s.reports] == list(range(1, len(s.reports) + 1))
        assert len(s.reports) <= total
        assert len(s.late_reports) == len(set(s.late_reports)) and all(
            1 <= p <= total for p in s.late_reports
        )
        for report in s.reports:
            if report.period in s.late_reports:
                assert report.late, f"report {report.period} flagged late but filed on time"
            # deadlines() calls a due instant overdue from that instant on (at <= now).
            assert s.follow_up_started_at is not None
            due = report_due(self.call, s.follow_up_started_at, report.period)
            assert report.late is (due <= report.at), (
                f"report {report.period} filed at {report.at}, due {due}: late={report.late}"
            )
        scheme_ids = [f.scheme_id for f in s.filings]
        assert len(scheme_ids) == len(set(scheme_ids))
        assert all(f.amount_eur is None or f.status is FilingStatus.GRANTED for f in s.filings)


class PmcbMachine(DossierMachine):
    call = PMCB
    content = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml").content
    # Before the opening (1 July 2025) or anywhere up to just after the closing (1 July 2028).
    first_instants = st.one_of(
        paris_window(datetime(2025, 5, 1), datetime(2025, 7, 15)),
        paris_window(datetime(2025, 7, 1), datetime(2028, 7, 15)),
    )
    waits = clock_steps(max_months=14)  # a wait can jump past the closing, three years after the opening
    scores = score_strategies(PMCB)


class CrecMachine(DossierMachine):
    call = CREC
    content = load_dossier(EXAMPLES / "normandie-crec-2018.yaml").content
    # Before the session opens (19 April 2018), or during it, up to just after it closes (8 Sept).
    first_instants = st.one_of(
        paris_window(datetime(2018, 4, 1), datetime(2018, 4, 25)),
        paris_window(datetime(2018, 4, 19), datetime(2018, 9, 15)),
    )
    waits = clock_steps(max_months=3)  # the session lasts four and a half months
    scores = score_strategies(CREC)


# 200 runs per machine, each a head start then 40 steps. No explain phase: after a failure it can take
# minutes on these machines, for little insight (shrinking still runs). The runs differ at every pytest
# run (tests/conftest.py: a fresh seed, printed in the header): over many runs, many more sequences.
SETTINGS = settings(max_examples=200, stateful_step_count=40, deadline=None,
                    phases=[p for p in Phase if p is not Phase.explain])

# The least share of runs that must reach these statuses, or the machine no longer tests their rules
# (usually about 40 % and 20 % reach the follow-up, 5 to 15 % are closed, PMCB and CREC).
LATE_STATUSES = {Status.FOLLOW_UP: 0.05, Status.CLOSED: 0.02}


def run_counting(machine: type[DossierMachine]) -> tuple[int, Counter[Status]]:
    """Run the machine as a Hypothesis test (its invariants checked at every step): how many runs it
    made, and how many of them reached each status."""
    reached: Counter[Status] = Counter()
    runs = 0

    class Counted(machine):
        def teardown(self) -> None:
            nonlocal runs
            runs += 1
            reached.update(self.reached)

    Counted.__name__ = machine.__name__  # a failure prints `state = PmcbMachine()`, which replays it
    run_state_machine_as_test(Counted, settings=SETTINGS)
    return runs, reached


@pytest.mark.parametrize("machine", [PmcbMachine, CrecMachine], ids=["pmcb", "crec"])
def test_random_runs_keep_the_invariants_and_reach_the_late_statuses(machine: type[DossierMachine]) -> None:
    runs, reached = run_counting(machine)
    assert runs >= SETTINGS.max_examples
    for status, share in LATE_STATUSES.items():
        assert reached[status] >= share * runs, (
            f"{reached[status]} of {runs} runs reached « {status.label} » (at least {share:.0%} expected): "
            f"{dict(reached)}"
        )


def test_hypothesis_draws_fresh_examples_from_the_printed_seed() -> None:
    """Not derandomized, even under CI=true: every run draws from the seed pytest's header shows."""
    assert not settings.default.derandomize and settings.default.print_blob
    assert str(core.global_force_seed) == os.environ["AMIFLOW_HYPOTHESIS_SEED"]


def test_dst_changes_are_real_paris_offset_changes() -> None:
    for change in DST_CHANGES:
        before = (change - timedelta(seconds=1)).astimezone(PARIS).utcoffset()
        after = change.astimezone(PARIS).utcoffset()
        assert before != after
