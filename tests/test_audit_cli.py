"""The auditors' commands as people type them, against a running stack: a dossier's state at any
instant equals the state it had then, step by step; its timeline with reads; what-if under a changed
call; anchors, export and verification of a bundle from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from amiflow.dossiers import build_command, send, state_as_of
from domain import Actor
from domain.calendar import PARIS
from tests import dates
from tests.conftest import Stack
from tests.test_cli_stack import EXAMPLE, PMCB_ID, Run, cli, pmcb_file  # noqa: F401 (fixtures)
from workflows.dossier import DossierWorkflow

STAFF, HOLDER = Actor.parse("staff:amelie"), Actor.parse("holder:acme")

AUDITOR = "auditor:odile"


async def test_state_as_of_any_instant_is_the_state_it_had(cli: Run, stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                             "--as", "holder:acme")
    assert code == 0, err
    handle = stack.client.get_workflow_handle(PMCB_ID)
    due = dates.due(datetime.now(UTC), 20).arg
    steps = [await handle.query(DossierWorkflow.current)]
    commands = [(STAFF, "acknowledge", {}), (STAFF, "request-complement", {"pieces": "Kbis", "due": due}),
                (HOLDER, "provide-complement", {"note": "joint"}), (STAFF, "declare-complete", {})]
    for actor, name, options in commands:
        await send(stack.client, PMCB_ID, build_command(name, options), actor)
        steps.append(await handle.query(DossierWorkflow.current))
    from amiflow.dossiers import history

    events = await history(stack.store, stack.keys, PMCB_ID)
    assert len(events) == 6  # draft, submitted, then one per command
    # Each step's state, rebuilt at the instant of its last event and just before the next one.
    for state in steps:
        last = events[state.version - 1].at
        assert await state_as_of(stack.store, stack.keys, PMCB_ID, last) == state
        following = events[state.version].at if state.version < len(events) else last + timedelta(days=1)
        assert await state_as_of(stack.store, stack.keys, PMCB_ID, following - timedelta(microseconds=1)) == state

    # From the command line, in Paris time (to the microsecond if need be); the read is logged with its instant.
    acknowledged_at = events[2].at.astimezone(PARIS).replace(tzinfo=None).isoformat()
    code, out, err = await cli("dossier", "show", PMCB_ID, "--as", "staff:amelie", "--json", "--as-of", acknowledged_at)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["status"] == "acknowledged" and shown["version"] == 3 and shown["as_of"][-6:] in ("+01:00", "+02:00")
    code, _, err = await cli("dossier", "show", PMCB_ID, "--as", "staff:amelie", "--as-of", "2020-01-01")
    assert code == 1 and "n’existait pas encore" in err
    # Today's rules decide for the past too: an auditor cleared now reads the dossier as it stood then.
    code, out, _ = await cli("dossier", "show", PMCB_ID, "--as", "auditor:odile", "--json", "--as-of", acknowledged_at)
    assert code == 0 and not json.loads(out)["content_granted"] and json.loads(out)["state"]["content"] is None
    await send(stack.client, PMCB_ID, build_command("grant-clearance", {"auditor": "odile", "reason": "FEDER"}), STAFF)
    code, out, _ = await cli("dossier", "show", PMCB_ID, "--as", "auditor:odile", "--json", "--as-of", acknowledged_at)
    cleared = json.loads(out)
    assert code == 0 and cleared["content_granted"] and cleared["status"] == "acknowledged"
    assert cleared["state"]["content"]["holder_name"].startswith("Consortium")
    events = await history(stack.store, stack.keys, PMCB_ID)

    code, out, err = await cli("dossier", "timeline", PMCB_ID, "--as", "auditor:odile", "--json")
    assert code == 0, err
    entries = json.loads(out)["entries"]
    assert [e["type"] for e in entries if e["kind"] == "event"] == [e.type for e in events]
    read = next(e for e in entries if e["kind"] == "read")
    assert read["actor"] == "staff:amelie" and read["what"].startswith("content@") and read["granted"]
    assert [e["at_utc"] for e in entries] == sorted(e["at_utc"] for e in entries)
    code, out, _ = await cli("dossier", "timeline", PMCB_ID, "--as", "auditor:odile")
    assert code == 0 and "lecture content@" in out and "declared_complete" in out
    code, _, err = await cli("dossier", "timeline", PMCB_ID, "--as", "reviewer:remi")
    assert code == 1 and "Lecture refusée" in err


async def test_whatif_anchor_export_and_verify(cli: Run, stack: Stack, tmp_path: Path, pmcb_file: Path) -> None:  # noqa: F811
    code, _, err = await cli("dossier", "submit", "--call", "hdf-pmcb-reemploi", "--file", str(EXAMPLE),
                             "--as", "holder:acme")
    assert code == 0, err
    await send(stack.client, PMCB_ID, build_command("acknowledge", {}), STAFF)

    # What-if: the same call without "entreprise" among its holders — this dossier would have been refused.
    definition = yaml.safe_load(pmcb_file.read_text())  # the rules the stack runs (dates moved to today)
    definition["phases"][0]["holder_types"] = [t for t in definition["phases"][0]["holder_types"] if t != "entreprise"]
    changed = tmp_path / "pmcb-sans-entreprises.yaml"
    changed.write_text(yaml.safe_dump(definition, allow_unicode=True))
    code, out, err = await cli("audit", "whatif", "--call", "hdf-pmcb-reemploi", "--rules", str(changed), "--json",
                               "--as", "staff:amelie")
    assert code == 1 and "réservé aux auditeurs" in err and "Consortium" not in out + err
    code, out, err = await cli("audit", "whatif", "--call", "hdf-pmcb-reemploi", "--rules", str(changed), "--json",
                               "--as", AUDITOR)
    assert code == 0, err
    report = json.loads(out)
    assert report["dossiers"] == 1 and [d["dossier_id"] for d in report["differing"]] == [PMCB_ID]
    assert report["differing"][0]["would_be"] == "new" and "éligible" in report["differing"][0]["reason"]
    code, out, _ = await cli("audit", "whatif", "--call", "hdf-pmcb-reemploi",
                             "--rules", str(pmcb_file), "--as", AUDITOR)
    assert code == 0 and "0 dossier(s) sur 1" in out
    code, _, err = await cli("audit", "whatif", "--call", "autre-appel", "--rules", str(changed), "--as", AUDITOR)
    assert code == 1 and "pas « autre-appel »" in err

    # Anchors written to a file kept elsewhere; the journal verifies against them; a bundle verifies alone.
    anchors = tmp_path / "ancres.jsonl"
    code, out, err = await cli("audit", "anchor", "--out", str(anchors))
    assert code == 0, err
    code, out, err = await cli("audit", "verify", "--anchors", str(anchors), "--json")
    assert code == 0 and json.loads(out)["ok"], out + err
    code, out, err = await cli("audit", "verify", "--dossier", PMCB_ID)
    assert code == 0 and "Intègre" in out, err
    code, out, err = await cli("audit", "verify", "--dossier", "hdf-pmcb-reemploi.inconnu")
    assert code == 1 and "Dossier inconnu" in err
    bundle = tmp_path / "bundle"
    code, out, err = await cli("audit", "export", PMCB_ID, "--out", str(bundle), "--json", "--as", "holder:acme")
    assert code == 1 and "réservé aux auditeurs" in err and not bundle.exists()
    code, out, err = await cli("audit", "export", PMCB_ID, "--out", str(bundle), "--json", "--as", AUDITOR)
    assert code == 0, err
    assert json.loads(out)["events"] == 3 and json.loads(out)["temporal_history"] is True
    code, out, err = await cli("audit", "verify", "--bundle", str(bundle))
    assert code == 0 and "Intègre" in out, out + err
    code, _, err = await cli("audit", "export", PMCB_ID, "--out", str(bundle), "--as", AUDITOR)
    assert code == 1 and "existe déjà" in err
    code, out, err = await cli("audit", "crosscheck", PMCB_ID, "--json", "--as", AUDITOR)
    assert code == 0 and json.loads(out)["ok"] and json.loads(out)["journal_events"] == 3, out + err
    # Each audit operation that opens a dossier is in its read log, granted or refused.
    code, out, err = await cli("dossier", "history", PMCB_ID, "--json", "--as", AUDITOR)
    logged = {(r["what"], r["actor"], r["granted"]) for r in json.loads(out)["reads"]}
    assert {("whatif", "staff:amelie", False), ("whatif", AUDITOR, True), ("export", "holder:acme", False),
            ("export", AUDITOR, True), ("crosscheck", AUDITOR, True)} <= logged, logged
