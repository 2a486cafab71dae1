"""Need-to-know: who may read what of a dossier (`domain.reading`), on states built by the decider.

The dossiers are driven through real commands on a copy of the PMCB call whose staff list names
amelie only (the YAML also names guichet: the copy proves the captured call is the one read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache

import pytest

from domain import Actor, DossierState, Role, Status, decide, replay
from domain.access import SYSTEM
from domain.calls import Call
from domain.dossier import (
    Acknowledge,
    AssignReviewers,
    AttachDocument,
    Close,
    Command,
    DeclareComplete,
    DeclareInterests,
    GrantClearance,
    StartDraft,
    Submit,
    SubmitReview,
)  # fmt: skip
from domain.errors import NotAllowed
from domain.reading import ReadDecision, Reading, may_read, require_read, summary, visible
from tests.test_decider_transitions import (
    AUDITOR,
    COMMITTEE,
    CONTENT,
    DOCUMENT,
    FRENCH,
    HOLDER,
    NOW,
    OTHER_HOLDER,
    PMCB,
    PMCB_EXAMPLE,
    REVIEW_DUE,
    REVIEWER,
    SCORES,
    STAFF,
    T0,
)  # fmt: skip

RESTRICTED = PMCB.model_copy(update={"staff": ("amelie",)})
UNRESTRICTED = PMCB.model_copy(update={"staff": ()})

GUICHET = Actor(role=Role.STAFF, name="guichet")  # staff of the PMCB YAML, not of RESTRICTED
BRUNO = Actor(role=Role.STAFF, name="bruno")  # staff of no call
REMI = Actor(role=Role.REVIEWER, name="remi")  # assigned with rita, declares a conflict
VICTOR = Actor(role=Role.REVIEWER, name="victor")  # never assigned
ODILE = Actor(role=Role.AUDITOR, name="odile")  # an auditor nobody clears

ALL = tuple(Reading)

Step = tuple[Command, Actor]


def drive(steps: list[Step], state: DossierState | None = None) -> DossierState:
    """Decide and fold each step, one hour apart from T0 (before NOW, inside the PMCB phase)."""
    current = state if state is not None else DossierState()
    for command, actor in steps:
        events = decide(current, command, actor, T0 + timedelta(hours=current.version))
        assert events, f"{command.type} produced no event"
        current = replay(events, current)
    return current


def start(call: Call) -> list[Step]:
    return [
        (StartDraft(call=call, phase_id="unique", reference=PMCB_EXAMPLE.reference, content=CONTENT), HOLDER),
        (AttachDocument(document=DOCUMENT), HOLDER),
        (Submit(), HOLDER),
    ]


CALLS: dict[str, Call] = {"restricted": RESTRICTED, "unrestricted": UNRESTRICTED, "yaml": PMCB}


@cache
def submitted(call: str = "restricted") -> DossierState:
    """acme's dossier, with a document, submitted on one of CALLS (a Call is not hashable)."""
    return drive(start(CALLS[call]))


@cache
def assigned() -> DossierState:
    """Under review: rita and remi assigned, neither has declared interests yet."""
    steps: list[Step] = [
        (Acknowledge(), STAFF),
        (DeclareComplete(), STAFF),
        (AssignReviewers(reviewers=("rita", "remi"), due=REVIEW_DUE), STAFF),
    ]
    return drive(steps, submitted())


@cache
def declared() -> DossierState:
    """rita declared no conflict; remi declared one (recused)."""
    steps: list[Step] = [
        (DeclareInterests(conflict=False, statement="Aucun lien avec le porteur"), REVIEWER),
        (DeclareInterests(conflict=True, statement="Administrateur du bailleur partenaire"), REMI),
    ]
    return drive(steps, assigned())


@cache
def reviewed() -> DossierState:
    """rita's review is in: the dossier has content, a document and a review."""
    return drive([(SubmitReview(scores=SCORES, opinion="Consortium solide"), REVIEWER)], declared())


@cache
def closed() -> DossierState:
    return drive([(Close(reason="Projet hors du champ de l’AMI"), STAFF)], reviewed())


def grant(state: DossierState, auditor: str = "aude") -> DossierState:
    return drive([(GrantClearance(auditor=auditor, reason="Contrôle FEDER 2027"), STAFF)], state)


def granted(state: DossierState, actor: Actor) -> dict[Reading, bool]:
    return {what: may_read(state, actor, what).granted for what in ALL}


