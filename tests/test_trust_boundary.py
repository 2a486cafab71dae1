"""Temporal's frontend is a trust boundary: attacks by whoever can reach it, on the real dev server
and PostgreSQL. The attacker holds a plain client (pydantic JSON, no keyring); each attack is refused
and leaves the dossier's journal (its `events` rows) exactly as it was. Where the codec is the first
wall, the same attack is also made sealed — by a client holding the keyring, as a compromised CLI
would — to show that the workflows and the journal refuse it by themselves too."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import READ_CALL, AppendEvents, LoadDossier
from activities.journal import JournalActivities
from amiflow.catalogue import CALLS_DIR, load_call, load_dossier
from amiflow.codec import ENCODING, REFUSED, EnvelopeCodec, data_converter
from amiflow.dossiers import build_command, call_definition, history, send, start_calls, submit
from domain import Actor, decide, dossier_id, replay
from domain.commands import Acknowledge, StartDraft
from domain.state import Status
from tests.conftest import Stack
from workflows.dossier import CommandRequest, DossierInput, DossierWorkflow, PhaseExtended

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER = Actor.parse("holder:acme")
STAFF = Actor.parse("staff:amelie")  # a real staff member of the PMCB call
MALLORY = Actor.parse("staff:mallory")
WAIT = 60.0  # seconds: an attack that hangs instead of being refused fails the test


async def attacker(stack: Stack) -> Client:
    """A plain client: the frontend's address and the namespace, no keyring, no codec."""
    return await Client.connect(stack.client.service_client.config.target_host, namespace=stack.namespace,
                                data_converter=pydantic_data_converter)


async def journal(stack: Stack, ident: str) -> list[tuple[Any, ...]]:
    """The dossier's `events` rows, every column, in order."""
    async with stack.engine.connect() as conn:
        rows = await conn.execute(text("select * from events where dossier_id = :d order by seq"), {"d": ident})
        return [tuple(r) for r in rows]


async def submitted(stack: Stack) -> str:
    """The PMCB example, submitted through the CLI's path: a real dossier with a running workflow."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")])
        return (await submit(stack.client, stack.task_queue, EXAMPLE, HOLDER, datetime.now(UTC))).dossier_id


async def settled(handle: WorkflowHandle[Any, Any], after: int) -> None:
    """Wait until the workflow has handled what arrived after event `after`: its last workflow task
    completed, nothing pending."""
    for _ in range(200):
        events = [e async for e in handle.fetch_history_events()]
        described = await handle.describe()
        if (len(events) > after and events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                and not described.raw_description.pending_activities):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow did not settle")


async def asked_the_call(handle: WorkflowHandle[Any, Any]) -> int:
    """How many times the dossier's workflow read its call (activity `calls.read`)."""
    return len([e async for e in handle.fetch_history_events()
                if e.HasField("activity_task_scheduled_event_attributes")
                and e.activity_task_scheduled_event_attributes.activity_type.name == READ_CALL])


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    return len([e async for e in handle.fetch_history_events()])


async def forged_start(client: Client, stack: Stack, ident: str, start: DossierInput, request: CommandRequest) -> None:
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, start, id=ident, task_queue=stack.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await asyncio.wait_for(client.execute_update_with_start_workflow(
        DossierWorkflow.command, request, start_workflow_operation=operation), WAIT)


# --- 1. a forged state ---------------------------------------------------------------------------


async def test_a_forged_state_is_refused(stack: Stack) -> None:
    """A finished dossier, reopened by a start that brings its own state (the attacker on the call's
    staff): nothing is journaled. A client with the keyring fares no better: the workflow takes a
    state only from its own continue-as-new."""
    ident = await submitted(stack)
    await send(stack.client, ident, build_command("withdraw", {"reason": "Projet abandonné."}), HOLDER)
    assert (await stack.client.get_workflow_handle(ident).result()) is not None
    before = await journal(stack, ident)
    real = replay(await history(stack.store, stack.keys, ident))
    assert real.status is Status.WITHDRAWN and real.call is not None
    forged = real.model_copy(update={"status": Status.SUBMITTED,
                                     "call": real.call.model_copy(update={"staff": ("mallory",)})})
    request = CommandRequest(command=Acknowledge(), actor=MALLORY)

    plain = await attacker(stack)
    with pytest.raises(Exception):  # noqa: B017,PT011 — refused, however the SDK words it
        await forged_start(plain, stack, ident, DossierInput(dossier_id=ident, state=forged), request)
    run = await stack.client.get_workflow_handle(ident).describe()
    assert run.status is WorkflowExecutionStatus.FAILED  # the start's input was not sealed: refused
    assert await journal(stack, ident) == before

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await forged_start(stack.client, stack, ident, DossierInput(dossier_id=ident, state=forged), request)
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "Untrusted"
    assert "se lit au journal" in refused.value.cause.message
    assert (await stack.client.get_workflow_handle(ident).describe()).status is WorkflowExecutionStatus.FAILED
    assert await journal(stack, ident) == before

    # The legitimate reopening (an auditor's clearance on a final dossier) still works: the new run
    # reads the state from the journal itself.
    clearance = build_command("grant-clearance", {"auditor": "odile", "reason": "Contrôle FEDER"})
    result = await send(stack.client, ident, clearance, STAFF, stack.store, stack.keys, stack.task_queue)
    assert result.status is Status.WITHDRAWN and result.events == ["clearance_granted"]
    after = await journal(stack, ident)
    assert after[: len(before)] == before and len(after) == len(before) + 1


