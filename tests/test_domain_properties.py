"""Properties of the retention and of the deadlines, over PMCB dossiers that Hypothesis drives through
real commands at drawn instants (any day of the three-year phase, gaps of seconds to months, across
DST changes and leap days), stopped anywhere on the lifecycle, and looked at from a drawn instant.

- A dossier under legal hold is never shredded, whatever the dates; without one, its content may be
  destroyed exactly from the end of its retention on (ten years after it ended, the whole anniversary
  day kept).
- `deadlines()`: sorted; only the kinds the status waits for, none once the dossier has ended; a due
  instant is overdue from that instant on; a reminder is ahead of now, N Paris days before a deadline
  that is listed, and after the deadline was set; `now` only decides what is overdue and which
  reminders are still ahead. `next_of_each_kind`: the earliest of each kind, one each, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.access import SYSTEM, Actor, Role
from domain.calendar import PARIS, paris_date
from domain.commands import (
    Acknowledge,
    AssignReviewers,
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
    LiftLegalHold,
    ProvideComplement,
    RecordFollowUp,
    RequestComplement,
    SetLegalHold,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
    Withdraw,
)
from domain.deadlines import Deadline, deadlines, next_of_each_kind, report_count, report_due
from domain.decider import decide, replay
from domain.errors import DomainError, InvalidTransition, NotAllowed
from domain.retention import destruction_refusal, retention_ends, shred_verdict
from domain.state import DeadlineKind, DossierState, FollowUpKind, Status
from tests.test_decider_transitions import CONTENT, PHASE, PMCB, PMCB_EXAMPLE, SCORES

HOLDER = Actor(role=Role.HOLDER, name="acme")
STAFF = Actor(role=Role.STAFF, name="amelie")
RITA, REMI = Actor(role=Role.REVIEWER, name="rita"), Actor(role=Role.REVIEWER, name="remi")
COMMITTEE = Actor(role=Role.COMMITTEE, name="cora")

ENDED = frozenset({Status.NOT_RETAINED, Status.CLOSED, Status.WITHDRAWN, Status.EXPIRED})
# What each status waits for (README « Deadlines »): the phase closing for a draft, the complement,
# the review, the follow-up reports; nothing in the other statuses.
WAITS_FOR: dict[Status, DeadlineKind] = {
    Status.DRAFT: DeadlineKind.PHASE_CLOSING, Status.COMPLEMENT_REQUESTED: DeadlineKind.COMPLEMENT_DUE,
    Status.UNDER_REVIEW: DeadlineKind.REVIEW_DUE, Status.FOLLOW_UP: DeadlineKind.REPORT_DUE,
}

PHASE_SECONDS = int((PHASE.closes_at - PHASE.opens_at).total_seconds())
GAPS = st.one_of(
    st.integers(0, 3600).map(lambda n: timedelta(seconds=n)),
    st.integers(1, 72).map(lambda n: timedelta(hours=n)),
    st.integers(1, 120).map(lambda n: timedelta(days=n, minutes=n)),
)
STOPS = st.sampled_from(range(22))  # how many steps of the plan below to take: anywhere, uniformly
DUE_IN = st.integers(1, 200 * 24).map(lambda n: timedelta(hours=n))  # a due date set 1 hour to 200 days ahead


@dataclass
class Drive:
    """A dossier driven through real commands, one drawn gap after the other."""

    draw: Callable[..., object]
    state: DossierState = field(default_factory=DossierState)
    at: datetime = PHASE.opens_at

    def give(self, command: Command, actor: Actor, gap: timedelta | None = None) -> bool:
        """Give `command` after a drawn gap (or `gap`); whether it was accepted (a submission after the
        closing is refused, and the dossier stays as it was)."""
        when = self.at + (gap if gap is not None else self.draw(GAPS))
        try:
            events = decide(self.state, command, actor, when)
        except DomainError:
            return False
        self.state, self.at = replay(events, self.state), when
        return True


def _drive(draw: Callable[..., object], steps: int) -> Drive:
    """Start a PMCB draft at a drawn instant of the phase and take up to `steps` steps along the
    lifecycle, with the side roads (extension, complement, escalations, recusal-free reviews, reports)."""
    d = Drive(draw)
    start = PHASE.opens_at + timedelta(seconds=draw(st.integers(0, PHASE_SECONDS - 1)))
    d.at = start
    plan: list[Callable[[], bool]] = [
        lambda: d.give(StartDraft(call=PMCB, phase_id="unique", reference=PMCB_EXAMPLE.reference, content=CONTENT),
                       HOLDER, timedelta(0)),
        lambda: not draw(st.booleans()) or d.give(ExtendDeadline(
            deadline=DeadlineKind.PHASE_CLOSING, until=PHASE.closes_at + draw(DUE_IN)), STAFF),
        lambda: d.give(Submit(), HOLDER),
        lambda: d.give(Acknowledge(), STAFF),
        lambda: d.give(RequestComplement(pieces="Kbis", due=d.at + draw(DUE_IN)), STAFF, timedelta(0)),
        lambda: not draw(st.booleans()) or d.give(EscalateComplement(), SYSTEM, d.state.complement_due - d.at
                                                  if d.state.complement_due else timedelta(0)),
        lambda: d.give(ProvideComplement(note="Kbis joint"), HOLDER),
        lambda: d.give(DeclareComplete(), STAFF),
        lambda: d.give(AssignReviewers(reviewers=("rita", "remi"), due=d.at + draw(DUE_IN)), STAFF, timedelta(0)),
        lambda: d.give(DeclareInterests(conflict=False), RITA),
        lambda: d.give(SubmitReview(scores=SCORES, opinion="Solide"), RITA),
        lambda: not draw(st.booleans()) or d.give(EscalateReview(), SYSTEM, d.state.review_due - d.at
                                                  if d.state.review_due and d.state.review_due > d.at
                                                  else timedelta(0)),
        lambda: d.give(DeclareInterests(conflict=False), REMI),
        lambda: d.give(SubmitReview(scores=SCORES, opinion="Bien"), REMI),
        lambda: d.give(TakeDecision(retained=draw(st.booleans()), reasons="Vu"), COMMITTEE),
        lambda: d.give(RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF),
        *[_report(d, period) for period in range(1, 6)],
    ]
    for step in plan[:steps]:
        if not step():
            break
    return d


def _report(d: Drive, period: int) -> Callable[[], bool]:
    """Report `period`: filed after a drawn gap (late or not), or flagged late by the system once due."""

    def step() -> bool:
        if d.draw(st.booleans()):
            return d.give(FileReport(period=period, summary=f"T{period}"), HOLDER)
        assert d.state.follow_up_started_at is not None
        due = report_due(PMCB, d.state.follow_up_started_at, period)
        return d.give(FlagLateReport(period=period), SYSTEM, max(due - d.at, timedelta(0)))

    return step


@st.composite
def looked_at(draw: st.DrawFn) -> tuple[DossierState, datetime]:
    """A dossier, and an instant after its last event: any, or (one time in two) the instant its status
    waits for, or a hair around it, where "ahead" turns into "overdue"."""
    d = _drive(draw, draw(STOPS))
    s = d.state
    waited = {
        Status.DRAFT: s.phase_closes_at, Status.COMPLEMENT_REQUESTED: s.complement_due,
        Status.UNDER_REVIEW: s.review_due,
    }.get(s.status)
    if s.status is Status.FOLLOW_UP and s.follow_up_started_at is not None:
        done = {r.period for r in s.reports} | set(s.late_reports)
        left = sorted(set(range(1, report_count(PMCB) + 1)) - done)
        waited = report_due(PMCB, s.follow_up_started_at, left[0]) if left else None
    if waited is not None and draw(st.booleans()):
        offset = draw(st.sampled_from([timedelta(0), timedelta(0), timedelta(microseconds=-1), timedelta(seconds=1)]))
        return s, max(d.at, waited + offset)
    return s, d.at + timedelta(seconds=draw(st.integers(0, 6 * 366 * 24 * 3600)))


# --- (a) legal hold against destruction ----------------------------------------------------------


@st.composite
def ended_dossiers(draw: st.DrawFn) -> tuple[DossierState, datetime]:
    """A dossier that ended (withdrawn, closed, not retained or expired) at a drawn instant, then put
    under and out of a legal hold a drawn number of times (the first perhaps before it ended), and an
    instant to shred it, from its end to a century later."""
    end = draw(st.sampled_from(["withdraw", "close", "expire", "as driven"]))
    d = _drive(draw, draw(st.sampled_from([1, 2] if end == "expire" else range(1, 22))))
    held_early = draw(st.booleans()) and d.give(SetLegalHold(reason="Contentieux"), STAFF)
    ended = (
        (end == "close" and d.give(Close(reason="Hors champ"), STAFF, draw(st.integers(0, 400)) * timedelta(days=1)))
        or (end == "expire" and d.give(ExpireDraft(), SYSTEM, max(d.state.phase_closes_at - d.at, timedelta(0))
                                       if d.state.phase_closes_at else timedelta(0)))
        or d.state.status in ENDED
        or d.give(Withdraw(reason="Abandon"), HOLDER, draw(st.integers(0, 400)) * timedelta(days=1))
    )
    assert ended and d.state.status in ENDED, d.state.status
    toggles = draw(st.integers(0, 3))
    for _ in range(toggles):
        gap = draw(st.integers(0, 30 * 366)) * timedelta(days=1)
        if d.state.legal_hold:
            assert d.give(LiftLegalHold(reason="Jugement rendu"), STAFF, gap)
        else:
            assert d.give(SetLegalHold(reason="Nouveau contentieux"), STAFF, gap)
    assert d.state.legal_hold is (held_early ^ (toggles % 2 == 1))
    now = d.at + draw(st.integers(-366, 100 * 366)) * timedelta(days=1) + draw(st.integers(0, 86_399)) * timedelta(
        seconds=1)
    return d.state, now


@settings(max_examples=100)
@given(ended_dossiers())
def test_a_dossier_under_legal_hold_is_never_shredded(case: tuple[DossierState, datetime]) -> None:
    state, now = case
    ended = state.ended_at
    ends = retention_ends(state)
    assert ended is not None and ends is not None
    # Ten years (the call's retention_years) after the Paris date it ended, that whole anniversary day
    # kept: the retention ends at 00:00 Paris the day after (29 February's anniversary: 28 February).
    day = paris_date(ended)
    try:
        anniversary = day.replace(year=day.year + PMCB.retention_years)
    except ValueError:
        anniversary = day.replace(year=day.year + PMCB.retention_years, day=28)
    assert ends == datetime.combine(anniversary + timedelta(days=1), time(0), tzinfo=PARIS)
    outcome, reason = shred_verdict(state, now)
    event(f"{state.status}, {outcome}")
    if state.legal_hold:
        assert outcome == "kept" and "conservation légale" in reason
        assert isinstance(destruction_refusal(state, now), NotAllowed)
        try:
            decide(state, DestroyContent(), STAFF, now)
        except NotAllowed:
            pass
        else:
            raise AssertionError("the content of a dossier under legal hold was destroyed")
        return
    assert (outcome == "would_destroy") is (now >= ends), (outcome, reason, now, ends)
    if outcome == "would_destroy":
        destroyed = replay(decide(state, DestroyContent(), STAFF, now), state)
        assert shred_verdict(destroyed, now)[0] == "already_destroyed"
        try:
            decide(destroyed, SetLegalHold(reason="Trop tard"), STAFF, now)
        except InvalidTransition:
            pass
        else:
            raise AssertionError("a legal hold was set on destroyed content")


# --- (b) deadlines --------------------------------------------------------------------------------


def _since(state: DossierState, d: Deadline) -> datetime | None:
    """When the deadline a reminder announces was set."""
    return {
        DeadlineKind.PHASE_CLOSING: state.started_at,
        DeadlineKind.COMPLEMENT_DUE: state.complement_requested_at,
        DeadlineKind.REPORT_DUE: state.follow_up_started_at,
    }.get(d.subject)


@settings(max_examples=150)
@given(looked_at(), st.integers(0, 400 * 24 * 3600))
def test_deadlines_and_the_next_of_each_kind(case: tuple[DossierState, datetime], later_by: int) -> None:
    state, now = case
    event(f"status {state.status}")
    listed = deadlines(state, PMCB, now)
    assert [d.at for d in listed] == sorted(d.at for d in listed)
    assert len({d.key for d in listed}) == len(listed)
    dues = [d for d in listed if d.kind is not DeadlineKind.REMINDER]
    reminders = [d for d in listed if d.kind is DeadlineKind.REMINDER]
    if state.status in ENDED or state.status not in WAITS_FOR:
        assert listed == []
    assert {d.kind for d in dues} <= {WAITS_FOR.get(state.status)}
    for d in dues:
        assert d.overdue is (d.at <= now) and d.subject is d.kind and d.due == d.at and d.days_before == 0
    if state.status is Status.DRAFT:
        assert [d.at for d in dues] == [state.phase_closes_at]
    if state.status is Status.COMPLEMENT_REQUESTED:
        assert [d.at for d in dues] == ([] if state.complement_overdue else [state.complement_due])
    if state.status is Status.UNDER_REVIEW:
        waiting = state.reviews_missing and not state.review_overdue
        assert [d.at for d in dues] == ([state.review_due] if waiting else [])
    if state.status is Status.FOLLOW_UP:
        periods = [d.period for d in dues]
        assert periods == sorted(periods) and not set(periods) & ({r.period for r in state.reports}
                                                                 | set(state.late_reports))
        assert all(d.at > (state.follow_up_started_at or d.at) for d in dues)
        assert all(d.at.astimezone(PARIS).time().isoformat() == "00:00:00" for d in dues)
    for r in reminders:
        assert not r.overdue and now < r.at < r.due and r.subject is not DeadlineKind.REVIEW_DUE
        assert r.days_before in PMCB.reminder_days
        assert (paris_date(r.due) - paris_date(r.at)).days == r.days_before
        assert any(d.kind is r.subject and d.at == r.due and d.period == r.period for d in dues)
        since = _since(state, r)
        assert since is not None and r.at > since

    # `now` only decides what is overdue and which reminders are still ahead.
    later = now + timedelta(seconds=later_by)
    after = deadlines(state, PMCB, later)
    assert [(d.kind, d.at, d.period) for d in after if d.kind is not DeadlineKind.REMINDER] == [
        (d.kind, d.at, d.period) for d in dues]
    assert {d.key for d in after if d.kind is DeadlineKind.REMINDER} == {r.key for r in reminders if r.at > later}

    first = next_of_each_kind(listed)
    assert [d.at for d in first] == sorted(d.at for d in first)
    assert len({(d.kind, d.subject) for d in first}) == len(first)
    assert {(d.kind, d.subject) for d in first} == {(d.kind, d.subject) for d in listed}
    for d in first:
        assert d in listed and all(d.at <= o.at for o in listed if (o.kind, o.subject) == (d.kind, d.subject))