def test_states_are_what_the_tests_assume() -> None:
    state = reviewed()
    assert state.call is not None and state.call.staff == ("amelie",)
    assert PMCB.staff == ("amelie", "guichet")  # so refusing guichet proves the copy is read
    assert state.holder == "acme" and state.status is Status.UNDER_REVIEW
    assert [a.reviewer for a in state.assignments] == ["rita"] and state.recused == ("remi",)
    assert [r.reviewer for r in state.reviews] == ["rita"]
    assert state.documents == (DOCUMENT,) and state.clearances == ()
    assert state.content is not None and state.content.sections and state.content.partners
    assert [(a.reviewer, a.declared) for a in assigned().assignments] == [("rita", False), ("remi", False)]


# --- the matrix: every actor, every reading, on the reviewed dossier ------------------------

C, R, S, H = Reading.CONTENT, Reading.REVIEWS, Reading.SUMMARY, Reading.HISTORY

MATRIX: list[tuple[str, Actor, set[Reading]]] = [
    ("holder", HOLDER, {C, S, H}),
    ("other-holder", OTHER_HOLDER, set()),
    ("staff-listed", STAFF, {C, R, S, H}),
    ("staff-of-yaml-not-of-copy", GUICHET, set()),
    ("staff-unlisted", BRUNO, set()),
    ("reviewer-declared", REVIEWER, {C, S, H}),
    ("reviewer-recused", REMI, set()),
    ("reviewer-unassigned", VICTOR, set()),
    ("committee", COMMITTEE, {R, S, H}),
    ("auditor-uncleared", AUDITOR, {H}),
    ("system", SYSTEM, set()),
]


@pytest.mark.parametrize(("actor", "readable"), [(a, r) for _, a, r in MATRIX], ids=[n for n, _, _ in MATRIX])
def test_who_reads_what_of_a_reviewed_dossier(actor: Actor, readable: set[Reading]) -> None:
    assert granted(reviewed(), actor) == {what: what in readable for what in ALL}


# --- holder ---------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ALL, ids=str)
def test_holder_reads_own_dossier_but_not_reviews(what: Reading) -> None:
    decision = may_read(reviewed(), HOLDER, what)
    assert decision.granted is (what is not Reading.REVIEWS)
    expected = "les expertises ne sont pas communiquées au porteur" if what is Reading.REVIEWS else "porteur du dossier"
    assert decision.reason == expected


@pytest.mark.parametrize("what", ALL, ids=str)
def test_another_holder_reads_nothing(what: Reading) -> None:
    decision = may_read(reviewed(), OTHER_HOLDER, what)
    assert decision == ReadDecision(granted=False, reason="ce dossier appartient à un autre porteur")


# --- staff ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [submitted, reviewed, closed], ids=lambda f: f.__name__)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_staff_of_the_call_reads_everything(state: Callable[[], DossierState], what: Reading) -> None:
    decision = may_read(state(), STAFF, what)
    assert decision.granted is True
    assert decision.reason == "chargé de mission de l’appel"


@pytest.mark.parametrize("actor", [GUICHET, BRUNO], ids=lambda a: a.name)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_staff_not_listed_is_refused(actor: Actor, what: Reading) -> None:
    decision = may_read(reviewed(), actor, what)
    assert decision.granted is False
    assert decision.reason == "chargé de mission d’un autre appel"


@pytest.mark.parametrize("actor", [STAFF, GUICHET, BRUNO], ids=lambda a: a.name)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_call_without_staff_list_lets_any_staff_read(actor: Actor, what: Reading) -> None:
    state = submitted("unrestricted")
    assert state.call is not None and state.call.staff == ()
    assert may_read(state, actor, what).granted is True


def test_staff_list_is_the_one_captured_with_the_dossier() -> None:
    # The YAML's own list (amelie, guichet) lets guichet read; the restricted copy does not.
    assert may_read(submitted("yaml"), GUICHET, Reading.CONTENT).granted is True
    assert may_read(submitted("restricted"), GUICHET, Reading.CONTENT).granted is False


# --- reviewers ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [submitted, assigned, declared, reviewed], ids=lambda f: f.__name__)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_reviewer_not_assigned_is_refused(state: Callable[[], DossierState], what: Reading) -> None:
    decision = may_read(state(), VICTOR, what)
    assert decision == ReadDecision(granted=False, reason="expert non affecté à ce dossier")


