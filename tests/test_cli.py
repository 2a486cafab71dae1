"""The `amiflow` program as people and scripts run it: exit codes, messages, JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from amiflow.catalogue import CALLS_DIR

ROOT = CALLS_DIR.parent.parent


def amiflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amiflow.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


def test_validate_refuses_the_ressourceries_file_and_names_field_and_value() -> None:
    run = amiflow("calls", "validate", "deploy/calls")
    assert run.returncode == 1
    assert "deploy/calls/hdf-ressourceries.yaml" in run.stderr
    assert "phases[0].closes.date = '2026-02-31'" in run.stderr
    assert "Traceback" not in run.stderr
    assert "valide   deploy/calls/hdf-pmcb-reemploi.yaml" in run.stdout
    assert "valide   deploy/calls/normandie-crec-2018.yaml" in run.stdout


def test_validate_a_valid_file_exits_0() -> None:
    assert amiflow("calls", "validate", "deploy/calls/normandie-crec-2018.yaml").returncode == 0


def test_list_a_corrected_copy_shows_phase_2_closing_in_paris_and_utc(tmp_path: Path) -> None:
    copy = tmp_path / "ressourceries.yaml"
    text = (CALLS_DIR / "hdf-ressourceries.yaml").read_text()
    copy.write_text(text.replace("date: 2026-02-31", "date: 2026-02-28"))
    run = amiflow("calls", "list", str(copy), "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["refused"] == []
    phase2 = doc["calls"][0]["phases"][1]
    assert phase2["id"] == "phase-2"
    assert phase2["closes_at"] == "2026-06-05T00:00+02:00"
    assert phase2["closes_at_utc"] == "2026-06-04T22:00Z"
    assert phase2["closes_assumed"] is False
    assert phase2["opens_at"] == "2026-02-28T00:00+01:00"
    assert phase2["opens_assumed"] is True and "second temps" in phase2["opens_assumption"]


def test_list_marks_assumed_dates_and_refused_files() -> None:
    run = amiflow("calls", "list")
    assert run.returncode == 0
    assert "[date supposée]" in run.stdout
    assert "✗ deploy/calls/hdf-ressourceries.yaml" in run.stdout
    doc = json.loads(amiflow("calls", "list", "--json").stdout)
    [refused] = doc["refused"]
    assert refused.keys() == {"file", "path", "value", "error"}
    assert (refused["file"], refused["path"], refused["value"]) == (
        "deploy/calls/hdf-ressourceries.yaml", "phases[0].closes.date", "2026-02-31")
    # The error is the whole message: file, field and value, what is wrong, and what to do.
    assert refused["error"].startswith(
        "deploy/calls/hdf-ressourceries.yaml: phases[0].closes.date = '2026-02-31' : cette date n’existe pas "
        "(février 2026 n’a pas de 31). Rien n’est reporté d’office au mois suivant"
    )
    assert refused["error"].endswith("puis relancez `amiflow calls validate`.")
    crec = next(c for c in doc["calls"] if c["id"] == "normandie-crec-2018")
    assert crec["phases"][0]["closes_assumed"] is True
    assert crec["phases"][0]["kind"] == "session"


def test_schemes_list_json() -> None:
    run = amiflow("schemes", "list", "--json")
    assert run.returncode == 0
    ids = [s["id"] for s in json.loads(run.stdout)["schemes"]]
    assert "fratri" in ids and "ftj" in ids and "france-2030" in ids


def test_bad_input_exits_1_without_traceback_and_usage_errors_exit_2() -> None:
    missing = amiflow("calls", "list", "nowhere.yaml")
    assert missing.returncode == 1
    assert missing.stderr.startswith("amiflow : Introuvable : nowhere.yaml")
    assert amiflow("calls", "frobnicate").returncode == 2
    assert amiflow("--help").returncode == 0
