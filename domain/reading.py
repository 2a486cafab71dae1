"""Need-to-know: who may read what of a dossier. Reading is a permission like writing; every
reader (CLI, codec server, later the API) asks here before it shows anything, and records the
answer in the read log, granted or refused."""

from __future__ import annotations

from enum import StrEnum

from domain.access import Actor, Role
from domain.dossier import DossierContent, DossierState
from domain.errors import NotAllowed
from domain.record import Record


class Reading(StrEnum):
    """What of a dossier is read."""

    CONTENT = "content"  # what the holder wrote and attached
    REVIEWS = "reviews"  # the reviewers' scores and opinions
    SUMMARY = "summary"  # holder, territory, theme and financing need: what the committee reads
    HISTORY = "history"  # statuses, instants, actors: metadata, no content

    @property
    def label(self) -> str:
        """French label."""
        return READING_LABELS[self]


READING_LABELS: dict[Reading, str] = {
    Reading.CONTENT: "contenu du dossier",
    Reading.REVIEWS: "expertises",
    Reading.SUMMARY: "synthèse",
    Reading.HISTORY: "historique",
}


class ReadDecision(Record):
    """The answer to a reading request, with the reason written in the read log."""

    granted: bool
    reason: str


def may_read(state: DossierState, actor: Actor, what: Reading) -> ReadDecision:
    """Whether `actor` may read `what` of the dossier, and why (in French, for the read log).

    The holder reads their own dossier; staff the dossiers of their calls; a reviewer only the
    dossiers assigned to them, once declared free of conflict of interest; the committee the
    reviews and the summary; an auditor the history, and the content only with a clearance.
    """
    match actor.role:
        case Role.HOLDER:
            if actor.name != state.holder:
                return _no("ce dossier appartient à un autre porteur")
            if what is Reading.REVIEWS:
                return _no("les expertises ne sont pas communiquées au porteur")
            return _yes("porteur du dossier")
        case Role.STAFF:
            staff = state.call.staff if state.call is not None else ()
            if staff and actor.name not in staff:
                return _no("chargé de mission d’un autre appel")
            return _yes("chargé de mission de l’appel")
        case Role.REVIEWER:
            assignment = state.assignment(actor.name)
            if assignment is None:
                return _no("expert non affecté à ce dossier")
            if not assignment.declared:
                return _no("expert affecté, mais l’absence de conflit d’intérêts n’est pas encore déclarée")
            if what is Reading.REVIEWS:
                return _no("un expert ne lit pas les expertises des autres")
            return _yes("expert affecté, sans conflit d’intérêts déclaré")
        case Role.COMMITTEE:
            if what is Reading.CONTENT:
                return _no("le comité lit les expertises et la synthèse, pas le dossier complet")
            return _yes("comité de décision")
        case Role.AUDITOR:
            if what is Reading.HISTORY:
                return _yes("auditeur : historique et métadonnées")
            if actor.name in state.clearances:
                return _yes("auditeur habilité par un chargé de mission")
            return _no("auditeur sans habilitation au contenu de ce dossier (demandez-la à un chargé de mission)")
    return _no("les échéances automatiques ne lisent pas les dossiers")


def may_read_all(state: DossierState, actor: Actor) -> ReadDecision:
    """Whether `actor` may read everything of the dossier at once, reviews included — what a raw
    payload may carry (a query's state, a review's Update): the call's staff, a cleared auditor."""
    content = may_read(state, actor, Reading.CONTENT)
    if content.granted and not may_read(state, actor, Reading.REVIEWS).granted:
        return _no("le décodage montre tout le dossier, expertises comprises : lisez-le avec amiflow dossier show")
    return content


def require_read(state: DossierState, actor: Actor, what: Reading) -> ReadDecision:
    """`may_read`, raising the refusal.

    Raises:
        NotAllowed: with the reason, when the read is refused.
    """
    decision = may_read(state, actor, what)
    if not decision.granted:
        raise NotAllowed(f"Lecture refusée ({what.label} de {state.id}) : {decision.reason}.")
    return decision


# What anyone who may see a dossier at all sees: where it stands and when, never what was written.
METADATA = frozenset({
    "status", "id", "call", "phase_id", "holder", "version", "started_at", "submitted_at", "phase_closes_at",
    "complement_requested_at", "complement_due", "complement_overdue", "review_assigned_at", "review_due",
    "review_overdue", "follow_up_started_at", "reports", "late_reports", "meetings_attended", "last_meeting_at",
    "closed_at", "clearances", "legal_hold", "content_destroyed_at",
})  # fmt: skip

# Events whose bodies belong to the review, read only with `Reading.REVIEWS`.
REVIEW_EVENTS = frozenset({"reviewers_assigned", "interests_declared", "reviewer_recused", "review_submitted",
                           "review_overdue"})  # fmt: skip


def visible(state: DossierState, actor: Actor, rights: DossierState | None = None) -> DossierState:
    """The state as `actor` may see it. Without the content, only `METADATA` (an allow-list), plus the
    summary and the reviews for the committee; without the reviews, no reviews, and for the holder no
    reviewer's name either. `rights`: the state whose rules decide (today's, for a past state: a
    clearance granted after the end opens the dossier's whole past)."""
    judged = rights or state
    reviews = may_read(judged, actor, Reading.REVIEWS).granted
    if may_read(judged, actor, Reading.CONTENT).granted:
        seen = state
    else:
        kept: dict[str, object] = {name: getattr(state, name) for name in METADATA}
        if may_read(judged, actor, Reading.SUMMARY).granted:
            kept["content"] = summary(state)
        if state.decision is not None:
            kept["decision"] = state.decision if reviews else state.decision.model_copy(update={"reasons": ""})
        if reviews:
            kept |= {"reviews": state.reviews, "assignments": state.assignments, "recused": state.recused}
        seen = DossierState.model_validate(kept)
    if not reviews:
        hidden: dict[str, object] = {"reviews": ()}
        if actor.role is Role.HOLDER:  # reviewers stay anonymous to the holder
            hidden |= {"assignments": (), "recused": ()}
        seen = seen.model_copy(update=hidden)
    return seen


def event_visible(state: DossierState, actor: Actor, event_type: str) -> bool:
    """Whether `actor` may read the body of an event of that type (its clear metadata aside)."""
    if event_type in REVIEW_EVENTS:
        return may_read(state, actor, Reading.REVIEWS).granted
    return may_read(state, actor, Reading.CONTENT).granted


def shown_actor(state: DossierState, reader: Actor, actor: str) -> str:
    """An event's or a read's actor as `reader` may see it: reviewers stay anonymous to the holder."""
    if reader.role is Role.HOLDER and actor.startswith(f"{Role.REVIEWER.value}:"):
        return f"{Role.REVIEWER.value}:—"
    return actor


def summary(state: DossierState) -> DossierContent | None:
    """What the committee reads of the content: who, where, which theme, what financing need;
    not the sections, partners or documents."""
    if state.content is None:
        return None
    return state.content.model_copy(update={"sections": {}, "partners": ()})


def _yes(reason: str) -> ReadDecision:
    return ReadDecision(granted=True, reason=reason)


def _no(reason: str) -> ReadDecision:
    return ReadDecision(granted=False, reason=reason)
