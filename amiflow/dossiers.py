"""The dossiers' and calls' workflows as the service layer talks to them (start, command, query,
extend), and a dossier's events read back from the journal. No rule is decided here: the workflows
run the decider, and a refusal comes back as `Refused` with the decider's code and message; a
refused command writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from amiflow.catalogue import DossierFile, load_dossier, load_schemes
from amiflow.services import commands
from amiflow.services.errors import DraftExists, NotFound, Refused
from amiflow.vault import Vault
from domain import Actor, Call, DossierState, decide, dossier_id, replay
from domain.access import Origin
from domain.calendar import PARIS
from domain.commands import AttachDocument, Command, StartDraft, Submit, UpdateDraft
from domain.errors import DomainError, InvalidCommand
from domain.events import Event
from domain.state import DocumentRef, Status
from journal.keys import DossierKeys
from journal.sealing import open_event
from journal.store import JournalStore
from workflows.call import CallWorkflow, ExtendPhase, ExtensionResult, call_workflow_id
from workflows.dossier import CommandRequest, CommandResult, DossierInput, DossierWorkflow


def parse_instant(text: str) -> datetime:
    """A date or date-time typed by a person (see `amiflow.services.commands.parse_instant`)."""
    return commands.parse_instant(text)


def build_command(name: str, options: dict[str, str]) -> Command:
    """A decider command from its name and `--option value` pairs (the orientation's catalogue loaded)."""
    return commands.build(name, options, load_schemes() if name == "orient" else ())


async def call_definition(client: Client, call_id: str) -> Call:
    """The call as it stands in its workflow (with extensions)."""
    try:
        return await client.get_workflow_handle(call_workflow_id(call_id)).query(CallWorkflow.definition)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise NotFound(
                f"Appel inconnu « {call_id} » (ou refusé au démarrage : voir `amiflow calls validate`)."
            ) from None
        raise


async def submit(client: Client, task_queue: str, file: Path, actor: Actor,
                 now: datetime, origin: Origin | None = None) -> CommandResult:
    """Create the dossier from a file and submit it; a repeated submission finds the same dossier.

    The rules are checked before anything starts, so that a refused submission starts no workflow.
    """
    prepared = load_dossier(file)
    call = await call_definition(client, prepared.call)
    start = StartDraft(call=call, phase_id=prepared.phase, reference=prepared.reference,
                       content=prepared.content)
    ident = dossier_id(call.id, prepared.reference)
    handle = client.get_workflow_handle(ident)
    if await _exists(handle):
        state = await handle.query(DossierWorkflow.current)
        if state.status is not Status.DRAFT:
            return CommandResult(dossier_id=ident, status=state.status, version=state.version, events=[])
        return await send(client, ident, Submit(), actor, origin=origin)
    # Same rules, same instant: refuse here rather than start a workflow that would refuse.
    draft = replay(decide(DossierState(), start, actor, now))
    decide(draft, Submit(), actor, now)
    await _start_draft(client, task_queue, ident, start, actor, origin)
    return await send(client, ident, Submit(), actor, origin=origin)


async def save_draft(client: Client, task_queue: str, prepared: DossierFile, actor: Actor,
                     now: datetime, origin: Origin | None = None, store: JournalStore | None = None,
                     keys: DossierKeys | None = None, new: bool = False) -> CommandResult:
    """Save a holder's draft without submitting it: the first save starts the dossier (`start-draft`),
    each later one replaces its content (`update-draft`); the rules refuse what they refuse (a
    dossier already submitted, another holder's reference…; with `store` and `keys`, an ended dossier
    is refused in the rules' words, as `send` does). `new`: only a new dossier (a form that starts
    one must not overwrite the draft of the same reference), else DraftExists."""
    call = await call_definition(client, prepared.call)
    ident = dossier_id(call.id, prepared.reference)
    if await _exists(client.get_workflow_handle(ident)):
        if new:
            raise DraftExists(f"Un dossier de référence « {prepared.reference} » existe déjà sur cet appel : "
                              "ouvrez-le depuis « Mes dossiers », ou choisissez une autre référence.",
                              field="reference")
        return await send(client, ident, UpdateDraft(content=prepared.content), actor, store, keys, task_queue,
                          origin)
    start = StartDraft(call=call, phase_id=prepared.phase, reference=prepared.reference, content=prepared.content)
    decide(DossierState(), start, actor, now)  # refused here rather than by a workflow started for nothing
    return await _start_draft(client, task_queue, ident, start, actor, origin)


async def _start_draft(client: Client, task_queue: str, ident: str, start: StartDraft, actor: Actor,
                       origin: Origin | None) -> CommandResult:
    """Start the dossier's workflow with its `start-draft` command, in one call."""
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, DossierInput(dossier_id=ident), id=ident, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        result: CommandResult = await client.execute_update_with_start_workflow(
            DossierWorkflow.command, CommandRequest(command=start, actor=actor, origin=origin),
            start_workflow_operation=operation,
        )
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None
    return result


async def send(client: Client, ident: str, command: Command, actor: Actor,
               store: JournalStore | None = None, keys: DossierKeys | None = None,
               task_queue: str = "", origin: Origin | None = None) -> CommandResult:
    """Give a command to a running dossier.

    A dossier whose workflow has ended (closed, withdrawn, expired…) is read back from the journal
    when `store` and `keys` are given: the rules then either refuse, in their words, or accept a
    command that records a fact on a final dossier (an auditor's clearance), which a new run of the
    dossier's workflow, started from the journal's state, journals before it ends again.
    """
    handle = client.get_workflow_handle(ident)
    try:
        return await handle.execute_update(DossierWorkflow.command,
                                           CommandRequest(command=command, actor=actor, origin=origin))
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
    if store is not None and keys is not None:
        try:
            final = replay(await history(store, keys, ident))
        except InvalidCommand:
            final = None
        if final is not None:
            decide(final, command, actor, datetime.now(UTC))  # raises the rules' refusal
            return await _resume(client, task_queue, final, command, actor, origin)
    raise NotFound(f"Dossier inconnu ou terminé : « {ident} ».")


async def _resume(client: Client, task_queue: str, final: DossierState, command: Command,
                  actor: Actor, origin: Origin | None = None) -> CommandResult:
    # The new run reads the dossier from the journal itself: a worker never takes a state from a client.
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, DossierInput(dossier_id=final.id, resume=True), id=final.id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        return await client.execute_update_with_start_workflow(
            DossierWorkflow.command, CommandRequest(command=command, actor=actor, origin=origin),
            start_workflow_operation=operation,
        )
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None


async def extend(client: Client, call_id: str, phase_id: str, until: datetime,
                 actor: Actor) -> ExtensionResult:
    """Move a phase's closing later; every open dossier of the phase follows."""
    handle = client.get_workflow_handle(call_workflow_id(call_id))
    try:
        return await handle.execute_update(
            CallWorkflow.extend, ExtendPhase(phase_id=phase_id, until=until, actor=actor)
        )
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise NotFound(f"Appel inconnu « {call_id} ».") from None
        raise


async def _exists(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def _refused(exc: WorkflowUpdateFailedError) -> DomainError:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        details = cause.details
        field = details[0] if details and isinstance(details[0], str) else None
        return Refused(cause.message, cause.type or "refused", field=field)
    return Refused(str(cause or exc), "refused")


async def history(store: JournalStore, keys: DossierKeys, ident: str) -> list[Event]:
    """The dossier's events from the journal, in order, opened with the dossier's key."""
    rows = await store.events(ident)
    if not rows:
        raise NotFound(f"Dossier inconnu « {ident} ».")
    return [await open_event(keys, row) for row in rows]


async def state(client: Client, store: JournalStore, keys: DossierKeys, ident: str) -> DossierState:
    """The dossier's state: from its workflow while it runs, else replayed from the journal."""
    handle = client.get_workflow_handle(ident)
    try:
        return await handle.query(DossierWorkflow.current)
    except RPCError:
        return replay(await history(store, keys, ident))


async def state_as_of(store: JournalStore, keys: DossierKeys, ident: str, instant: datetime) -> DossierState:
    """The dossier as it stood at `instant`: the journal's events up to it, folded by the decider's own
    `replay` (with the call snapshot those events carry)."""
    found = [e for e in await history(store, keys, ident) if e.at <= instant]
    if not found:
        raise InvalidCommand(f"Le dossier {ident} n’existait pas encore le {instant.astimezone(PARIS):%Y-%m-%d %H:%M} "
                             "(heure de Paris).")
    return replay(found)


async def attach(client: Client, store: JournalStore, vault: Vault, ident: str, file: Path,
                 actor: Actor, origin: Origin | None = None) -> tuple[DocumentRef, CommandResult]:
    """Seal a file into the vault and attach it to the dossier; a refused attachment leaves no file."""
    ref = await vault.store(ident, file)
    try:
        result = await send(client, ident, AttachDocument(document=ref), actor, store, vault.keys, origin=origin)
    except BaseException:
        vault.discard(ident, ref)
        raise
    return ref, result


async def start_calls(client: Client, task_queue: str, calls: Sequence[Call]) -> list[str]:
    """Start each call's workflow, or find it running (its extensions are kept)."""
    from workflows.call import CallInput

    started = []
    for call in calls:
        await client.start_workflow(
            CallWorkflow.run, CallInput(call=call), id=call_workflow_id(call.id), task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        started.append(call.id)
    return started
