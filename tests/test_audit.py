"""The auditors' journal on the real components: append-only for the application, every kind of
tampering detected and named (dossier and seq), a rewrite caught by the anchors kept elsewhere, and an
exported bundle that verifies itself in a fresh virtualenv with no database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy.exc
from sqlalchemy import text
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from amiflow import audit
from amiflow.dossiers import build_command, call_definition, send, start_calls, submit
from domain import Actor
from domain.calendar import PARIS
from domain.commands import StartDraft
from domain.reading import ReadDecision
from journal import ledger
from journal.store import JournalStore, ReadEntry
from tests import dates
from tests.conftest import Stack
from tests.test_lifecycle import EXAMPLES
from workflows.dossier import CommandRequest, DossierInput, DossierWorkflow

HOLDER, STAFF = Actor.parse("holder:acme"), Actor.parse("staff:amelie")
EXAMPLE = EXAMPLES / "hdf-pmcb-reemploi.yaml"


@dataclass
class Journal:
    """Three dossiers written in interleaved order, and an owner's connection to tamper with them."""

    stack: Stack
    a: str  # five events
    b: str  # two events
    c: str  # one event: a draft only
    owner: asyncpg.Connection

    async def breaks(self, **options: Any) -> list[ledger.Break]:
        return await audit.verify_journal(self.stack.store, **options)

    async def tamper(self, *sql: tuple[str, Any]) -> None:
        """As whoever holds the server's rights, with the append-only trigger switched off."""
        async with self.owner.transaction():
            await self.owner.execute("set local session_replication_role = replica")
            for statement in sql:
                await self.owner.execute(statement[0], *statement[1:])

    async def row(self, dossier: str, seq: int) -> asyncpg.Record:
        return await self.owner.fetchrow("select * from events where dossier_id = $1 and seq = $2", dossier, seq)


async def reference_file(tmp_path: Path, reference: str) -> Path:
    source = EXAMPLE.read_text(encoding="utf-8")
    line = next(x for x in source.splitlines() if x.startswith("reference:"))
    path = tmp_path / f"{reference}.yaml"
    path.write_text(source.replace(line, f'reference: "{reference}"'), encoding="utf-8")
    return path


