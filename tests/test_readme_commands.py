"""Every command line of the README runs, as written, against a stack started the way the README
says (`amiflow up --data-dir DIR`), in the README's order: a walkthrough that fails here fails for
the next person who tries it. Only the call files differ: shifted copies (tests/dates.py), so that
the shipped call is open whatever the day the test runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.dates import write_shifted_call
from tests.test_up import wait_for_stack_file

# `amiflow up` takes the ports 7233, 8233 and 8234 when free: with pytest-xdist, the tests that start it
# run on one worker, one after the other (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("amiflow-up")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def readme_command_lines() -> list[str]:
    """The shell lines of the README's `sh` blocks, continuation lines joined; `make` lines left
    out (they are what runs this test)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            text = line.strip()
            if text and not text.startswith("#") and not text.startswith("make "):
                lines.append(text)
    return lines


def test_the_readme_has_the_walkthrough_and_the_auditors_lines() -> None:
    lines = readme_command_lines()
    assert any(line.startswith("amiflow dossier submit") for line in lines)
    assert any(line.startswith("amiflow audit shred") for line in lines)
    assert sum(line.startswith("amiflow ") for line in lines) >= 35


def _script(lines: list[str]) -> str:
    """One bash script, so that variables (D, SOON) carry from line to line; each line must exit 0."""
    out = ["set -u"]
    for i, line in enumerate(lines, start=1):
        out.append(f"{line} || {{ echo {shlex.quote(f'README line {i} failed: {line}')} >&2; exit 1; }}")
    return "\n".join(out) + "\n"


@pytest.mark.timeout(600)
def test_every_readme_command_line_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "deploy").symlink_to(ROOT / "deploy")  # the README's relative paths (deploy/examples/…)
    calls = tmp_path / "calls"
    write_shifted_call(calls, "hdf-pmcb-reemploi", datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMIFLOW_")}
    env |= {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "AMIFLOW_CALLS_DIR": str(calls)}
    began = time.time()
    up = subprocess.Popen(["amiflow", "up", "--data-dir", ".amiflow"], cwd=work, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        wait_for_stack_file(work / ".amiflow", began, up, deadline)
        while subprocess.run(["amiflow", "status"], cwd=work, env=env, capture_output=True, check=False).returncode:
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read() if up.stdout else ""
            time.sleep(0.5)
        run = subprocess.run(["bash", "-c", _script(readme_command_lines())], cwd=work, env=env, check=False,
                             capture_output=True, text=True, timeout=480)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Intègre" in run.stdout and "1 dossier(s) sur 1 auraient une autre issue" in run.stdout, run.stdout
    finally:
        up.terminate()
        up.communicate(timeout=60)
