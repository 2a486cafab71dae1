"""Use cases on calls: the catalogue as loaded (and the files it refused), a call's staff pages, and a
phase's extension (with its preview)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.catalogue import CallSet, load_calls
from amiflow.services.errors import NotFound, ReadRefused
from amiflow.services.principal import Principal
from amiflow.services.views import CallDesk, CallView, ExtensionPreview, PhaseView, RefusedCallFile
from domain import Call
from domain.calls import Phase, extend_phase
from domain.decider import check_open, open_phases
from domain.disclosure import desk_refusal
from domain.errors import MISSING, CallDefinitionError
from domain.state import FINAL_STATUSES
from domain.tabs import TABS
from domain.text import visible
from workflows.call import ExtensionResult


def catalogue(paths: list[Path] | None = None, calls_dir: Path | None = None) -> CallSet:
    """The call files (`paths`, else `calls_dir`, else deploy/calls), loaded and checked: the calls, and
    those refused with their error.

    Raises:
        NotFound: a path given does not exist, or no call file is there.
    """
    missing = [p for p in paths or () if not p.exists()]
    if missing:
        raise NotFound("Introuvable : " + ", ".join(str(p) for p in missing))
    found = load_calls(paths or ([calls_dir] if calls_dir else ()))
    if not found.calls and not found.refused:
        raise NotFound("Aucun fichier d’appel (*.yaml) trouvé.")
    return found


async def extend(rt: Runtime, who: Principal, call_id: str, phase_id: str, until: datetime) -> ExtensionResult:
    """Move a phase's closing later; every open dossier of the phase follows (the call's workflow
    refuses what the rules refuse: `domain.calls.extend_phase`)."""
    return await gateway.extend(rt.temporal(), call_id, phase_id, until, who.actor)


async def extension_preview(rt: Runtime, who: Principal, call_id: str, phase_id: str, until: datetime,
                            now: datetime | None = None) -> ExtensionPreview:
    """How many open dossiers of the phase an extension to `until` would touch, refused as `extend`
    would refuse it (who may not extend, an unknown phase, a closing not later than the current one or
    in the past: `domain.calls.extend_phase`, on the call as it stands in its workflow)."""
    call = await gateway.call_definition(rt.temporal(), call_id)
    phase = call.phase(phase_id)
    extend_phase(call, phase_id, until, who.actor, now or datetime.now(UTC))
    assert phase is not None  # extend_phase refuses an unknown phase
    final = [s.value for s in FINAL_STATUSES]
    touched = await rt.store.open_dossiers(call.id, phase_id, final)
    return ExtensionPreview(call_id=call.id, phase_id=phase_id, closes_at=phase.closes_at, until=until,
                            dossiers=len(touched))


_LOADED: dict[tuple[tuple[str, int, int], ...], CallSet] = {}


def current(rt: Runtime) -> list[Call]:
    """The calls of the runtime's call files, loaded again only when a file changed (a server reads
    them at every list)."""
    return _loaded(rt).calls


def _loaded(rt: Runtime) -> CallSet:
    """The runtime's call files as loaded: the calls and the files refused (cached until a file changes)."""
    from amiflow.catalogue import call_files

    dirs = [rt.settings.calls_dir] if rt.settings.calls_dir else []
    files = call_files(tuple(dirs))
    stamp = tuple((str(f), *_stat(f)) for f in files)
    if stamp not in _LOADED:
        _LOADED.clear()
        _LOADED[stamp] = load_calls(files)
    return _LOADED[stamp]


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def view(call: Call, now: datetime | None = None) -> CallView:
    """A call as people read it: its id, title and phases (with why a date was assumed; with `now`,
    whether each phase is open then)."""
    return CallView(id=call.id, title=call.title, phases=[
        PhaseView(id=p.id, kind=p.kind.value, label=p.label, opens_at=p.opens_at, closes_at=p.closes_at,
                  opens_assumed=p.opens_assumed, closes_assumed=p.closes_assumed,
                  open=p.is_open(now) if now is not None else None)
        for p in call.phases])


