"""What-if: dossiers' journals, built with the real decider, replayed under changed calls.

The ressourceries call is a copy of deploy/calls/hdf-ressourceries.yaml with phase 1 closing on a
real date (before 1 March 2026): phase 2 then runs from 1 March to 5 June 2026 (Paris), and each
test moves its closing, or changes another field, in a copy of that text. PMCB is the shipped file
(phase "unique", rolling review, open 1 July 2025 to 1 July 2028). The journals are built at fixed
instants of 2026: none of these tests depends on today.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from amiflow.catalogue import CALLS_DIR, load_dossier, load_schemes
from domain.access import SYSTEM, Actor, Origin, Role
from domain.calendar import PARIS
from domain.calls import Call, parse_call
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    AttachDocument,
    Close,
    Command,
    DeclareComplete,
    DeclareInterests,
    EscalateComplement,
    EscalateReview,
    ExpireDraft,
    ExtendDeadline,
    FileReport,
    FlagLateReport,
    GrantClearance,
    Orient,
    ProvideComplement,
    RecordFiling,
    RecordFollowUp,
    RequestComplement,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
    UpdateDraft,
    Withdraw,
)
from domain.decider import decide, evolve
from domain.events import DraftStarted, Event, ReportFiled
from domain.state import DeadlineKind, DocumentRef, DossierState, FilingStatus, FollowUpKind, Status
from domain.whatif import WhatIf, command_of, whatif

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
RESSOURCERIES_TEXT = (CALLS_DIR / "hdf-ressourceries.yaml").read_text(encoding="utf-8").replace(
    "date: 2026-02-31", "date: 2026-03-01"
)
PMCB_TEXT = (CALLS_DIR / "hdf-pmcb-reemploi.yaml").read_text(encoding="utf-8")
RESS_CONTENT = load_dossier(EXAMPLES / "hdf-ressourceries.yaml").content  # a syndicat_dechets
PMCB_CONTENT = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml").content  # an entreprise
SCHEMES = load_schemes()

HOLDER = Actor(role=Role.HOLDER, name="acme")
STAFF = Actor(role=Role.STAFF, name="amelie")
RITA = Actor(role=Role.REVIEWER, name="rita")
REMI = Actor(role=Role.REVIEWER, name="remi")
COMMITTEE = Actor(role=Role.COMMITTEE, name="cora")
DOCUMENT = DocumentRef(id="doc-0123456789abcdef", name="budget.pdf", sha256="ab" * 32, size=1024,
                       media_type="application/pdf")

PHASE_2 = "Phase 2 — porteurs de ressourceries-recycleries"
PMCB_PHASE = "Phase unique — étude au fil de l’eau"
PMCB_CLOSES = datetime(2028, 7, 1, tzinfo=PARIS).isoformat(timespec="minutes")  # +02:00: summer time


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def variant(text: str, replacements: dict[str, str]) -> Call:
    """A call parsed from `text` with some of its lines rewritten (each must be found)."""
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return parse_call(yaml.load(text, Loader=yaml.BaseLoader), "copie")


RESSOURCERIES = variant(RESSOURCERIES_TEXT, {})
PMCB = variant(PMCB_TEXT, {})
EARLIER = variant(RESSOURCERIES_TEXT, {"date: 2026-06-05": "date: 2026-05-01"})
LATER = variant(RESSOURCERIES_TEXT, {"date: 2026-06-05": "date: 2026-06-30"})


def journal(steps: list[tuple[Command, Actor, datetime]]) -> list[Event]:
    """The events the real decider records for these commands, in order (each must be accepted)."""
    state, events = DossierState(), list[Event]()
    for command, actor, at in steps:
        for event in decide(state, command, actor, at):
            state = evolve(state, event)
            events.append(event)
    return events


def start(call: Call, reference: str, at: datetime) -> tuple[Command, Actor, datetime]:
    phase, content = ("unique", PMCB_CONTENT) if call.id == "hdf-pmcb-reemploi" else ("phase-2", RESS_CONTENT)
    return StartDraft(call=call, phase_id=phase, reference=reference, content=content), HOLDER, at


def same(events: list[Event], status: Status) -> WhatIf:
    ident = events[0].dossier_id if events and isinstance(events[0], DraftStarted) else ""
    return WhatIf(dossier_id=ident, differs=False, actual=status, would_be=status, at=None, event_type=None,
                  reason="identique")


# --- the ressourceries dossiers -------------------------------------------------------------

SUBMITTED_LATE = journal([start(RESSOURCERIES, "A", paris(2026, 3, 2, 10)), (Submit(), HOLDER, paris(2026, 5, 20, 10))])
SUBMITTED_EARLY = journal([start(RESSOURCERIES, "B", paris(2026, 3, 3, 10)), (Submit(), HOLDER, paris(2026, 4, 10))])
EXPIRED = journal([start(RESSOURCERIES, "C", paris(2026, 3, 4, 10)), (ExpireDraft(), SYSTEM, paris(2026, 6, 5))])
OPEN_DRAFT = journal([start(RESSOURCERIES, "D", paris(2026, 4, 20, 10))])
WITHDRAWN = journal([start(RESSOURCERIES, "E", paris(2026, 3, 5, 10)),
                     (Withdraw(reason="Projet abandonné"), HOLDER, paris(2026, 3, 20, 10))])
EXTENDED = journal([start(RESSOURCERIES, "F", paris(2026, 3, 6, 10)),
                    (ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=paris(2026, 6, 20)), STAFF,
                     paris(2026, 6, 1, 9)),
                    (Submit(), HOLDER, paris(2026, 6, 10, 10))])


# --- a PMCB dossier through nearly every event ----------------------------------------------

RETAINED = journal([
    start(PMCB, "G", paris(2026, 3, 2, 9)),
    (Submit(), HOLDER, paris(2026, 3, 2, 10)),
    (Acknowledge(), STAFF, paris(2026, 3, 2, 11)),
    (DeclareComplete(), STAFF, paris(2026, 3, 2, 12)),
    (AssignReviewers(reviewers=("rita",), due=paris(2026, 4, 30)), STAFF, paris(2026, 3, 2, 13)),
    (DeclareInterests(conflict=False, statement="Aucun lien"), RITA, paris(2026, 3, 2, 14)),
    (SubmitReview(scores={c.id: 4 for c in PMCB.criteria}, opinion="Consortium solide"), RITA, paris(2026, 3, 2, 15)),
    (TakeDecision(retained=True, reasons="Projet structurant"), COMMITTEE, paris(2026, 3, 2, 16)),
])

FULL = journal([
    start(PMCB, "H", paris(2026, 3, 2, 9)),
    (AttachDocument(document=DOCUMENT), HOLDER, paris(2026, 3, 2, 9, 30)),
    (UpdateDraft(content=PMCB_CONTENT.model_copy(update={"territory": "Lens"})), HOLDER, paris(2026, 3, 2, 9, 45)),
    (Submit(), HOLDER, paris(2026, 3, 2, 10)),
    (Acknowledge(), STAFF, paris(2026, 3, 2, 11)),
    (RequestComplement(pieces="Kbis", due=paris(2026, 3, 10)), STAFF, paris(2026, 3, 2, 11, 30)),
    (EscalateComplement(), SYSTEM, paris(2026, 3, 10)),
    (ProvideComplement(note="Kbis joint"), HOLDER, paris(2026, 3, 11, 10)),
    (DeclareComplete(), STAFF, paris(2026, 3, 11, 11)),
    (AssignReviewers(reviewers=("rita", "remi"), due=paris(2026, 3, 20)), STAFF, paris(2026, 3, 11, 12)),
    (DeclareInterests(conflict=True, statement="Associé du porteur"), REMI, paris(2026, 3, 11, 13)),
    (DeclareInterests(conflict=False, statement="Aucun lien"), RITA, paris(2026, 3, 11, 14)),
    (EscalateReview(), SYSTEM, paris(2026, 3, 20)),
    (ExtendDeadline(deadline=DeadlineKind.REVIEW_DUE, until=paris(2026, 3, 31)), STAFF, paris(2026, 3, 21, 9)),
    (SubmitReview(scores={c.id: 3 for c in PMCB.criteria}, opinion="Solide"), RITA, paris(2026, 3, 22, 9)),
    (TakeDecision(retained=True, reasons="Projet structurant"), COMMITTEE, paris(2026, 3, 23, 9)),
    (Orient(catalogue=SCHEMES), STAFF, paris(2026, 3, 24, 9)),
    (RecordFiling(scheme_id="fratri", outcome=FilingStatus.FILED), STAFF, paris(2026, 3, 25, 9)),
    (RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, paris(2026, 3, 26, 9)),
    (RecordFollowUp(kind=FollowUpKind.MEETING_ATTENDED, note="Comité technique"), STAFF, paris(2026, 4, 10, 9)),
    (GrantClearance(auditor="aude", reason="Contrôle FEDER"), STAFF, paris(2026, 4, 11, 9)),
    (FileReport(period=1, summary="Site aménagé"), HOLDER, paris(2026, 6, 20, 9)),
    (FlagLateReport(period=2), SYSTEM, paris(2026, 9, 26)),
    (Close(reason="Projet arrêté par le porteur"), STAFF, paris(2026, 10, 1, 9)),
])


def follow_up(charter_at: datetime, *more: tuple[Command, Actor, datetime]) -> list[Event]:
    """RETAINED, then the charter signed at `charter_at`, then `more`."""
    return journal([
        start(PMCB, "I", paris(2026, 3, 2, 9)), (Submit(), HOLDER, paris(2026, 3, 2, 10)),
        (Acknowledge(), STAFF, paris(2026, 3, 2, 11)), (DeclareComplete(), STAFF, paris(2026, 3, 2, 12)),
        (AssignReviewers(reviewers=("rita",), due=paris(2026, 4, 30)), STAFF, paris(2026, 3, 2, 13)),
        (DeclareInterests(conflict=False, statement="Aucun lien"), RITA, paris(2026, 3, 2, 14)),
        (SubmitReview(scores={c.id: 4 for c in PMCB.criteria}, opinion="Solide"), RITA, paris(2026, 3, 2, 15)),
        (TakeDecision(retained=True, reasons="Projet structurant"), COMMITTEE, paris(2026, 3, 2, 16)),
        (RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF, charter_at), *more,
    ])


# --- an unchanged call changes nothing ------------------------------------------------------


def test_the_journals_are_what_the_decider_records() -> None:
    assert [e.type for e in FULL] == [
        "draft_started", "document_attached", "draft_updated", "submitted", "acknowledged",
        "complement_requested", "complement_overdue", "complement_provided", "declared_complete",
        "reviewers_assigned", "reviewer_recused", "interests_declared", "review_overdue", "deadline_extended",
        "review_submitted", "decision_taken", "oriented", "filing_recorded", "follow_up_recorded",
        "follow_up_recorded", "clearance_granted", "report_filed", "report_late", "closed",
    ]
    assert all(command_of(e, PMCB) is not None for e in [*FULL, *SUBMITTED_LATE, *EXPIRED, *WITHDRAWN, *EXTENDED])
    assert [e.type for e in EXPIRED] == ["draft_started", "draft_expired"]
    assert [e.type for e in WITHDRAWN] == ["draft_started", "withdrawn"]


def test_unchanged_call_differs_for_no_dossier() -> None:
    now = paris(2026, 11, 1)
    dossiers = [
        (SUBMITTED_LATE, Status.SUBMITTED), (SUBMITTED_EARLY, Status.SUBMITTED), (EXPIRED, Status.EXPIRED),
        (OPEN_DRAFT, Status.DRAFT), (WITHDRAWN, Status.WITHDRAWN), (EXTENDED, Status.SUBMITTED),
    ]
    for events, status in dossiers:
        assert whatif(events, RESSOURCERIES, now) == same(events, status)
    assert whatif(RETAINED, PMCB, now) == same(RETAINED, Status.RETAINED)
    assert whatif(FULL, PMCB, now) == same(FULL, Status.CLOSED)
    assert whatif([], PMCB, now) == same([], Status.NEW)
    # Where each command came from (an operator's command line, a token) is recorded, not decided.
    traced = [e.model_copy(update={"origin": Origin(via="cli", os_user="julien")}) for e in FULL]
    assert whatif(traced, PMCB, now) == same(traced, Status.CLOSED)


def test_a_draft_whose_closing_is_past_in_both_is_not_a_difference() -> None:
    # The journal's own timer is due at `now` too (about to fire): both would expire it.
    assert whatif(OPEN_DRAFT, EARLIER, paris(2026, 6, 10)) == same(OPEN_DRAFT, Status.DRAFT)


def test_other_reminder_days_change_no_outcome() -> None:
    call = variant(RESSOURCERIES_TEXT, {"\nfollow_up:\n": "\nreminder_days: [14, 2]\nfollow_up:\n"})
    assert call.reminder_days == (14, 2)
    for events, status in [(OPEN_DRAFT, Status.DRAFT), (SUBMITTED_LATE, Status.SUBMITTED)]:
        assert whatif(events, call, paris(2026, 5, 25)) == same(events, status)


# --- the closing moved ----------------------------------------------------------------------


def test_earlier_closing_refuses_a_submission_made_after_it() -> None:
    assert whatif(SUBMITTED_LATE, EARLIER, paris(2026, 5, 25)) == WhatIf(
        dossier_id="hdf-ressourceries.a", differs=True, actual=Status.SUBMITTED, would_be=Status.DRAFT,
        at=utc(2026, 5, 20, 8), event_type="submitted",
        reason="« submit » du 2026-05-20T10:00+02:00 par holder:acme aurait été refusé : Le dépôt impossible : "
        f"« {PHASE_2} » est close depuis le 2026-05-01T00:00+02:00 (heure de Paris). "
        "Statut qu’aurait gardé le dossier : « brouillon ».",
    )


def test_earlier_closing_keeps_a_submission_made_before_it() -> None:
    assert whatif(SUBMITTED_EARLY, EARLIER, paris(2026, 5, 25)) == same(SUBMITTED_EARLY, Status.SUBMITTED)


def test_earlier_closing_would_have_expired_a_draft_still_open() -> None:
    # At 25 May the journal's draft waits for 5 June; under the changed call it closed on 1 May.
    assert whatif(OPEN_DRAFT, EARLIER, paris(2026, 5, 25)) == WhatIf(
        dossier_id="hdf-ressourceries.d", differs=True, actual=Status.DRAFT, would_be=Status.EXPIRED,
        at=utc(2026, 4, 30, 22), event_type="draft_expired",
        reason="Le brouillon, jamais déposé, aurait expiré à la clôture de la phase, le 2026-05-01T00:00+02:00 "
        "(heure de Paris).",
    )
    # Before the changed closing, nothing would differ yet.
    assert whatif(OPEN_DRAFT, EARLIER, paris(2026, 4, 30, 23)) == same(OPEN_DRAFT, Status.DRAFT)


def test_later_closing_the_draft_would_not_have_expired_then() -> None:
    refusal = (
        "« expire-draft » du 2026-06-05T00:00+02:00 par system:echeances aurait été refusé : "
        "Expiration du brouillon : l’échéance (2026-06-30T00:00+02:00) n’est pas atteinte."
    )
    assert whatif(EXPIRED, LATER, paris(2026, 6, 15)) == WhatIf(
        dossier_id="hdf-ressourceries.c", differs=True, actual=Status.EXPIRED, would_be=Status.DRAFT,
        at=utc(2026, 6, 4, 22), event_type="draft_expired", reason=refusal,
    )
    # Past the changed closing, the system would have expired it then.
    assert whatif(EXPIRED, LATER, paris(2026, 7, 10)) == WhatIf(
        dossier_id="hdf-ressourceries.c", differs=True, actual=Status.EXPIRED, would_be=Status.EXPIRED,
        at=utc(2026, 6, 4, 22), event_type="draft_expired",
        reason=f"{refusal} Le brouillon, jamais déposé, aurait expiré à la clôture de la phase, le "
        "2026-06-30T00:00+02:00 (heure de Paris).",
    )


def test_later_closing_makes_an_extension_superfluous_not_a_difference() -> None:
    assert whatif(EXTENDED, LATER, paris(2026, 7, 10)) == same(EXTENDED, Status.SUBMITTED)
    assert whatif(SUBMITTED_LATE, LATER, paris(2026, 7, 10)) == same(SUBMITTED_LATE, Status.SUBMITTED)


# --- eligibility, phases, review mode, follow-up --------------------------------------------


def test_a_holder_type_no_longer_eligible_is_refused_its_draft() -> None:
    call = variant(RESSOURCERIES_TEXT, {"      - syndicat_dechets\n": ""})
    assert whatif(SUBMITTED_EARLY, call, paris(2026, 5, 25)) == WhatIf(
        dossier_id="hdf-ressourceries.b", differs=True, actual=Status.SUBMITTED, would_be=Status.NEW,
        at=utc(2026, 3, 3, 9), event_type="draft_started",
        reason="« start-draft » du 2026-03-03T10:00+01:00 par holder:acme aurait été refusé : Un porteur de type "
        f"« syndicat de gestion des déchets » n’est pas éligible à « {PHASE_2} » (types admis : collectivité "
        "locale ou groupement, entreprise, acteur de l’économie sociale et solidaire, éco-organisme). "
        "Statut qu’aurait gardé le dossier : « inexistant ».",
    )


def test_a_phase_missing_from_the_changed_call_is_a_difference() -> None:
    call = variant(RESSOURCERIES_TEXT, {"id: phase-2\n": "id: phase-b\n"})
    assert whatif(OPEN_DRAFT, call, paris(2026, 5, 25)) == WhatIf(
        dossier_id="hdf-ressourceries.d", differs=True, actual=Status.DRAFT, would_be=Status.NEW,
        at=utc(2026, 4, 20, 8), event_type="draft_started",
        reason="« start-draft » du 2026-04-20T10:00+02:00 par holder:acme aurait été refusé : L’appel "
        "« hdf-ressourceries » n’a pas de phase « phase-2 » (phase-1, phase-b). "
        "Statut qu’aurait gardé le dossier : « inexistant ».",
    )


def test_review_after_closing_refuses_reviewers_assigned_before_it() -> None:
    call = variant(PMCB_TEXT, {"review_mode: fil_de_l_eau": "review_mode: apres_cloture"})
    assert whatif(RETAINED, call, paris(2026, 5, 1)) == WhatIf(
        dossier_id="hdf-pmcb-reemploi.g", differs=True, actual=Status.RETAINED, would_be=Status.COMPLETE,
        at=utc(2026, 3, 2, 12), event_type="reviewers_assigned",
        reason="« assign-reviewers » du 2026-03-02T13:00+01:00 par staff:amelie aurait été refusé : "
        f"« {PMCB_PHASE} » est étudiée après clôture : l’expertise commence après le {PMCB_CLOSES}. "
        "Statut qu’aurait gardé le dossier : « complet ».",
    )


def test_a_longer_report_period_counts_a_late_report_on_time() -> None:
    # Charter signed 10 March: the first report is due 10 June (3 months) or 10 September (6 months).
    events = follow_up(paris(2026, 3, 10, 9), (FileReport(period=1, summary="Site aménagé"), HOLDER,
                                                paris(2026, 6, 20, 10)))
    last = events[-1]
    assert isinstance(last, ReportFiled) and last.late is True  # late under the journal's own rule
    call = variant(PMCB_TEXT, {"report_period_months: 3": "report_period_months: 6"})
    assert whatif(events, call, paris(2026, 6, 25)) == WhatIf(
        dossier_id="hdf-pmcb-reemploi.i", differs=True, actual=Status.FOLLOW_UP, would_be=Status.FOLLOW_UP,
        at=utc(2026, 6, 20, 8), event_type="report_filed",
        reason="Le rapport de la période 1, reçu le 2026-06-20T10:00+02:00, aurait été compté à temps "
        "(échéance : 2026-09-10T00:00+02:00) et non en retard.",
    )


def test_a_longer_report_period_refuses_a_late_flag_raised_too_early() -> None:
    events = follow_up(paris(2026, 3, 10, 9), (FlagLateReport(period=1), SYSTEM, paris(2026, 6, 10)))
    call = variant(PMCB_TEXT, {"report_period_months: 3": "report_period_months: 6"})
    assert whatif(events, call, paris(2026, 6, 25)) == WhatIf(
        dossier_id="hdf-pmcb-reemploi.i", differs=True, actual=Status.FOLLOW_UP, would_be=Status.FOLLOW_UP,
        at=utc(2026, 6, 9, 22), event_type="report_late",
        reason="« flag-late-report » du 2026-06-10T00:00+02:00 par system:echeances aurait été refusé : "
        "Retard du rapport : l’échéance (2026-09-10T00:00+02:00) n’est pas atteinte.",
    )


def test_a_shorter_report_period_would_have_flagged_a_report_late() -> None:
    events = follow_up(paris(2026, 3, 10, 9))
    call = variant(PMCB_TEXT, {"report_period_months: 3": "report_period_months: 1"})
    assert whatif(events, call, paris(2026, 5, 1)) == WhatIf(
        dossier_id="hdf-pmcb-reemploi.i", differs=True, actual=Status.FOLLOW_UP, would_be=Status.FOLLOW_UP,
        at=utc(2026, 4, 9, 22), event_type="report_late",
        reason="Le rapport de la période 1, dû le 2026-04-10T00:00+02:00, aurait été signalé en retard.",
    )
    assert whatif(events, PMCB, paris(2026, 5, 1)) == same(events, Status.FOLLOW_UP)
