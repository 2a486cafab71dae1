"""The real workflows on the dev server with in-memory activities (tests/fakes.py): timers and
continue-as-new without PostgreSQL. The dev server suggests continue-as-new at 300 history events
(tests/conftest.py), so a few dozen commands make a draft continue as new."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import CallStanding
from amiflow.catalogue import CALLS_DIR, load_call, load_dossier
from amiflow.temporal import SANDBOX, WORKFLOWS
from domain import Actor, Call, DossierState, dossier_id
from domain.commands import StartDraft, UpdateDraft
from domain.state import Status
from tests.fakes import FakeActivities
from workflows.dossier import CommandRequest, DossierInput, DossierWorkflow

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
HOLDER = Actor.parse("holder:acme")


@dataclass
class Bare:
    """A worker with the fakes, on a namespace of the test's own."""

    env: TimeSkipper
    client: Client
    task_queue: str
    fakes: FakeActivities


@pytest.fixture
async def bare(temporal: WorkflowEnvironment, namespace: str) -> AsyncIterator[Bare]:
    client = await Client.connect(temporal.client.service_client.config.target_host, namespace=namespace,
                                  data_converter=pydantic_data_converter)
    skipper = TimeSkipper(client, config=TimeSkippingConfig(enabled=False, max_session_skip_count=5000))
    fakes = FakeActivities()
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(skipper.client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all(),
                      workflow_runner=SANDBOX):
        yield Bare(skipper, skipper.client, task_queue, fakes)


async def draft(bare: Bare, call: Call, reference: str) -> WorkflowHandle[DossierWorkflow, DossierState]:
    content = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml").content
    ident = dossier_id(call.id, reference)
    start = StartDraft(call=call, phase_id="unique", reference=reference, content=content)
    operation = WithStartWorkflowOperation(
        DossierWorkflow.run, DossierInput(dossier_id=ident), id=ident, task_queue=bare.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    with bare.env.with_time_skipping_disabled():
        result = await bare.client.execute_update_with_start_workflow(
            DossierWorkflow.command, CommandRequest(command=start, actor=HOLDER), start_workflow_operation=operation
        )
    assert result.status is Status.DRAFT
    return bare.client.get_workflow_handle_for(DossierWorkflow.run, ident)  # no run id: follows continue-as-new


@pytest.mark.timeout(240)
async def test_a_dossier_continues_as_new_and_keeps_its_timers(bare: Bare) -> None:
    call = load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")
    bare.fakes.calls[call.id] = CallStanding(call=call)
    handle = await draft(bare, call, f"fakes-{uuid.uuid4().hex[:8]}")
    first_run = (await handle.describe()).run_id
    waiting = await handle.query(DossierWorkflow.waiting_for)
    assert waiting and max(d.at for d in waiting) == call.phases[0].closes_at

    content = load_dossier(EXAMPLES / "hdf-pmcb-reemploi.yaml").content
    continued = None
    with bare.env.with_time_skipping_disabled():
        for i in range(80):  # about 8 history events per command: continue-as-new well before 80
            sections = {**content.sections, "presentation": f"Version {i} de la présentation."}
            note = content.model_copy(update={"sections": sections})
            await handle.execute_update(DossierWorkflow.command,
                                        CommandRequest(command=UpdateDraft(content=note), actor=HOLDER))
            described = await handle.describe()
            if described.run_id != first_run:
                continued = described
                break
    assert continued is not None, "the draft never continued as new"
    ident = handle.id
    versions = len(bare.fakes.journal[ident])

    # The new run took the state its predecessor handed over, and re-armed the same timers from it.
    state = await handle.query(DossierWorkflow.current)
    assert state.version == versions and state.status is Status.DRAFT
    assert await handle.query(DossierWorkflow.waiting_for) == waiting

    # Its timers fire: past the closing, the draft expires (reminders sent once before it).
    closing = call.phases[0].closes_at
    await bare.env.fast_forward(handle, closing - await bare.env.get_current_time(handle) + timedelta(minutes=1))
    final = await handle.result()
    assert final.status is Status.EXPIRED
    assert [e.type for e in bare.fakes.journal[ident]][-1] == "draft_expired"
    assert len(bare.fakes.journal[ident]) == versions + 1
    assert any(n.kind.startswith("reminder_") for n in bare.fakes.notices.values() if n.dossier_id == ident)