@pytest.mark.parametrize("actor", [REVIEWER, REMI], ids=lambda a: a.name)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_reviewer_assigned_but_undeclared_is_refused(actor: Actor, what: Reading) -> None:
    state = assigned()
    assignment = state.assignment(actor.name)
    assert assignment is not None and assignment.declared is False
    decision = may_read(state, actor, what)
    assert decision.granted is False
    assert "conflit d’intérêts" in decision.reason and "pas encore déclarée" in decision.reason


@pytest.mark.parametrize(("what", "expected"), [(C, True), (S, True), (H, True), (R, False)], ids=str)
def test_reviewer_declared_without_conflict_reads_content_not_reviews(what: Reading, expected: bool) -> None:
    for state in (declared(), reviewed()):
        decision = may_read(state, REVIEWER, what)
        assert decision.granted is expected
        if expected:
            assert decision.reason == "expert affecté, sans conflit d’intérêts déclaré"
        else:
            assert decision.reason == "un expert ne lit pas les expertises des autres"


@pytest.mark.parametrize("what", ALL, ids=str)
def test_reviewer_who_declared_a_conflict_is_refused(what: Reading) -> None:
    state = declared()
    assert state.assignment("remi") is None and "remi" in state.recused
    assert may_read(assigned(), REMI, what).granted is False  # refused before, too
    decision = may_read(state, REMI, what)
    assert decision.granted is False
    assert decision.reason == "expert non affecté à ce dossier"


# --- committee ------------------------------------------------------------------------------


@pytest.mark.parametrize(("what", "expected"), [(R, True), (S, True), (H, True), (C, False)], ids=str)
def test_committee_reads_reviews_and_summary_not_content(what: Reading, expected: bool) -> None:
    decision = may_read(reviewed(), COMMITTEE, what)
    assert decision.granted is expected
    if expected:
        assert decision.reason == "comité de décision"
    else:
        assert "pas le dossier complet" in decision.reason


# --- auditors -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [submitted, reviewed, closed], ids=lambda f: f.__name__)
def test_auditor_reads_history_and_content_only_once_cleared(state: Callable[[], DossierState]) -> None:
    before = state()
    assert granted(before, AUDITOR) == {C: False, R: False, S: False, H: True}
    refusal = may_read(before, AUDITOR, Reading.CONTENT)
    assert "sans habilitation" in refusal.reason
    assert may_read(before, AUDITOR, Reading.HISTORY).reason == "auditeur : historique et métadonnées"

    after = grant(before)
    assert after.clearances == ("aude",)
    assert after.status is before.status
    assert granted(after, AUDITOR) == {C: True, R: True, S: True, H: True}
    assert may_read(after, AUDITOR, Reading.CONTENT).reason == "auditeur habilité par un chargé de mission"
    # The clearance is personal: another auditor is still refused the content.
    assert granted(after, ODILE) == {C: False, R: False, S: False, H: True}


def test_clearance_is_accepted_on_a_closed_dossier_which_stays_closed() -> None:
    state = closed()
    assert state.status is Status.CLOSED
    events = decide(state, GrantClearance(auditor="aude", reason="Contrôle FEDER 2027"), STAFF, NOW)
    assert [e.type for e in events] == ["clearance_granted"]
    after = replay(events, state)
    assert after.status is Status.CLOSED
    assert after.closed_reason == state.closed_reason and after.closed_at == state.closed_at
    assert may_read(state, AUDITOR, Reading.CONTENT).granted is False
    assert may_read(after, AUDITOR, Reading.CONTENT).granted is True


# --- the system -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", [submitted, reviewed, closed], ids=lambda f: f.__name__)
@pytest.mark.parametrize("what", ALL, ids=str)
def test_system_actor_reads_nothing(state: Callable[[], DossierState], what: Reading) -> None:
    decision = may_read(state(), SYSTEM, what)
    assert decision == ReadDecision(granted=False, reason="les échéances automatiques ne lisent pas les dossiers")


# --- visible --------------------------------------------------------------------------------


def test_committee_sees_the_summary_without_sections_or_partners() -> None:
    state = reviewed()
    seen = visible(state, COMMITTEE)
    assert state.content is not None and seen.content is not None
    assert seen.content.sections == {} and seen.content.partners == ()
    assert seen.content.holder_name == state.content.holder_name == CONTENT.holder_name
    assert seen.content.region == state.content.region
    assert seen.content.financing_need == state.content.financing_need
    assert seen.content == summary(state)
    assert seen.documents == ()
    assert seen.reviews == state.reviews and seen.reviews  # the committee reads the reviews
    assert (seen.id, seen.status, seen.version) == (state.id, state.status, state.version)
    # The original is untouched.
    assert state.content.sections and state.content.partners and state.documents


