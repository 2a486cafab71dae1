"""Who is told what, and when: notifications as data, in French.

A notice never carries the dossier's content (it may travel by mail): ids, the call's title,
statuses, instants and what staff wrote in a request. Its `key` is unique per dossier, kind,
recipient and due instant, so that a notice produced twice is delivered once.

As it is sent, a notice links to its dossier's web page (`linked`): the site's address is the
sender's configuration (the worker's AMIFLOW_PUBLIC_URL), never the workflow's, so that recorded
histories replay unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from urllib.parse import quote

from domain.access import Actor, ReadDecision, Role
from domain.calendar import show
from domain.calls import Call
from domain.deadlines import Deadline
from domain.events import (
    ComplementOverdue,
    ComplementRequested,
    DeadlineExtended,
    DecisionTaken,
    DossierAcknowledged,
    DossierClosed,
    DossierOriented,
    DossierSubmitted,
    DraftExpired,
    Event,
    ReportLate,
    ReviewersAssigned,
    ReviewOverdue,
)
from domain.record import Record
from domain.state import DeadlineKind, DossierState, Status

STAFF_DESK = "staff:guichet"  # the call's back office as a whole, not one person


class Notice(Record):
    """One message to one recipient (`role:name`)."""

    key: str
    dossier_id: str
    kind: str
    recipient: str
    subject: str
    body: str
    due: datetime | None = None


_DEADLINE_WORDS = {
    DeadlineKind.PHASE_CLOSING: "la clôture de la phase (dépôt du dossier)",
    DeadlineKind.COMPLEMENT_DUE: "la remise du complément demandé",
    DeadlineKind.REVIEW_DUE: "la remise de l’expertise",
    DeadlineKind.REPORT_DUE: "la remise du rapport de suivi",
}


def _notice(state: DossierState, kind: str, recipient: str, subject: str, body: str,
            due: datetime) -> Notice:
    key = f"{state.id}|{kind}|{recipient}|{due.isoformat()}"
    title = state.call.title if state.call else ""
    text = f"{body}\n\nDossier {state.id} — appel « {title} »."
    return Notice(key=key, dossier_id=state.id, kind=kind, recipient=recipient,
                  subject=f"[{state.id}] {subject}", body=text, due=due)


def notices_for(state: DossierState, event: Event) -> list[Notice]:
    """What to tell, and to whom, once `event` has been applied (`state` is the state after it)."""
    holder = f"holder:{state.holder}"
    match event:
        case DossierSubmitted():
            return [_notice(state, "submitted", holder, "Accusé de dépôt",
                            f"Votre dossier a bien été déposé le {show(event.at)}.", event.at)]
        case DossierAcknowledged():
            return [_notice(state, "acknowledged", holder, "Dossier en instruction",
                            f"Votre dossier est en cours d’instruction par les services de la Région depuis le "
                            f"{show(event.at)}.",
                            event.at)]
        case ComplementRequested():
            return [_notice(state, "complement_requested", holder, "Complément demandé",
                            f"Pièces demandées : {event.pieces}\nÀ fournir avant le {show(event.due)}.",
                            event.due)]
        case ComplementOverdue():
            return [_notice(state, "complement_overdue", STAFF_DESK, "Complément non reçu",
                            f"Le complément attendu avant le {show(state.complement_due or event.at)} "
                            "n’a pas été reçu. Relancez le porteur ou clôturez le dossier.", event.at)]
        case ReviewersAssigned():
            return [_notice(state, "review_assigned", f"reviewer:{r}", "Dossier à expertiser",
                            "Un dossier vous est confié. Déclarez d’abord vos intérêts (absence de "
                            f"conflit), puis rendez votre expertise avant le {show(event.due)}.",
                            event.due) for r in event.reviewers]
        case ReviewOverdue():
            return [_notice(state, "review_overdue", STAFF_DESK, "Expertise en retard",
                            f"L’expertise attendue avant le {show(state.review_due or event.at)} "
                            "n’est pas complète.", event.at)]
        case DecisionTaken():
            verdict = "retenu" if event.retained else "non retenu"
            return [_notice(state, "decision", holder, f"Décision du comité : dossier {verdict}",
                            f"Le comité a décidé le {show(event.at)} : dossier {verdict}.\n"
                            f"Motifs : {event.reasons}",
                            event.at)]
        case DossierOriented():
            names = "\n".join(f"- {s.name} ({s.owner})" for s in event.schemes)
            return [_notice(state, "oriented", holder, "Orientation vers des dispositifs",
                            f"Le {show(event.at)}, votre projet a été orienté pour étude vers :\n{names}",
                            event.at)]
        case DeadlineExtended():
            if event.deadline is DeadlineKind.PHASE_CLOSING and state.status is not Status.DRAFT:
                return []  # a submitted dossier's holder has nothing left to do before the closing
            what = _DEADLINE_WORDS[event.deadline]
            return [_notice(state, f"extended_{event.deadline.value}", holder, "Échéance prolongée",
                            f"L’échéance de {what} est reportée au {show(event.until)}.",
                            event.until)]
        case DraftExpired():
            return [_notice(state, "expired", holder, "Brouillon expiré",
                            f"La phase est close depuis le {show(state.phase_closes_at or event.at)} ; "
                            "votre brouillon n’a pas été déposé.", event.at)]
        case ReportLate():
            return [_notice(state, f"report_late_{event.period}", who, "Rapport de suivi en retard",
                            f"Le rapport de suivi de la période {event.period} n’a pas été reçu "
                            f"(constaté le {show(event.at)}).",
                            event.at) for who in (holder, STAFF_DESK)]
        case DossierClosed():
            return [_notice(state, "closed", holder, "Dossier clos",
                            f"Dossier clos le {show(event.at)}.\nMotif : {event.reason}",
                            event.at)]
    return []


class Moment(Record):
    """An instant of a call that staff are told of: a phase (or session) opens, or closes."""

    at: datetime
    key: str  # unique per call, phase, kind and instant: an extended closing is a new moment
    kind: str  # phase_opened | phase_closed
    text: str


def call_moments(call: Call) -> list[Moment]:
    """Every opening and closing of the call's phases, in order."""
    out: list[Moment] = []
    for p in call.phases:
        for kind, at, word in (("phase_opened", p.opens_at, "Ouverture"), ("phase_closed", p.closes_at, "Clôture")):
            out.append(Moment(at=at, key=f"{call.id}|{kind}|{p.id}|{at.isoformat()}", kind=kind,
                              text=f"{word} de « {p.label} » ({show(at)})"))
    return sorted(out, key=lambda m: (m.at, m.key))


