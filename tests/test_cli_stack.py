"""The `amiflow` program against a running stack (real dev server and PostgreSQL): the commands
people type, and bad input refused with exit 1, a clear message and nothing written."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.service import RPCError

from amiflow.catalogue import load_call
from amiflow.clikit import os_user
from amiflow.dossiers import start_calls
from tests import dates
from tests.conftest import Stack
from tests.directory import add_test_people

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
PMCB_ID = "hdf-pmcb-reemploi.siret-90000000000017-plateforme-lens-lievin"

Run = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def pmcb_file(tmp_path: Path) -> Path:
    """The PMCB call the test's stack runs: the shipped file with its dates moved around today
    (tests/dates.py: open today, for about 19 more months), under the shipped id."""
    return dates.write_shifted_call(tmp_path / "calls", "hdf-pmcb-reemploi", datetime.now(UTC))


@pytest.fixture
async def cli(stack: Stack, tmp_path: Path, pmcb_file: Path) -> Run:
    """Runs `amiflow …` as a separate process against the test's stack (without blocking the
    event loop, where the test's worker runs)."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [load_call(pmcb_file)])
    await add_test_people(stack.store)
    env = {
        **os.environ,
        "AMIFLOW_DATA_DIR": str(tmp_path / "data"),
        "AMIFLOW_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "AMIFLOW_DATABASE_URL": stack.database_url,
        "AMIFLOW_TASK_QUEUE": stack.task_queue,
        "AMIFLOW_NAMESPACE": stack.namespace,
    }

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amiflow.cli", *args, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    return run


async def journal(stack: Stack) -> list[tuple[str, int, str]]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(text("select dossier_id, seq, type from events order by dossier_id, seq"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def no_workflow(stack: Stack, workflow_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return True
    return False


async def test_submit_do_show_history_list(cli: Run, stack: Stack) -> None:
    code, out, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                               "--as", "holder:acme")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == PMCB_ID
    code, out, _ = await cli("dossier", "do", PMCB_ID, "acknowledge", "--as", "staff:amelie")
    assert code == 0 and "en instruction" in out
    due = dates.due(datetime.now(UTC), 10)
    code, out, err = await cli("dossier", "do", PMCB_ID, "request-complement", "--pieces", "Kbis",
                               "--due", due.arg, "--as", "staff:amelie")
    assert code == 0, err
    code, out, _ = await cli("dossier", "show", PMCB_ID, "--json", "--as", "staff:amelie")
    shown = json.loads(out)
    assert shown["status"] == "complement_requested"
    assert [d["kind"] for d in shown["deadlines"]][-1] == "complement_due"
    assert shown["deadlines"][-1]["at"] == due.shown  # 00:00 Paris, +01:00 or +02:00 as that day is
    code, out, _ = await cli("dossier", "history", PMCB_ID, "--json", "--as", "staff:amelie")
    history = json.loads(out)
    assert [e["type"] for e in history["events"]] == [
        "draft_started", "submitted", "acknowledged", "complement_requested"]
    # The journal and the read log say the person, and that it came from the operator's command line
    # on the server, with the OS user who typed it.
    assert {e["actor"] for e in history["events"][2:]} == {"staff:amelie"}
    assert all(e["event"]["origin"] == {"via": "cli", "os_user": os_user()} for e in history["events"])
    assert {(r["actor"], r["via"]) for r in history["reads"]} == {("staff:amelie", f"cli:{os_user()}")}
    # Scripts written before issue 5, without --as, still get status and deadlines — metadata only.
    code, out, err = await cli("dossier", "show", PMCB_ID, "--json")
    anonymous = json.loads(out)
    assert code == 0 and anonymous["status"] == "complement_requested", err
    assert anonymous["state"]["content"] is None and not anonymous["content_granted"] and "Consortium" not in out
    code, out, _ = await cli("dossier", "history", PMCB_ID, "--json")
    assert code == 0 and [e["type"] for e in json.loads(out)["events"]][-1] == "complement_requested"
    assert "event" not in json.loads(out)["events"][0] and json.loads(out)["reads"] == []
    code, out, _ = await cli("dossier", "list", "--call", "hdf-pmcb-reemploi", "--json")
    (row,) = json.loads(out)["dossiers"]
    assert row["status"] == "complement_requested" and row["next_deadline_kind"] == "complement_due"
    # Submitting the same reference again finds the same dossier.
    before = await journal(stack)
    code, out, _ = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                             "--as", "holder:acme")
    assert code == 0 and out.strip().splitlines()[-1] == PMCB_ID
    assert await journal(stack) == before


async def test_bad_input_is_refused_and_writes_nothing(cli: Run, stack: Stack, tmp_path: Path) -> None:
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                             "--as", "holder:acme")
    assert code == 0, err
    before = await journal(stack)

    # Unknown call: the file names it.
    other = tmp_path / "other.yaml"
    other.write_text(EXAMPLE.read_text().replace("call: hdf-pmcb-reemploi", "call: appel-inconnu"))
    code, _, err = await cli("dossier", "submit", "--call", "appel-inconnu", "--file", str(other),
                             "--as", "holder:acme")
    assert code == 1 and "Appel inconnu « appel-inconnu »" in err and "Traceback" not in err
    assert await no_workflow(stack, "appel-inconnu.siret-90000000000017-plateforme-lens-lievin")

    # Malformed dossier file.
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("holder_type: entreprise", "holder_type: startup")
                      .replace('reference: "SIRET', 'reference: "AUTRE'))
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(broken),
                             "--as", "holder:acme")
    assert code == 1 and "content.holder_type" in err and "type de porteur inconnu" in err
    assert await no_workflow(stack, "hdf-pmcb-reemploi.autre-90000000000017-plateforme-lens-lievin")

    # Ineligible holder type: refused by the rules before any workflow starts.
    ineligible = tmp_path / "ineligible.yaml"
    ineligible.write_text(EXAMPLE.read_text().replace("holder_type: entreprise", "holder_type: association")
                          .replace('reference: "SIRET', 'reference: "ASSO'))
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(ineligible),
                             "--as", "holder:acme")
    assert code == 1 and "n’est pas éligible" in err
    assert await no_workflow(stack, "hdf-pmcb-reemploi.asso-90000000000017-plateforme-lens-lievin")

    # Wrong role, unknown command, a complement due in the past, another holder, bad --as.
    cases = [
        (["acknowledge", "--as", "reviewer:rita"], "réservé au rôle chargé de mission"),
        (["frobnicate", "--as", "staff:amelie"], "Commande inconnue « frobnicate »"),
        (["request-complement", "--pieces", "Kbis", "--due", "2020-01-01", "--as", "staff:amelie"],
         "doit être dans le futur"),
        (["withdraw", "--as", "holder:intrus"], "appartient à un autre porteur"),
        (["acknowledge", "--as", "amelie"], "écrivez ROLE:NOM"),
        (["acknowledge", "--bogus", "1", "--as", "staff:amelie"], "Option inconnue --bogus"),
        (["acknowledge", "--as", "auditor:aude"], "Un auditeur consulte"),
        # Only people of the directory, in a role they hold.
        (["acknowledge", "--as", "staff:inconnu"], "« inconnu » n’est pas dans l’annuaire"),
        (["acknowledge", "--as", "holder:amelie"], "« amelie » n’a pas le rôle holder"),
    ]
    for args, message in cases:
        code, out, err = await cli("dossier", "do", PMCB_ID, *args)
        assert code == 1, (args, out, err)
        assert message in err, (args, err)
        assert "Traceback" not in err
    code, _, err = await cli("dossier", "do", "dossier-inexistant", "acknowledge", "--as", "staff:amelie")
    assert code == 1 and "Dossier inconnu" in err
    assert await journal(stack) == before

    # Usage errors exit 2.
    code, _, _ = await cli("dossier", "submit", "--as", "holder:acme")
    assert code == 2


