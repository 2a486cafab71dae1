"""Use cases on dossiers: submit, give a command, read (show, as of, history, timeline, list), attach
and fetch documents. Each takes the acting principal and returns a view model or raises a typed
error; what a reader sees and what is logged as a read is `domain.reading.sight`'s decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.catalogue import dossier_from, load_dossier, load_schemes
from amiflow.logs import logger
from amiflow.services import commands
from amiflow.services.errors import DraftExists, NotFound, ReadRefused, Refused
from amiflow.services.principal import Principal
from amiflow.services.views import (
    AttachView,
    CallSummary,
    ClearanceView,
    CommandSpec,
    DossierItem,
    DossierPage,
    DossierView,
    EventView,
    HistoryView,
    Overview,
    PhaseClosing,
    ReadView,
    TimelineEntry,
    TimelineView,
)
from domain import Call, replay
from domain.actions import CLEARANCE_ROLES
from domain.calendar import show as paris
from domain.calls import HolderType
from domain.deadlines import deadlines, next_of_each_kind
from domain.decider import available_commands
from domain.disclosure import ListScope, list_scope, may_know
from domain.errors import InvalidCommand
from domain.events import ClearanceGranted, Event
from domain.inputs import check_attachment, check_command
from domain.reading import LoggedRead, Purpose, Reading, Sight, event_shown, may_read, shown_actor, sight
from domain.state import DossierState, Status, dossier_id, is_dossier_id
from domain.tabs import TABS, parse_tab
from domain.text import visible
from domain.uploads import check_document
from journal.keys import KeyDestroyed, blind_index
from journal.store import ORDERS, DossierRow, InvalidCursor, ReadEntry, deadline_cursor
from workflows.dossier import CommandResult

PAGE_MAX = 500


async def submit(rt: Runtime, who: Principal, call_id: str, file: Path, now: datetime,
                 shown: str | None = None) -> CommandResult:
    """Create the dossier of a file and submit it; a second submission of the same reference finds
    the same dossier; the file is checked (size, texts, lists: `domain.inputs`) before anything starts.
    `shown` names the file in refusals (its path by default)."""
    prepared = load_dossier(file, shown)
    if prepared.call != call_id:
        raise InvalidCommand(f"{shown or file} est un dossier pour l’appel « {prepared.call} », pas « {call_id} ».")
    return await gateway.submit(rt.temporal(), rt.settings.task_queue, file, who.actor, now, who.origin)


async def command(rt: Runtime, who: Principal, dossier_id: str, name: str, options: Mapping[str, Any]) -> CommandResult:
    """Give the dossier a command by its name, with its options; the rules accept or refuse it. What
    no entry point may send (`domain.inputs`) is refused here, before it reaches Temporal."""
    _known_shape(dossier_id)
    order = commands.build(name, options, load_schemes() if name == "orient" else (), files=who.via == "cli")
    check_command(DossierState(), order, who.actor)
    try:
        return await gateway.send(rt.temporal(), dossier_id, order, who.actor, rt.store, rt.keys,
                                  rt.settings.task_queue, who.origin)
    except Refused as refused:
        if refused.code == "not_allowed":  # whoever may not know the dossier is not told it refused them
            await _known(rt, who, dossier_id, await current_state(rt, dossier_id), None)
        raise
    except NotFound:  # in the same words as a dossier the person may not know of: no telling them apart
        raise NotFound(f"Dossier inconnu « {dossier_id} ».") from None


async def available(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> list[CommandSpec]:
    """The commands this person may give the dossier now, with their options."""
    state = await current_state(rt, dossier_id)
    await _known(rt, who, dossier_id, state, now)
    typed = set(commands.typed_commands())
    return [commands.spec(n) for n in available_commands(state, who.actor, now) if n in typed]


async def show(rt: Runtime, who: Principal | None, dossier_id: str, now: datetime, as_of: datetime | None = None,
               all_deadlines: bool = False) -> DossierView:
    """The dossier as the person may see it, and what it waits for; `as_of`: as it stood then,
    replayed from the journal (today's rules decide who reads it)."""
    if as_of is not None and as_of > now:
        raise InvalidCommand(f"{paris(as_of)} est dans le futur : l’état d’un dossier n’est connu que jusqu’à "
                             f"maintenant ({paris(now)}).")
    current = await current_state(rt, dossier_id)
    past = await _as_of(rt, dossier_id, as_of) if as_of is not None else current
    what = f"content@{as_of.astimezone(UTC).strftime('%Y-%m-%dT%H:%MZ')}" if as_of is not None else None
    seen = sight(past, who.actor if who else None, Purpose.SHOW, rights=current, what=what)
    await _log(rt, dossier_id, who, seen, now)
    if not seen.allowed or seen.state is None:
        raise ReadRefused(f"Lecture refusée ({dossier_id}) : {seen.reason}.",
                          {"dossier_id": dossier_id, "content_granted": False, "reason": seen.reason},
                          _unknown(current, who, dossier_id))
    waiting = deadlines(past, past.call, as_of or now) if past.call else []
    shown = waiting if all_deadlines else next_of_each_kind(waiting)
    return DossierView(
        dossier_id=past.id, call_id=past.call.id if past.call else None,
        call_title=past.call.title if past.call else None, phase_id=past.phase_id, holder=past.holder,
        status=past.status, version=past.version, submitted_at=past.submitted_at,
        phase_closes_at=past.phase_closes_at, deadlines=shown, deadlines_hidden=len(waiting) - len(shown),
        content_granted=seen.content, reason=seen.reason, as_of=as_of, state=seen.state,
    )


async def history(rt: Runtime, who: Principal | None, dossier_id: str, now: datetime,
                  bodies: bool = False) -> HistoryView:
    """Who did what and when, reads included; event bodies (`bodies`) only for who may read them,
    and then the read is logged as a content read."""
    try:
        events = await gateway.history(rt.store, rt.keys, dossier_id)
        state = replay(events)
    except KeyDestroyed:
        events, state = [], await _metadata_state(rt, dossier_id)
    reader = who.actor if who else None
    seen = sight(state, reader, Purpose.HISTORY if bodies else Purpose.TIMELINE)
    await _log(rt, dossier_id, who, seen, now)
    if not seen.allowed:
        raise ReadRefused(f"Lecture refusée (historique de {dossier_id}) : {seen.reason}.",
                          {"dossier_id": dossier_id, "content_granted": False, "reason": seen.reason},
                          _unknown(state, who, dossier_id))
    granted = bodies and seen.content
    if events:
        shown = [EventView(seq=i, type=e.type, actor=shown_actor(reader, str(e.actor)), at=e.at,
                           body=_body(e) if bodies and event_shown(seen, reader, e.type) else None)
                 for i, e in enumerate(events, start=1)]
    else:
        shown = [EventView(seq=r.seq, type=r.type, actor=shown_actor(reader, r.actor), at=r.occurred_at)
                 for r in await rt.store.events(dossier_id)]
    reads = [ReadView(at=r.at, actor=shown_actor(reader, r.actor), what=r.what, via=r.via, granted=r.granted,
                      reason=r.reason) for r in await rt.store.reads(dossier_id)] if who else []
    return HistoryView(dossier_id=dossier_id, content_granted=granted, events=shown, reads=reads)


def _body(event: Event) -> dict[str, object]:
    body: dict[str, object] = event.model_dump(mode="json", exclude={"call"})
    return body


async def timeline(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> TimelineView:
    """Events and reads in the order they happened: metadata only, from the journal's clear
    columns, so it still reads after the content was destroyed."""
    rows = await rt.store.events(dossier_id)
    if not rows:
        raise NotFound(f"Dossier inconnu « {dossier_id} ».")
    state = await current_state(rt, dossier_id)  # the running workflow's, not the whole journal replayed
    seen = sight(state, who.actor, Purpose.TIMELINE)
    await _log(rt, dossier_id, who, seen, now)
    if not seen.allowed:
        raise ReadRefused(f"Lecture refusée (historique de {dossier_id}) : {seen.reason}.",
                          {"dossier_id": dossier_id, "entries": [], "reason": seen.reason},
                          _unknown(state, who, dossier_id))
    entries = [TimelineEntry(kind="event", at=r.occurred_at, actor=shown_actor(who.actor, r.actor), seq=r.seq,
                             type=r.type) for r in rows]
    entries += [TimelineEntry(kind="read", at=r.at, actor=shown_actor(who.actor, r.actor), what=r.what,
                              via=r.via, granted=r.granted, reason=r.reason)
                for r in await rt.store.reads(dossier_id)]
    return TimelineView(dossier_id=dossier_id, entries=sorted(entries, key=lambda x: x.at))


async def listing(rt: Runtime, now: datetime, call_id: str | None = None, status: str | None = None,
                  phase_id: str | None = None, overdue: bool = False, after: str | None = None,
                  limit: int | None = None, who: Principal | None = None, *, tab: str | None = None,
                  holder_type: str | None = None, territory: str | None = None, order: str = "id",
                  exact: bool = False) -> DossierPage:
    """The dossier list (ids, statuses, deadlines: no content), filtered, by dossier id (`order="id"`;
    a page continues after the id `next` of the previous one) or by next deadline (`order="deadline"`:
    earliest first, those without one last; `next` is an opaque cursor). With `who`, only the dossiers
    that person may know of (`domain.disclosure.list_scope`); without, the operator's whole list on the
    server. `territory` matches as the holder wrote it, case and spaces aside (through its blind index:
    the list keeps no territory in clear). `exact`: `next` only when more dossiers follow (one more is
    read to know it); otherwise a full page always has a `next`, which may lead to an empty page."""
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidCommand(f"Statut inconnu « {status} » ({', '.join(s.value for s in Status)}).")
    if limit is not None and not 1 <= limit <= PAGE_MAX:
        raise InvalidCommand(f"Une page compte de 1 à {PAGE_MAX} dossiers.")
    _check_filters(tab, holder_type, order)
    scope = _scope(rt, who)
    try:
        rows = await rt.store.dossiers(call_id=call_id, status=status, phase_id=phase_id,
                                       due_before=now if overdue else None, after=after,
                                       limit=limit + 1 if exact and limit is not None else limit,
                                       holder=scope.holder, call_ids=scope.call_ids, reviewer=scope.reviewer,
                                       tab=tab, holder_type=holder_type, order=order,
                                       territory_index=blind_index(rt.keys.keyring, "territory", territory)
                                       if territory and territory.strip() else None)
    except InvalidCursor as exc:
        raise InvalidCommand(f"Suite de liste inconnue « {visible(after or '')} » : {exc.message}.") from None
    more = exact and limit is not None and len(rows) > limit
    rows = rows[:limit] if more else rows
    items = [_item(r) for r in rows]
    full = limit is not None and len(items) == limit and (more or not exact)
    if not (full and rows):
        return DossierPage(items=items)
    return DossierPage(items=items, next=deadline_cursor(rows[-1]) if order == "deadline" else rows[-1].dossier_id)


def _check_filters(tab: str | None, holder_type: str | None, order: str) -> None:
    """Refuse, in French, a tab, a holder type or an order the list does not know."""
    if tab is not None and parse_tab(tab) is None:
        raise InvalidCommand(f"Onglet inconnu « {visible(tab)} » ({', '.join(t.value for t in TABS)}).")
    if holder_type is not None and holder_type not in {h.value for h in HolderType}:
        raise InvalidCommand(f"Type de porteur inconnu « {visible(holder_type)} » "
                             f"({', '.join(h.value for h in HolderType)}).")
    if order not in ORDERS:
        raise InvalidCommand(f"Ordre de liste inconnu « {visible(order)} » ({', '.join(ORDERS)}).")


def _scope(rt: Runtime, who: Principal | None) -> ListScope:
    """The part of the list the person may see (everything for the operator, `who` None)."""
    if who is None:
        return ListScope()
    from amiflow.services.calls import current

    scope = list_scope(who.actor, current(rt))
    if scope.refused is not None:
        raise ReadRefused(f"Liste refusée : {scope.refused}.")
    return scope


def _item(r: DossierRow) -> DossierItem:
    return DossierItem(dossier_id=r.dossier_id, call_id=r.call_id, phase_id=r.phase_id, holder=r.holder,
                       status=Status(r.status), version=r.version, next_deadline=r.next_deadline,
                       next_deadline_kind=r.next_deadline_kind, submitted_at=r.submitted_at,
                       updated_at=r.updated_at, tab=parse_tab(r.tab) if r.tab else None,
                       holder_type=r.holder_type)


UPCOMING_DAYS = 7
UPCOMING_MAX = 100


async def overview(rt: Runtime, who: Principal, now: datetime) -> Overview:
    """A person's home page: the calls whose dossiers they may list, with the count per tab, and the
    dossiers whose next deadline falls within the next 7 days (`now` included, at most 100, soonest
    first), with the phases of those calls that close in that window. Same scope as the list: a
    holder's and a reviewer's calls are those they have a dossier in."""
    from amiflow.services.calls import current

    scope = _scope(rt, who)
    calls = [c for c in current(rt) if scope.call_ids is None or c.id in scope.call_ids]
    counts = await rt.store.tab_counts(scope.call_ids, holder=scope.holder, reviewer=scope.reviewer)
    own = scope.holder is not None or scope.reviewer is not None
    summaries = [CallSummary(call_id=c.id, title=c.title, counts={t.value: counts.get(c.id, {}).get(t.value, 0)
                                                                   for t in TABS},
                             total=sum(counts.get(c.id, {}).values()),
                             statuses={} if own else _in_order(await rt.store.call_counts(c.id)))
                 for c in calls if not own or c.id in counts]
    ends = now + timedelta(days=UPCOMING_DAYS)
    rows = await rt.store.dossiers(holder=scope.holder, call_ids=scope.call_ids, reviewer=scope.reviewer,
                                   due_from=now, due_before=ends + timedelta(microseconds=1), order="deadline",
                                   limit=UPCOMING_MAX)
    listed = {s.call_id for s in summaries}
    closings = [PhaseClosing(call_id=c.id, call_title=c.title, phase_id=p.id, label=p.label, closes_at=p.closes_at)
                for c in await _running([c for c in calls if c.id in listed], rt) for p in c.phases
                if now <= p.closes_at <= ends]
    return Overview(calls=summaries, upcoming=[_item(r) for r in rows],
                    closings=sorted(closings, key=lambda x: (x.closes_at, x.call_id, x.phase_id)), window_ends=ends)


def _in_order(counts: Mapping[str, int]) -> dict[str, int]:
    """The statuses that have dossiers, in the lifecycle's order."""
    return {s.value: counts[s.value] for s in Status if counts.get(s.value)}


async def _running(calls: list[Call], rt: Runtime) -> list[Call]:
    """The calls as they stand in their workflows (extensions included); as loaded from their files
    when Temporal is not reached or a call's workflow is not running."""
    from amiflow.services.calls import running

    return [await running(rt, call) for call in calls]


async def save_draft(rt: Runtime, who: Principal, call_id: str, phase_id: str, reference: str,
                     content: Mapping[str, Any], now: datetime, *, new: bool = False) -> CommandResult:
    """Save a holder's draft without submitting it (the first save starts it, later ones send
    `update-draft`); the content is checked by the same rules as a submission (`domain.inputs`).
    Submitting is then the `submit` command (`command(rt, who, id, "submit", {})`). `new`: start a
    dossier only, refused (DraftExists) when the reference already has one."""
    prepared = dossier_from({"call": call_id, "phase": phase_id, "reference": reference, "content": dict(content)},
                            "brouillon")
    try:
        return await gateway.save_draft(rt.temporal(), rt.settings.task_queue, prepared, who.actor, now, who.origin,
                                        rt.store, rt.keys, new=new)
    except Refused as refused:
        if refused.code in ("not_allowed", DraftExists.code):  # another holder's: not told it exists
            ident = dossier_id(call_id, reference)
            await _known(rt, who, ident, await current_state(rt, ident), None)
        raise


async def attach(rt: Runtime, who: Principal, dossier_id: str, file: Path) -> AttachView:
    """Seal a file into the vault and attach it; a refused attachment leaves no file behind. The
    dossier's documents (count, total size) are checked before the file is read."""
    _known_shape(dossier_id)
    size = file.stat().st_size if file.is_file() else 0
    check_attachment(await current_state(rt, dossier_id), size, file.name)
    ref, result = await gateway.attach(rt.temporal(), rt.store, rt.vault, dossier_id, file, who.actor, who.origin)
    return AttachView(dossier_id=result.dossier_id, version=result.version, document=ref)


async def upload(rt: Runtime, who: Principal, dossier_id: str, file: Path, media_type: str) -> AttachView:
    """Attach a file received over the network (its name is `file.name`, its declared `media_type`),
    once the rules' limits on documents hold (`domain.uploads.check_document`)."""
    state = await current_state(rt, dossier_id)
    await _known(rt, who, dossier_id, state, None)
    check_document(file.name, media_type, file.stat().st_size, len(state.documents))
    return await attach(rt, who, dossier_id, file)


async def document(rt: Runtime, who: Principal, dossier_id: str, document_id: str, now: datetime) -> tuple[Any, bytes]:
    """A document's reference and bytes, if the rules let this person read the dossier's content;
    the read, granted or refused, is logged before anything is returned."""
    state = await current_state(rt, dossier_id)
    await _known(rt, who, dossier_id, state, now, what=f"document:{document_id}")
    ref = state.document(document_id)
    seen = sight(state, who.actor, Purpose.DOCUMENT, what=f"document:{ref.id if ref else visible(document_id)}")
    if not seen.content:  # refused whether the document exists or not: its ids are content too
        await _log(rt, dossier_id, who, seen, now)
        raise ReadRefused(f"Lecture refusée ({visible(document_id)} de {dossier_id}) : {seen.reason}.")
    if ref is None:
        known = ", ".join(d.id for d in state.documents) or "aucun"
        raise NotFound(f"Le dossier {dossier_id} n’a pas de document « {visible(document_id)} » (documents : {known}).")
    await _log(rt, dossier_id, who, seen, now)
    return ref, await rt.vault.fetch(dossier_id, ref)


async def clearances(rt: Runtime, who: Principal, dossier_id: str) -> list[ClearanceView] | None:
    """The clearances granted on the dossier (which auditor, why, by whom, when), for those who see
    them (`domain.actions.CLEARANCE_ROLES`); None for the others. Empty once the content was destroyed."""
    _known_shape(dossier_id)
    if who.actor.role not in CLEARANCE_ROLES:
        return None
    state = await current_state(rt, dossier_id)
    await _known(rt, who, dossier_id, state, None)
    if not state.clearances or state.content_destroyed_at is not None:  # the reasons are in the sealed events
        return []
    events = await gateway.history(rt.store, rt.keys, dossier_id)
    return [ClearanceView(auditor=e.auditor, reason=e.reason, by=shown_actor(who.actor, str(e.actor)), at=e.at)
            for e in events if isinstance(e, ClearanceGranted)]


def _known_shape(dossier_id: str) -> None:
    """An id that is not a dossier's (a line break, a path…) names no dossier: refused before Temporal."""
    if not is_dossier_id(dossier_id):
        raise NotFound(f"Dossier inconnu « {visible(dossier_id)} ».")


def _unknown(state: DossierState, who: Principal | None, dossier_id: str) -> NotFound | None:
    """What to answer instead of a refusal when the person may not know the dossier exists; an operator
    on the server's command line knows every dossier (and is told the rules' own refusal)."""
    if who is None or may_know(state, who.actor, operator=who.via == "cli"):
        return None
    return NotFound(f"Dossier inconnu « {dossier_id} ».")


async def _known(rt: Runtime, who: Principal, dossier_id: str, state: DossierState, now: datetime | None,
                 what: str = "commands") -> None:
    """Refuse, as if it did not exist, a dossier the person may not know of; with `now`, that
    attempt is logged as a refused read."""
    unknown = _unknown(state, who, dossier_id)
    if unknown is None:
        return
    reason = may_read(state, who.actor, Reading.HISTORY).reason
    if now is not None:
        refused = Sight(allowed=False, content=False, reviews=False, reason=reason, state=None,
                        logged=(LoggedRead(what=what, granted=False, reason=reason),))
        await _log(rt, dossier_id, who, refused, now)
    raise ReadRefused(f"Refusé ({dossier_id}) : {reason}.", unknown=unknown)


async def known_state(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> DossierState:
    """The dossier now, whole, for a use case that decides what of it to show; refused as if it did
    not exist to whoever may not know of it (that attempt logged as a refused read)."""
    _known_shape(dossier_id)
    state = await current_state(rt, dossier_id)
    await _known(rt, who, dossier_id, state, now)
    return state


async def current_state(rt: Runtime, dossier_id: str) -> DossierState:
    """The dossier now, whole (no reader's view: a use case decides what to show): from its workflow
    while it runs, else from the journal (metadata only once its content was destroyed)."""
    try:
        if rt.client is None:
            return replay(await gateway.history(rt.store, rt.keys, dossier_id))
        return await gateway.state(rt.client, rt.store, rt.keys, dossier_id)
    except KeyDestroyed:
        return await _metadata_state(rt, dossier_id)


async def _as_of(rt: Runtime, dossier_id: str, instant: datetime) -> DossierState:
    try:
        return await gateway.state_as_of(rt.store, rt.keys, dossier_id, instant)
    except KeyDestroyed:
        raise ReadRefused(f"Le contenu du dossier {dossier_id} a été détruit : son passé ne se rejoue plus.") from None


async def _metadata_state(rt: Runtime, dossier_id: str) -> DossierState:
    """What is left of a dossier whose keys were destroyed: its clear columns."""
    row = await rt.store.dossier(dossier_id)
    rows = await rt.store.events(dossier_id)
    if row is None or not rows:
        raise NotFound(f"Dossier inconnu « {dossier_id} ».")
    destroyed = next((r.occurred_at for r in reversed(rows) if r.type == "content_destroyed"), rows[-1].occurred_at)
    return DossierState(id=dossier_id, status=Status(row.status), phase_id=row.phase_id, holder=row.holder,
                        version=row.version, content_destroyed_at=destroyed)


async def _log(rt: Runtime, dossier_id: str, who: Principal | None, seen: Sight, now: datetime) -> None:
    """Write what the rules say counts as a read, before anything is shown."""
    if who is None:
        return
    for entry in seen.logged:
        await rt.store.record_read(ReadEntry(dossier_id=dossier_id, at=now, actor=str(who.actor), what=entry.what,
                                             via=who.provenance, granted=entry.granted, reason=entry.reason))
        logger(dossier_id=dossier_id, actor=str(who.actor)).info("read", what=entry.what, via=who.provenance,
                                                                 granted=entry.granted)