def listing(rt: Runtime) -> list[CallView]:
    """The calls of the call files, as loaded (the phases as written; a call's own reads its extensions)."""
    return [view(c) for c in current(rt)]


async def show(rt: Runtime, call_id: str) -> CallView:
    """A call as it stands in its workflow: its phases with their extensions."""
    return view(await gateway.call_definition(rt.temporal(), call_id))


async def running(rt: Runtime, call: Call) -> Call:
    """The call as it stands in its workflow (extensions included); as loaded from its file when
    Temporal is not reached or the call's workflow is not running."""
    if rt.client is None:
        return call
    try:
        return await gateway.call_definition(rt.client, call.id)
    except NotFound:
        return call


def refused_files(rt: Runtime, who: Principal) -> list[RefusedCallFile]:
    """The call files the catalogue refused, each with its error, for the staff's home page.

    Raises:
        ReadRefused: the person is not staff (`domain.disclosure.desk_refusal`).
    """
    refusal = desk_refusal(who.actor)
    if refusal is not None:
        raise ReadRefused(f"Refusé : {refusal.reason}.")
    return [_refused(e) for e in _loaded(rt).refused]


def _refused(error: CallDefinitionError) -> RefusedCallFile:
    value = None if error.value is MISSING else error.value
    shown = value if value is None or isinstance(value, str) else repr(value)
    return RefusedCallFile(file=error.source, call_id=Path(error.source).stem, path=error.path, value=shown,
                           error=error.message,
                           problem=error.problem, advice=error.advice)


def refused_file(rt: Runtime, who: Principal, call_id: str) -> RefusedCallFile | None:
    """The refused call file that would define `call_id`, for the call's page (None if there is none).

    Raises:
        ReadRefused: the person is not staff.
    """
    return next((f for f in refused_files(rt, who) if f.call_id == call_id), None)


async def desk(rt: Runtime, who: Principal, call_id: str, now: datetime) -> CallDesk:
    """A call as its staff work on it: the call as it runs (phases open at `now` marked), and the
    count of its dossiers per tab. Only the staff in charge of the call may (`domain.disclosure.desk_refusal`);
    staff of another call are answered as if the call did not exist.

    Raises:
        NotFound: no such call in the call files. ReadRefused: the person may not work on it (with
            `unknown` set for staff of another call).
    """
    call = next((c for c in current(rt) if c.id == call_id), None)
    if call is None:
        raise NotFound(f"Appel inconnu « {visible(call_id)} ».")
    refusal = desk_refusal(who.actor, call)
    if refusal is not None:
        unknown = NotFound(f"Appel inconnu « {call.id} ».") if refusal.unknown else None
        raise ReadRefused(f"Refusé ({call.id}) : {refusal.reason}.", unknown=unknown)
    counts = (await rt.store.tab_counts([call.id])).get(call.id, {})
    return CallDesk(call=view(await running(rt, call), now), counts={t.value: counts.get(t.value, 0) for t in TABS},
                    total=sum(counts.values()))
async def open_for_deposit(rt: Runtime, now: datetime) -> list[CallView]:
    """The calls a holder may start a dossier on now: those running (as their workflows hold them,
    extensions included) with a phase open at `now`; each with only its open phases."""
    found = []
    for call in current(rt):
        try:
            running = await gateway.call_definition(rt.temporal(), call.id)
        except NotFound:  # a call file whose workflow is not started takes no dossier
            continue
        phases = open_phases(running, now)
        if phases:
            found.append(view(running.model_copy(update={"phases": phases})))
    return found


async def for_draft(rt: Runtime, call_id: str, phase_id: str, now: datetime) -> tuple[Call, Phase]:
    """The call (as it runs) and its phase a holder starts a draft on, if that phase is open now.

    Raises:
        NotFound: no such call running, or no such phase.
        PhaseClosed: the phase is not open at `now`.
    """
    call = await gateway.call_definition(rt.temporal(), call_id)
    phase = call.phase(phase_id)
    if phase is None:
        raise NotFound(f"L’appel « {call_id} » n’a pas de phase « {phase_id} ».")
    check_open(phase, now)
    return call, phase
