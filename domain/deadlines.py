"""Every instant a dossier waits for, computed in Europe/Paris civil time."""

from __future__ import annotations

from datetime import datetime

from domain.calendar import add_months, days_before, paris_date, start_of_day
from domain.calls import Call
from domain.commands import EscalateComplement, EscalateReview, ExpireDraft, FlagLateReport
from domain.record import Record
from domain.state import DeadlineKind, DossierState, Status


class Deadline(Record):
    """One instant the dossier waits for; `due` names the deadline a reminder announces."""

    kind: DeadlineKind
    at: datetime
    subject: DeadlineKind  # for a reminder: what it reminds of; otherwise the kind itself
    due: datetime  # the deadline itself (equal to `at` except for reminders)
    days_before: int = 0
    period: int = 0  # the follow-up report's period, for report deadlines
    overdue: bool = False

    @property
    def key(self) -> str:
        """A stable key, unique per dossier: what a notification outbox deduplicates on."""
        parts = (self.kind.value, self.subject.value, self.period, self.due.isoformat(), self.days_before)
        return ":".join(str(p) for p in parts)

    @property
    def catch_up_key(self) -> str:
        """What the reminders of one deadline share: after downtime, only the latest of them is sent."""
        return f"{self.subject}:{self.period}:{self.due.isoformat()}"


def latest_reminders(due: list[Deadline]) -> list[Deadline]:
    """Of the reminders in `due`, the latest of each deadline (fewest days before), in first-seen order:
    after downtime several reminders of one deadline may be due, and the holder needs one."""
    latest: dict[str, Deadline] = {}
    for d in due:
        if d.kind is not DeadlineKind.REMINDER:
            continue
        key = d.catch_up_key
        if key not in latest or d.days_before < latest[key].days_before:
            latest[key] = d
    return list(latest.values())


def next_of_each_kind(waiting: list[Deadline]) -> list[Deadline]:
    """The first deadline of each kind (a reminder: of each kind of deadline it announces), in order:
    what a person needs to see first; a dossier in follow-up waits for years of reports and reminders."""
    seen: set[tuple[DeadlineKind, DeadlineKind]] = set()
    out = []
    for d in sorted(waiting, key=lambda d: d.at):
        if (d.kind, d.subject) not in seen:
            seen.add((d.kind, d.subject))
            out.append(d)
    return out


def report_count(call: Call) -> int:
    """How many follow-up reports a laureate files."""
    return call.follow_up.duration_months // call.follow_up.report_period_months


def report_due(call: Call, follow_up_started_at: datetime, period: int) -> datetime:
    """When report `period` (1-based) is due: 00:00 Paris, `period` report periods after the
    Paris date the follow-up started."""
    months = period * call.follow_up.report_period_months
    return start_of_day(add_months(paris_date(follow_up_started_at), months))


def deadlines(state: DossierState, call: Call, now: datetime) -> list[Deadline]:
    """Every instant the dossier waits for at `now`, sorted.

    A due instant stays listed (marked `overdue`) until its consequence is recorded (the draft
    expired, the escalation raised, the late report flagged). A reminder is listed while it is
    still ahead of `now`, and only if it falls after the deadline was set.

    Args:
        state: the dossier.
        call: the call definition to compute under (normally `state.call`).
        now: the instant of the question.
    """
    out: list[Deadline] = []

    def due(kind: DeadlineKind, at: datetime, since: datetime | None, period: int = 0,
            reminders: bool = True) -> None:
        out.append(Deadline(kind=kind, at=at, subject=kind, due=at, period=period,
                            overdue=at <= now))
        if not reminders:
            return
        for days in call.reminder_days:
            when = days_before(at, days)
            if when > now and (since is None or when > since):
                out.append(Deadline(kind=DeadlineKind.REMINDER, at=when, subject=kind, due=at,
                                    days_before=days, period=period))

    if state.status is Status.DRAFT and state.phase_closes_at is not None:
        due(DeadlineKind.PHASE_CLOSING, state.phase_closes_at, state.started_at)
    if (
        state.status is Status.COMPLEMENT_REQUESTED
        and state.complement_due is not None
        and not state.complement_overdue
    ):
        due(DeadlineKind.COMPLEMENT_DUE, state.complement_due, state.complement_requested_at)
    if (
        state.status is Status.UNDER_REVIEW
        and state.review_due is not None
        and not state.review_overdue
        and state.reviews_missing
    ):
        due(DeadlineKind.REVIEW_DUE, state.review_due, state.review_assigned_at, reminders=False)
    if state.status is Status.FOLLOW_UP and state.follow_up_started_at is not None:
        filed = {r.period for r in state.reports}
        previous = state.follow_up_started_at
        for period in range(1, report_count(call) + 1):
            at = report_due(call, state.follow_up_started_at, period)
            if period not in filed and period not in state.late_reports:
                due(DeadlineKind.REPORT_DUE, at, previous, period=period)
            previous = at
    return sorted(out, key=lambda d: (d.at, d.kind.value, d.period))


def consequence(deadline: Deadline) -> ExpireDraft | EscalateComplement | EscalateReview | FlagLateReport | None:
    """The system command a due deadline calls for (None for a reminder, which only notifies)."""
    if deadline.kind is DeadlineKind.PHASE_CLOSING:
        return ExpireDraft()
    if deadline.kind is DeadlineKind.COMPLEMENT_DUE:
        return EscalateComplement()
    if deadline.kind is DeadlineKind.REVIEW_DUE:
        return EscalateReview()
    if deadline.kind is DeadlineKind.REPORT_DUE:
        return FlagLateReport(period=deadline.period)
    return None