# --- 2. a forged call snapshot -------------------------------------------------------------------


async def test_a_forged_call_snapshot_is_not_believed(stack: Stack) -> None:
    """A draft started with a call that closes in 2099 and keeps nothing (retention -1, as JSON the
    model would refuse to build): the plain client is refused; a sealed one gets a draft under the
    call as its workflow holds it."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")])
    real = await call_definition(stack.client, "hdf-pmcb-reemploi")
    late = datetime(2099, 1, 1, tzinfo=UTC)
    forged = real.model_copy(update={"retention_years": -1, "staff": ("mallory",), "phases": tuple(
        p.model_copy(update={"closes_at": late}) for p in real.phases)})
    content = load_dossier(EXAMPLE).content
    reference = "Forged snapshot"
    ident = dossier_id(real.id, reference)
    request = CommandRequest(command=StartDraft(call=forged, phase_id="unique", reference=reference, content=content),
                             actor=HOLDER)

    plain = await attacker(stack)
    with pytest.raises(Exception):  # noqa: B017,PT011
        await forged_start(plain, stack, ident, DossierInput(dossier_id=ident), request)
    assert await journal(stack, ident) == []

    assert (await stack.client.get_workflow_handle(ident).describe()).status is WorkflowExecutionStatus.FAILED
    await forged_start(stack.client, stack, ident, DossierInput(dossier_id=ident), request)
    [started] = await history(stack.store, stack.keys, ident)
    assert started.type == "draft_started"
    assert started.call == real  # type: ignore[union-attr]
    assert started.call.retention_years == 10 and started.call.phases[0].closes_at < late  # type: ignore[union-attr]


# --- 3. a foreign dossier id in a journal batch --------------------------------------------------


async def test_a_batch_for_another_dossier_is_refused_by_the_journal(stack: Stack) -> None:
    """The journal's activity writes (and reads) only the dossier its workflow is: a batch naming a
    real dossier from another workflow is refused, not retried, and writes nothing."""
    ident = await submitted(stack)
    before = await journal(stack, ident)
    state = replay(await history(stack.store, stack.keys, ident))
    assert state.call is not None
    forged = Acknowledge()
    events = decide(state, forged, STAFF, datetime.now(UTC))
    after = replay(events, state)
    batch = AppendEvents(dossier_id=ident, workflow_id="hdf-pmcb-reemploi.mallory", first_seq=state.version + 1,
                         events=events, call_id=state.call.id, phase_id=after.phase_id, holder=after.holder,
                         status=after.status, version=after.version)
    journal_activities = JournalActivities(stack.store, stack.keys)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="hdf-pmcb-reemploi.mallory")
    with pytest.raises(ApplicationError) as refused:
        await env.run(journal_activities.append, batch)
    assert refused.value.type == "ForeignDossier" and refused.value.non_retryable
    with pytest.raises(ApplicationError) as unread:
        await env.run(journal_activities.load, LoadDossier(dossier_id=ident))
    assert unread.value.type == "ForeignDossier"
    assert await journal(stack, ident) == before

    # Through a workflow: another workflow's draft cannot take the real dossier's id.
    content = load_dossier(EXAMPLE).content
    start = StartDraft(call=state.call, phase_id="unique", reference=state.reference, content=content)
    with pytest.raises(WorkflowUpdateFailedError) as other_id:
        await forged_start(stack.client, stack, "hdf-pmcb-reemploi.mallory", DossierInput(
            dossier_id="hdf-pmcb-reemploi.mallory"), CommandRequest(command=start, actor=HOLDER))
    assert f"pas {ident}" in str(other_id.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as other_input:
        await forged_start(stack.client, stack, "hdf-pmcb-reemploi.mallory2", DossierInput(dossier_id=ident),
                           CommandRequest(command=start, actor=HOLDER))
    assert isinstance(other_input.value.cause, ApplicationError) and other_input.value.cause.type == "Untrusted"
    assert await journal(stack, ident) == before

    # The real path still writes: the journal accepts the batch from the dossier's own workflow.
    assert (await send(stack.client, ident, forged, STAFF)).status is Status.ACKNOWLEDGED
    assert len(await journal(stack, ident)) == len(before) + 1


# --- 4. a clear payload --------------------------------------------------------------------------


async def test_a_clear_payload_is_refused_and_the_dossier_keeps_working(stack: Stack) -> None:
    """A plain client's command (clear JSON) on a real dossier is rejected; so is a payload sealed for
    another dossier. The dossier is not wedged: the next real command goes through."""
    ident = await submitted(stack)
    before = await journal(stack, ident)
    plain = await attacker(stack)
    handle = plain.get_workflow_handle(ident)
    with pytest.raises(Exception) as refused:  # noqa: PT011
        await asyncio.wait_for(handle.execute_update(
            DossierWorkflow.command, CommandRequest(command=Acknowledge(), actor=STAFF)), WAIT)
    cause = getattr(refused.value, "cause", None)  # the Update was rejected, before entering history
    assert isinstance(cause, ApplicationError) and cause.type == "RefusedPayload"
    assert await journal(stack, ident) == before

    # The codec itself, under the dossier's context: clear refused, another dossier's seal refused.
    codec = EnvelopeCodec(stack.keys).with_context(WorkflowSerializationContext(namespace=stack.namespace,
                                                                                workflow_id=ident))
    clear = Payload(metadata={"encoding": b"json/plain"}, data=b'{"type": "acknowledge"}')
    [out] = await codec.decode([clear])
    assert out.metadata["encoding"] == REFUSED.encode() and b"clair" in out.data
    other = EnvelopeCodec(stack.keys).with_context(WorkflowSerializationContext(
        namespace=stack.namespace, workflow_id="hdf-pmcb-reemploi.autre-dossier"))
    [foreign] = await other.encode([clear])
    assert foreign.metadata["encoding"] == ENCODING
    [out] = await codec.decode([foreign])
    assert out.metadata["encoding"] == REFUSED.encode() and b"hdf-pmcb-reemploi.autre-dossier" in out.data
    [own] = await codec.encode([clear])
    assert (await codec.decode([own]))[0] == clear
    converter = data_converter(stack.keys).with_context(WorkflowSerializationContext(
        namespace=stack.namespace, workflow_id=ident))
    with pytest.raises(ApplicationError) as failure:
        await converter.decode([clear])
    assert failure.value.type == "RefusedPayload" and failure.value.non_retryable

    assert (await send(stack.client, ident, Acknowledge(), STAFF)).status is Status.ACKNOWLEDGED
    assert len(await journal(stack, ident)) == len(before) + 1


# --- 5. a forged extension -----------------------------------------------------------------------


async def test_a_forged_phase_extension_changes_nothing(stack: Stack) -> None:
    """`phase_extended` naming a real staff member, to a submitted dossier: dropped when clear; when
    sealed, the dossier asks its call's workflow, which extended nothing, and changes nothing."""
    ident = await submitted(stack)
    before = await journal(stack, ident)
    state_before = replay(await history(stack.store, stack.keys, ident))
    until = datetime.now(UTC) + timedelta(days=3650)
    signal = PhaseExtended(until=until, actor=STAFF)

    plain = await attacker(stack)
    handle = stack.client.get_workflow_handle(ident)
    asked = await asked_the_call(handle)  # once already: the draft's call, at its start
    length = await history_length(handle)
    await plain.get_workflow_handle(ident).signal("phase_extended", signal)
    await settled(handle, length + 1)
    assert await journal(stack, ident) == before

    assert await asked_the_call(handle) == asked  # dropped by the SDK: the payload is not a value

    length = await history_length(handle)
    await handle.signal(DossierWorkflow.phase_extended, signal)  # sealed: as if from the call's workflow
    await settled(handle, length + 1)
    assert await asked_the_call(handle) == asked + 1  # it asked the source of truth, which extended nothing
    assert await journal(stack, ident) == before
    state = await handle.query(DossierWorkflow.current)
    assert state.phase_closes_at == state_before.phase_closes_at and state.version == state_before.version