async def test_extend_a_phase_from_the_command_line(cli: Run, stack: Stack, pmcb_file: Path) -> None:
    # The phase closes « avant le DAY »; it is extended by two months, then an earlier date is refused.
    closes = dates.paris_today(load_call(pmcb_file).phases[0].closes_at)
    later, earlier = dates.Due(closes + timedelta(days=62)), dates.Due(closes + timedelta(days=31))
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                             "--as", "holder:acme")
    assert code == 0, err
    code, _, err = await cli("calls", "extend", "hdf-pmcb-reemploi", "unique", "--until", later.arg,
                             "--as", "holder:acme")
    assert code == 1 and "réservé aux chargés de mission" in err
    code, out, err = await cli("calls", "extend", "hdf-pmcb-reemploi", "unique", "--until", later.arg,
                               "--as", "staff:amelie")
    assert code == 0, err
    assert later.shown in out and "1 dossier(s)" in out
    code, _, err = await cli("calls", "extend", "hdf-pmcb-reemploi", "unique", "--until", earlier.arg,
                             "--as", "staff:amelie")
    assert code == 1 and "repousse la clôture" in err
    for _ in range(50):  # the dossier follows by signal: wait for its journal
        rows = await journal(stack)
        if rows[-1][2] == "deadline_extended":
            break
        await asyncio.sleep(0.1)
    assert [r[2] for r in await journal(stack)][-1] == "deadline_extended"


async def test_status_without_a_stack(cli: Run) -> None:
    code, out, _ = await cli("status", "--json")
    assert code == 1 and json.loads(out)["running"] is False
