"""Steps 7 and 8 of bench/run.py: the HTTP API.

7. A staff command through the API — HTTP (a real uvicorn on a free port, in the bench's process and
   event loop, an httpx client over TCP), personal token checked, the service layer, the Update, the
   journal — beside the same command given through the service layer directly.
8. The list endpoint over many dossiers (10,000 in the full run): their rows are written straight into
   the `dossiers` projection (COPY), not driven through 10,000 workflows; the list reads nothing else.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import uvicorn

from amiflow.api import create_app
from amiflow.bootstrap import Runtime
from amiflow.services import dossiers as dossier_service
from amiflow.services import people
from amiflow.services.principal import Principal
from amiflow.settings import Settings
from amiflow.vault import Vault
from domain import Actor
from domain.throttle import Rate

CALL = "hdf-pmcb-reemploi"
MEETING = {"kind": "meeting_attended"}
UNLIMITED = Rate(burst=1_000_000, per_second=1_000_000.0)  # the bench measures the path, not the limits
STATUSES = ("submitted", "acknowledged", "under_review", "follow_up", "closed")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _timed(n: int, action: Callable[[int], Awaitable[object]], warmup: int) -> list[float]:
    for i in range(warmup):
        await action(i)
    latencies = []
    for i in range(n):
        t0 = time.perf_counter()
        await action(warmup + i)
        latencies.append(time.perf_counter() - t0)
    return latencies


TABS = {"submitted": "a-traiter", "acknowledged": "a-traiter", "under_review": "en-revue", "follow_up": "en-suivi",
        "closed": "clos"}
HOLDER_TYPES = ("entreprise", "association", "collectivite")
TERRITORIES = ("i-nord", "i-pas-de-calais", "i-somme", "i-oise", "i-aisne")  # blind indexes, as the list keeps them


async def _seed(owner_url: str, count: int) -> None:
    """`count` rows of the dossier list, written in one COPY, with the back office's list metadata."""
    now = datetime.now(UTC)
    rows = [(f"{CALL}.bench-liste-{i:06d}", CALL, "unique", f"porteur-{i % 997}", STATUSES[i % len(STATUSES)], 3,
             now + timedelta(days=(i % 90) - 30), "phase_closing", now - timedelta(days=40), now,
             TABS[STATUSES[i % len(STATUSES)]], HOLDER_TYPES[i % 3], TERRITORIES[i % 5], [])
            for i in range(count)]
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.copy_records_to_table(
            "dossiers", records=rows, columns=["dossier_id", "call_id", "phase_id", "holder", "status", "version",
                                               "next_deadline", "next_deadline_kind", "submitted_at", "updated_at",
                                               "tab", "holder_type", "territory_index", "reviewers"])
    finally:
        await conn.close()


async def step_api(stack: Any, idents: list[str], transitions: int, list_rows: int,
                   list_requests: int) -> dict[str, Any]:
    """7 and 8; `stack` is bench/run.py's (store, keys, client, task queue, database URLs)."""
    settings = Settings(data_dir=stack.tmp / "data", database_url=stack.app_url, task_queue=stack.task_queue)
    rt = Runtime(settings, stack.store, stack.keys, Vault(stack.tmp / "vault", stack.keys), stack.client)
    await people.add(rt, "amelie", people.role_grants("staff", [CALL]))
    token = (await people.issue_token(rt, "amelie", 1, datetime.now(UTC))).token
    staff = Principal(Actor.parse("staff:amelie"), via="token", proven=True, person="amelie")
    cycle = idents[: max(1, min(4, len(idents)))]

    async def through_services(i: int) -> None:
        await dossier_service.command(rt, staff, cycle[i % len(cycle)], "record-follow-up", MEETING)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt, per_address=UNLIMITED, per_token=UNLIMITED),
                                           host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as api:

            async def through_http(i: int) -> None:
                answer = await api.post(f"/api/v1/dossiers/{cycle[i % len(cycle)]}/commands/record-follow-up",
                                        json=MEETING)
                answer.raise_for_status()

            service_lat = await _timed(transitions, through_services, warmup=len(cycle))
            http_lat = await _timed(transitions, through_http, warmup=len(cycle))

            await _seed(stack.url, list_rows)
            middle = f"{CALL}.bench-liste-{list_rows // 2:06d}"
            queries: list[dict[str, Any]] = [
                {"limit": 100}, {"limit": 100, "after": middle}, {"limit": 100, "status": "follow_up"},
                {"limit": 100, "overdue": "true"}, {"limit": 100, "call": CALL, "after": middle},
            ]

            async def page(i: int) -> None:
                answer = await api.get("/api/v1/dossiers", params=queries[i % len(queries)])
                answer.raise_for_status()
                assert answer.json()["items"]

            list_lat = await _timed(list_requests, page, warmup=len(queries))
    finally:
        server.should_exit = True
        await serving
    return {
        "n": transitions, "dossiers": len(cycle),
        "http_p50_ms": _ms(_pct(http_lat, 50)), "http_p99_ms": _ms(_pct(http_lat, 99)),
        "service_p50_ms": _ms(_pct(service_lat, 50)), "service_p99_ms": _ms(_pct(service_lat, 99)),
        "list_rows": list_rows, "list_requests": list_requests, "list_page": 100,
        "list_p50_ms": _ms(_pct(list_lat, 50)), "list_p95_ms": _ms(_pct(list_lat, 95)),
    }


def rows(a: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The report's lines of steps 7 and 8."""
    return [
        ("7", f"staff command through the API, HTTP → Update → journal (N={a['n']}, {a['dossiers']} dossiers)",
         f"p50 {a['http_p50_ms']} ms · p99 {a['http_p99_ms']} ms", ""),
        ("", "  same command through the service layer",
         f"p50 {a['service_p50_ms']} ms · p99 {a['service_p99_ms']} ms", ""),
        ("8", f"list endpoint over {a['list_rows']:,} dossiers ({a['list_requests']} pages of {a['list_page']})",
         f"p50 {a['list_p50_ms']} ms · p95 {a['list_p95_ms']} ms", ""),
    ]
