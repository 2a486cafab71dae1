"""Need-to-know: who may read what of a dossier. Reading is a permission like writing; every
reader (CLI, codec server, later the API) asks here before it shows anything, and records the
answer in the read log, granted or refused."""

from __future__ import annotations

from enum import StrEnum

from domain.access import Actor, ReadDecision, Role
from domain.calendar import paris_date
from domain.record import Record
from domain.state import DossierContent, DossierState

__all__ = ["METADATA", "REVIEW_EVENTS", "LoggedRead", "Purpose", "ReadDecision", "Reading", "Sight", "event_shown",
           "may_read", "may_read_all", "shown_actor", "sight", "summary", "visible"]


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


def may_read(state: DossierState, actor: Actor, what: Reading) -> ReadDecision:
    """Whether `actor` may read `what` of the dossier, and why (in French, for the read log).

    The holder reads their own dossier; staff the dossiers of their calls; a reviewer only the
    dossiers assigned to them, once declared free of conflict of interest; the committee, of its
    calls' dossiers, the reviews and the summary; an auditor the history, and the content only with
    a clearance.
    """
    call = state.call
    match actor.role:
        case Role.HOLDER:
            if actor.name != state.holder:
                return _no("ce dossier appartient à un autre porteur")
            if what is Reading.REVIEWS:
                return _no("les expertises ne sont pas communiquées au porteur")
            return _yes("porteur du dossier")
        case Role.STAFF:
            if call is not None and not call.has_staff(actor.name):
                return _no(call.not_staff)
            return _yes("chargé de mission de l’appel")
        case Role.REVIEWER:
            if not state.declared_reviewer(actor.name):
                if state.assignment(actor.name) is None:
                    return _no("expert non affecté à ce dossier")
                return _no("expert affecté, mais l’absence de conflit d’intérêts n’est pas encore déclarée")
            if what is Reading.REVIEWS:
                return _no("un expert ne lit pas les expertises des autres")
            return _yes("expert affecté, sans conflit d’intérêts déclaré")
        case Role.COMMITTEE:
            if call is not None and not call.has_committee_member(actor.name):
                return _no(call.not_committee)
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
        return _no(WHOLE_ONLY)
    return content


WHOLE_ONLY = "le décodage montre tout le dossier, expertises comprises : lisez-le avec amiflow dossier show"


# What anyone who may see a dossier at all sees: where it stands and when, never what was written.
METADATA = frozenset({
    "status", "id", "call", "phase_id", "holder", "version", "started_at", "submitted_at", "phase_closes_at",
    "complement_requested_at", "complement_due", "complement_overdue", "review_assigned_at", "review_due",
    "review_overdue", "follow_up_started_at", "reports", "late_reports", "meetings_attended", "last_meeting_at",
    "closed_at", "clearances", "legal_hold", "content_destroyed_at",
})

# Events whose bodies belong to the review, read only with `Reading.REVIEWS`.
REVIEW_EVENTS = frozenset({"reviewers_assigned", "interests_declared", "reviewer_recused", "review_submitted",
                           "review_overdue"})


class Purpose(StrEnum):
    """What a reader does with a dossier: it decides what is shown and what the read log records."""

    SHOW = "show"  # the dossier as it stands (or stood, `as-of`): its state
    HISTORY = "history"  # its events, each body shown when the reader may read it
    TIMELINE = "timeline"  # who did what and when, reads included: metadata only
    DOCUMENT = "document"  # the bytes of one attached file
    DECODE = "decode"  # raw payloads (codec server), which may carry anything, reviews included


class LoggedRead(Record):
    """One entry for the read log, written before anything is shown."""

    what: str
    granted: bool
    reason: str


class Sight(Record):
    """What a reader sees of a dossier, and what must be logged first."""

    allowed: bool  # may this reader see this dossier at all (else refuse with `reason`)
    content: bool  # are content bodies shown (sections, documents, event bodies)
    reviews: bool  # are the reviews shown (scores, opinions, who reviewed)
    reason: str  # French, for the person and the read log
    state: DossierState | None  # the dossier as this reader sees it (None when not allowed)
    logged: tuple[LoggedRead, ...] = ()  # to write in the read log BEFORE anything is shown


class _Parts(Record):
    history: ReadDecision
    content: ReadDecision
    reviews: ReadDecision
    summary: ReadDecision


NO_IDENTITY = "sans identité (--as ROLE:NOM) : métadonnées seulement"


def destroyed_reason(state: DossierState) -> str | None:
    """Why nothing of the content is shown any more, once it was destroyed at the end of its retention."""
    at = state.content_destroyed_at
    if at is None:
        return None
    return f"contenu détruit le {paris_date(at).isoformat()} (heure de Paris), en fin de conservation : " \
           "seules les métadonnées restent"


def _parts(state: DossierState, reader: Actor, rights: DossierState | None) -> _Parts:
    """Today's rules (`rights`) decide for a past state; a destruction, today's or the past's, hides all content."""
    judged = rights or state
    gone = destroyed_reason(judged) or destroyed_reason(state)

    history = may_read(judged, reader, Reading.HISTORY)
    if gone is not None and history.granted:  # whoever may read the history is told why there is no more
        return _Parts(history=history, content=_no(gone), reviews=_no(gone), summary=_no(gone))
    return _Parts(history=history, content=may_read(judged, reader, Reading.CONTENT),
                  reviews=may_read(judged, reader, Reading.REVIEWS),
                  summary=may_read(judged, reader, Reading.SUMMARY))


