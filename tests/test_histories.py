"""Replay of recorded histories: the workflows running in production must resume on the new code.

tests/histories/ holds one whole lifecycle per shipped call (and each call's workflow), recorded by
tests/histories/record.py (read its docstring before re-recording). Each replays with the current
workflow code, sandbox included; a change of what the workflow commands in history (here: sending a
dossier's notices before journaling its events) makes the replay fail with a NondeterminismError, and
the same change guarded by `workflow.patched` replays the old histories cleanly — the way to change a
workflow's behaviour safely.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

# The sandbox re-imports this module to run the variants below: what is not workflow code comes from
# the host process as it is (re-importing `cryptography`'s native module, via amiflow.temporal, fails).
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from amiflow.temporal import SANDBOX, WORKFLOWS

from activities.contracts import APPEND, READ_CALL, AppendEvents
from domain import DossierState, Event, deadlines, replay
from domain.notices import Notice, notices_for
from domain.state import DeadlineKind
from workflows.call import CallWorkflow
from workflows.dossier import JOURNAL_RETRY, DossierInput, DossierWorkflow

with workflow.unsafe.sandbox_unrestricted():  # read at import, in the sandbox's re-import too
    HISTORIES = Path(__file__).resolve().parent / "histories"
    MANIFEST: dict[str, dict[str, Any]] = json.loads((HISTORIES / "manifest.json").read_text(encoding="utf-8"))
DOSSIERS = sorted(f for f, e in MANIFEST.items() if e["workflow"] == "DossierWorkflow")
PATCH = "notices-before-journal"


def load(file: str) -> WorkflowHistory:
    text = gzip.decompress((HISTORIES / file).read_bytes()).decode()
    return WorkflowHistory.from_json(MANIFEST[file]["workflow_id"], text)


def replayer(*workflows: type) -> Replayer:
    return Replayer(workflows=list(workflows), workflow_runner=SANDBOX, data_converter=pydantic_data_converter)


# --- the committed histories ---------------------------------------------------------------------


def test_every_history_is_in_the_manifest_and_every_call_has_a_lifecycle() -> None:
    assert sorted(p.name for p in HISTORIES.glob("*.json.gz")) == sorted(MANIFEST)
    calls = {MANIFEST[f]["call"] for f in DOSSIERS}
    assert calls >= {"hdf-pmcb-reemploi", "hdf-ressourceries", "normandie-crec-2018"}
    assert sum(p.stat().st_size for p in HISTORIES.iterdir()) < 400_000  # small enough to commit


@pytest.mark.parametrize("file", sorted(MANIFEST))
async def test_a_recorded_history_replays_with_the_current_code(file: str) -> None:
    history = load(file)
    result = await replayer(*WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("file", DOSSIERS)
def test_a_recorded_dossier_is_a_whole_lifecycle(file: str) -> None:
    """Each dossier history journals the 17 events of a lifecycle and ends with the workflow closed."""
    history = load(file)
    assert history.events[-1].HasField("workflow_execution_completed_event_attributes")
    appends = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
               and e.activity_task_scheduled_event_attributes.activity_type.name == APPEND]
    seqs: list[int] = []
    for event in appends:
        [payload] = event.activity_task_scheduled_event_attributes.input.payloads
        batch = AppendEvents.model_validate_json(payload.data)
        seqs += range(batch.first_seq, batch.first_seq + len(batch.events))
    assert seqs == list(range(1, 18))


# --- a non-deterministic change, and the same change made safely ------------------------------


async def journal_after_notices(wf: DossierWorkflow, events: list[Event]) -> None:
    """DossierWorkflow._apply with the order changed: notify, then journal. The same activities with
    the same inputs, in another order: what history records no longer matches the code's commands."""
    if not events:
        return
    after = replay(events, wf.state)
    call = after.call
    assert call is not None
    notices: list[Notice] = []
    state = wf.state
    for event in events:
        state = replay([event], state)
        notices.extend(notices_for(state, event))
    if notices:
        await wf._notify(notices)
    upcoming = [d for d in deadlines(after, call, workflow.now()) if d.kind is not DeadlineKind.REMINDER]
    await workflow.execute_activity(
        APPEND,
        AppendEvents(
            dossier_id=after.id, workflow_id=workflow.info().workflow_id, first_seq=wf.state.version + 1,
            events=events, call_id=call.id, phase_id=after.phase_id, holder=after.holder, status=after.status,
            version=after.version, next_deadline=upcoming[0].at if upcoming else None,
            next_deadline_kind=upcoming[0].kind.value if upcoming else None, submitted_at=after.submitted_at,
        ),
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=JOURNAL_RETRY,
    )
    wf.state = after
    wf.changed = True


@workflow.defn(name="DossierWorkflow")
class NoticesFirst(DossierWorkflow):
    """The change made carelessly: the new order for every run, old ones included."""

    @workflow.run
    async def run(self, start: DossierInput) -> DossierState:
        return await super().run(start)

    async def _apply(self, events: list[Event]) -> None:
        await journal_after_notices(self, events)


@workflow.defn(name="DossierWorkflow")
class NoticesFirstPatched(DossierWorkflow):
    """The change made safely: runs that started before it keep the old order (their history has no
    marker of the patch); new runs take the new one, and record the marker."""

    @workflow.run
    async def run(self, start: DossierInput) -> DossierState:
        return await super().run(start)

    async def _apply(self, events: list[Event]) -> None:
        if workflow.patched(PATCH):
            await journal_after_notices(self, events)
        else:
            await super()._apply(events)


@pytest.mark.parametrize("file", DOSSIERS)
async def test_a_change_of_commands_does_not_replay(file: str) -> None:
    with pytest.raises(workflow.NondeterminismError) as failure:
        await replayer(NoticesFirst, CallWorkflow).replay_workflow(load(file))
    # History has the journal's activity where the code now schedules the notices' one.
    assert ("Nondeterminism error: Activity type of scheduled event 'journal.append' does not match activity "
            "type of activity command 'notifications.send'") in str(failure.value)


@pytest.mark.parametrize("file", DOSSIERS)
async def test_the_same_change_behind_workflow_patched_replays(file: str) -> None:
    result = await replayer(NoticesFirstPatched, CallWorkflow).replay_workflow(load(file))
    assert result.replay_failure is None


# --- the trust boundary's change, behind workflow.patched -----------------------------------------


@pytest.mark.parametrize("file", DOSSIERS)
def test_a_draft_reads_its_call_from_the_worker_only_in_histories_recorded_since(file: str) -> None:
    """Histories recorded before the trust boundary took the client's call snapshot; those recorded
    since (`*.trust.json.gz`) read it from the call's workflow (activity `calls.read`) before the first
    journal write. Both replay (above): the change is behind `workflow.patched("call-from-worker")`."""
    names = [e.activity_task_scheduled_event_attributes.activity_type.name for e in load(file).events
             if e.HasField("activity_task_scheduled_event_attributes")]
    if ".trust." in file:
        assert names[:2] == [READ_CALL, APPEND]
    else:
        assert READ_CALL not in names
