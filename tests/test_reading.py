"""Need-to-know: who may read what of a dossier (`domain.reading`), on states built by the decider.

The dossiers are driven through real commands on a copy of the PMCB call whose staff list names
amelie only (the YAML also names guichet: the copy proves the captured call is the one read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest

from domain import Actor, DossierState, Role, Status, decide, replay
from domain.access import SYSTEM
from domain.calls import Call
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    AttachDocument,
    Close,
    Command,
    DeclareComplete,
    DeclareInterests,
    DestroyContent,
    GrantClearance,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
)
from domain.errors import NotAllowed
from domain.reading import (
    Purpose,
    ReadDecision,
    Reading,
    Sight,
    event_shown,
    may_read,
    shown_actor,
    sight,
    summary,
    visible,
)
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
)

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
    assert decision.reason == "vous n’êtes pas chargé de mission de cet appel (amelie)"


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


# --- sight: what a reader sees and what the read log records ----------------------------------
# Expectations are written out here, not derived from `domain.reading`'s own tables.

P = Purpose
CORA_ONLY = PMCB.model_copy(update={"staff": ("amelie",), "committee": ("cora",)})
ZOE = Actor(role=Role.COMMITTEE, name="zoe")  # committee member, not of CORA_ONLY's committee
NOT_LISTED = "vous n’êtes pas chargé de mission de cet appel (amelie)"


def entries(seen: Sight) -> list[tuple[str, bool]]:
    return [(e.what, e.granted) for e in seen.logged]


# reader, allowed, content, reviews, log entries (what, granted) — `dossier show` of the reviewed dossier
SHOW_TABLE: list[tuple[str, Actor | None, bool, bool, bool, list[tuple[str, bool]]]] = [
    ("nobody", None, True, False, False, []),
    ("holder", HOLDER, True, True, False, [("content", True)]),
    ("other-holder", OTHER_HOLDER, False, False, False, [("content", False)]),
    ("staff", STAFF, True, True, True, [("content", True)]),
    ("staff-unlisted", BRUNO, False, False, False, [("content", False)]),
    ("reviewer-declared", REVIEWER, True, True, False, [("content", True)]),
    ("reviewer-recused", REMI, False, False, False, [("content", False)]),
    ("reviewer-unassigned", VICTOR, False, False, False, [("content", False)]),
    ("committee", COMMITTEE, True, False, True, [("reviews", True), ("summary", True)]),
    ("auditor-uncleared", AUDITOR, True, False, False, [("content", False)]),
    ("system", SYSTEM, False, False, False, [("content", False)]),
]


@pytest.mark.parametrize(("reader", "allowed", "content", "reviews", "logged"),
                         [row[1:] for row in SHOW_TABLE], ids=[row[0] for row in SHOW_TABLE])
def test_sight_show_table(reader: Actor | None, allowed: bool, content: bool, reviews: bool,
                          logged: list[tuple[str, bool]]) -> None:
    seen = sight(reviewed(), reader, P.SHOW)
    assert (seen.allowed, seen.content, seen.reviews) == (allowed, content, reviews)
    assert entries(seen) == logged
    assert seen.reason and FRENCH.search(seen.reason)
    if not allowed:
        assert seen.state is None
        return
    assert seen.state is not None
    assert (seen.state.content is not None and bool(seen.state.content.sections)) is content
    assert bool(seen.state.documents) is content
    assert bool(seen.state.reviews) is reviews


def test_sight_without_identity_is_metadata_only_and_masks_reviewers() -> None:
    seen = sight(reviewed(), None, P.SHOW)
    assert seen.logged == ()
    assert seen.state is not None
    assert seen.state.status is Status.UNDER_REVIEW and seen.state.id == reviewed().id
    assert (seen.state.content, seen.state.documents, seen.state.reviews) == (None, (), ())
    assert (seen.state.assignments, seen.state.recused) == ((), ())
    assert shown_actor(None, "reviewer:rita") == "reviewer:—"
    assert shown_actor(None, "staff:amelie") == "staff:amelie"
    assert shown_actor(None, "holder:acme") == "holder:acme"
    for purpose in (P.DOCUMENT, P.DECODE):
        refused = sight(reviewed(), None, purpose)
        assert (refused.allowed, refused.state, refused.logged) == (False, None, ())
    for purpose in (P.HISTORY, P.TIMELINE):
        assert sight(reviewed(), None, purpose).logged == ()
        assert event_shown(sight(reviewed(), None, purpose), None, "review_submitted") is False


@pytest.mark.parametrize(("reader", "masked"), [(None, True), (HOLDER, True), (STAFF, False), (COMMITTEE, False),
                                                (AUDITOR, False), (REVIEWER, False)], ids=str)
def test_reviewer_names_are_masked_for_the_holder_and_for_nobody(reader: Actor | None, masked: bool) -> None:
    assert shown_actor(reader, "reviewer:rita") == ("reviewer:—" if masked else "reviewer:rita")
    assert shown_actor(reader, "committee:cora") == "committee:cora"


def test_holder_never_sees_reviewers_in_the_state() -> None:
    seen = sight(reviewed(), HOLDER, P.SHOW).state
    assert seen is not None and (seen.assignments, seen.recused, seen.reviews) == ((), (), ())
    assert event_shown(sight(reviewed(), HOLDER, P.HISTORY), HOLDER, "reviewers_assigned") is False


@cache
def committee_reviewed() -> DossierState:
    """Reviewed like `reviewed`, on a call whose committee is cora alone."""
    steps: list[Step] = [
        *start(CORA_ONLY),
        (Acknowledge(), STAFF),
        (DeclareComplete(), STAFF),
        (AssignReviewers(reviewers=("rita",), due=REVIEW_DUE), STAFF),
        (DeclareInterests(conflict=False, statement="Aucun lien"), REVIEWER),
        (SubmitReview(scores=SCORES, opinion="Consortium solide"), REVIEWER),
    ]
    return drive(steps)


def test_committee_of_the_call_reads_reviews_and_summary_logged_as_granted() -> None:
    seen = sight(committee_reviewed(), COMMITTEE, P.SHOW)
    assert (seen.allowed, seen.content, seen.reviews) == (True, False, True)
    assert entries(seen) == [("reviews", True), ("summary", True)]
    assert all(e.granted for e in seen.logged)  # never "refused" while showing data
    assert seen.state is not None and seen.state.content is not None
    assert seen.state.content.sections == {} and seen.state.content.partners == ()
    assert [r.reviewer for r in seen.state.reviews] == ["rita"]
    assert seen.state.documents == ()


@pytest.mark.parametrize("purpose", list(Purpose), ids=str)
def test_committee_of_another_call_reads_nothing(purpose: Purpose) -> None:
    seen = sight(committee_reviewed(), ZOE, purpose)
    assert (seen.allowed, seen.content, seen.reviews, seen.state) == (False, False, False, None)
    assert seen.reason == "vous ne siégez pas au comité de cet appel (cora)"
    assert [e.granted for e in seen.logged] == [False]


def test_committee_of_another_call_may_not_decide() -> None:
    with pytest.raises(NotAllowed, match="ne siégez pas au comité de cet appel"):
        decide(committee_reviewed(), TakeDecision(retained=True, reasons="Solide"), ZOE, NOW)
    assert decide(committee_reviewed(), TakeDecision(retained=True, reasons="Solide"), COMMITTEE, NOW)


def test_call_without_committee_list_lets_any_member_read() -> None:
    assert sight(reviewed(), ZOE, P.SHOW).reviews is True


def test_committee_history_shows_review_bodies_only() -> None:
    seen = sight(reviewed(), COMMITTEE, P.HISTORY)
    assert entries(seen) == [("reviews", True)]
    assert event_shown(seen, COMMITTEE, "review_submitted") is True
    assert event_shown(seen, COMMITTEE, "draft_started") is False
    assert event_shown(reviewed(), COMMITTEE, "review_submitted") is True
    assert event_shown(reviewed(), COMMITTEE, "submitted") is False


# reader, allowed, logged — `dossier timeline`: metadata only, nothing logged unless refused
TIMELINE_TABLE: list[tuple[Actor, bool, list[tuple[str, bool]]]] = [
    (HOLDER, True, []), (STAFF, True, []), (AUDITOR, True, []), (COMMITTEE, True, []), (REVIEWER, True, []),
    (OTHER_HOLDER, False, [("history", False)]), (BRUNO, False, [("history", False)]),
    (VICTOR, False, [("history", False)]), (SYSTEM, False, [("history", False)]),
]


@pytest.mark.parametrize(("reader", "allowed", "logged"), TIMELINE_TABLE, ids=str)
def test_sight_timeline_table(reader: Actor, allowed: bool, logged: list[tuple[str, bool]]) -> None:
    seen = sight(reviewed(), reader, P.TIMELINE)
    assert (seen.allowed, seen.content, seen.reviews) == (allowed, False, False)
    assert entries(seen) == logged


# reader, granted — a document's bytes, and raw payloads through the codec server
DOCUMENT_DECODE_TABLE: list[tuple[Actor, bool, bool]] = [
    (HOLDER, True, False), (STAFF, True, True), (REVIEWER, True, False), (COMMITTEE, False, False),
    (AUDITOR, False, False), (OTHER_HOLDER, False, False), (BRUNO, False, False), (SYSTEM, False, False),
]


@pytest.mark.parametrize(("reader", "document", "decode"), DOCUMENT_DECODE_TABLE, ids=str)
def test_sight_document_and_decode_table(reader: Actor, document: bool, decode: bool) -> None:
    doc = sight(reviewed(), reader, P.DOCUMENT, what=f"document:{DOCUMENT.id}")
    assert (doc.allowed, entries(doc)) == (document, [(f"document:{DOCUMENT.id}", document)])
    raw = sight(reviewed(), reader, P.DECODE)
    assert (raw.allowed, entries(raw)) == (decode, [("content", decode)])


def test_decode_for_a_cleared_auditor_and_not_for_the_holder() -> None:
    assert sight(grant(reviewed()), AUDITOR, P.DECODE).allowed is True
    holder = sight(reviewed(), HOLDER, P.DECODE)
    assert not holder.allowed and "expertises comprises" in holder.reason


def test_auditor_reads_content_only_with_a_clearance() -> None:
    before = sight(reviewed(), AUDITOR, P.SHOW)
    assert (before.allowed, before.content, entries(before)) == (True, False, [("content", False)])
    after = sight(grant(reviewed()), AUDITOR, P.SHOW)
    assert (after.allowed, after.content, entries(after)) == (True, True, [("content", True)])


def test_staff_of_no_call_is_told_they_are_not_staff_of_this_call() -> None:
    seen = sight(reviewed(), BRUNO, P.SHOW)
    assert seen.reason == NOT_LISTED
    assert seen.logged[0].reason == NOT_LISTED


SHREDDED_AT = datetime(2037, 1, 5, 23, 30, tzinfo=UTC)  # 6 January in Paris
SHREDDED_DAY = date(2037, 1, 6)


@cache
def shredded() -> DossierState:
    state = grant(closed())
    return replay(decide(state, DestroyContent(), STAFF, SHREDDED_AT), state)


@pytest.mark.parametrize("reader", [HOLDER, STAFF, REVIEWER, COMMITTEE, AUDITOR], ids=str)
def test_nobody_reads_the_content_of_a_shredded_dossier(reader: Actor) -> None:
    state = shredded()
    assert state.content_destroyed_at == SHREDDED_AT
    show_ = sight(state, reader, P.SHOW)
    assert show_.allowed is True and show_.content is False and show_.reviews is False
    assert f"détruit le {SHREDDED_DAY}" in show_.reason
    assert entries(show_) == [("content", False)]
    assert show_.state is not None
    assert (show_.state.content, show_.state.documents, show_.state.reviews) == (None, (), ())
    assert show_.state.content_destroyed_at == SHREDDED_AT and show_.state.status is Status.CLOSED
    timeline = sight(state, reader, P.TIMELINE)
    assert timeline.allowed is True and timeline.logged == ()
    for purpose in (P.DOCUMENT, P.DECODE):
        refused = sight(state, reader, purpose)
        assert refused.allowed is False and refused.state is None
    assert f"détruit le {SHREDDED_DAY}" in sight(state, STAFF, P.DOCUMENT).reason


def test_shredded_dossier_still_refuses_those_who_never_could_read_it() -> None:
    seen = sight(shredded(), OTHER_HOLDER, P.TIMELINE)
    assert (seen.allowed, seen.reason) == (False, "ce dossier appartient à un autre porteur")


def test_as_of_read_today_rights_decide_past_state_is_shown() -> None:
    past, today = submitted(), grant(reviewed())
    seen = sight(past, AUDITOR, P.SHOW, rights=today, what="content@2026-03-02T10:00:00Z")
    assert seen.content is True and seen.state == past
    assert entries(seen) == [("content@2026-03-02T10:00:00Z", True)]
    assert sight(past, AUDITOR, P.SHOW).content is False  # the past state alone has no clearance
    committee = sight(declared(), COMMITTEE, P.SHOW, rights=reviewed(), what="content@2026-03-02T12:00:00Z")
    assert entries(committee) == [("reviews@2026-03-02T12:00:00Z", True), ("summary@2026-03-02T12:00:00Z", True)]
    assert committee.state is not None and committee.state.reviews == ()  # none yet at that instant
    gone = sight(past, STAFF, P.SHOW, rights=shredded())
    assert gone.content is False and "détruit" in gone.reason
