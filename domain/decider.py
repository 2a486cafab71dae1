"""The rule set: `decide` turns a command into events or refuses it; `evolve` folds an event into
the state; `replay` rebuilds a state from its events. Pure: time arrives as an argument."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from domain.access import ROLE_LABELS, Actor, Role
from domain.calendar import require_aware, show, to_utc
from domain.calls import Call, Phase, ReviewMode
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
from domain.deadlines import consequence, deadlines, report_count, report_due
from domain.errors import (
    IncompleteDossier,
    InvalidCommand,
    InvalidTransition,
    NoFittingScheme,
    NotAllowed,
    NotEligible,
    PhaseClosed,
    sentence,
)
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
from domain.inputs import check_command, check_size
from domain.retention import destruction_refusal
from domain.schemes import recommend
from domain.state import (
    FILING_STEPS,
    FINAL_STATUSES,
    LIFECYCLE,
    STATUS_LABELS,
    Assignment,
    DeadlineKind,
    Decision,
    DossierContent,
    DossierState,
    Filing,
    FilingStatus,
    FollowUpKind,
    Report,
    Review,
    Status,
    dossier_id,
)

# Who may give each command. The auditor gives none: auditors read.
PERMISSIONS: dict[str, Role] = {
    "start-draft": Role.HOLDER,
    "update-draft": Role.HOLDER,
    "submit": Role.HOLDER,
    "withdraw": Role.HOLDER,
    "provide-complement": Role.HOLDER,
    "file-report": Role.HOLDER,
    "acknowledge": Role.STAFF,
    "request-complement": Role.STAFF,
    "declare-complete": Role.STAFF,
    "assign-reviewers": Role.STAFF,
    "orient": Role.STAFF,
    "record-filing": Role.STAFF,
    "record-follow-up": Role.STAFF,
    "close": Role.STAFF,
    "extend-deadline": Role.STAFF,
    "declare-interests": Role.REVIEWER,
    "submit-review": Role.REVIEWER,
    "decide": Role.COMMITTEE,
    "expire-draft": Role.SYSTEM,
    "escalate-complement": Role.SYSTEM,
    "escalate-review": Role.SYSTEM,
    "flag-late-report": Role.SYSTEM,
    "attach-document": Role.HOLDER,
    "grant-clearance": Role.STAFF,
    "set-legal-hold": Role.STAFF,
    "lift-legal-hold": Role.STAFF,
    "destroy-content": Role.STAFF,
}

# The statuses in which each command may be given.
_OPEN_AFTER_SUBMISSION = frozenset(
    {Status.SUBMITTED, Status.ACKNOWLEDGED, Status.COMPLEMENT_REQUESTED, Status.COMPLETE,
     Status.UNDER_REVIEW, Status.RETAINED, Status.ORIENTED, Status.FOLLOW_UP}
)
ACCEPTED_IN: dict[str, frozenset[Status]] = {
    "start-draft": frozenset({Status.NEW}),
    "update-draft": frozenset({Status.DRAFT}),
    "submit": frozenset({Status.DRAFT}),
    "withdraw": _OPEN_AFTER_SUBMISSION | {Status.DRAFT},
    "provide-complement": frozenset({Status.COMPLEMENT_REQUESTED}),
    "file-report": frozenset({Status.FOLLOW_UP}),
    "acknowledge": frozenset({Status.SUBMITTED}),
    "request-complement": frozenset({Status.SUBMITTED, Status.ACKNOWLEDGED}),
    "declare-complete": frozenset({Status.ACKNOWLEDGED}),
    "assign-reviewers": frozenset({Status.COMPLETE, Status.UNDER_REVIEW}),
    "orient": frozenset({Status.RETAINED}),
    "record-filing": frozenset({Status.ORIENTED, Status.FOLLOW_UP}),
    "record-follow-up": frozenset({Status.RETAINED, Status.ORIENTED, Status.FOLLOW_UP}),
    "close": _OPEN_AFTER_SUBMISSION,
    "extend-deadline": _OPEN_AFTER_SUBMISSION | {Status.DRAFT},
    "declare-interests": frozenset({Status.UNDER_REVIEW}),
    "submit-review": frozenset({Status.UNDER_REVIEW}),
    "decide": frozenset({Status.UNDER_REVIEW}),
    "expire-draft": frozenset({Status.DRAFT}),
    "escalate-complement": frozenset({Status.COMPLEMENT_REQUESTED}),
    "escalate-review": frozenset({Status.UNDER_REVIEW}),
    "flag-late-report": frozenset({Status.FOLLOW_UP}),
    "attach-document": _OPEN_AFTER_SUBMISSION | {Status.DRAFT},
    # Audits come years after the end: a clearance is given whatever the status.
    "grant-clearance": frozenset(Status) - {Status.NEW},
    "set-legal-hold": frozenset(Status) - {Status.NEW},
    "lift-legal-hold": frozenset(Status) - {Status.NEW},
    "destroy-content": FINAL_STATUSES,
}

_HOLDER_OWNS = frozenset(
    {"update-draft", "submit", "withdraw", "provide-complement", "file-report", "attach-document"}
)


def decide(state: DossierState, command: Command, actor: Actor, now: datetime) -> list[Event]:
    """The events `command` by `actor` at `now` produces on `state`.

    Raises:
        DomainError: a typed refusal whose message says why, in words a clerk can act on.
            A refused command produces nothing.
    """
    now = to_utc(require_aware(now))
    name = command.type
    check_command(state, command, actor)  # what no entry point takes, whoever sent it
    _authorise(state, name, actor)
    if state.status not in ACCEPTED_IN[name]:
        if state.status is Status.NEW:
            raise InvalidTransition("Ce dossier n’existe pas encore : commencez par un brouillon.")
        allowed = ", ".join(sorted(STATUS_LABELS[s] for s in ACCEPTED_IN[name]))
        why = ""
        if state.status is Status.EXPIRED and state.phase_closes_at is not None:
            why = f" : la phase est close depuis le {show(state.phase_closes_at)} (heure de Paris)"
        raise InvalidTransition(
            f"« {name} » est impossible : le dossier est « {state.status.label} »{why} "
            f"(possible seulement s’il est : {allowed})."
        )
    handler: Callable[[DossierState, Any, Actor, datetime], list[Event]] = _HANDLERS[type(command)]
    events = handler(state, command, actor, now)
    if events and actor.role is not Role.SYSTEM:
        check_size(replay(events, state))  # nothing Temporal could not carry is accepted
    return events


def _authorise(state: DossierState, name: str, actor: Actor) -> None:
    refusal = _refusal(state, name, actor)
    if refusal is not None:
        raise refusal


def _refusal(state: DossierState, name: str, actor: Actor) -> NotAllowed | None:
    """Why `actor` may not give command `name` on this dossier, whatever its status; None when they may."""
    role = PERMISSIONS[name]
    if actor.role is Role.AUDITOR:
        return NotAllowed("Un auditeur consulte les dossiers et leur historique ; il n’y agit pas.")
    if actor.role is not role:
        return NotAllowed(
            f"« {name} » est réservé au rôle {ROLE_LABELS[role]} ({role.value}) ; "
            f"vous agissez comme {ROLE_LABELS[actor.role]} ({actor.role.value})."
        )
    if name in _HOLDER_OWNS and state.status is not Status.NEW and actor.name != state.holder:
        return NotAllowed("Ce dossier appartient à un autre porteur.")
    # Acting on a dossier is reserved to those who may read it: the call's staff, the call's committee.
    call = state.call
    if call is not None and actor.role is Role.STAFF and not call.has_staff(actor.name):
        return NotAllowed(sentence(call.not_staff))
    if call is not None and actor.role is Role.COMMITTEE and not call.has_committee_member(actor.name):
        return NotAllowed(sentence(call.not_committee))
    return None


def available_commands(state: DossierState, actor: Actor, now: datetime) -> list[str]:
    """The commands `actor` may give on this dossier at `now` (what a help or a back office offers): their
    role, the dossier's status, the call's staff and committee, the reviewer's assignment and declaration,
    and what the state alone settles (a phase still open, a review still owed, a retention over…). A command
    offered may still be refused for its arguments (a date in the past, an unknown criterion…)."""
    now = to_utc(require_aware(now))
    return [name for name in PERMISSIONS
            if state.status in ACCEPTED_IN[name] and _refusal(state, name, actor) is None
            and _OFFERED.get(name, _always)(state, actor, now)]


def _always(state: DossierState, actor: Actor, now: datetime) -> bool:
    return True


def _phase_open(state: DossierState, actor: Actor, now: datetime) -> bool:
    phase = state.call.phase(state.phase_id) if state.call is not None else None
    return phase is not None and phase.opens_at <= now < _closes_at(state)


def _called_for(name: str) -> Callable[[DossierState, Actor, datetime], bool]:
    """A system command is offered when a deadline past due calls for it."""

    def due(state: DossierState, actor: Actor, now: datetime) -> bool:
        if state.call is None:
            return False
        called = (consequence(d) for d in deadlines(state, state.call, now) if d.overdue)
        return any(c is not None and c.type == name for c in called)

    return due


# What the state alone settles, beyond role and status: a command these refuse is not offered.
_OFFERED: dict[str, Callable[[DossierState, Actor, datetime], bool]] = {
    "update-draft": _phase_open,
    "submit": _phase_open,
    "file-report": lambda s, a, now: s.call is not None and len(s.reports) < report_count(s.call),
    "orient": lambda s, a, now: s.content is not None and s.content.financing_need is not None,
    "record-filing": lambda s, a, now: any(FILING_STEPS[f.status] for f in s.filings),
    "declare-interests": lambda s, a, now: (x := s.assignment(a.name)) is not None and not x.declared,
    "submit-review": lambda s, a, now: s.declared_reviewer(a.name) and s.review_of(a.name) is None,
    "decide": lambda s, a, now: bool(s.reviews),
    "set-legal-hold": lambda s, a, now: not s.legal_hold and s.content_destroyed_at is None,
    "lift-legal-hold": lambda s, a, now: s.legal_hold,
    "destroy-content": lambda s, a, now: destruction_refusal(s, now) is None,
    **{name: _called_for(name) for name in ("expire-draft", "escalate-complement", "escalate-review",
                                            "flag-late-report")},
}


def _call(state: DossierState) -> Call:
    if state.call is None:  # only a NEW state has no call, and NEW accepts start-draft only
        raise InvalidTransition("Ce dossier n’existe pas encore : commencez par un brouillon.")
    return state.call


def _phase(state: DossierState) -> Phase:
    phase = _call(state).phase(state.phase_id)
    if phase is None:
        raise InvalidTransition(f"La phase « {state.phase_id} » n’existe plus dans l’appel.")
    return phase


def _closes_at(state: DossierState) -> datetime:
    return state.phase_closes_at or _phase(state).closes_at


def _check_content(call: Call, phase: Phase, content: DossierContent) -> None:
    if content.holder_type not in phase.holder_types:
        admitted = ", ".join(t.label for t in phase.holder_types)
        raise NotEligible(
            f"Un porteur de type « {content.holder_type.label} » n’est pas éligible à "
            f"« {phase.label} » (types admis : {admitted}).",
            field="content.holder_type",
        )
    themes = {t.id for t in call.themes}
    if content.theme is not None and content.theme not in themes:
        raise InvalidCommand(
            f"Thème inconnu « {content.theme} » (thèmes de l’appel : {', '.join(sorted(themes))}).",
            field="content.theme",
        )
    unknown = sorted(set(content.sections) - {s.id for s in call.sections})
    if unknown:
        raise InvalidCommand(
            f"Sections inconnues de cet appel : {', '.join(unknown)} "
            f"(sections attendues : {', '.join(s.id for s in call.sections)})."
        )


def _check_open(phase: Phase, closes_at: datetime, now: datetime, what: str) -> None:
    if now < phase.opens_at:
        raise PhaseClosed(f"{what} impossible : « {phase.label} » n’ouvre que le {show(phase.opens_at)}.")
    if now >= closes_at:
        raise PhaseClosed(
            f"{what} impossible : « {phase.label} » est close depuis le {show(closes_at)} "
            f"(heure de Paris)."
        )


def open_phases(call: Call, now: datetime) -> tuple[Phase, ...]:
    """The phases of `call` a holder may start a draft on at `now` (those `check_open` lets through)."""
    return tuple(p for p in call.phases if p.is_open(now))


def check_open(phase: Phase, now: datetime) -> None:
    """Refuse (PhaseClosed, in French) starting a draft on `phase` at `now` unless it is open."""
    _check_open(phase, phase.closes_at, now, "Ouvrir un brouillon")


def _start_draft(state: DossierState, c: StartDraft, actor: Actor, now: datetime) -> list[Event]:
    phase = c.call.phase(c.phase_id)
    if phase is None:
        known = ", ".join(p.id for p in c.call.phases)
        raise InvalidCommand(f"L’appel « {c.call.id} » n’a pas de phase « {c.phase_id} » ({known}).")
    _check_open(phase, phase.closes_at, now, "Ouvrir un brouillon")
    _check_content(c.call, phase, c.content)
    try:
        ident = dossier_id(c.call.id, c.reference)
    except ValueError as exc:
        raise InvalidCommand(str(exc)) from None
    return [DraftStarted(actor=actor, at=now, dossier_id=ident, call=c.call, phase_id=c.phase_id,
                         reference=c.reference, content=c.content)]


def _update_draft(state: DossierState, c: UpdateDraft, actor: Actor, now: datetime) -> list[Event]:
    phase = _phase(state)
    _check_open(phase, _closes_at(state), now, "Modifier le brouillon")
    _check_content(_call(state), phase, c.content)
    return [DraftUpdated(actor=actor, at=now, content=c.content)]


def _submit(state: DossierState, c: Submit, actor: Actor, now: datetime) -> list[Event]:
    call, phase = _call(state), _phase(state)
    _check_open(phase, _closes_at(state), now, "Le dépôt")
    assert state.content is not None
    _check_content(call, phase, state.content)
    _check_complete(call, state.content, "avant le dépôt")
    return [DossierSubmitted(actor=actor, at=now)]


def _check_complete(call: Call, content: DossierContent, when: str) -> None:
    """Every section filled and, if the call has themes, a theme chosen."""
    missing = [s for s in call.sections if not content.sections.get(s.id, "").strip()]
    if missing:  # the field: the first section to fill
        raise IncompleteDossier(f"Sections à remplir {when} : " + " ; ".join(s.label for s in missing) + ".",
                                field=f"content.sections.{missing[0].id}")
    if call.themes and content.theme is None:
        themes = ", ".join(t.id for t in call.themes)
        raise IncompleteDossier(f"Choisissez le thème du dossier parmi : {themes}.", field="content.theme")


def _withdraw(state: DossierState, c: Withdraw, actor: Actor, now: datetime) -> list[Event]:
    return [DossierWithdrawn(actor=actor, at=now, reason=c.reason)]


def _provide_complement(
    state: DossierState, c: ProvideComplement, actor: Actor, now: datetime
) -> list[Event]:
    if c.content is not None:
        call = _call(state)
        _check_content(call, _phase(state), c.content)
        _check_complete(call, c.content, "dans le complément")
    return [ComplementProvided(actor=actor, at=now, note=c.note, content=c.content)]


def _file_report(state: DossierState, c: FileReport, actor: Actor, now: datetime) -> list[Event]:
    call = _call(state)
    filed = {r.period for r in state.reports}
    total = report_count(call)
    expected = next((p for p in range(1, total + 1) if p not in filed), None)
    if expected is None:
        raise InvalidCommand(f"Les {total} rapports de suivi ont déjà été reçus.")
    if c.period != expected:
        raise InvalidCommand(f"Le prochain rapport attendu est celui de la période {expected}.")
    assert state.follow_up_started_at is not None
    due_at = report_due(call, state.follow_up_started_at, c.period)
    return [ReportFiled(actor=actor, at=now, period=c.period, summary=c.summary, late=now >= due_at)]


def _acknowledge(state: DossierState, c: Acknowledge, actor: Actor, now: datetime) -> list[Event]:
    return [DossierAcknowledged(actor=actor, at=now)]


def _future(due: datetime, now: datetime, what: str) -> None:
    if due <= now:
        raise InvalidCommand(f"{what} ({show(due)}) doit être dans le futur (maintenant : {show(now)}).")


def _request_complement(
    state: DossierState, c: RequestComplement, actor: Actor, now: datetime
) -> list[Event]:
    _future(c.due, now, "L’échéance du complément")
    return [ComplementRequested(actor=actor, at=now, pieces=c.pieces, due=c.due)]


def _declare_complete(
    state: DossierState, c: DeclareComplete, actor: Actor, now: datetime
) -> list[Event]:
    return [DossierDeclaredComplete(actor=actor, at=now)]


def _assign_reviewers(
    state: DossierState, c: AssignReviewers, actor: Actor, now: datetime
) -> list[Event]:
    phase = _phase(state)
    if phase.review_mode is ReviewMode.APRES_CLOTURE and now < _closes_at(state):
        raise InvalidTransition(
            f"« {phase.label} » est étudiée après clôture : l’expertise commence après le "
            f"{show(_closes_at(state))}."
        )
    _future(c.due, now, "L’échéance de l’expertise")
    if len(set(c.reviewers)) != len(c.reviewers):
        raise InvalidCommand("Un même expert est nommé deux fois.")
    for reviewer in c.reviewers:
        if state.assignment(reviewer) is not None or state.review_of(reviewer) is not None:
            raise InvalidCommand(f"L’expert « {reviewer} » est déjà affecté à ce dossier.")
        if reviewer in state.recused:
            raise InvalidCommand(f"L’expert « {reviewer} » a déclaré un conflit d’intérêts.")
    return [ReviewersAssigned(actor=actor, at=now, reviewers=c.reviewers, due=c.due)]


def _orient(state: DossierState, c: Orient, actor: Actor, now: datetime) -> list[Event]:
    content = state.content
    assert content is not None
    if content.financing_need is None:
        raise InvalidCommand(
            "Le dossier n’exprime aucun besoin de financement : il n’y a rien à orienter "
            "(passez au suivi : record-follow-up --kind charter_signed)."
        )
    fitting = recommend(c.catalogue, content.financing_need.kinds, content.holder_type,
                        content.region)
    if not fitting:
        needs = ", ".join(k.label for k in content.financing_need.kinds)
        raise NoFittingScheme(
            f"Aucun dispositif du catalogue ne finance « {needs} » pour un porteur de type "
            f"« {content.holder_type.label} » en {content.region}."
        )
    return [DossierOriented(actor=actor, at=now, schemes=fitting)]


def _record_filing(state: DossierState, c: RecordFiling, actor: Actor, now: datetime) -> list[Event]:
    filing = next((f for f in state.filings if f.scheme_id == c.scheme_id), None)
    if filing is None:
        known = ", ".join(f.scheme_id for f in state.filings) or "aucun"
        raise InvalidCommand(f"Le dispositif « {c.scheme_id} » n’a pas été recommandé ({known}).")
    if c.outcome not in FILING_STEPS[filing.status]:
        nexts = ", ".join(s.value for s in sorted(FILING_STEPS[filing.status])) or "aucune"
        raise InvalidTransition(
            f"{filing.scheme_name} : « {filing.status.label} » ne peut pas devenir "
            f"« {c.outcome.label} » (suites possibles : {nexts})."
        )
    if c.amount_eur is not None and c.outcome is not FilingStatus.GRANTED:
        raise InvalidCommand("Un montant ne s’inscrit qu’avec une aide accordée (granted).")
    return [FilingRecorded(actor=actor, at=now, scheme_id=c.scheme_id, outcome=c.outcome,
                           amount_eur=c.amount_eur, note=c.note)]


def _record_follow_up(
    state: DossierState, c: RecordFollowUp, actor: Actor, now: datetime
) -> list[Event]:
    if c.kind is FollowUpKind.CHARTER_SIGNED and state.status is Status.FOLLOW_UP:
        raise InvalidTransition("La charte est déjà signée : le suivi est en cours.")
    if c.kind is FollowUpKind.MEETING_ATTENDED and state.status is not Status.FOLLOW_UP:
        raise InvalidTransition("Le suivi commence à la signature de la charte (charter_signed).")
    return [FollowUpRecorded(actor=actor, at=now, kind=c.kind, note=c.note)]


def _close(state: DossierState, c: Close, actor: Actor, now: datetime) -> list[Event]:
    if not c.reason.strip():
        raise InvalidCommand("Indiquez la raison de la clôture.")
    return [DossierClosed(actor=actor, at=now, reason=c.reason)]


def _extend_deadline(
    state: DossierState, c: ExtendDeadline, actor: Actor, now: datetime
) -> list[Event]:
    current: datetime | None
    if c.deadline is DeadlineKind.PHASE_CLOSING:
        current = _closes_at(state)
    elif c.deadline is DeadlineKind.COMPLEMENT_DUE:
        if state.status is not Status.COMPLEMENT_REQUESTED:
            raise InvalidTransition("Aucun complément n’est attendu sur ce dossier.")
        current = state.complement_due
    else:
        if state.status is not Status.UNDER_REVIEW:
            raise InvalidTransition("Aucune expertise n’est en cours sur ce dossier.")
        current = state.review_due
    _future(c.until, now, "La nouvelle échéance")
    if current is not None and c.until <= current:
        raise InvalidCommand(
            f"Une prolongation repousse l’échéance : {show(c.until)} n’est pas après {show(current)}."
        )
    return [DeadlineExtended(actor=actor, at=now, deadline=c.deadline, until=c.until)]


def _declare_interests(
    state: DossierState, c: DeclareInterests, actor: Actor, now: datetime
) -> list[Event]:
    assignment = state.assignment(actor.name)
    if assignment is None:
        raise NotAllowed("Ce dossier ne vous est pas affecté.")
    if assignment.declared:
        raise InvalidCommand("Vous avez déjà déclaré vos intérêts pour ce dossier.")
    if c.conflict:
        return [ReviewerRecused(actor=actor, at=now, reviewer=actor.name, statement=c.statement)]
    return [InterestsDeclared(actor=actor, at=now, reviewer=actor.name, statement=c.statement)]


def _submit_review(state: DossierState, c: SubmitReview, actor: Actor, now: datetime) -> list[Event]:
    call = _call(state)
    if not state.declared_reviewer(actor.name):
        if state.assignment(actor.name) is None:
            raise NotAllowed("Ce dossier ne vous est pas affecté.")
        raise NotAllowed("Déclarez d’abord l’absence de conflit d’intérêts (declare-interests).")
    if state.review_of(actor.name) is not None:
        raise InvalidCommand("Vous avez déjà rendu votre expertise sur ce dossier.")
    expected = {k.id for k in call.criteria}
    if set(c.scores) != expected:
        missing = ", ".join(sorted(expected - set(c.scores))) or "aucun"
        extra = ", ".join(sorted(set(c.scores) - expected)) or "aucun"
        raise InvalidCommand(
            f"Notez chaque critère de l’appel, et eux seuls (manquants : {missing} ; inconnus : {extra})."
        )
    for criterion, score in c.scores.items():
        if not 0 <= score <= call.score_max:
            raise InvalidCommand(
                f"Note hors barème pour « {criterion} » : {score} (de 0 à {call.score_max})."
            )
    return [ReviewSubmitted(actor=actor, at=now, reviewer=actor.name, scores=c.scores,
                            opinion=c.opinion)]


def _take_decision(state: DossierState, c: TakeDecision, actor: Actor, now: datetime) -> list[Event]:
    if not state.reviews:
        raise InvalidTransition("Le comité décide sur expertise : aucune expertise n’a été rendue.")
    return [DecisionTaken(actor=actor, at=now, retained=c.retained, reasons=c.reasons)]


def _not_before(at: datetime | None, now: datetime, what: str) -> None:
    if at is None or now < at:
        shown = show(at) if at is not None else "—"
        raise InvalidCommand(f"{what} : l’échéance ({shown}) n’est pas atteinte.")


def _expire_draft(state: DossierState, c: ExpireDraft, actor: Actor, now: datetime) -> list[Event]:
    _not_before(_closes_at(state), now, "Expiration du brouillon")
    return [DraftExpired(actor=actor, at=now)]


def _escalate_complement(
    state: DossierState, c: EscalateComplement, actor: Actor, now: datetime
) -> list[Event]:
    if state.complement_overdue:
        raise InvalidCommand("Le retard du complément est déjà signalé.")
    _not_before(state.complement_due, now, "Relance du complément")
    return [ComplementOverdue(actor=actor, at=now)]


def _escalate_review(
    state: DossierState, c: EscalateReview, actor: Actor, now: datetime
) -> list[Event]:
    if state.review_overdue:
        raise InvalidCommand("Le retard de l’expertise est déjà signalé.")
    if not state.reviews_missing:
        raise InvalidCommand("Toutes les expertises attendues sont rendues.")
    _not_before(state.review_due, now, "Relance de l’expertise")
    return [ReviewOverdue(actor=actor, at=now)]


def _flag_late_report(
    state: DossierState, c: FlagLateReport, actor: Actor, now: datetime
) -> list[Event]:
    call = _call(state)
    if c.period > report_count(call):
        raise InvalidCommand(f"Il n’y a que {report_count(call)} périodes de suivi.")
    if c.period in {r.period for r in state.reports} or c.period in state.late_reports:
        raise InvalidCommand(f"Le rapport de la période {c.period} est déjà reçu ou signalé.")
    assert state.follow_up_started_at is not None
    _not_before(report_due(call, state.follow_up_started_at, c.period), now, "Retard du rapport")
    return [ReportLate(actor=actor, at=now, period=c.period)]


def _attach_document(
    state: DossierState, c: AttachDocument, actor: Actor, now: datetime
) -> list[Event]:
    if state.document(c.document.id) is not None:
        raise InvalidCommand(f"Le document {c.document.id} est déjà joint à ce dossier.")
    return [DocumentAttached(actor=actor, at=now, document=c.document)]


def _grant_clearance(
    state: DossierState, c: GrantClearance, actor: Actor, now: datetime
) -> list[Event]:
    if c.auditor in state.clearances:
        raise InvalidCommand(f"L’auditeur « {c.auditor} » a déjà l’habilitation pour ce dossier.")
    return [ClearanceGranted(actor=actor, at=now, auditor=c.auditor, reason=c.reason)]


def _set_legal_hold(state: DossierState, c: SetLegalHold, actor: Actor, now: datetime) -> list[Event]:
    if state.legal_hold:
        raise InvalidCommand("Ce dossier est déjà sous conservation légale.")
    _not_destroyed(state)
    return [LegalHoldSet(actor=actor, at=now, reason=c.reason)]


def _lift_legal_hold(state: DossierState, c: LiftLegalHold, actor: Actor, now: datetime) -> list[Event]:
    if not state.legal_hold:
        raise InvalidCommand("Ce dossier n’est pas sous conservation légale.")
    return [LegalHoldLifted(actor=actor, at=now, reason=c.reason)]


def _destroy_content(state: DossierState, c: DestroyContent, actor: Actor, now: datetime) -> list[Event]:
    refusal = destruction_refusal(state, now)
    if refusal is not None:
        raise refusal
    return [ContentDestroyed(actor=actor, at=now, reason=c.reason)]


def _not_destroyed(state: DossierState) -> None:
    if state.content_destroyed_at is not None:
        raise InvalidTransition(f"Le contenu de ce dossier a été détruit le {show(state.content_destroyed_at)}.")


_HANDLERS: dict[type[Any], Callable[[DossierState, Any, Actor, datetime], list[Event]]] = {
    StartDraft: _start_draft, UpdateDraft: _update_draft, Submit: _submit, Withdraw: _withdraw,
    ProvideComplement: _provide_complement, FileReport: _file_report, Acknowledge: _acknowledge,
    RequestComplement: _request_complement, DeclareComplete: _declare_complete,
    AssignReviewers: _assign_reviewers, Orient: _orient, RecordFiling: _record_filing,
    RecordFollowUp: _record_follow_up, Close: _close, ExtendDeadline: _extend_deadline,
    DeclareInterests: _declare_interests, SubmitReview: _submit_review,
    TakeDecision: _take_decision, ExpireDraft: _expire_draft,
    EscalateComplement: _escalate_complement, EscalateReview: _escalate_review,
    FlagLateReport: _flag_late_report, AttachDocument: _attach_document,
    GrantClearance: _grant_clearance, SetLegalHold: _set_legal_hold, LiftLegalHold: _lift_legal_hold,
    DestroyContent: _destroy_content,
}


# --- evolve ---------------------------------------------------------------------------------


def evolve(state: DossierState, event: Event) -> DossierState:
    """The state after `event`. Never changes `state` in place."""
    changes = _changes(state, event)
    changes["version"] = state.version + 1
    new = state.model_copy(update=changes)
    if new.status is not state.status and new.status not in LIFECYCLE[state.status]:
        # An event stream that breaks the lifecycle is corrupt; say so rather than fold it.
        raise ValueError(f"transition interdite {state.status} → {new.status} ({event.type})")
    return new


def _changes(s: DossierState, e: Event) -> dict[str, Any]:
    match e:
        case DraftStarted():
            phase = e.call.phase(e.phase_id)
            return {"status": Status.DRAFT, "id": e.dossier_id, "call": e.call,
                    "phase_id": e.phase_id, "reference": e.reference, "holder": e.actor.name,
                    "content": e.content, "started_at": e.at,
                    "phase_closes_at": phase.closes_at if phase else None}
        case DraftUpdated():
            return {"content": e.content}
        case DossierSubmitted():
            return {"status": Status.SUBMITTED, "submitted_at": e.at}
        case DossierWithdrawn():
            return {"status": Status.WITHDRAWN, "closed_reason": e.reason, "closed_at": e.at}
        case ComplementProvided():
            content = e.content if e.content is not None else s.content
            return {"status": Status.ACKNOWLEDGED, "content": content, "complement_due": None,
                    "complement_overdue": False, "complement_pieces": ""}
        case ReportFiled():
            report = Report(period=e.period, at=e.at, late=e.late)
            return {"reports": (*s.reports, report)}
        case DossierAcknowledged():
            return {"status": Status.ACKNOWLEDGED}
        case ComplementRequested():
            return {"status": Status.COMPLEMENT_REQUESTED, "complement_pieces": e.pieces,
                    "complement_requested_at": e.at, "complement_due": e.due,
                    "complement_overdue": False}
        case DossierDeclaredComplete():
            return {"status": Status.COMPLETE}
        case ReviewersAssigned():
            added = tuple(Assignment(reviewer=r) for r in e.reviewers)
            return {"status": Status.UNDER_REVIEW, "assignments": (*s.assignments, *added),
                    "review_due": e.due, "review_assigned_at": e.at,
                    "review_overdue": False}
        case DossierOriented():
            filings = tuple(Filing(scheme_id=x.id, scheme_name=x.name) for x in e.schemes)
            return {"status": Status.ORIENTED, "filings": filings}
        case FilingRecorded():
            return {"filings": tuple(
                f.model_copy(update={"status": e.outcome, "amount_eur": e.amount_eur})
                if f.scheme_id == e.scheme_id else f
                for f in s.filings)}
        case FollowUpRecorded():
            if e.kind is FollowUpKind.CHARTER_SIGNED:
                return {"status": Status.FOLLOW_UP, "follow_up_started_at": e.at}
            return {"meetings_attended": s.meetings_attended + 1, "last_meeting_at": e.at}
        case DossierClosed():
            return {"status": Status.CLOSED, "closed_reason": e.reason, "closed_at": e.at}
        case DeadlineExtended():
            if e.deadline is DeadlineKind.PHASE_CLOSING:
                return {"phase_closes_at": e.until}
            if e.deadline is DeadlineKind.COMPLEMENT_DUE:
                return {"complement_due": e.until, "complement_overdue": False}
            return {"review_due": e.until, "review_overdue": False}
        case InterestsDeclared():
            return {"assignments": tuple(
                a.model_copy(update={"declared": True}) if a.reviewer == e.reviewer else a
                for a in s.assignments)}
        case ReviewerRecused():
            return {"assignments": tuple(a for a in s.assignments if a.reviewer != e.reviewer),
                    "recused": (*s.recused, e.reviewer)}
        case ReviewSubmitted():
            review = Review(reviewer=e.reviewer, scores=e.scores, opinion=e.opinion, at=e.at)
            return {"reviews": (*s.reviews, review)}
        case DecisionTaken():
            status = Status.RETAINED if e.retained else Status.NOT_RETAINED
            decision = Decision(retained=e.retained, reasons=e.reasons, at=e.at)
            return {"status": status, "decision": decision}
        case DraftExpired():
            return {"status": Status.EXPIRED, "closed_at": e.at}
        case ComplementOverdue():
            return {"complement_overdue": True}
        case ReviewOverdue():
            return {"review_overdue": True}
        case ReportLate():
            return {"late_reports": (*s.late_reports, e.period)}
        case DocumentAttached():
            return {"documents": (*s.documents, e.document)}
        case ClearanceGranted():
            return {"clearances": (*s.clearances, e.auditor)}
        case LegalHoldSet():
            return {"legal_hold": True}
        case LegalHoldLifted():
            return {"legal_hold": False}
        case ContentDestroyed():
            return {"content_destroyed_at": e.at}
    raise TypeError(f"unknown event {type(e).__name__}")  # pragma: no cover


def replay(events: Iterable[Event], state: DossierState | None = None) -> DossierState:
    """Fold `events` over `state` (by default, a dossier that does not exist yet)."""
    current = state if state is not None else DossierState()
    for event in events:
        current = evolve(current, event)
    return current
