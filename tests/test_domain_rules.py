"""Rules brought back into `domain/`: who may act (`available_commands`), who may audit, how long a
dossier is kept and when audit shred may destroy it, the call's announcements, the final statuses,
the reminders' catch-up, the Paris day's end. Every expectation is written out here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain import Actor, DossierState, Status, decide, replay
from domain.access import SYSTEM, AuditOperation, may_audit
from domain.calendar import PARIS, end_of_day
from domain.commands import DestroyContent, SetLegalHold
from domain.deadlines import Deadline, latest_reminders
from domain.decider import available_commands
from domain.events import LegalHoldSet
from domain.notices import STAFF_DESK, announcement, call_moments, moments_to_announce
from domain.retention import retention_ends, shred_verdict
from domain.state import DeadlineKind
from tests.test_decider_transitions import AUDITOR, COMMITTEE, HOLDER, NOW, OTHER_HOLDER, PMCB, REVIEWER, STAFF
from tests.test_reading import (
    BRUNO,
    REMI,
    RESTRICTED,
    VICTOR,
    assigned,
    closed,
    declared,
    drive,
    reviewed,
    start,
    submitted,
)


def draft() -> DossierState:
    return drive(start(RESTRICTED)[:2])  # started, a document attached, not submitted


# --- available_commands ---------------------------------------------------------------------

HOLDER_DRAFT = ["update-draft", "submit", "withdraw", "attach-document"]
HOLDER_OPEN = ["withdraw", "attach-document"]
STAFF_CHECKING = ["acknowledge", "request-complement", "close", "extend-deadline", "grant-clearance",
                  "set-legal-hold"]
STAFF_REVIEWING = ["assign-reviewers", "close", "extend-deadline", "grant-clearance", "set-legal-hold"]
STAFF_ENDED = ["grant-clearance", "set-legal-hold"]

# state, actor, the commands offered at NOW — written from the lifecycle described in DESIGN.md
TABLE: list[tuple[str, Actor, list[str]]] = [
    ("new", HOLDER, ["start-draft"]),
    ("new", STAFF, []),
    ("draft", HOLDER, HOLDER_DRAFT),
    ("draft", OTHER_HOLDER, []),
    ("draft", STAFF, ["extend-deadline", "grant-clearance", "set-legal-hold"]),
    ("draft", BRUNO, []),
    ("draft", SYSTEM, []),  # the phase has not closed yet
    ("submitted", HOLDER, HOLDER_OPEN),
    ("submitted", STAFF, STAFF_CHECKING),
    ("submitted", BRUNO, []),
    ("submitted", REVIEWER, []),
    ("submitted", COMMITTEE, []),
    ("assigned", HOLDER, HOLDER_OPEN),
    ("assigned", STAFF, STAFF_REVIEWING),
    ("assigned", REVIEWER, ["declare-interests"]),
    ("assigned", REMI, ["declare-interests"]),
    ("assigned", VICTOR, []),
    ("assigned", COMMITTEE, []),  # no review yet: nothing to decide on
    ("declared", REVIEWER, ["submit-review"]),
    ("declared", REMI, []),  # declared a conflict: no longer assigned
    ("declared", COMMITTEE, []),
    ("reviewed", REVIEWER, []),  # already reviewed
    ("reviewed", COMMITTEE, ["decide"]),
    ("reviewed", STAFF, STAFF_REVIEWING),
    ("reviewed", SYSTEM, []),  # the review is not due yet
    ("closed", HOLDER, []),
    ("closed", STAFF, STAFF_ENDED),
    ("closed", BRUNO, []),
    ("closed", COMMITTEE, []),
]
STATES = {"new": DossierState, "draft": draft, "submitted": submitted, "assigned": assigned,
          "declared": declared, "reviewed": reviewed, "closed": closed}
AUDITORS_ACT_ON_NOTHING = [(name, AUDITOR, []) for name in STATES]


@pytest.mark.parametrize(("state", "actor", "expected"), TABLE + AUDITORS_ACT_ON_NOTHING,
                         ids=[f"{s}-{a}" for s, a, _ in TABLE + AUDITORS_ACT_ON_NOTHING])
def test_available_commands(state: str, actor: Actor, expected: list[str]) -> None:
    assert available_commands(STATES[state](), actor, NOW) == expected


def test_available_commands_follow_time() -> None:
    state = draft()
    closes = state.phase_closes_at
    assert closes is not None
    assert available_commands(state, HOLDER, closes - timedelta(microseconds=1)) == HOLDER_DRAFT
    assert available_commands(state, HOLDER, closes) == ["withdraw", "attach-document"]  # closed: no update, no submit
    assert available_commands(state, SYSTEM, closes) == ["expire-draft"]
    review = reviewed()
    assert review.review_due is not None
    assert available_commands(review, SYSTEM, review.review_due) == []  # every assigned reviewer has reviewed
    owed = assigned()
    assert owed.review_due is not None
    assert available_commands(owed, SYSTEM, owed.review_due) == ["escalate-review"]


def test_available_commands_after_retention_and_under_legal_hold() -> None:
    ended = closed()
    ends = retention_ends(ended)
    assert ends is not None
    assert available_commands(ended, STAFF, ends) == [*STAFF_ENDED, "destroy-content"]
    held = replay(decide(ended, SetLegalHold(reason="Contentieux"), STAFF, NOW), ended)
    assert available_commands(held, STAFF, ends) == ["grant-clearance", "lift-legal-hold"]


def test_committee_of_another_call_is_offered_nothing() -> None:
    from tests.test_reading import ZOE, committee_reviewed

    assert available_commands(committee_reviewed(), COMMITTEE, NOW) == ["decide"]
    assert available_commands(committee_reviewed(), ZOE, NOW) == []


def test_every_offered_command_passes_the_decider_for_role_and_status() -> None:
    """What is offered is what decide would not refuse for who or when (arguments aside)."""
    from domain.errors import DomainError, InvalidTransition, NotAllowed
    from tests.test_decider_transitions import VALID

    for name, make in STATES.items():
        state = make()
        for actor in (HOLDER, OTHER_HOLDER, STAFF, BRUNO, REVIEWER, REMI, VICTOR, COMMITTEE, AUDITOR, SYSTEM):
            for command in available_commands(state, actor, NOW):
                if command not in VALID or command == "start-draft":
                    continue
                try:
                    decide(state, VALID[command](state), actor, NOW)
                except (NotAllowed, InvalidTransition) as exc:  # pragma: no cover - the failure says which
                    pytest.fail(f"{name}: {command} offered to {actor} but refused: {exc.message}")
                except DomainError:  # refused for the example's arguments (a document attached twice…)
                    pass


# --- auditor-only operations -----------------------------------------------------------------


@pytest.mark.parametrize("operation", list(AuditOperation), ids=str)
@pytest.mark.parametrize(("actor", "granted"), [(AUDITOR, True), (STAFF, False), (HOLDER, False),
                                                (COMMITTEE, False), (REVIEWER, False), (SYSTEM, False),
                                                (None, False)], ids=str)
def test_only_auditors_audit(operation: AuditOperation, actor: Actor | None, granted: bool) -> None:
    decision = may_audit(actor, operation)
    assert decision.granted is granted
    assert decision.reason
    if not granted:
        assert f"audit {operation.value}" in decision.reason


# --- retention: the exact instant --------------------------------------------------------------
# Ten years, counted in Paris days as French law counts a period in years: kept through the whole
# anniversary day, over at 00:00 Paris the day after.


@pytest.mark.parametrize(("closed_at", "over_at"), [
    (datetime(2026, 3, 2, 14, 0, tzinfo=PARIS), datetime(2036, 3, 3, 0, 0, tzinfo=PARIS)),
    (datetime(2026, 3, 2, 23, 59, tzinfo=PARIS), datetime(2036, 3, 3, 0, 0, tzinfo=PARIS)),
    (datetime(2026, 3, 2, 0, 0, tzinfo=PARIS), datetime(2036, 3, 3, 0, 0, tzinfo=PARIS)),
    (datetime(2028, 2, 29, 12, 0, tzinfo=PARIS), datetime(2038, 3, 1, 0, 0, tzinfo=PARIS)),  # 28 Feb 2038 kept
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2037, 1, 2, 0, 0, tzinfo=PARIS)),  # 1 Jan 2027 in Paris
])
def test_retention_ends_at_the_exact_instant(closed_at: datetime, over_at: datetime) -> None:
    state = closed().model_copy(update={"closed_at": closed_at})
    assert state.call is not None and state.call.retention_years == 10
    assert retention_ends(state) == over_at
    before = over_at - timedelta(microseconds=1)
    assert shred_verdict(state, before)[0] == "kept"
    assert shred_verdict(state, over_at) == ("would_destroy", "")
    with pytest.raises(Exception, match="rien n’est détruit avant"):
        decide(state, DestroyContent(), STAFF, before)
    assert decide(state, DestroyContent(), STAFF, over_at)


# --- shred_verdict -----------------------------------------------------------------------------

LATER = NOW + timedelta(days=366 * 11)


def test_shred_verdicts() -> None:
    ended = closed()
    assert shred_verdict(ended, LATER) == ("would_destroy", "")
    outcome, reason = shred_verdict(ended, NOW)
    assert outcome == "kept" and "court jusqu’au" in reason
    outcome, reason = shred_verdict(reviewed(), LATER)
    assert outcome == "kept" and "n’est pas terminé" in reason and "en expertise" in reason
    held = replay([LegalHoldSet(actor=STAFF, at=NOW, reason="Contentieux")], ended)
    outcome, reason = shred_verdict(held, LATER)
    assert outcome == "kept" and "conservation légale" in reason
    gone = replay(decide(ended, DestroyContent(), STAFF, datetime(2037, 6, 30, 23, 0, tzinfo=UTC)), ended)
    assert shred_verdict(gone, LATER) == ("already_destroyed", f"contenu détruit le {date(2037, 7, 1)}")  # Paris day


# --- final statuses ----------------------------------------------------------------------------


def test_final_statuses() -> None:
    final = {Status.NOT_RETAINED, Status.CLOSED, Status.WITHDRAWN, Status.EXPIRED}
    assert {s for s in Status if s.is_final} == final
    assert not Status.NEW.is_final and not Status.NEW.is_open  # NEW is neither: `not is_open` was wrong
    assert {s for s in Status if s.is_open} == set(Status) - final - {Status.NEW}


# --- reminders after downtime --------------------------------------------------------------------


def _reminder(days: int, period: int = 0, subject: DeadlineKind = DeadlineKind.PHASE_CLOSING) -> Deadline:
    due = datetime(2026, 6, 4, 22, 0, tzinfo=UTC)  # "before 5 June", in UTC as deadlines() gives it
    return Deadline(kind=DeadlineKind.REMINDER, at=due - timedelta(days=days), subject=subject, due=due,
                    days_before=days, period=period)


def test_catch_up_key_and_latest_reminders() -> None:
    assert _reminder(30).catch_up_key == "phase_closing:0:2026-06-04T22:00:00+00:00"
    assert _reminder(30).catch_up_key == _reminder(7).catch_up_key != _reminder(7, period=1).catch_up_key
    due = Deadline(kind=DeadlineKind.PHASE_CLOSING, at=_reminder(0).due, subject=DeadlineKind.PHASE_CLOSING,
                   due=_reminder(0).due)
    several = [_reminder(30), _reminder(7, period=1), _reminder(7), due, _reminder(1), _reminder(30, period=1)]
    assert latest_reminders(several) == [_reminder(1), _reminder(7, period=1)]
    assert latest_reminders([due]) == []


# --- Paris days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "end_utc"), [
    (date(2026, 1, 15), datetime(2026, 1, 15, 23, 0, tzinfo=UTC)),   # winter: UTC+1
    (date(2026, 7, 15), datetime(2026, 7, 15, 22, 0, tzinfo=UTC)),   # summer: UTC+2
    (date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),   # the day before the spring change
    (date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),   # a 23-hour day
    (date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),  # a 25-hour day
])
def test_end_of_day_is_the_next_paris_midnight(day: date, end_utc: datetime) -> None:
    assert end_of_day(day) == end_utc


# --- the call's announcements ------------------------------------------------------------------------


def test_call_moments_of_the_pmcb_call() -> None:
    phase = PMCB.phases[0]
    moments = call_moments(PMCB)
    assert [(m.at, m.kind) for m in moments] == [(phase.opens_at, "phase_opened"), (phase.closes_at, "phase_closed")]
    opened = moments[0]
    assert opened.key == f"{PMCB.id}|phase_opened|{phase.id}|{phase.opens_at.isoformat()}"
    assert opened.text.startswith(f"Ouverture de « {phase.label} » (")
    assert moments[1].text.startswith(f"Clôture de « {phase.label} » (")
    notice = announcement(PMCB, moments[1])
    assert notice.recipient == STAFF_DESK == "staff:guichet"
    assert notice.key == f"{moments[1].key}|staff:guichet"
    assert notice.dossier_id == f"call:{PMCB.id}" and notice.kind == "phase_closed"
    assert notice.subject == f"[{PMCB.id}] {moments[1].text}" and notice.due == phase.closes_at


def test_moments_to_announce_skip_the_announced_and_the_past() -> None:
    phase = PMCB.phases[0]
    opened, closing = call_moments(PMCB)
    assert moments_to_announce(PMCB, set(), phase.opens_at - timedelta(days=1)) == [opened, closing]
    assert moments_to_announce(PMCB, {opened.key}, phase.opens_at - timedelta(days=1)) == [closing]
    # The timer that just fired: its moment is still announced, within a second.
    assert moments_to_announce(PMCB, set(), phase.opens_at + timedelta(milliseconds=500)) == [opened, closing]
    assert moments_to_announce(PMCB, set(), phase.opens_at + timedelta(seconds=2)) == [closing]
    assert moments_to_announce(PMCB, set(), phase.closes_at + timedelta(days=1)) == []
    extended = PMCB.model_copy(update={"phases": (phase.model_copy(update={"closes_at": phase.closes_at
                                                                           + timedelta(days=30)}),)})
    later = moments_to_announce(extended, {opened.key, closing.key}, phase.closes_at - timedelta(days=1))
    assert [m.kind for m in later] == ["phase_closed"] and later[0].key != closing.key  # a new closing is told


# --- staff and committee of a call, a declared reviewer ----------------------------------------------


def test_staff_and_committee_of_a_call() -> None:
    assert PMCB.staff == ("amelie", "guichet") and PMCB.has_staff("amelie") and not PMCB.has_staff("bruno")
    anyone = PMCB.model_copy(update={"staff": (), "committee": ()})
    assert anyone.has_staff("bruno") and anyone.has_committee_member("zoe")
    cora = PMCB.model_copy(update={"committee": ("cora",)})
    assert cora.has_committee_member("cora") and not cora.has_committee_member("zoe")
    assert RESTRICTED.not_staff == "vous n’êtes pas chargé de mission de cet appel (amelie)"


def test_declared_reviewer() -> None:
    assert not assigned().declared_reviewer("rita") and not assigned().declared_reviewer("victor")
    assert declared().declared_reviewer("rita") and not declared().declared_reviewer("remi")


def test_call_file_committee_list_is_read() -> None:
    from amiflow.catalogue import CALLS_DIR, read_yaml
    from domain.calls import parse_call

    data = dict(read_yaml(CALLS_DIR / "hdf-pmcb-reemploi.yaml"))
    assert parse_call(data, "pmcb.yaml").committee == ()
    assert parse_call({**data, "committee": ["cora", "zoe"]}, "pmcb.yaml").committee == ("cora", "zoe")



# --- what a phase extension tells the holder ----------------------------------------------------


def test_a_phase_extension_is_told_to_the_holder_of_a_draft_only() -> None:
    from domain.events import DeadlineExtended
    from domain.notices import notices_for

    later = NOW + timedelta(days=400)
    extended = DeadlineExtended(actor=STAFF, at=NOW, deadline=DeadlineKind.PHASE_CLOSING, until=later)
    told = notices_for(draft(), extended)
    assert [(n.recipient, n.subject.split("] ")[1]) for n in told] == [(f"holder:{draft().holder}",
                                                                       "Échéance prolongée")]
    assert notices_for(submitted(), extended) == []
