"""Temporal plumbing shared by the worker, the CLI and the tests: the client, the data converter,
the worker and its sandbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.calls import CallActivities
from activities.journal import JournalActivities
from activities.notifications import NotificationActivities
from amiflow.codec import data_converter
from journal.keys import DossierKeys
from journal.store import JournalStore
from workflows.call import CallWorkflow
from workflows.dossier import DossierWorkflow

WORKFLOWS = [DossierWorkflow, CallWorkflow]

# The sandbox stays on for the workflows' own code. Passed through (imported once per process, not
# once per workflow run): ZoneInfo, since deadlines are Paris civil time and the tz database is input
# data as deterministic as the code; pydantic; and `domain` with the activity contracts — pure by
# construction (no I/O, no clock: time arrives as an argument) — whose pydantic models otherwise cost
# a re-import per dossier started (a 1,000-dossier deadline storm: 31 s → 8 s; BENCHMARKS.md).
SANDBOX = SandboxedWorkflowRunner(
    restrictions=dataclasses.replace(
        SandboxRestrictions.default,
        invalid_module_members=SandboxRestrictions.invalid_module_members_default.with_child_unrestricted(
            "zoneinfo", "ZoneInfo"
        ),
    ).with_passthrough_modules("zoneinfo", "pydantic", "pydantic_core", "domain", "activities.contracts")
)


async def connect(address: str, keys: DossierKeys, namespace: str = "default") -> Client:
    """A client whose payloads are pydantic JSON sealed by amiflow's codec."""
    return await Client.connect(address, namespace=namespace, data_converter=data_converter(keys))


def journal_activities(store: JournalStore, keys: DossierKeys, mail_dir: Path, smtp_host: str = "",
                       public_url: str = "") -> list[Any]:
    """The activities over the journal and the outbox that every worker runs (the call reads are added
    by `build_worker`, with the worker's own client); notices link to their dossier's page under `public_url`."""
    journal = JournalActivities(store, keys)
    notifications = NotificationActivities(store, keys, mail_dir, smtp_host, public_url)
    return [journal.append, journal.load, journal.open_dossiers, notifications.send, notifications.give_up]


def build_worker(client: Client, task_queue: str, activities: Sequence[Any], **options: Any) -> Worker:
    """A worker running amiflow's workflows and the given activities on `task_queue`, with the read
    of calls' workflows that dossiers need (it uses the worker's own client, so every worker has it)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*activities, CallActivities(client).read],
        workflow_runner=SANDBOX,
        **options,
    )
