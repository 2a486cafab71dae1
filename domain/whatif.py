"""What-if, for auditors: replay a dossier's journal under a changed call definition (another
closing, another review mode, other eligible holder types, other criteria or sections, another
follow-up rule…) and say whether, and where, the changed rules would have led elsewhere.

Method. The journal is walked in order. Each event's command is rebuilt from what the event
records (`draft_started` becomes a `StartDraft` carrying the changed call in place of the snapshot,
with the same phase id; `oriented` an `Orient` whose catalogue is the schemes the event recorded;
`interests_declared` / `reviewer_recused` a `DeclareInterests` without / with conflict…) and
decided again by the real decider, with the event's actor at the event's instant, against the
state the changed rules have built so far. The events the decider produces, not the journal's,
are folded. After the last event, the deadlines of the changed call are checked at `now`.

A divergence is, in the order met:
- a person's command the changed rules refuse (the first one ends the replay: `would_be` is the
  status the dossier had then, `reason` quotes the decider's refusal);
- a system event (`draft_expired`, `complement_overdue`, `review_overdue`, `report_late`) the
  changed rules refuse at that instant: it is skipped and the replay goes on, since the system would
  have acted at its own instant (see the deadline check);
- an accepted command whose event would have been recorded differently (a report counted on time
  rather than late under another follow-up rule…);
- after the last event, a consequence the changed call makes due at `now` (a draft whose closing is
  past: it would be expired; a report past its changed due date: flagged late) that is not also due
  under the journal's own rules (a timer about to fire is not a difference).

`differs` says the changed rules would not have produced this journal; the status may be the same
(a report counted late or on time). `at` and `event_type` name the first divergence: the journal's
event, or for a consequence the journal lacks, its due instant and the event it would have recorded.

Limits: what-if cannot know what people would have done differently.
- Commands are replayed as they were given: same people, same instants, same content. A holder who
  submitted after an earlier closing is refused; whether they would have submitted in time is
  unknown, and so is what follows a refusal of a person's command: the replay stops there. A draft
  whose submission is refused stays "brouillon" in `would_be`, although the system would then have
  expired it at the closing.
- The changed call's deadlines are checked once, after the last event, at `now`, not between events:
  a draft withdrawn after the changed closing reads as withdrawn, not as expired.
- A phase-closing extension that the changed closing already makes superfluous (the changed closing
  is at or after it) is skipped without counting as a difference; staff would not have needed it.
- Reminders are notifications, not events: changing `reminder_days` never changes the journal, and
  what-if says "identique" (the notification outbox would differ; the journal does not show it).
- Orientation is re-decided on the schemes the event recorded (the catalogue of the day is not in
  the journal); the call does not weigh on it.
- Dossier ids are not compared: a changed call under another id gives the same answer.
- An event whose command cannot be rebuilt (the decider never records one) is folded as it is. A
  journal that breaks the lifecycle raises `ValueError`, as `replay` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError

from domain.access import SYSTEM, Role
from domain.calendar import require_aware, show, to_utc
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
from domain.deadlines import Deadline, consequence, deadlines, report_due
from domain.decider import decide, evolve, replay
from domain.errors import DomainError, InvalidCommand
from domain.events import (
    ClearanceGranted,
    ComplementOverdue,
    ComplementProvided,
    ComplementRequested,
    ContentDestroyed,
    DeadlineExtended,
    DecisionTaken,
    DocumentAttached,
    DossierAcknowledged,
    DossierClosed,
    DossierDeclaredComplete,
    DossierOriented,
    DossierSubmitted,
    DossierWithdrawn,
    DraftExpired,
    DraftStarted,
    DraftUpdated,
    Event,
    FilingRecorded,
    FollowUpRecorded,
    InterestsDeclared,
    LegalHoldLifted,
    LegalHoldSet,
    ReportFiled,
    ReportLate,
    ReviewerRecused,
    ReviewersAssigned,
    ReviewOverdue,
    ReviewSubmitted,
)
from domain.record import Record
from domain.state import DeadlineKind, DossierState, Status

IDENTICAL = "identique"
_SHOWN = 3  # divergences quoted in `reason`; the others are counted


class WhatIf(Record):
    """One dossier under a changed call: whether, where and how its journal would differ."""

    dossier_id: str
    differs: bool
    actual: Status  # the status the journal's events lead to
    would_be: Status  # the status under the changed call
    at: datetime | None  # instant of the first divergence (UTC)
    event_type: str | None  # the type of that event
    reason: str  # French, for a clerk: what would have happened instead, or "identique"


class _Divergence(Record):
    at: datetime
    event_type: str
    text: str


def command_of(event: Event, call: Call) -> Command | None:
    """The command that produced `event`, rebuilt from what the event records, with `call` in place
    of a draft's snapshot; None when it cannot be rebuilt."""
    e = event
    try:
        match e:
            case DraftStarted():
                return StartDraft(call=call, phase_id=e.phase_id, reference=e.reference, content=e.content)
            case DraftUpdated():
                return UpdateDraft(content=e.content)
            case DossierSubmitted():
                return Submit()
            case DossierWithdrawn():
                return Withdraw(reason=e.reason)
            case ComplementRequested():
                return RequestComplement(pieces=e.pieces, due=e.due)
            case ComplementProvided():
                return ProvideComplement(note=e.note, content=e.content)
            case DossierAcknowledged():
                return Acknowledge()
            case DossierDeclaredComplete():
                return DeclareComplete()
            case ReviewersAssigned():
                return AssignReviewers(reviewers=e.reviewers, due=e.due)
            case InterestsDeclared():
                return DeclareInterests(conflict=False, statement=e.statement)
            case ReviewerRecused():
                return DeclareInterests(conflict=True, statement=e.statement)
            case ReviewSubmitted():
                return SubmitReview(scores=e.scores, opinion=e.opinion)
            case DecisionTaken():
                return TakeDecision(retained=e.retained, reasons=e.reasons)
            case DossierOriented():
                return Orient(catalogue=e.schemes)
            case FilingRecorded():
                return RecordFiling(scheme_id=e.scheme_id, outcome=e.outcome, amount_eur=e.amount_eur,
                                    note=e.note)
            case FollowUpRecorded():
                return RecordFollowUp(kind=e.kind, note=e.note)
            case DraftExpired():
                return ExpireDraft()
            case ComplementOverdue():
                return EscalateComplement()
            case ReviewOverdue():
                return EscalateReview()
            case ReportFiled():
                return FileReport(period=e.period, summary=e.summary)
            case ReportLate():
                return FlagLateReport(period=e.period)
            case DossierClosed():
                return Close(reason=e.reason)
            case DeadlineExtended():
                # Only three kinds of deadline can be extended: another kind leaves it unbuilt.
                return ExtendDeadline.model_validate({"deadline": e.deadline, "until": e.until})
            case DocumentAttached():
                return AttachDocument(document=e.document)
            case ClearanceGranted():
                return GrantClearance(auditor=e.auditor, reason=e.reason)
            case LegalHoldSet():
                return SetLegalHold(reason=e.reason)
            case LegalHoldLifted():
                return LiftLegalHold(reason=e.reason)
            case ContentDestroyed():
                return DestroyContent(reason=e.reason)
    except ValidationError:
        return None
    return None  # pragma: no cover - every event type is matched above


