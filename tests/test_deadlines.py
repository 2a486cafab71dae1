"""Deadlines on real dates, in Europe/Paris, across the spring and autumn DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from amiflow.catalogue import CALLS_DIR, load_call, load_dossier
from domain import SYSTEM, Actor, DossierState, Role, deadlines, decide, evolve
from domain.calendar import PARIS, days_before, start_of_day
from domain.calls import Call
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    Command,
    DeclareComplete,
    DeclareInterests,
    ExpireDraft,
    ExtendDeadline,
    FileReport,
    RecordFollowUp,
    RequestComplement,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
)
from domain.state import DeadlineKind, FollowUpKind, Status

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
HOLDER = Actor(role=Role.HOLDER, name="acme")
STAFF = Actor(role=Role.STAFF, name="amelie")
REVIEWER = Actor(role=Role.REVIEWER, name="rita")
COMMITTEE = Actor(role=Role.COMMITTEE, name="cora")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def act(state: DossierState, command: Command, actor: Actor, now: datetime) -> DossierState:
    for event in decide(state, command, actor, now):
        state = evolve(state, event)
    return state


@pytest.fixture(scope="module")
def ressourceries(tmp_path_factory: pytest.TempPathFactory) -> Call:
    """The ressourceries call as a person corrected it: phase 1 "before 1 March 2026"."""
    path = tmp_path_factory.mktemp("calls") / "ressourceries.yaml"
    text = (CALLS_DIR / "hdf-ressourceries.yaml").read_text()
    path.write_text(text.replace("date: 2026-02-31", "date: 2026-03-01"))
    return load_call(path)


@pytest.fixture(scope="module")
def pmcb() -> Call:
    return load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")


def draft(call: Call, phase: str, now: datetime) -> DossierState:
    example = load_dossier(EXAMPLES / "hdf-ressourceries.yaml")
    command = StartDraft(call=call, phase_id=phase, reference="REF-1", content=example.content)
    return act(DossierState(), command, HOLDER, now)


def test_before_5_june_closes_at_midnight_paris() -> None:
    assert start_of_day(datetime(2026, 6, 5).date()) == z("2026-06-04T22:00:00Z")
    assert start_of_day(datetime(2026, 1, 5).date()) == z("2026-01-04T23:00:00Z")


def test_phase_2_draft_waits_for_closing_and_three_reminders(ressourceries: Call) -> None:
    state = draft(ressourceries, "phase-2", paris(2026, 3, 2, 9, 30))
    found = deadlines(state, ressourceries, paris(2026, 3, 2, 9, 30))
    assert [(d.kind, d.days_before, d.at) for d in found] == [
        (DeadlineKind.REMINDER, 30, z("2026-05-05T22:00:00Z")),
        (DeadlineKind.REMINDER, 7, z("2026-05-28T22:00:00Z")),
        (DeadlineKind.REMINDER, 1, z("2026-06-03T22:00:00Z")),
        (DeadlineKind.PHASE_CLOSING, 0, z("2026-06-04T22:00:00Z")),
    ]
    assert all(d.due == z("2026-06-04T22:00:00Z") for d in found)
    assert len({d.key for d in found}) == 4


def test_reminders_already_past_are_not_listed_and_closing_becomes_overdue(ressourceries: Call) -> None:
    state = draft(ressourceries, "phase-2", paris(2026, 3, 2, 9, 30))
    later = deadlines(state, ressourceries, paris(2026, 6, 1))
    assert [(d.kind, d.days_before) for d in later] == [
        (DeadlineKind.REMINDER, 1), (DeadlineKind.PHASE_CLOSING, 0),
    ]
    after = deadlines(state, ressourceries, z("2026-06-04T22:00:00Z"))
    assert [(d.kind, d.overdue) for d in after] == [(DeadlineKind.PHASE_CLOSING, True)]
    # One second before the closing the holder still submits; at the closing, the draft expires.
    submitted = act(state, Submit(), HOLDER, z("2026-06-04T21:59:59Z"))
    assert submitted.status is Status.SUBMITTED
    assert deadlines(submitted, ressourceries, paris(2026, 6, 1)) == []
    expired = act(state, ExpireDraft(), SYSTEM, z("2026-06-04T22:00:00Z"))
    assert expired.status is Status.EXPIRED
    assert deadlines(expired, ressourceries, paris(2026, 6, 9)) == []


def test_reminders_before_the_draft_was_started_are_not_listed(ressourceries: Call) -> None:
    state = draft(ressourceries, "phase-2", paris(2026, 5, 20, 12))
    found = deadlines(state, ressourceries, paris(2026, 5, 20, 12))
    assert [d.days_before for d in found if d.kind is DeadlineKind.REMINDER] == [7, 1]


def test_phase_extension_moves_every_phase_deadline(ressourceries: Call) -> None:
    state = draft(ressourceries, "phase-2", paris(2026, 3, 2))
    until = start_of_day(datetime(2026, 6, 19).date())
    state = act(state, ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=until), STAFF,
                paris(2026, 6, 1))
    found = deadlines(state, ressourceries, paris(2026, 6, 1))
    assert {d.due for d in found} == {z("2026-06-18T22:00:00Z")}
    assert [d.days_before for d in found] == [7, 1, 0]


def submitted_pmcb(pmcb: Call, now: datetime) -> DossierState:
    example = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml")
    state = act(DossierState(), StartDraft(call=pmcb, phase_id="unique", reference="R",
                                           content=example.content), HOLDER, now)
    state = act(state, Submit(), HOLDER, now)
    return act(state, Acknowledge(), STAFF, now)


def test_complement_due_across_spring_dst(pmcb: Call) -> None:
    now = paris(2026, 3, 2, 10)
    state = submitted_pmcb(pmcb, now)
    due = paris(2026, 4, 5)  # CEST (+02:00); DST starts on 29 March 2026
    state = act(state, RequestComplement(pieces="Kbis", due=due), STAFF, now)
    found = deadlines(state, pmcb, now)
    assert [(d.days_before, d.at.astimezone(PARIS).isoformat()) for d in found] == [
        (30, "2026-03-06T00:00:00+01:00"),
        (7, "2026-03-29T00:00:00+01:00"),
        (1, "2026-04-04T00:00:00+02:00"),
        (0, "2026-04-05T00:00:00+02:00"),
    ]
    assert found[-1].kind is DeadlineKind.COMPLEMENT_DUE


def test_complement_due_across_autumn_dst(pmcb: Call) -> None:
    now = paris(2026, 9, 20, 10)
    state = submitted_pmcb(pmcb, now)
    state = act(state, RequestComplement(pieces="Budget", due=paris(2026, 11, 1)), STAFF, now)
    found = deadlines(state, pmcb, now)
    assert [(d.days_before, d.at.isoformat()) for d in found] == [
        (30, "2026-10-01T22:00:00+00:00"),  # 2 Oct 00:00 CEST
        (7, "2026-10-24T22:00:00+00:00"),  # 25 Oct 00:00 CEST, the night DST ends
        (1, "2026-10-30T23:00:00+00:00"),  # 31 Oct 00:00 CET
        (0, "2026-10-31T23:00:00+00:00"),
    ]


def test_days_before_keeps_paris_wall_clock() -> None:
    assert days_before(paris(2026, 3, 29, 12), 1).astimezone(PARIS).hour == 12
    assert days_before(paris(2026, 10, 26, 9), 1) == z("2026-10-25T08:00:00Z")  # CET already


def test_review_due_has_no_reminders_and_ends_with_the_reviews(pmcb: Call) -> None:
    now = paris(2026, 3, 2, 10)
    state = act(submitted_pmcb(pmcb, now), DeclareComplete(), STAFF, now)
    state = act(state, AssignReviewers(reviewers=("rita",), due=paris(2026, 4, 2)), STAFF, now)
    assert [d.kind for d in deadlines(state, pmcb, now)] == [DeadlineKind.REVIEW_DUE]
    state = act(state, DeclareInterests(conflict=False), REVIEWER, now)
    scores = {c.id: 4 for c in pmcb.criteria}
    state = act(state, SubmitReview(scores=scores, opinion="Solide."), REVIEWER, now)
    assert deadlines(state, pmcb, now) == []


def test_quarterly_reports_for_three_years(pmcb: Call) -> None:
    now = paris(2026, 3, 2, 10)
    state = act(submitted_pmcb(pmcb, now), DeclareComplete(), STAFF, now)
    state = act(state, AssignReviewers(reviewers=("rita",), due=paris(2026, 4, 2)), STAFF, now)
    state = act(state, DeclareInterests(conflict=False), REVIEWER, now)
    state = act(state, SubmitReview(scores={c.id: 3 for c in pmcb.criteria}, opinion="Oui."),
                REVIEWER, now)
    state = act(state, TakeDecision(retained=True, reasons="Consortium solide."), COMMITTEE, now)
    start = paris(2026, 3, 31, 10)
    state = act(state, RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, start)
    dues = [d for d in deadlines(state, pmcb, start) if d.kind is DeadlineKind.REPORT_DUE]
    assert [d.period for d in dues] == list(range(1, 13))
    # 00:00 Paris on the 30th or 31st, as the month allows, whatever the offset (fixed instants of
    # 2026-2029, not dates relative to today).
    assert [d.at for d in dues[:4]] == [paris(2026, 6, 30), paris(2026, 9, 30), paris(2026, 12, 31),
                                        paris(2027, 3, 31)]
    assert dues[-1].at == paris(2029, 3, 31)
    assert dues[2].at == datetime(2026, 12, 30, 23, tzinfo=UTC)
    # Each report has its own reminders 30, 7 and 1 days before.
    reminders = [d for d in deadlines(state, pmcb, start) if d.subject is DeadlineKind.REPORT_DUE
                 and d.kind is DeadlineKind.REMINDER and d.period == 1]
    assert [d.days_before for d in reminders] == [30, 7, 1]
    # A report filed on time leaves the list; the next one is then first.
    filed = act(state, FileReport(period=1, summary="T1"), HOLDER, paris(2026, 6, 15))
    assert not filed.reports[0].late
    assert min(d.period for d in deadlines(filed, pmcb, paris(2026, 6, 15)) if d.period) == 2