def moments_to_announce(call: Call, announced: Collection[str], now: datetime) -> list[Moment]:
    """The moments still to announce at `now`, in order: not announced yet, and not already past when
    the call's workflow starts (a second's leeway for the moment whose timer just fired)."""
    return [m for m in call_moments(call) if m.key not in announced and m.at > now - timedelta(seconds=1)]


def announcement(call: Call, moment: Moment) -> Notice:
    """The notice that tells the call's back office of `moment`."""
    return Notice(key=f"{moment.key}|{STAFF_DESK}", dossier_id=f"{CALL_PREFIX}{call.id}", kind=moment.kind,
                  recipient=STAFF_DESK, subject=f"[{call.id}] {moment.text}",
                  body=f"{moment.text}.\n\nAppel « {call.title} » ({call.id}).", due=moment.at)


def reminder_notice(state: DossierState, deadline: Deadline) -> Notice:
    """The reminder `deadline` announces, to the holder."""
    what = _DEADLINE_WORDS[deadline.subject]
    days = "demain" if deadline.days_before == 1 else f"dans {deadline.days_before} jours"
    period = f" (période {deadline.period})" if deadline.period else ""
    kind = f"reminder_{deadline.subject.value}_{deadline.days_before}d"
    if deadline.period:
        kind += f"_p{deadline.period}"
    return _notice(state, kind, f"holder:{state.holder}", f"Rappel : échéance {days}",
                   f"Rappel : l’échéance de {what}{period} tombe {days}, le {show(deadline.due)}.",
                   deadline.due)


CALL_PREFIX = "call:"  # the `dossier_id` of a call's announcements


def page_url(public_url: str, dossier_id: str) -> str:
    """The web page a notice of `dossier_id` links to: the dossier's, or the call's for an announcement."""
    base = public_url.rstrip("/")
    if dossier_id.startswith(CALL_PREFIX):
        return f"{base}/appels/{quote(dossier_id.removeprefix(CALL_PREFIX), safe='')}"
    return f"{base}/dossiers/{quote(dossier_id, safe='')}"


def linked(notice: Notice, public_url: str) -> Notice:
    """The notice as it is sent, with the link to its dossier's page (the call's, for an announcement)
    under `public_url`, the address people reach amiflow at. Without an address, nothing to link to."""
    if not public_url:
        return notice
    what = "l’appel" if notice.dossier_id.startswith(CALL_PREFIX) else "le dossier"
    link = page_url(public_url, notice.dossier_id)
    return notice.model_copy(update={"body": f"{notice.body}\n\nVoir {what} : {link}"})


def may_see_failed_notices(actor: Actor | None) -> ReadDecision:
    """Whether `actor` may list the notices given up on (ids, kinds, recipients, errors; no text):
    staff, who tell the people concerned another way, and auditors."""
    if actor is not None and actor.role in (Role.STAFF, Role.AUDITOR):
        return ReadDecision(granted=True, reason=f"{actor.role.label} : notifications en échec")
    who = f"vous agissez comme {actor.role.label} ({actor.role.value})" if actor else "sans identité (--as)"
    return ReadDecision(granted=False, reason="Les notifications en échec sont réservées aux chargés de mission "
                                              f"(staff) et aux auditeurs (auditor) ; {who}.")
