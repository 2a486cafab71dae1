"""The benchmarks' quick runs, so that `make bench` cannot rot unseen: `bench/run.py --quick` and
`bench/verify.py --quick` run in subprocesses (their own Temporal dev server and PostgreSQL) and every
step must end with its figure. Nothing is asserted about speed: only that each step ran to the end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each step's report line of bench/run.py and the figure it must carry (number, then unit).
RUN_FIGURES = {
    "1 transition via amiflow": r"^1\s+staff transition via amiflow .*p50 [\d.]+ ms · p99 [\d.]+ ms",
    "2 direct PostgreSQL": r"^2\s+same transition in PostgreSQL .*p50 [\d.]+ ms · p99 [\d.]+ ms",
    "2 journal activity alone": r"journal activity's transaction alone .*p50 [\d.]+ ms · p99 [\d.]+ ms",
    "3 bare Update": r"^3\s+bare Temporal Update .*p50 [\d.]+ ms · p99 [\d.]+ ms",
    "3 bare Updates/s": r"workflows updated in loops, .*[\d.]+ Updates/s",
    "4 amiflow transitions/s": r"^4\s+amiflow, \d+ dossiers in loops, .*[\d.]+ transitions/s",
    "5 deadline storm": r"^5\s+deadline storm, \d+ drafts closing at once\s+all expired [\d.]+ s after closing",
    "6 journal append": r"written by the journal's append .*[\d.]+ s \([\d,]+ events/s\)",
    "6 replay": r"^6\s+replay, [\d,]+ events .*\s[\d,]+ events/s",
    "6 load and open": r"load \(SQLAlchemy\) .*[\d.]+ s / [\d.]+ s / [\d.]+ s \([\d,]+ events/s\)",
    "7 API command": r"^7\s+staff command through the API, HTTP → Update → journal .*p50 [\d.]+ ms · p99 [\d.]+ ms",
    "7 service command": r"same command through the service layer\s+p50 [\d.]+ ms · p99 [\d.]+ ms",
    "8 list endpoint": r"^8\s+list endpoint over [\d,]+ dossiers .*p50 [\d.]+ ms · p95 [\d.]+ ms",
    "9 list page": r"^9\s+back office: a call's list page over [\d,]+ dossiers .*p50 [\d.]+ ms · p95 [\d.]+ ms",
    "10 dossier page": r"^10\s+back office: a dossier page with \d+ events .*p50 [\d.]+ ms · p95 [\d.]+ ms",
}

VERIFY_FIGURES = {
    "audit verify": r"^audit verify .*best of \d+ [\d.]+ s = [\d,]+ entries/s",
    "chain check": r"^chain check alone, rows in memory: [\d.]+ s = [\d,]+ entries/s",
    "tampering found": r"^one altered byte in the middle: found = \[\('",
}


def run(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def missing(figures: dict[str, str], out: str) -> list[str]:
    return [name for name, pattern in figures.items() if not re.search(pattern, out, re.MULTILINE)]


def test_bench_run_quick_every_step_prints_its_figure() -> None:
    done = run("run.py", timeout=280)
    tail = f"\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert "ERROR in" not in done.stdout, tail
    assert done.returncode == 0, tail
    assert missing(RUN_FIGURES, done.stdout) == [], tail


def test_bench_verify_quick_prints_its_figures() -> None:
    done = run("verify.py", timeout=120)
    tail = f"\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.returncode == 0, tail
    assert missing(VERIFY_FIGURES, done.stdout) == [], tail
