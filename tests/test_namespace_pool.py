"""The tests' namespace pool (tests/conftest.py): a pool lends more namespaces than it holds (so a
session runs more Temporal tests than the dev server has namespaces), and a namespace is lent only
empty — no workflow of an earlier test left in it."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tests.conftest import NamespacePool


async def start_unserved(client: Client) -> str:
    """A workflow that stays running (no worker polls its task queue), once visibility shows it; its id."""
    handle = await client.start_workflow("SansWorker", id=f"reste-{uuid.uuid4().hex[:8]}",
                                         task_queue=f"tq-{uuid.uuid4()}")
    for _ in range(200):
        if (await client.count_workflows()).count:
            break
        await asyncio.sleep(0.02)
    assert (await client.count_workflows()).count == 1
    return handle.id


async def stopped(client: Client, workflow_id: str) -> bool:
    """The workflow runs no more: terminated, or already deleted (the server may do both at once)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        return error.status == RPCStatusCode.NOT_FOUND
    return description.status is not WorkflowExecutionStatus.RUNNING


async def test_a_namespace_given_back_is_emptied_and_lent_again(temporal: WorkflowEnvironment,
                                                                 namespaces: NamespacePool) -> None:
    async with namespaces.lease() as name:
        pool = NamespacePool(temporal.client, [name])
        for _ in range(3):  # more leases than the pool holds
            async with pool.lease() as lent:
                assert lent == name
                ident = await start_unserved(pool.client(lent))
            assert await stopped(pool.client(lent), ident)  # the running workflow did not outlive the lease


async def test_a_namespace_holding_executions_is_not_lent(temporal: WorkflowEnvironment,
                                                          namespaces: NamespacePool) -> None:
    async with namespaces.lease() as dirty, namespaces.lease() as clean:
        ident = await start_unserved(namespaces.client(dirty))  # left by a test, as if visibility had lagged
        pool = NamespacePool(temporal.client, [dirty, clean])
        assert await pool.acquire() == clean
        assert await stopped(namespaces.client(dirty), ident)  # emptied on the way
