"""Who may give which command, in which status, and where it leads: a table written here by hand from
the README (« The dossier lifecycle », the `dossier do` table, « Confidentiality », « Auditors ») and
the domain digest (DOMAIN.md), NOT read from domain/ — then every cell checked against the decider.

A cell is (status, command, actor): 14 statuses × 27 commands × 8 actors (the six roles, a holder who
does not own the dossier, a staff member who is not on the call's list). In each cell `decide` must
accept the command and lead where the table says, or refuse it — NotAllowed when the actor may never
give it, InvalidTransition when the dossier is not in a status that takes it — and
`available_commands` must offer it exactly when it is accepted.

Each cell is tried in the most favourable situation for the command, so that only the role and the
status can refuse it: the valid arguments of `VALID`, a declared reviewer before a review, a review
before a decision, a hold before lifting it, the due instants passed for the system's escalations,
the retention run out before a destruction. The dossiers are driven to each status through real
commands (`reach`, on the PMCB call, at fixed instants of 2026).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest

from domain.access import Actor, Role
from domain.commands import Command, DeclareInterests, SetLegalHold, SubmitReview, TakeDecision
from domain.decider import available_commands, decide, replay
from domain.errors import DomainError, InvalidTransition, NotAllowed
from domain.state import DossierState, Status
from tests.test_decider_transitions import (
    ACTORS,
    FRENCH,
    NOW,
    OTHER_HOLDER,
    PHASE,
    REVIEWER,
    SCORES,
    STAFF,
    VALID,
    reach,
)

# --- the expected table, by hand -------------------------------------------------------------------

NEW, DRAFT, SUBMITTED, ACKNOWLEDGED = Status.NEW, Status.DRAFT, Status.SUBMITTED, Status.ACKNOWLEDGED
COMPLEMENT, COMPLETE, REVIEW = Status.COMPLEMENT_REQUESTED, Status.COMPLETE, Status.UNDER_REVIEW
RETAINED, NOT_RETAINED, ORIENTED = Status.RETAINED, Status.NOT_RETAINED, Status.ORIENTED
FOLLOW_UP, CLOSED, WITHDRAWN, EXPIRED = Status.FOLLOW_UP, Status.CLOSED, Status.WITHDRAWN, Status.EXPIRED

# The mermaid diagram: the box « open dossier » holds draft … follow_up; expired, not_retained,
# withdrawn and closed go to [*] (they have ended); `new` is the [*] before a draft.
OPEN = frozenset({DRAFT, SUBMITTED, ACKNOWLEDGED, COMPLEMENT, COMPLETE, REVIEW, RETAINED, ORIENTED, FOLLOW_UP})
ENDED = frozenset({NOT_RETAINED, CLOSED, WITHDRAWN, EXPIRED})
EXISTING = OPEN | ENDED


def stays(statuses: frozenset[Status]) -> dict[Status, Status]:
    return {s: s for s in statuses}


# Who gives each command: the « who » column of the `dossier do` table (porteur, chargé de mission,
# expert, comité), `dossier attach --as holder:NAME`, and the system's deadlines (the lifecycle's
# `system · expire-draft`, and « system | escalate-complement, escalate-review, flag-late-report »).
# The auditor gives none: « reads only; every command is refused ».
WHO: dict[str, Role] = {
    "start-draft": Role.HOLDER, "update-draft": Role.HOLDER, "submit": Role.HOLDER,
    "withdraw": Role.HOLDER, "provide-complement": Role.HOLDER, "file-report": Role.HOLDER,
    "attach-document": Role.HOLDER,
    "acknowledge": Role.STAFF, "request-complement": Role.STAFF, "declare-complete": Role.STAFF,
    "assign-reviewers": Role.STAFF, "orient": Role.STAFF, "record-filing": Role.STAFF,
    "record-follow-up": Role.STAFF, "close": Role.STAFF, "extend-deadline": Role.STAFF,
    "grant-clearance": Role.STAFF, "set-legal-hold": Role.STAFF, "lift-legal-hold": Role.STAFF,
    "destroy-content": Role.STAFF,
    "declare-interests": Role.REVIEWER, "submit-review": Role.REVIEWER,
    "decide": Role.COMMITTEE,
    "expire-draft": Role.SYSTEM, "escalate-complement": Role.SYSTEM, "escalate-review": Role.SYSTEM,
    "flag-late-report": Role.SYSTEM,
}

# Where each command is accepted (the keys) and the status it leads to (the values); a tuple when
# its arguments choose (decide: retained, then not retained).
LEADS: dict[str, dict[Status, Status | tuple[Status, ...]]] = {
    # The arrows of the diagram.
    "start-draft": {NEW: DRAFT},
    "submit": {DRAFT: SUBMITTED},
    "expire-draft": {DRAFT: EXPIRED},
    "acknowledge": {SUBMITTED: ACKNOWLEDGED},
    "request-complement": {SUBMITTED: COMPLEMENT, ACKNOWLEDGED: COMPLEMENT},
    "provide-complement": {COMPLEMENT: ACKNOWLEDGED},
    "declare-complete": {ACKNOWLEDGED: COMPLETE},
    # complete → under_review; and under review, to name another expert (after a recusal, the
    # review is still owed — the README's table of commands that keep the status does not say it).
    "assign-reviewers": {COMPLETE: REVIEW, REVIEW: REVIEW},
    "decide": {REVIEW: (RETAINED, NOT_RETAINED)},
    "orient": {RETAINED: ORIENTED},
    # charter_signed from retained or oriented; meeting_attended during the follow-up.
    "record-follow-up": {RETAINED: FOLLOW_UP, ORIENTED: FOLLOW_UP, FOLLOW_UP: FOLLOW_UP},
    "withdraw": dict.fromkeys(OPEN, WITHDRAWN),  # « from any open status »
    "close": dict.fromkeys(OPEN - {DRAFT}, CLOSED),  # « any open status but draft »
    # « Commands that keep the status ».
    "update-draft": stays(frozenset({DRAFT})),
    "file-report": stays(frozenset({FOLLOW_UP})),
    # The phase closing concerns every open dossier (`calls extend`: « every open dossier follows »).
    "extend-deadline": stays(OPEN),
    "record-filing": stays(frozenset({ORIENTED, FOLLOW_UP})),
    "declare-interests": stays(frozenset({REVIEW})),
    "submit-review": stays(frozenset({REVIEW})),
    "escalate-complement": stays(frozenset({COMPLEMENT})),
    "escalate-review": stays(frozenset({REVIEW})),
    "flag-late-report": stays(frozenset({FOLLOW_UP})),
    # The holder sends pieces while the dossier is open (README is silent on the statuses).
    "attach-document": stays(OPEN),
    # « Auditors »: a clearance is « accepted on a closed dossier too »; a legal hold may concern any
    # dossier that exists; « audit shred » destroys the content of dossiers that « ended ».
    "grant-clearance": stays(EXISTING),
    "set-legal-hold": stays(EXISTING),
    "lift-legal-hold": stays(EXISTING),
    "destroy-content": stays(ENDED),
}

# The columns: one actor per role; a holder who does not own the dossier (« the holder | their own
# dossier »: any holder may start one, only its owner acts on it); a staff member who is not on the
# call's `staff:` list (« staff | the dossiers of their calls »: who may not read a dossier does not
# act on it either).
COLUMNS: dict[str, Actor] = {role.value: ACTORS[role] for role in Role} | {
    "other-holder": OTHER_HOLDER, "other-staff": Actor(role=Role.STAFF, name="sam"),
}
OUTSIDERS = frozenset({"other-holder", "other-staff"})
CREATES = "start-draft"  # the one command that does not act on an existing dossier


def expected(
    status: Status, name: str, column: str, who: Mapping[str, Role] = WHO
) -> type[DomainError] | tuple[Status, ...]:
    """The refusal the cell must raise, or the statuses its command variants lead to."""
    actor = COLUMNS[column]
    if actor.role is not who[name]:
        return NotAllowed
    if column in OUTSIDERS and status is not NEW and name != CREATES:
        return NotAllowed
    if status not in LEADS[name]:
        return InvalidTransition
    leads = LEADS[name][status]
    return leads if isinstance(leads, tuple) else (leads,)


# --- the most favourable situation for each command ------------------------------------------------

# After the phase closing (1 July 2028): every due instant of the reached dossiers has passed.
LATE = PHASE.closes_at + timedelta(days=1)
# Eleven years after that: the ten-year retention of every reached dossier has run out.
RETENTION_OVER = LATE.replace(year=LATE.year + 11)
SYSTEM_COMMANDS = ("expire-draft", "escalate-complement", "escalate-review", "flag-late-report")


def _prepared(status: Status, name: str) -> tuple[DossierState, datetime, str]:
    """The state and the instant to try `name` at `status`, and a key naming that situation."""
    state, now, key = reach(status), NOW, "as reached"
    if name in SYSTEM_COMMANDS:
        now, key = LATE, "due instants passed"
    if name == "destroy-content":
        now, key = RETENTION_OVER, "retention over"
    if status is REVIEW and name in ("submit-review", "decide"):
        state = _apply(state, DeclareInterests(conflict=False, statement="Aucun lien"), REVIEWER)
        key = "reviewer declared"
        if name == "decide":
            state = _apply(state, SubmitReview(scores=SCORES, opinion="Projet solide"), REVIEWER)
            key = "review in"
    if name == "lift-legal-hold" and status is not NEW:
        state, key = _apply(state, SetLegalHold(reason="Contentieux en cours"), STAFF), "under legal hold"
    return state, now, key


def _apply(state: DossierState, command: Command, actor: Actor) -> DossierState:
    return replay(decide(state, command, actor, NOW), state)


def _variants(name: str, state: DossierState) -> list[Command]:
    if name == "decide":
        return [TakeDecision(retained=True, reasons="Projet structurant"),
                TakeDecision(retained=False, reasons="Hors champ")]
    return [VALID[name](state)]


def _outcome(state: DossierState, command: Command, actor: Actor, now: datetime) -> type[DomainError] | Status:
    try:
        events = decide(state, command, actor, now)
    except DomainError as exc:
        assert FRENCH.search(exc.message), f"not a French message: {exc.message!r}"
        return type(exc)
    assert events and all(e.actor == actor for e in events)
    return replay(events, state).status


def _check_status(status: Status, who: Mapping[str, Role] = WHO) -> list[str]:
    """Every cell of `status`; the cells where the decider disagrees with the table."""
    wrong: list[str] = []
    offered: dict[tuple[str, str], list[str]] = {}
    for name in WHO:
        state, now, key = _prepared(status, name)
        for column, actor in COLUMNS.items():
            want = expected(status, name, column, who)
            outcomes = [_outcome(state, c, actor, now) for c in _variants(name, state)]
            got = tuple(outcomes) if isinstance(want, tuple) else outcomes[0]
            if got != want:
                wrong.append(f"{status} · {name} · {column}: expected {_shown(want)}, decide gives {_shown(got)}")
            if (key, column) not in offered:
                offered[(key, column)] = available_commands(state, actor, now)
            if (name in offered[(key, column)]) is not isinstance(want, tuple):
                wrong.append(f"{status} · {name} · {column} ({key}): available_commands "
                             f"{'offers' if isinstance(want, type) else 'does not offer'} it")
    return wrong


def _shown(outcome: object) -> str:
    if isinstance(outcome, tuple):
        return " / ".join(_shown(o) for o in outcome)
    return outcome.__name__ if isinstance(outcome, type) else f"accepted → {outcome}"


# --- the tests -------------------------------------------------------------------------------------


def test_the_table_names_every_command_of_the_rule_set() -> None:
    """The hand-written table covers the decider's commands, no more, no less (names only)."""
    from domain.decider import PERMISSIONS

    assert set(WHO) == set(LEADS) == set(PERMISSIONS) == set(VALID)
    assert all(VALID[name](DossierState()).type == name for name in VALID)
    assert {s for leads in LEADS.values() for s in leads} | ENDED == set(Status)


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_every_command_by_every_actor(status: Status) -> None:
    """27 commands × 8 actors in this status: decide and available_commands agree with the table."""
    wrong = _check_status(status)
    assert not wrong, f"{len(wrong)} cells differ from the README's table:\n" + "\n".join(wrong)


def test_a_wrong_table_is_caught() -> None:
    """The matrix can fail: a table that gave `acknowledge` to holders differs in both cells."""
    wrong = _check_status(SUBMITTED, {**WHO, "acknowledge": Role.HOLDER})
    assert wrong == [
        "submitted · acknowledge · holder: expected accepted → acknowledged, decide gives NotAllowed",
        "submitted · acknowledge · holder (as reached): available_commands does not offer it",
        "submitted · acknowledge · staff: expected NotAllowed, decide gives accepted → acknowledged",
        "submitted · acknowledge · staff (as reached): available_commands offers it",
    ]

