"""`amiflow up` as `make run` starts it: everything in the data directory, addresses printed,
SIGTERM stops every process within seconds, and a second `up` on the same directory resumes.

`up` starts the shipped call files, whose dates pass; dossiers are submitted to a copy of the PMCB
call with its dates moved around today (tests/dates.py), under an id of its own, that the test starts
in the running stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amiflow.bootstrap import runtime
from amiflow.catalogue import load_call
from amiflow.dossiers import start_calls
from amiflow.settings import load_settings
from tests import dates

# `amiflow up` takes the ports 7233, 8233 and 8234 when free: with pytest-xdist, the tests that start it
# run on one worker, one after the other (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("amiflow-up")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
PMCB_COPY = "hdf-pmcb-reemploi-copie"


def amiflow(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMIFLOW_")}
    return subprocess.run([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def wait_for_stack_file(data: Path, began: float, process: subprocess.Popen[str], deadline: float) -> None:
    """Until `up` writes this start's stack.json, after which `amiflow status` can say it runs: a file
    checked in-process, not a CLI process (a second of CPU each) spawned every half second."""
    stack_file = data / "stack.json"
    while time.monotonic() < deadline and process.poll() is None:
        if stack_file.exists() and stack_file.stat().st_mtime >= began - 1:
            return
        time.sleep(0.1)


def start(data: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMIFLOW_")}
    began = time.time()
    process = subprocess.Popen([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), "up"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    wait_for_stack_file(data, began, process, deadline)
    while time.monotonic() < deadline:
        status = amiflow(data, "status", "--json")
        if status.returncode == 0:
            return process
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.5)
    process.kill()
    raise AssertionError("amiflow up did not become ready")


def open_pmcb_copy(data: Path, folder: Path) -> Path:
    """Start the PMCB call shifted to today (id PMCB_COPY) in the stack running in `data`, as `up`
    starts the shipped calls; returns the example dossier rewritten to name that call."""
    call = load_call(dates.write_shifted_call(folder, "hdf-pmcb-reemploi", datetime.now(UTC), call_id=PMCB_COPY))
    info = json.loads((data / "stack.json").read_text(encoding="utf-8"))

    async def start_call() -> None:
        async with runtime(load_settings(data)) as rt:  # the stack's own bootstrap, from its stack.json
            await start_calls(rt.temporal(), info["task_queue"], [call])

    asyncio.run(start_call())
    example = folder / f"{PMCB_COPY}.dossier.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count("\ncall: hdf-pmcb-reemploi\n") == 1
    example.write_text(text.replace("\ncall: hdf-pmcb-reemploi\n", f"\ncall: {PMCB_COPY}\n"), encoding="utf-8")
    return example


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def stop(process: subprocess.Popen[str]) -> tuple[float, str]:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return time.monotonic() - began, out


@pytest.mark.timeout(300)
def test_up_runs_everything_stops_on_sigterm_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    process = start(data)
    try:
        info = json.loads(amiflow(data, "status", "--json").stdout)
        for key in ("temporal_address", "ui_url", "database_url", "worker_pids"):
            assert info[key], key
        assert (data / "temporal.db").exists() and (data / "pgdata").is_dir()
        assert info["calls"] == ["hdf-pmcb-reemploi", "normandie-crec-2018"]
        assert "hdf-ressourceries.yaml" in info["refused_calls"][0]["file"]
        example = open_pmcb_copy(data, tmp_path / "calls")
        submitted = amiflow(data, "dossier", "submit", "--call", PMCB_COPY, "--file", str(example),
                            "--as", "holder:acme")
        assert submitted.returncode == 0, submitted.stderr
        ident = submitted.stdout.strip().splitlines()[-1]
        due = dates.due(datetime.now(UTC), 46)  # some weeks ahead, shown with that day's Paris offset
        asked = amiflow(data, "dossier", "do", ident, "request-complement", "--pieces", "Kbis", "--due",
                        due.arg, "--as", "staff:amelie")
        assert asked.returncode == 0, asked.stderr
        pids = [info["temporal_pid"], info["postgres_pid"], info["codec_pid"], *info["worker_pids"]]
        keyring = data / "keys" / "keyring.json"
        assert keyring.stat().st_mode & 0o777 == 0o600  # generated on first start, for this directory only
    finally:
        seconds, out = stop(process)
    assert "Ctrl-C" in out and "tout est arrêté" in out
    assert seconds < 30
    assert not [pid for pid in pids if alive(pid)]
    assert amiflow(data, "status").returncode == 1

    process = start(data)
    try:
        shown = json.loads(amiflow(data, "dossier", "show", ident, "--json", "--as", "staff:amelie").stdout)
        assert shown["status"] == "complement_requested"
        assert shown["deadlines"][-1]["at"] == due.shown
        answered = amiflow(data, "dossier", "do", ident, "provide-complement", "--note", "Kbis joint",
                           "--as", "holder:acme")
        assert answered.returncode == 0, answered.stderr
        history = amiflow(data, "dossier", "history", ident, "--json", "--as", "staff:amelie").stdout
        assert [e["seq"] for e in json.loads(history)["events"]] == [1, 2, 3, 4]
        info = json.loads(amiflow(data, "status", "--json").stdout)
        pids = [info["temporal_pid"], info["postgres_pid"], info["codec_pid"], *info["worker_pids"]]
    finally:
        seconds, out = stop(process)
    assert "tout est arrêté" in out and seconds < 30, out  # the second stop is as clean as the first
    assert not [pid for pid in pids if alive(pid)]

    # The keyring lost: a clear error, never a silent new key that would leave the journal unreadable.
    keyring.rename(tmp_path / "keyring.saved")
    refused = subprocess.run([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), "up"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "Trousseau de clés introuvable" in refused.stderr, refused.stderr
    assert "restaurez" in refused.stderr and not keyring.exists()
    assert amiflow(data, "keys", "list").returncode == 1
