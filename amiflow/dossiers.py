"""What people do with dossiers, against a running stack: the use cases behind the CLI.

Each function turns a request into a command of the decider and sends it to the dossier's workflow,
or reads the journal. A refusal comes back as a `DomainError` with the decider's message; a refused
command writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)  # fmt: skip
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.journal import open_event
from activities.schema import dossiers, events
from amiflow.catalogue import load_dossier, load_schemes
from amiflow.keys import DossierKeys
from amiflow.reads import authorise
from amiflow.vault import Vault
from domain import Actor, Call, DossierState, decide, dossier_id, replay
from domain.calendar import PARIS, start_of_day
from domain.dossier import AttachDocument, Command, DocumentRef, Event, StartDraft, Status, Submit
from domain.errors import DomainError, InvalidCommand, NotAllowed
from domain.reading import Reading
from workflows.call import CallWorkflow, ExtendPhase, ExtensionResult, call_workflow_id
from workflows.dossier import CommandRequest, CommandResult, DossierInput, DossierWorkflow

COMMAND = TypeAdapter(Command)
EVENT = TypeAdapter(Event)
COMMAND_TYPES: dict[str, type[Any]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Command)[0])
}


class Refused(DomainError):
    """A refusal that came back from a workflow (its code is the decider's)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def parse_instant(text: str) -> datetime:
    """A date or date-time typed by a person. A date alone means 00:00 Paris time that day — the
    instant before which something is due, as in the calls; a time without offset is Paris time."""
    try:
        if len(text) == 10:
            return start_of_day(datetime.fromisoformat(text).date())
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCommand(f"« {text} » n’est pas une date (AAAA-MM-JJ ou AAAA-MM-JJTHH:MM).") from None
    return value if value.tzinfo else value.replace(tzinfo=PARIS)


def build_command(name: str, options: dict[str, str]) -> Command:
    """A decider command from its CLI name and `--option value` pairs (lists comma-separated,
    scores as `criterion=score,…`, dates as AAAA-MM-JJ)."""
    cls = COMMAND_TYPES.get(name)
    if cls is None or name == "start-draft":
        known = ", ".join(sorted(n for n in COMMAND_TYPES if n != "start-draft"))
        raise InvalidCommand(f"Commande inconnue « {name} » (commandes : {known}).")
    fields = cls.model_fields
    data: dict[str, Any] = {"type": name}
    for key, raw in options.items():
        field = key.replace("-", "_")
        if field not in fields or field == "type":
            allowed = ", ".join("--" + f.replace("_", "-") for f in fields if f != "type") or "aucune"
            raise InvalidCommand(f"Option inconnue --{key} pour « {name} » (options : {allowed}).")
        annotation = str(fields[field].annotation)
        if field in ("due", "until"):
            data[field] = parse_instant(raw)
        elif field == "scores":
            data[field] = _pairs(raw)
        elif "tuple" in annotation:
            data[field] = tuple(v.strip() for v in raw.split(",") if v.strip())
        else:
            data[field] = raw
    if name == "orient":
        data["catalogue"] = load_schemes()
    try:
        return COMMAND.validate_python(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or name
        raise InvalidCommand(f"« {name} » : --{where.replace('_', '-')} : {err['msg']}.") from None


def _pairs(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise InvalidCommand(f"« {part} » : écrivez critère=note, par exemple solutions=4.")
        out[key.strip()] = int(value)
    return out


async def call_definition(client: Client, call_id: str) -> Call:
    """The call as it stands in its workflow (with extensions)."""
    try:
        return await client.get_workflow_handle(call_workflow_id(call_id)).query(CallWorkflow.definition)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise InvalidCommand(
                f"Appel inconnu « {call_id} » (ou refusé au démarrage : voir `amiflow calls validate`)."
            ) from None
        raise


async def submit(client: Client, task_queue: str, file: Path, actor: Actor,
                 now: datetime) -> CommandResult:  # fmt: skip
    """Create the dossier from a file and submit it; a repeated submission finds the same dossier.

    The rules are checked before anything starts, so that a refused submission starts no workflow.
    """
    prepared = load_dossier(file)
    call = await call_definition(client, prepared.call)
    start = StartDraft(call=call, phase_id=prepared.phase, reference=prepared.reference,
                       content=prepared.content)  # fmt: skip
    ident = dossier_id(call.id, prepared.reference)
    handle = client.get_workflow_handle(ident)
    if await _exists(handle):
        state = await handle.query(DossierWorkflow.current)
        if state.status is not Status.DRAFT:
            return CommandResult(dossier_id=ident, status=state.status, version=state.version, events=[])
        return await send(client, ident, Submit(), actor)
    # Same rules, same instant: refuse here rather than start a workflow that would refuse.
    draft = replay(decide(DossierState(), start, actor, now))
    decide(draft, Submit(), actor, now)
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, DossierInput(dossier_id=ident), id=ident, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )  # fmt: skip
    try:
        await client.execute_update_with_start_workflow(
            DossierWorkflow.command, CommandRequest(command=start, actor=actor),
            start_workflow_operation=operation,
        )  # fmt: skip
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None
    return await send(client, ident, Submit(), actor)


async def send(client: Client, ident: str, command: Command, actor: Actor,
               engine: AsyncEngine | None = None, keys: DossierKeys | None = None,
               task_queue: str = "") -> CommandResult:  # fmt: skip
    """Give a command to a running dossier.

    A dossier whose workflow has ended (closed, withdrawn, expired…) is read back from the journal
    when `engine` and `keys` are given: the rules then either refuse, in their words, or accept a
    command that records a fact on a final dossier (an auditor's clearance), which a new run of the
    dossier's workflow, started from the journal's state, journals before it ends again.
    """
    handle = client.get_workflow_handle(ident)
    try:
        return await handle.execute_update(DossierWorkflow.command,
                                           CommandRequest(command=command, actor=actor))  # fmt: skip
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
    if engine is not None and keys is not None:
        try:
            final = replay(await history(engine, keys, ident))
        except InvalidCommand:
            final = None
        if final is not None:
            decide(final, command, actor, datetime.now(UTC))  # raises the rules' refusal
            return await _resume(client, task_queue, final, command, actor)
    raise InvalidCommand(f"Dossier inconnu ou terminé : « {ident} ».")


async def _resume(client: Client, task_queue: str, final: DossierState, command: Command,
                  actor: Actor) -> CommandResult:  # fmt: skip
    # The new run reads the dossier from the journal itself: a worker never takes a state from a client.
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, DossierInput(dossier_id=final.id, resume=True), id=final.id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )  # fmt: skip
    try:
        return await client.execute_update_with_start_workflow(
            DossierWorkflow.command, CommandRequest(command=command, actor=actor),
            start_workflow_operation=operation,
        )  # fmt: skip
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc) from None


