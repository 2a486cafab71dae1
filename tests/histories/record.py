# ruff: noqa: E402 (the repository root goes on sys.path before amiflow's imports)
"""Record the reference histories that tests/test_histories.py replays against the current code.

What: one whole lifecycle per shipped call — PMCB, and ressourceries and CREC on copies with their
dates moved to the future — driven exactly as tests/test_lifecycle.py drives them (its `drive` and
`moved`, with the same date replacements: when those dates are past, move them there and here). Each
dossier's workflow history is exported with `WorkflowHistory.to_json()`, gzipped, with its call's
workflow history as it stands at the end; `manifest.json` names each file's workflow id. Payloads are
plain pydantic JSON (`temporalio.contrib.pydantic.pydantic_data_converter`, no codec): the data are
the fictional examples of deploy/examples, nothing is secret, and no key is needed to replay. The
journal the activities write is sealed with a throwaway keyring in a temporary directory.

How, from the repository root (a few seconds; starts its own Temporal dev server and embedded
PostgreSQL, as tests/conftest.py does, and stops them):

    .venv/bin/python tests/histories/record.py            # rewrites the files of this folder
    .venv/bin/python tests/histories/record.py --tag v2   # writes <name>.v2.json.gz beside them

Files are gzipped (`zcat pmcb.dossier.json.gz | jq` to read one; `temporal workflow show` and the Web
UI export the same JSON).

When: not after an ordinary change. These files stand for workflows already running in production:
if the current code no longer replays them, a deployment would break those workflows. After a
deliberate change of workflow behaviour, guarded by `workflow.patched("…")` so that the old histories
still replay (tests/test_histories.py shows how), record the new behaviour under a tag and keep the
old files until no workflow started before the change can still be running (then the patch can be
deprecated with `workflow.deprecate_patch` and the old files removed). Re-recording over the old
files without such a guard would hide exactly the break these tests exist to catch.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import temporalio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment

from activities.journal import JournalActivities
from activities.notifications import NotificationActivities
from amiflow.catalogue import CALLS_DIR, load_call
from amiflow.temporal import build_worker
from domain import Call
from journal import embedded
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore, create_engine, migrate
from tests.conftest import DEV_SERVER_ARGS, TEMPORAL
from tests.test_lifecycle import EXAMPLES, drive, moved
from workflows.call import call_workflow_id

MANIFEST = HERE / "manifest.json"


def pmcb(_: Path) -> Call:
    return load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")


def ressourceries(tmp: Path) -> Call:  # as tests/test_lifecycle.py's phase-2 lifecycle
    return load_call(moved(tmp, "hdf-ressourceries.yaml", {
        "date: 2026-02-31": "date: 2026-11-01", "date: 2026-06-05": "date: 2027-06-05",
    }))


def crec(tmp: Path) -> Call:  # as tests/test_lifecycle.py's session lifecycle
    return load_call(moved(tmp, "normandie-crec-2018.yaml", {
        "date: 2018-04-19": "date: 2026-11-01", "date: 2018-09-08": "date: 2027-09-08",
    }))


# name → (the call, the example dossier, review scores, reviewed after the phase closed)
LIFECYCLES: dict[str, tuple[Callable[[Path], Call], str, str, bool]] = {
    "pmcb": (pmcb, "hdf-pmcb-reemploi.yaml", "solutions=4,court_terme=3,impact_socio_economique=5", False),
    "ressourceries": (ressourceries, "hdf-ressourceries.yaml",
                      "solutions=5,court_terme=4,impact_socio_economique=4", True),
    "crec": (crec, "normandie-crec-2018.yaml", "strategie=4,emergence=4,mise_en_oeuvre=3", True),
}


async def record(tag: str) -> dict[str, Any]:
    """Run the three lifecycles on a fresh stack; write each history; return the manifest entries."""
    os.environ.pop("AMIFLOW_KEYRING", None)  # never a real keyring: a throwaway one below
    entries: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="amiflow-histories-") as tmp_dir:
        tmp = Path(tmp_dir)
        database = await embedded.create_database(embedded.start(tmp / "pgdata"), "histories")
        await asyncio.to_thread(migrate, database)
        store = PostgresStore(create_engine(database))
        keys = DossierKeys(Keyring.open(tmp / "data", create=True), store)
        env = await WorkflowEnvironment.start_time_skipping_v2(
            dev_server_existing_path=str(TEMPORAL), dev_server_extra_args=DEV_SERVER_ARGS,
            data_converter=pydantic_data_converter,
            ts_config=TimeSkippingConfig(enabled=False, max_session_skip_count=5000),
        )
        try:
            client = await Client.connect(env.client.service_client.config.target_host, namespace="default",
                                          data_converter=pydantic_data_converter)
            skipper = TimeSkipper(client, config=TimeSkippingConfig(enabled=False, max_session_skip_count=5000))
            journal = JournalActivities(store, keys)
            notifications = NotificationActivities(store, keys, tmp / "maildrop")
            task_queue = f"histories-{uuid.uuid4()}"
            worker = build_worker(skipper.client, task_queue,
                                  [journal.append, journal.open_dossiers, notifications.send])
            stack = SimpleNamespace(env=skipper, client=skipper.client, task_queue=task_queue)
            async with worker:
                for name, (make_call, example, scores, after_closing) in LIFECYCLES.items():
                    (tmp / name).mkdir()
                    call = make_call(tmp / name)
                    ident = await drive(stack, call, EXAMPLES / example, scores,  # type: ignore[arg-type]
                                        after_closing=after_closing)
                    for kind, workflow_id in (("dossier", ident), ("call", call_workflow_id(call.id))):
                        file = f"{name}.{kind}{'.' + tag if tag else ''}.json.gz"
                        await _export(client, workflow_id, HERE / file)
                        entries[file] = {"workflow_id": workflow_id,
                                         "workflow": "DossierWorkflow" if kind == "dossier" else "CallWorkflow",
                                         "call": call.id}
                        print(f"{file}: {workflow_id}")
        finally:
            await env.shutdown()
            await store.dispose()
    return entries


async def _export(client: Client, workflow_id: str, path: Path) -> None:
    """The history as `WorkflowHistory.to_json()` gives it, gzipped (mtime 0: same bytes for the same
    history): a lifecycle is ~200 KB of JSON, ~30 KB compressed."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    path.write_bytes(gzip.compress(history.to_json().encode() + b"\n", compresslevel=9, mtime=0))


def _revision() -> str:
    """The commit the workflow code was recorded at, `+changes` when workflows/, domain/ or the
    activity contracts differed from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "workflows", "domain", "activities/contracts.py"],
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "inconnu"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default="", help="write <name>.<tag>.json.gz beside the existing files")
    args = parser.parse_args()
    entries = asyncio.run(record(args.tag))
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}
    stamp = {"recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "temporalio": temporalio.__version__, "code": _revision()}
    manifest.update({file: {**entry, **stamp} for file, entry in entries.items()})
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")


if __name__ == "__main__":
    main()
