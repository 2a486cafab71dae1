"""Confidentiality by construction, on the real components.

A canary dossier — every text field, the texts of the commands and an attached file carry one unique
marker — goes through its whole lifecycle. Afterwards the marker appears nowhere in the Temporal
database file, PostgreSQL's data files, the logs, search attributes, memos, failures or `temporal
workflow show`; it appears for the holder and for the call's staff; readers without the need to know
are refused, and their refusal is in the read log.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from sqlalchemy import select

from activities.journal import JournalActivities
from activities.notifications import NotificationActivities
from amiflow.codec import data_converter
from amiflow.dossiers import build_command, history, send, start_calls, state, submit
from amiflow.temporal import build_worker
from domain import Actor, DossierState, replay
from domain.errors import NotAllowed
from domain.reading import Reading, may_read
from domain.state import Status
from journal.postgres import app_url
from journal.schema import dossier_keys, events, outbox
from tests import dates
from tests.conftest import Stack
from tests.directory import add_test_people
from tests.test_resilience import TEMPORAL, DevServer, make_keys, processes  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER, STAFF = Actor.parse("holder:acme"), Actor.parse("staff:amelie")
RITA, COMMITTEE = Actor.parse("reviewer:rita"), Actor.parse("committee:cora")


def canary_file(tmp_path: Path, marker: str) -> Path:
    """The PMCB example with the marker in every text the holder writes."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    content = doc["content"]
    content["holder_name"] = f"Consortium {marker}"
    content["territory"] = f"Artois {marker}"
    content["partners"] = [f"Partenaire {marker}"]
    content["sections"] = {k: f"{v} {marker}" for k, v in content["sections"].items()}
    content["financing_need"]["description"] = f"Besoin {marker}"
    doc["reference"] = "CANARI 1"
    path = tmp_path / "canari.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def files_with(root: Path, needle: bytes) -> list[str]:
    """The files under `root` whose bytes contain `needle`."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


@pytest.mark.timeout(300)
async def test_a_canary_dossier_leaves_no_clear_trace(  # noqa: PLR0915 (one lifecycle, read end to end)
    database: str, postgres_uri: str, postgres_data: Path, tmp_path: Path, processes: list[Any],  # noqa: F811
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    marker = f"CANARI{uuid.uuid4().hex}"
    data_dir = tmp_path / "data"
    keys = make_keys(data_dir, database)
    server = DevServer(tmp_path / "temporal", keys)  # on a SQLite file, searched below
    processes.append(server)
    client = await server.start()
    task_queue = f"tq-canari-{uuid.uuid4().hex[:8]}"
    journal = JournalActivities(keys.store, keys)
    notifications = NotificationActivities(keys.store, keys, tmp_path / "maildrop")
    worker = build_worker(client, task_queue, [journal.append, journal.open_dossiers, notifications.send])
    env = {**os.environ, "AMIFLOW_DATA_DIR": str(data_dir), "AMIFLOW_TEMPORAL_ADDRESS": server.address,
           "AMIFLOW_DATABASE_URL": app_url(database), "AMIFLOW_TASK_QUEUE": task_queue,
           "AMIFLOW_NAMESPACE": "default"}

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amiflow.cli", *args, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        return process.returncode or 0, out.decode(), err.decode()

    await add_test_people(keys.store)
    async with worker:
        await start_calls(client, task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        ident = (await submit(client, task_queue, canary_file(tmp_path, marker), HOLDER, datetime.now(UTC))).dossier_id
        attachment = tmp_path / f"budget-{marker}.txt"
        attachment.write_text(f"Budget détaillé {marker}\n" * 200)
        code, out, err = await cli("dossier", "attach", ident, str(attachment), "--as", "holder:acme")
        assert code == 0, err
        document_id = out.strip().splitlines()[-1]

        async def do(actor: Actor, name: str, **options: str) -> None:
            await send(client, ident, build_command(name, options), actor)

        due = dates.due(datetime.now(UTC), 20).arg
        await do(STAFF, "acknowledge")
        await do(STAFF, "request-complement", pieces=f"Pièces {marker}", due=due)
        await do(HOLDER, "provide-complement", note=f"Réponse {marker}")
        await do(STAFF, "declare-complete")
        await do(STAFF, "assign-reviewers", reviewers="rita", due=due)

        # Readers without the need to know: refused, with the reason, nothing shown.
        for who, reason in [("reviewer:remi", "non affecté"), ("reviewer:rita", "pas encore déclarée"),
                            ("staff:bruno", "pas chargé de mission de cet appel"),
                            ("holder:intrus", "autre porteur")]:
            code, out, err = await cli("dossier", "show", ident, "--as", who, "--json")
            assert code == 1 and reason in err and marker not in out + err, (who, out, err)
        code, _, err = await cli("dossier", "document", ident, document_id, "--out", str(tmp_path / "x"),
                                 "--as", "reviewer:rita")
        assert code == 1 and "Lecture refusée" in err and not (tmp_path / "x").exists()

        await do(RITA, "declare-interests", conflict="false", statement=f"Aucun lien {marker}")
        code, out, _ = await cli("dossier", "show", ident, "--as", "reviewer:rita", "--json")
        assert code == 0 and marker in out  # declared free of conflict: now reads
        await do(RITA, "submit-review", scores="solutions=4,court_terme=3,impact_socio_economique=5",
                 opinion=f"Avis {marker}")
        code, out, _ = await cli("dossier", "show", ident, "--as", "committee:cora", "--json")
        shown = json.loads(out)
        assert code == 0 and not shown["content_granted"] and shown["state"]["reviews"]
        assert shown["state"]["content"]["sections"] == {}  # the summary, not the sections
        await do(COMMITTEE, "decide", retained="true", reasons=f"Motifs {marker}")
        await do(STAFF, "orient")
        await do(STAFF, "record-follow-up", kind="charter_signed")
        await do(HOLDER, "file-report", period="1", summary=f"Rapport {marker}")

        # The holder and the call's staff read everything, the document byte for byte.
        for who in ("holder:acme", "staff:amelie"):
            code, out, err = await cli("dossier", "show", ident, "--as", who, "--json")
            assert code == 0 and json.loads(out)["content_granted"], err
            assert f"Consortium {marker}" in out and f"Artois {marker}" in out
        code, _, err = await cli("dossier", "document", ident, document_id, "--out", str(tmp_path / "copie.txt"),
                                 "--as", "staff:amelie")
        assert code == 0, err
        assert (tmp_path / "copie.txt").read_bytes() == attachment.read_bytes()

        # The auditor sees who read what, refusals included, and no content without a clearance.
        code, out, err = await cli("dossier", "history", ident, "--as", "auditor:odile", "--json")
        assert code == 0, err
        history = json.loads(out)
        assert marker not in out and not history["content_granted"]
        refused = {(r["actor"], r["what"]) for r in history["reads"] if not r["granted"]}
        assert {("reviewer:remi", "content"), ("reviewer:rita", "content"),
                (("reviewer:rita", f"document:{document_id}"))} <= refused
        assert ("auditor:odile", "content") in refused  # the auditor's own attempt at the bodies
        granted = {(r["actor"], r["what"]) for r in history["reads"] if r["granted"]}
        assert ("staff:amelie", f"document:{document_id}") in granted and ("holder:acme", "content") in granted
        # The committee read the reviews and the summary: logged as read, never as refused.
        assert {("committee:cora", "reviews"), ("committee:cora", "summary")} <= granted
        assert not any(actor == "committee:cora" for actor, _ in refused)

        # What Temporal keeps and shows: ids, statuses, ciphertext.
        handle = client.get_workflow_handle(ident)
        description = await handle.describe()
        assert marker not in repr(description.search_attributes) + repr(await description.memo())
        shown_by_temporal = subprocess.run(
            [str(TEMPORAL), "workflow", "show", "-w", ident, "--address", server.address, "-o", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        assert "YmluYXJ5L2VuY3J5cHRlZA==" in shown_by_temporal  # base64 of binary/encrypted: payloads are there
        assert marker not in shown_by_temporal

    await server.stop()
    admin = await asyncpg.connect(postgres_uri)
    await admin.execute("CHECKPOINT")
    await admin.close()
    needle = marker.encode()
    assert ident.encode() in (tmp_path / "temporal" / "temporal.db").read_bytes()  # the search does find clear ids
    assert files_with(tmp_path / "temporal", needle) == []  # the SQLite file, its WAL, the server's logs
    assert files_with(postgres_data, ident.encode())  # clear ids are found there too
    assert files_with(postgres_data, needle) == []  # tables, indexes, WAL
    assert files_with(data_dir, needle) == []  # the vault holds the document sealed
    async with keys.store.engine.connect() as conn:
        sealed = (await conn.execute(select(events.c.key_id, events.c.sealed, events.c.payload)
                                     .where(events.c.dossier_id == ident))).all()
        assert sealed and all(r.key_id == "k1" and r.sealed and r.payload is None for r in sealed)
        assert not (await conn.execute(select(outbox.c.body).where(outbox.c.body.is_not(None)))).all()
        assert (await conn.execute(select(dossier_keys.c.dossier_id))).scalars().all() == [ident]
    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert ident in logs and marker not in logs
    await keys.store.dispose()


async def test_failures_travel_encoded(database: str, tmp_path: Path) -> None:
    """A failure's message and stack trace go inside the sealed payload, not in Temporal's clear fields."""
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    keys = make_keys(tmp_path / "data", database)
    converter = data_converter(keys)
    failure = Failure()
    try:
        raise ApplicationError("Motif CANARIfailure", type="refused")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    assert b"CANARIfailure" not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == b"binary/encrypted"
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.message == "Motif CANARIfailure"
    await keys.store.dispose()


async def test_a_clearance_reaches_a_dossier_already_closed(stack: Stack) -> None:
    """Audits come after the end: staff grant an auditor the content of a closed dossier; the event is
    journaled by a new run of its workflow, which ends again, the dossier still closed."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        ident = (await submit(stack.client, stack.task_queue, EXAMPLE, HOLDER, datetime.now(UTC))).dossier_id
    await send(stack.client, ident, build_command("close", {"reason": "Hors champ"}), STAFF)
    handle = stack.client.get_workflow_handle(ident)
    await handle.result()
    auditor = Actor.parse("auditor:odile")
    closed = await state(stack.client, stack.store, stack.keys, ident)
    assert not may_read(closed, auditor, Reading.CONTENT).granted
    grant = build_command("grant-clearance", {"auditor": "odile", "reason": "Contrôle FEDER"})
    with pytest.raises(NotAllowed):
        await send(stack.client, ident, grant, auditor, stack.store, stack.keys, stack.task_queue)
    result = await send(stack.client, ident, grant, STAFF, stack.store, stack.keys, stack.task_queue)
    assert result.status is Status.CLOSED and result.events == ["clearance_granted"]
    final = await stack.client.get_workflow_handle(ident, result_type=DossierState).result()
    assert final.clearances == ("odile",)
    events = await history(stack.store, stack.keys, ident)
    assert [e.type for e in events][-2:] == ["closed", "clearance_granted"]
    assert may_read(replay(events), auditor, Reading.CONTENT).granted