def whatif(events: Sequence[Event], call: Call, now: datetime) -> WhatIf:
    """The dossier whose journal is `events`, replayed under `call` (a changed definition of its
    call), with the deadlines of `call` checked at `now`. See the module's docstring for the method
    and its limits.

    Raises:
        ValueError: `now` is naive, or the journal breaks the lifecycle.
    """
    now = to_utc(require_aware(now))
    journal = DossierState()
    state = DossierState()
    found: list[_Divergence] = []
    stopped = False
    for event in events:
        journal = evolve(journal, event)
        if stopped:
            continue
        command = command_of(event, call)
        if command is None:
            state = evolve(state, event)
            continue
        try:
            produced = decide(state, command, event.actor, event.at)
        except DomainError as exc:
            if isinstance(exc, InvalidCommand) and _superfluous(state, command):
                continue
            text = f"« {command.type} » du {show(event.at)} par {event.actor} aurait été refusé : {exc.message}"
            if event.actor.role is Role.SYSTEM:
                # The system acts at the instants of the rules: the deadline check below says when.
                found.append(_Divergence(at=event.at, event_type=event.type, text=text))
                continue
            text += f" Statut qu’aurait gardé le dossier : « {state.status.label} »."
            found.append(_Divergence(at=event.at, event_type=event.type, text=text))
            stopped = True
            continue
        other = _difference(event, produced, state, call)
        if other is not None:
            found.append(_Divergence(at=event.at, event_type=event.type, text=other))
        state = replay(produced, state)
    if not stopped:
        state = _fire_deadlines(state, journal, call, now, found)
    return WhatIf(
        dossier_id=journal.id,
        differs=bool(found),
        actual=journal.status,
        would_be=state.status,
        at=to_utc(found[0].at) if found else None,
        event_type=found[0].event_type if found else None,
        reason=_reason(found),
    )