def sight(state: DossierState, reader: Actor | None, purpose: Purpose, *, rights: DossierState | None = None,
          what: str | None = None) -> Sight:
    """What `reader` sees of the dossier for `purpose`, and what the read log must record first.

    `rights`: the state whose rules decide (today's, when `state` is a past state: a clearance granted
    since opens the dossier's whole past). `what`: the read's name in the log when more precise than
    the default (`document:doc-…`, `content@…`); an `@…` suffix is kept on every entry.
    No identity: metadata only, nothing logged (nobody to log), reviewers' names masked.
    """
    main = what or ("document" if purpose is Purpose.DOCUMENT else Reading.CONTENT.value)
    suffix = main[main.index("@"):] if "@" in main else ""
    if reader is None:
        if purpose in (Purpose.DOCUMENT, Purpose.DECODE):
            return Sight(allowed=False, content=False, reviews=False, state=None,
                         reason="sans identité, aucun contenu n’est lu")
        return Sight(allowed=True, content=False, reviews=False, reason=NO_IDENTITY,
                     state=_seen(state, None, content=False, reviews=False, with_summary=False))
    p = _parts(state, reader, rights)
    if purpose in (Purpose.DOCUMENT, Purpose.DECODE):
        decision = p.content
        if purpose is Purpose.DECODE and decision.granted and not p.reviews.granted:
            decision = _no(WHOLE_ONLY)
        ok = decision.granted
        shown = _seen(state, reader, content=True, reviews=p.reviews.granted, with_summary=False) if ok else None
        return Sight(allowed=ok, content=ok, reviews=ok and purpose is Purpose.DECODE, reason=decision.reason,
                     state=shown, logged=(LoggedRead(what=main, granted=ok, reason=decision.reason),))
    if not p.history.granted:
        logged_what = main if purpose is Purpose.SHOW else f"{Reading.HISTORY.value}{suffix}"
        return Sight(allowed=False, content=False, reviews=False, reason=p.history.reason, state=None,
                     logged=(LoggedRead(what=logged_what, granted=False, reason=p.history.reason),))
    if purpose is Purpose.TIMELINE:  # metadata is not a content read: nothing to log
        return Sight(allowed=True, content=False, reviews=False, reason=p.history.reason,
                     state=_seen(state, reader, content=False, reviews=False, with_summary=False))
    content, reviews = p.content.granted, p.reviews.granted
    summary_shown = purpose is Purpose.SHOW and p.summary.granted and not content
    if content:
        logged = [LoggedRead(what=main, granted=True, reason=p.content.reason)]
    elif reviews or summary_shown:  # the committee: what it reads is logged as read, never as refused
        logged = [LoggedRead(what=f"{Reading.REVIEWS.value}{suffix}", granted=True, reason=p.reviews.reason)]
        if summary_shown:
            logged.append(LoggedRead(what=f"{Reading.SUMMARY.value}{suffix}", granted=True, reason=p.summary.reason))
    else:
        logged = [LoggedRead(what=main, granted=False, reason=p.content.reason)]
    return Sight(allowed=True, content=content, reviews=reviews, reason=p.content.reason, logged=tuple(logged),
                 state=_seen(state, reader, content=content, reviews=reviews, with_summary=summary_shown))


def _seen(state: DossierState, reader: Actor | None, *, content: bool, reviews: bool,
          with_summary: bool) -> DossierState:
    """Without the content, only `METADATA` (an allow-list), plus the summary and the reviews when shown;
    without the reviews, no reviews, and for the holder (or no one) no reviewer's name either."""
    if content:
        seen = state
    else:
        kept: dict[str, object] = {name: getattr(state, name) for name in METADATA}
        if with_summary:
            kept["content"] = summary(state)
        if state.decision is not None:
            kept["decision"] = state.decision if reviews else state.decision.model_copy(update={"reasons": ""})
        if reviews:
            kept |= {"reviews": state.reviews, "assignments": state.assignments, "recused": state.recused}
        seen = DossierState.model_validate(kept)
    if not reviews:
        hidden: dict[str, object] = {"reviews": ()}
        if reader is None or reader.role is Role.HOLDER:  # reviewers stay anonymous to the holder
            hidden |= {"assignments": (), "recused": ()}
        seen = seen.model_copy(update=hidden)
    return seen


def visible(state: DossierState, actor: Actor | None, rights: DossierState | None = None) -> DossierState:
    """The state as `actor` may see it (see `sight`, which also says what to log)."""
    if actor is None:
        return _seen(state, None, content=False, reviews=False, with_summary=False)
    p = _parts(state, actor, rights)
    content = p.content.granted
    summary_shown = p.summary.granted and not content
    return _seen(state, actor, content=content, reviews=p.reviews.granted, with_summary=summary_shown)


def event_shown(seen: Sight | DossierState, reader: Actor | None, event_type: str) -> bool:
    """Whether the body of an event of that type is shown (its clear metadata aside): from a `Sight`,
    or from the state (today's) the reader's rules are judged on."""
    if isinstance(seen, Sight):
        return seen.reviews if event_type in REVIEW_EVENTS else seen.content
    if reader is None:
        return False
    p = _parts(seen, reader, None)
    return (p.reviews if event_type in REVIEW_EVENTS else p.content).granted


def event_visible(state: DossierState, actor: Actor, event_type: str) -> bool:
    """Whether `actor` may read the body of an event of that type (see `event_shown`)."""
    return event_shown(state, actor, event_type)


def shown_actor(reader: Actor | None, actor: str) -> str:
    """An event's or a read's actor as `reader` may see it: reviewers stay anonymous to the holder,
    and to whoever gave no identity."""
    if (reader is None or reader.role is Role.HOLDER) and actor.startswith(f"{Role.REVIEWER.value}:"):
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