async def extend(client: Client, call_id: str, phase_id: str, until: datetime,
                 actor: Actor) -> ExtensionResult:  # fmt: skip
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
            raise InvalidCommand(f"Appel inconnu « {call_id} ».") from None
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
        return Refused(cause.message, cause.type or "refused")
    return Refused(str(cause or exc), "refused")


async def history(engine: AsyncEngine, keys: DossierKeys, ident: str) -> list[Event]:
    """The dossier's events from the journal, in order, opened with the dossier's key."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(events.c.dossier_id, events.c.seq, events.c.key_id, events.c.sealed, events.c.payload)
            .where(events.c.dossier_id == ident).order_by(events.c.seq)
        )).all()  # fmt: skip
    if not rows:
        raise InvalidCommand(f"Dossier inconnu « {ident} ».")
    return [await open_event(keys, row) for row in rows]


async def metadata(engine: AsyncEngine, ident: str) -> list[dict[str, Any]]:
    """The dossier's events as the journal keeps them in clear — seq, type, actor, instant — readable
    without any key, even after the content was destroyed."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(events.c.seq, events.c.type, events.c.actor, events.c.occurred_at)
                                  .where(events.c.dossier_id == ident).order_by(events.c.seq))  # fmt: skip
        found = [dict(r._mapping) for r in rows]
    if not found:
        raise InvalidCommand(f"Dossier inconnu « {ident} ».")
    return found


async def state(client: Client, engine: AsyncEngine, keys: DossierKeys, ident: str) -> DossierState:
    """The dossier's state: from its workflow while it runs, else replayed from the journal."""
    handle = client.get_workflow_handle(ident)
    try:
        return await handle.query(DossierWorkflow.current)
    except RPCError:
        return replay(await history(engine, keys, ident))


async def state_as_of(engine: AsyncEngine, keys: DossierKeys, ident: str, instant: datetime) -> DossierState:
    """The dossier as it stood at `instant`: the journal's events up to it, folded by the decider's own
    `replay` (with the call snapshot those events carry)."""
    found = [e for e in await history(engine, keys, ident) if e.at <= instant]
    if not found:
        raise InvalidCommand(f"Le dossier {ident} n’existait pas encore le {instant.astimezone(PARIS):%Y-%m-%d %H:%M} "
                             "(heure de Paris).")  # fmt: skip
    return replay(found)


async def attach(client: Client, engine: AsyncEngine, vault: Vault, ident: str, file: Path,
                 actor: Actor) -> tuple[DocumentRef, CommandResult]:  # fmt: skip
    """Seal a file into the vault and attach it to the dossier; a refused attachment leaves no file."""
    ref = await vault.store(ident, file)
    try:
        result = await send(client, ident, AttachDocument(document=ref), actor, engine, vault.keys)
    except BaseException:
        vault.discard(ident, ref)
        raise
    return ref, result


async def document(client: Client, engine: AsyncEngine, vault: Vault, ident: str, document_id: str,
                   actor: Actor, now: datetime) -> tuple[DocumentRef, bytes]:  # fmt: skip
    """A document's bytes for `actor`, if the rules let them read the dossier's content; the read,
    granted or refused, is in the read log before anything is returned."""
    current = await state(client, engine, vault.keys, ident)
    ref = current.document(document_id)
    if ref is None:
        known = ", ".join(d.id for d in current.documents) or "aucun"
        raise InvalidCommand(f"Le dossier {ident} n’a pas de document « {document_id} » (documents : {known}).")
    decision = await authorise(engine, current, actor, Reading.CONTENT, "cli", now, f"document:{ref.id}")
    if not decision.granted:
        raise NotAllowed(f"Lecture refusée ({ref.id} de {ident}) : {decision.reason}.")
    return ref, await vault.fetch(ident, ref)


async def listing(engine: AsyncEngine, call_id: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The dossier list projection, filtered."""
    query = select(dossiers).order_by(dossiers.c.call_id, dossiers.c.dossier_id)
    if call_id:
        query = query.where(dossiers.c.call_id == call_id)
    if status:
        query = query.where(dossiers.c.status == status)
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def start_calls(client: Client, task_queue: str, calls: Sequence[Call]) -> list[str]:
    """Start each call's workflow, or find it running (its extensions are kept)."""
    from workflows.call import CallInput

    started = []
    for call in calls:
        await client.start_workflow(
            CallWorkflow.run, CallInput(call=call), id=call_workflow_id(call.id), task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )  # fmt: skip
        started.append(call.id)
    return started