def test_uncleared_auditor_sees_metadata_only() -> None:
    state = reviewed()
    seen = visible(state, AUDITOR)
    assert seen.content is None
    assert seen.documents == ()
    assert seen.reviews == ()
    assert (seen.id, seen.status, seen.version, seen.holder) == (state.id, state.status, state.version, "acme")
    assert visible(grant(state), AUDITOR) == grant(state)  # cleared: sees it all


def test_holder_sees_own_dossier_without_reviews() -> None:
    state = reviewed()
    seen = visible(state, HOLDER)
    assert seen.reviews == () and state.reviews
    assert seen.content == state.content
    assert seen.documents == state.documents == (DOCUMENT,)


@pytest.mark.parametrize("state", [submitted, assigned, reviewed, closed], ids=lambda f: f.__name__)
def test_assigned_staff_sees_the_state_unchanged(state: Callable[[], DossierState]) -> None:
    s = state()
    assert visible(s, STAFF) == s


@pytest.mark.parametrize("actor", [OTHER_HOLDER, BRUNO, VICTOR, SYSTEM], ids=str)
def test_those_refused_everything_see_no_content_and_no_reviews(actor: Actor) -> None:
    seen = visible(reviewed(), actor)
    assert (seen.content, seen.documents, seen.reviews) == (None, (), ())


# --- require_read ---------------------------------------------------------------------------


def test_require_read_returns_the_grant() -> None:
    decision = require_read(reviewed(), STAFF, Reading.CONTENT)
    assert decision == ReadDecision(granted=True, reason="chargé de mission de l’appel")


@pytest.mark.parametrize(
    ("actor", "what"),
    [(OTHER_HOLDER, C), (HOLDER, R), (BRUNO, H), (VICTOR, C), (COMMITTEE, C), (AUDITOR, C), (SYSTEM, H)],
    ids=str,
)
def test_require_read_raises_with_dossier_id_and_reason(actor: Actor, what: Reading) -> None:
    state = reviewed()
    reason = may_read(state, actor, what).reason
    with pytest.raises(NotAllowed) as info:
        require_read(state, actor, what)
    message = info.value.message
    assert state.id and state.id in message
    assert reason in message
    assert what.label in message
    assert str(info.value) == message


def test_require_read_names_the_missing_declaration() -> None:
    with pytest.raises(NotAllowed, match="pas encore déclarée"):
        require_read(assigned(), REVIEWER, Reading.CONTENT)


# --- reasons --------------------------------------------------------------------------------

STATES = (submitted, assigned, declared, reviewed, closed)
ACTORS = (HOLDER, OTHER_HOLDER, STAFF, GUICHET, BRUNO, REVIEWER, REMI, VICTOR, COMMITTEE, AUDITOR, ODILE, SYSTEM)


def test_every_reason_is_non_empty_french() -> None:
    reasons = {
        may_read(state, actor, what).reason
        for state in [*(f() for f in STATES), grant(reviewed()), submitted("unrestricted"), DossierState()]
        for actor in ACTORS
        for what in ALL
    }
    assert len(reasons) == 15  # every branch of may_read, each with its own reason
    for reason in reasons:
        assert reason.strip() == reason and reason, repr(reason)
        assert FRENCH.search(reason), f"not a French reason: {reason!r}"


def test_staff_not_listed_may_not_act_either() -> None:
    """Acting follows reading: a staff member outside the call's list can neither move the dossier
    nor let an auditor read what they may not read themselves."""
    state = reviewed()
    for command in (GrantClearance(auditor="aude", reason="Contrôle"), Close(reason="Hors champ")):
        with pytest.raises(NotAllowed, match="pas chargé de mission de cet appel"):
            decide(state, command, BRUNO, NOW)
    assert decide(state, GrantClearance(auditor="aude", reason="Contrôle"), STAFF, NOW)


def test_reviewers_stay_anonymous_to_the_holder() -> None:
    seen = visible(reviewed(), HOLDER)
    assert seen.assignments == () and seen.recused == () and seen.reviews == ()
