"""How fast the journal verifies: 100,000 events (and 10,000 reads) chained as amiflow chains them,
written to a real embedded PostgreSQL, then `amiflow.audit.verify_journal` (load + recompute every
chain) timed, and the pure chain check (`journal.ledger.verify`) on rows already in memory.

    .venv/bin/python bench/verify.py [--quick] [--events 100000] [--dossiers 2000] [--reads 10000]

`--quick` (5,000 events, 100 dossiers, 500 reads, one timed run) is the smoke run of the test suite
(tests/test_bench_quick.py). Prints figures; asserts nothing about speed, only that the journal
verifies and that one altered byte is found (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from amiflow import audit  # noqa: E402
from journal import embedded, ledger  # noqa: E402
from journal.postgres import PostgresStore, app_url, migrate  # noqa: E402


def journal(events: int, dossiers: int, reads: int) -> tuple[list[dict], list[dict]]:
    """Rows as the journal stores them: sealed bytes of a realistic size, both chains computed."""
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    previous: dict[str, bytes] = {}
    seqs: dict[str, int] = {}
    head, gseq = ledger.GENESIS, 0
    rows, read_rows = [], []
    every = max(events // max(reads, 1), 1)
    for i in range(events):
        dossier = f"hdf-pmcb-reemploi.bench-{i % dossiers:05d}"
        seq = seqs[dossier] = seqs.get(dossier, 0) + 1
        row = {"dossier_id": dossier, "seq": seq, "type": "follow_up_recorded", "actor": "staff:amelie",
               "occurred_at": start + timedelta(seconds=i), "key_id": "k1", "sealed": secrets.token_bytes(420),
               "payload": None, "workflow_id": dossier}
        row["hash"] = previous[dossier] = ledger.link(previous.get(dossier, ledger.GENESIS), ledger.event_entry(row))
        gseq += 1
        head = ledger.global_link(head, dossier, row["hash"])
        row |= {"gseq": gseq, "ghash": head}
        rows.append(row)
        if i % every == every - 1 and len(read_rows) < reads:
            read = {"dossier_id": dossier, "at": row["occurred_at"], "actor": "auditor:odile", "what": "content",
                    "via": "cli", "granted": False, "reason": "auditeur sans habilitation"}
            read["hash"] = ledger.link(ledger.GENESIS, ledger.read_entry(read))
            gseq += 1
            head = ledger.global_link(head, dossier, read["hash"])
            read |= {"gseq": gseq, "ghash": head}
            read_rows.append(read)
    return rows, read_rows


async def write(owner: str, rows: list[dict], read_rows: list[dict]) -> asyncpg.Connection:
    """The rows into the journal's tables (COPY), its head and projection: an open connection."""
    conn = await asyncpg.connect(owner)
    columns = ["dossier_id", "seq", "type", "actor", "occurred_at", "key_id", "sealed", "workflow_id", "hash",
               "gseq", "ghash"]
    await conn.copy_records_to_table("events", records=[tuple(r[c] for c in columns) for r in rows],
                                     columns=columns)
    read_columns = ["dossier_id", "at", "actor", "what", "via", "granted", "reason", "hash", "gseq", "ghash"]
    await conn.copy_records_to_table("reads", records=[tuple(r[c] for c in read_columns) for r in read_rows],
                                     columns=read_columns)
    last = max([*rows, *read_rows], key=lambda r: r["gseq"])
    await conn.execute("update journal_head set gseq = $1, ghash = $2", last["gseq"], last["ghash"])
    await conn.execute("insert into dossiers select distinct on (dossier_id) dossier_id, 'hdf-pmcb-reemploi', "
                       "'unique', 'acme', 'follow_up', max(seq) over (partition by dossier_id), null, null, null, "
                       "now() from events")
    await conn.execute("ANALYZE")
    return conn


async def main(events: int, dossiers: int, reads: int, runs: int = 3) -> None:
    folder = Path(tempfile.mkdtemp(prefix="amiflow-verify-bench-"))
    pgdata = folder / "pgdata"
    try:
        server = await asyncio.to_thread(embedded.start, pgdata)
        try:
            owner = await embedded.create_database(server, "verify_bench")
            await asyncio.to_thread(migrate, owner)

            began = time.perf_counter()
            rows, read_rows = journal(events, dossiers, reads)
            built = time.perf_counter() - began
            conn = await write(owner, rows, read_rows)
            store = PostgresStore.from_url(app_url(owner))  # the application's role, as an audit runs

            timings = []
            for _ in range(runs):
                t = time.perf_counter()
                breaks = await audit.verify_journal(store)
                timings.append(time.perf_counter() - t)
                assert breaks == [], breaks[:3]
            best = min(timings)

            t = time.perf_counter()
            assert ledger.verify(rows, read_rows) == []
            pure = time.perf_counter() - t

            await conn.execute("set session_replication_role = replica")
            await conn.execute("update events set sealed = overlay(sealed placing '\\x00'::bytea from 100 for 1) "
                               "where gseq = $1", rows[len(rows) // 2]["gseq"])
            found = await audit.verify_journal(store)
            await conn.close()
            await store.dispose()
            assert found, "an altered byte in the middle of the journal went unnoticed"
        finally:
            await asyncio.to_thread(embedded.stop, pgdata)  # the os._exit at the end skips the exit hooks
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    total = events + len(read_rows)
    cpu = os.cpu_count()
    print(f"journal: {events:,} events over {dossiers:,} dossiers + {len(read_rows):,} reads "
          f"(sealed 420 B each), built and chained in {built:.1f} s")
    listed = ", ".join(f"{x:.2f}" for x in timings)
    print(f"audit verify (PostgreSQL → load → every chain): best of {runs} {best:.2f} s "
          f"= {total / best:,.0f} entries/s ({events / best:,.0f} events/s); runs {listed}")
    print(f"chain check alone, rows in memory: {pure:.2f} s = {total / pure:,.0f} entries/s")
    print(f"one altered byte in the middle: found = {[(b.kind, b.dossier_id, b.seq) for b in found[:2]]}")
    print(f"machine: {cpu} CPU, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one timed run: a smoke run")
    parser.add_argument("--events", type=int, help="events (default 100,000, quick 5,000)")
    parser.add_argument("--dossiers", type=int, help="dossiers (default 2,000, quick 100)")
    parser.add_argument("--reads", type=int, help="entries of the read log (default 10,000, quick 500)")
    options = parser.parse_args()
    sizes = (5_000, 100, 500, 1) if options.quick else (100_000, 2_000, 10_000, 3)
    events = options.events or sizes[0]
    dossiers = options.dossiers or sizes[1]
    reads = options.reads if options.reads is not None else sizes[2]
    asyncio.run(main(events, dossiers, reads, sizes[3]))
    os._exit(0)