async def draft_only(stack: Stack, reference: str) -> str:
    """A dossier with a single event: a draft its holder never submitted."""
    call = await call_definition(stack.client, "hdf-pmcb-reemploi")
    from amiflow.catalogue import load_dossier

    prepared = load_dossier(EXAMPLE)
    start = StartDraft(call=call, phase_id="unique", reference=reference, content=prepared.content)
    ident = f"hdf-pmcb-reemploi.{reference.lower()}"
    operation = WithStartWorkflowOperation(DossierWorkflow.run, DossierInput(dossier_id=ident), id=ident,
                                           task_queue=stack.task_queue,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    await stack.client.execute_update_with_start_workflow(
        DossierWorkflow.command, CommandRequest(command=start, actor=HOLDER), start_workflow_operation=operation)
    return ident


@pytest.fixture
async def journal(stack: Stack, tmp_path: Path) -> AsyncIterator[Journal]:
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        now = datetime.now(UTC)
        a = (await submit(stack.client, stack.task_queue, await reference_file(tmp_path, "A-1"), HOLDER, now))
        b = (await submit(stack.client, stack.task_queue, await reference_file(tmp_path, "B-2"), HOLDER, now))
        c = await draft_only(stack, "C-3")
    due = dates.due(datetime.now(UTC), 20).arg

    async def do(ident: str, actor: Actor, name: str, **options: str) -> None:
        await send(stack.client, ident, build_command(name, options), actor)

    await do(a.dossier_id, STAFF, "acknowledge")
    await do(a.dossier_id, STAFF, "request-complement", pieces="Kbis", due=due)
    await do(a.dossier_id, HOLDER, "provide-complement", note="joint")
    await do(b.dossier_id, STAFF, "close", reason="Hors champ")  # after a's last event in the global chain
    owner = await asyncpg.connect(stack.owner_url)
    yield Journal(stack, a.dossier_id, b.dossier_id, c, owner)
    await owner.close()


async def test_the_application_cannot_change_the_journal(journal: Journal) -> None:
    assert await journal.breaks() == []
    for statement in ("update events set type = 'closed'", "delete from events", "delete from reads",
                      "truncate events"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="permission denied|ajout"):
            async with journal.stack.engine.begin() as conn:
                await conn.execute(text(statement))
    # Even the owner is stopped by the trigger unless they switch it off (which needs superuser rights).
    with pytest.raises(asyncpg.PostgresError, match="le journal ne s’écrit qu’en ajout"):
        await journal.owner.execute("update events set actor = 'staff:x' where seq = 1")
    with pytest.raises(asyncpg.PostgresError, match="le journal ne s’écrit qu’en ajout"):
        await journal.owner.execute("truncate reads")
    assert await journal.breaks() == []


Case = Callable[[Journal], Awaitable[tuple[str, str | None, int | None]]]


async def change_a_byte(j: Journal) -> tuple[str, str | None, int | None]:
    row = await j.row(j.a, 2)
    sealed = bytes(row["sealed"])
    await j.tamper(("update events set sealed = $1 where id = $2", sealed[:30] + bytes([sealed[30] ^ 1]) + sealed[31:],
                    row["id"]))
    return "changed", j.a, 2


async def change_an_actor(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("update events set actor = 'staff:quelquun' where dossier_id = $1 and seq = 3", j.a))
    return "changed", j.a, 3


async def delete_the_first(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("delete from events where dossier_id = $1 and seq = 1", j.a))
    return "deleted", j.a, 1


async def delete_a_middle_one(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("delete from events where dossier_id = $1 and seq = 3", j.a))
    return "deleted", j.a, 3


async def delete_the_last(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("delete from events where dossier_id = $1 and seq = 5", j.a))
    return "deleted", j.a, 5


async def delete_a_dossiers_only_event(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("delete from events where dossier_id = $1", j.c))
    return "missing_dossier", j.c, 1


async def delete_a_whole_dossier(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("delete from events where dossier_id = $1", j.b),
                   ("delete from dossiers where dossier_id = $1", j.b))
    return "deleted", None, None  # nothing names it any more but the hole it leaves in the global chain


async def insert_one(j: Journal) -> tuple[str, str | None, int | None]:
    row = dict(await j.row(j.a, 2))
    await j.tamper(("update events set seq = seq + 10 where dossier_id = $1 and seq >= 3", j.a),
                   ("update events set seq = seq - 9 where dossier_id = $1 and seq >= 13", j.a),
                   ("insert into events (dossier_id, seq, type, actor, occurred_at, workflow_id, key_id, sealed, hash, "
                    "gseq, ghash) values ($1, 3, $2, $3, $4, $5, $6, $7, $8, $9, $10)", j.a, row["type"], row["actor"],
                    row["occurred_at"], row["workflow_id"], row["key_id"], row["sealed"], row["hash"],
                    10_000, row["ghash"]))
    return "inserted", j.a, 3


async def reorder_two(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("update events set seq = 99 where dossier_id = $1 and seq = 2", j.a),
                   ("update events set seq = 2 where dossier_id = $1 and seq = 3", j.a),
                   ("update events set seq = 3 where dossier_id = $1 and seq = 99", j.a))
    return "reordered", j.a, 2


async def change_a_read(j: Journal) -> tuple[str, str | None, int | None]:
    await j.tamper(("update reads set granted = true where granted = false",))
    return "changed", j.a, None


CASES: dict[str, Case] = {
    "a byte of ciphertext": change_a_byte, "an actor": change_an_actor, "the first event": delete_the_first,
    "a middle event": delete_a_middle_one, "the last event": delete_the_last,
    "a dossier's only event": delete_a_dossiers_only_event, "a whole dossier": delete_a_whole_dossier,
    "an inserted event": insert_one, "two events swapped": reorder_two,
}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_tampering_is_detected_and_named(journal: Journal, case: str, tmp_path: Path) -> None:
    assert await journal.breaks() == []
    kind, dossier, seq = await CASES[case](journal)
    breaks = await journal.breaks()
    assert breaks, case
    named = [b for b in breaks if b.kind == kind and b.dossier_id == dossier and (seq is None or b.seq == seq)]
    assert named, (case, breaks)
    assert all(b.detail for b in breaks)
    # The command line says the same and exits 1.
    env = {"AMIFLOW_DATA_DIR": str(journal.stack.data_dir), "AMIFLOW_TEMPORAL_ADDRESS":
           journal.stack.client.service_client.config.target_host, "AMIFLOW_DATABASE_URL": journal.stack.database_url,
           "AMIFLOW_NAMESPACE": journal.stack.namespace, "PATH": "/usr/bin:/bin"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amiflow.cli", "audit", "verify", "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 1, err
    report = json.loads(out)
    assert not report["ok"] and any(b["kind"] == kind and b["dossier_id"] == dossier for b in report["breaks"])


async def test_a_changed_read_is_detected(journal: Journal) -> None:
    from domain.reading import ReadDecision

    await record(journal.stack.store, journal.a, Actor.parse("reviewer:remi"), "content", "cli",
                 ReadDecision(granted=False, reason="expert non affecté à ce dossier"), datetime.now(UTC))
    assert await journal.breaks() == []
    await change_a_read(journal)
    assert [(b.kind, b.dossier_id) for b in await journal.breaks()][:1] == [("changed", journal.a)]


async def test_a_rewritten_chain_is_caught_by_the_anchors_kept_elsewhere(journal: Journal) -> None:
    """Someone with the server's rights changes an event and recomputes every hash after it: the chains
    hold again, but the anchor exported the evening before no longer matches."""
    tomorrow = datetime.now(PARIS).date() + timedelta(days=1)
    kept_elsewhere = await audit.anchor(journal.stack.store, tomorrow)
    assert kept_elsewhere and kept_elsewhere[-1]["gseq"] >= 8
    await journal.tamper(("update events set actor = 'staff:faussaire' where dossier_id = $1 and seq = 2", journal.a))
    await rechain(journal)
    await journal.tamper(("delete from anchors",))  # the copy in the database goes too
    assert await journal.breaks() == []  # the chains alone are fooled …
    caught = await journal.breaks(external_anchors=kept_elsewhere)
    assert [b.kind for b in caught] == ["anchor"]  # … the anchor is not


async def rechain(j: Journal) -> None:
    """Recompute every hash of the journal from its rows, as a forger would."""
    events = [dict(r) for r in await j.owner.fetch("select * from events")]
    reads = [dict(r) for r in await j.owner.fetch("select * from reads")]
    entries = []
    previous: dict[str, bytes] = {}
    for row in sorted(events, key=lambda r: (r["dossier_id"], r["seq"])):
        row["hash"] = previous[row["dossier_id"]] = ledger.link(previous.get(row["dossier_id"], ledger.GENESIS),
                                                                ledger.event_entry(row))
    for row in reads:
        row["hash"] = ledger.link(ledger.GENESIS, ledger.read_entry(row))
    entries = sorted([("events", r) for r in events] + [("reads", r) for r in reads], key=lambda e: e[1]["gseq"])
    head = ledger.GENESIS
    sql = []
    for table, row in entries:
        head = ledger.global_link(head, row["dossier_id"], row["hash"])
        sql.append((f"update {table} set hash = $1, ghash = $2 where id = $3", row["hash"], head, row["id"]))
    sql.append(("update journal_head set ghash = $1", head))
    await j.tamper(*sql)


async def test_an_exported_bundle_verifies_in_a_fresh_virtualenv(journal: Journal, tmp_path: Path) -> None:
    from domain.reading import ReadDecision

    await record(journal.stack.store, journal.a, STAFF, "content", "cli",
                 ReadDecision(granted=True, reason="chargé de mission de l’appel"), datetime.now(UTC))
    history = (await journal.stack.client.get_workflow_handle(journal.a).fetch_history()).to_json()
    bundle = tmp_path / "bundle"
    summary = await audit.export(journal.stack.store, journal.a, bundle, date.today() + timedelta(days=1), history)
    assert summary["events"] == 5 and summary["reads"] == 1 and summary["temporal_history"]
    assert {p.name for p in bundle.iterdir()} == {"events.jsonl", "reads.jsonl", "chain.jsonl", "anchors.jsonl",
                                                  "temporal-history.json", "verify.py", "README.md"}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    fresh = [str(venv / "bin" / "python"), "-I", str(bundle / "verify.py"), str(bundle)]  # -I: no site, no amiflow
    done = subprocess.run(fresh, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0 and "intègre : 5 événement(s)" in done.stdout, done.stdout + done.stderr

    lines = (bundle / "events.jsonl").read_text().splitlines()
    event = json.loads(lines[3])
    event["occurred_at"] = event["occurred_at"].replace(":", ";", 1)  # one character of one instant
    lines[3] = json.dumps(event)
    (bundle / "events.jsonl").write_text("\n".join(lines) + "\n")
    broken = subprocess.run(fresh, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert broken.returncode == 1
    first = json.loads(broken.stdout.splitlines()[0])
    assert (first["kind"], first["dossier_id"], first["seq"]) == ("changed", journal.a, 4)


async def test_truncating_the_end_of_the_journal_is_caught_by_its_head(journal: Journal) -> None:
    from domain.reading import ReadDecision

    await record(journal.stack.store, journal.a, STAFF, "content", "cli",
                 ReadDecision(granted=True, reason="chargé de mission de l’appel"), datetime.now(UTC))
    assert await journal.breaks() == []
    await journal.tamper(("delete from reads",))  # the very last entry of the journal
    assert [b.kind for b in await journal.breaks()] == ["truncated"]


async def test_one_dossier_is_verified_with_the_chain_around_it(journal: Journal) -> None:
    """`--dossier`: the stretch of the global chain from the dossier's first entry to the head is loaded
    whole, so a dossier rewritten with recomputed hashes, or a read of it deleted, is still caught."""
    from domain.reading import ReadDecision

    await record(journal.stack.store, journal.a, Actor.parse("reviewer:remi"), "content", "cli",
                 ReadDecision(granted=False, reason="expert non affecté à ce dossier"), datetime.now(UTC))
    assert await journal.breaks(dossier_id=journal.a) == []
    await journal.tamper(("delete from reads where dossier_id = $1", journal.a))
    assert any(b.kind == "deleted" for b in await journal.breaks(dossier_id=journal.a))


async def test_a_dossier_rewritten_alone_is_caught_in_dossier_mode(journal: Journal) -> None:
    rows = [dict(r) for r in await journal.owner.fetch(
        "select * from events where dossier_id = $1 order by seq", journal.a)]
    rows[1]["actor"] = "staff:faussaire"
    previous, sql = ledger.GENESIS, []
    for row in rows:  # the forger recomputes this dossier's hashes and its own global links only
        row["hash"] = previous = ledger.link(previous, ledger.event_entry(row))
        before = await journal.owner.fetchval(
            "select ghash from (select gseq, ghash from events union all select gseq, ghash from reads) x "
            "where gseq = $1", row["gseq"] - 1) or ledger.GENESIS
        row["ghash"] = ledger.global_link(bytes(before), journal.a, row["hash"])
        sql.append(("update events set actor = $1, hash = $2, ghash = $3 where id = $4", row["actor"], row["hash"],
                    row["ghash"], row["id"]))
    await journal.tamper(*sql)
    assert any(b.kind == "changed" for b in await journal.breaks(dossier_id=journal.a))


async def test_an_anchor_forged_in_the_future_does_not_stop_anchoring(journal: Journal) -> None:
    head = await journal.owner.fetchrow("select gseq, ghash from journal_head")
    async with journal.stack.engine.begin() as conn:  # the application's role may insert anchors
        await conn.execute(text("insert into anchors (day, gseq, ghash) values ('2999-12-31', :g, :h)"),
                           {"g": head["gseq"], "h": head["ghash"]})
    marks = await audit.anchor(journal.stack.store, datetime.now(PARIS).date() + timedelta(days=1))
    assert {m["day"] for m in marks} >= {datetime.now(PARIS).date().isoformat(), "2999-12-31"}


async def test_a_bundle_missing_its_own_lines_does_not_verify(journal: Journal, tmp_path: Path) -> None:
    from domain.reading import ReadDecision

    await record(journal.stack.store, journal.a, STAFF, "content", "cli",
                 ReadDecision(granted=True, reason="chargé de mission de l’appel"), datetime.now(UTC))
    for cut, name in (("events", "last event"), ("reads", "a read")):
        bundle = tmp_path / name.replace(" ", "-")
        await audit.export(journal.stack.store, journal.a, bundle, date.today() + timedelta(days=1))
        assert ledger.verify_bundle(bundle) == []
        lines = (bundle / f"{cut}.jsonl").read_text().splitlines()
        (bundle / f"{cut}.jsonl").write_text("\n".join(lines[:-1]) + ("\n" if lines[:-1] else ""))
        assert [b.kind for b in ledger.verify_bundle(bundle)] == ["deleted"], name


async def record(store: JournalStore, dossier_id: str, actor: Actor, what: str, via: str, decision: ReadDecision,
                 at: datetime) -> None:
    """One entry of the read log, as the service layer writes it."""
    await store.record_read(ReadEntry(dossier_id=dossier_id, at=at, actor=str(actor), what=what, via=via,
                                      granted=decision.granted, reason=decision.reason))