def _superfluous(state: DossierState, command: Command) -> bool:
    """A phase-closing extension to an instant the changed closing already reaches."""
    return (
        isinstance(command, ExtendDeadline)
        and command.deadline is DeadlineKind.PHASE_CLOSING
        and state.phase_closes_at is not None
        and command.until <= state.phase_closes_at
    )


def _difference(event: Event, produced: list[Event], before: DossierState, call: Call) -> str | None:
    """How the accepted command's events differ from the journal's, in French; None if they do not."""
    # Where the command came from is the journal's record, not the rules' outcome.
    produced = [p.model_copy(update={"origin": event.origin}) for p in produced]
    if len(produced) == 1 and isinstance(event, DraftStarted) and isinstance(produced[0], DraftStarted):
        # The snapshot is the changed call by construction, and the id follows the call's id.
        produced = [produced[0].model_copy(update={"call": event.call, "dossier_id": event.dossier_id})]
    if produced == [event]:
        return None
    new = produced[0] if len(produced) == 1 else None
    if isinstance(event, ReportFiled) and isinstance(new, ReportFiled) and before.follow_up_started_at is not None:
        due = report_due(call, before.follow_up_started_at, event.period)
        counted, instead = ("en retard", "à temps") if new.late else ("à temps", "en retard")
        return (
            f"Le rapport de la période {event.period}, reçu le {show(event.at)}, aurait été compté {counted} "
            f"(échéance : {show(due)}) et non {instead}."
        )
    if isinstance(event, DossierOriented) and isinstance(new, DossierOriented):
        names = ", ".join(s.name for s in new.schemes)
        recorded = ", ".join(s.name for s in event.schemes)
        return f"L’orientation du {show(event.at)} aurait recommandé : {names} (au lieu de : {recorded})."
    kinds = ", ".join(f"« {e.type} »" for e in produced)
    return f"« {event.type} » du {show(event.at)} aurait été enregistré autrement ({kinds})."


def _pending(state: DossierState, call: Call | None, now: datetime) -> list[Deadline]:
    """The deadlines due at `now` whose consequence (an event) is not recorded yet."""
    if call is None:
        return []
    return [d for d in deadlines(state, call, now) if d.overdue and consequence(d) is not None]


def _fire_deadlines(
    state: DossierState, journal: DossierState, call: Call, now: datetime, found: list[_Divergence]
) -> DossierState:
    """Run the system's consequences that `call` makes due by `now` and the journal's rules do not."""
    due_anyway = {(d.kind, d.period) for d in _pending(journal, journal.call, now)}
    while True:
        todo = [d for d in _pending(state, call, now) if (d.kind, d.period) not in due_anyway]
        if not todo:
            return state
        deadline = todo[0]
        command = consequence(deadline)
        assert command is not None  # _pending keeps only deadlines with a consequence
        try:
            produced = decide(state, command, SYSTEM, deadline.at)
        except DomainError:  # pragma: no cover - a due deadline's consequence is accepted
            return state
        found.append(_Divergence(at=deadline.at, event_type=produced[0].type, text=_consequence_text(deadline)))
        state = replay(produced, state)


def _consequence_text(deadline: Deadline) -> str:
    when = show(deadline.at)
    if deadline.kind is DeadlineKind.PHASE_CLOSING:
        return f"Le brouillon, jamais déposé, aurait expiré à la clôture de la phase, le {when} (heure de Paris)."
    if deadline.kind is DeadlineKind.COMPLEMENT_DUE:
        return f"Le complément attendu pour le {when} aurait été signalé en retard."
    if deadline.kind is DeadlineKind.REVIEW_DUE:
        return f"L’expertise attendue pour le {when} aurait été signalée en retard."
    return f"Le rapport de la période {deadline.period}, dû le {when}, aurait été signalé en retard."


def _reason(found: list[_Divergence]) -> str:
    if not found:
        return IDENTICAL
    text = " ".join(d.text for d in found[:_SHOWN])
    more = len(found) - _SHOWN
    if more == 1:
        text += " Et un autre écart."
    elif more > 1:
        text += f" Et {more} autres écarts."
    return text
