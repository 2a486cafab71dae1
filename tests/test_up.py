"""`amiflow up` as `make run` starts it: everything in the data directory, addresses printed, Ctrl-C
(SIGINT to the terminal's process group) or SIGTERM stops every process within seconds, and a second
`up` on the same directory resumes — with the timers armed before the stop, which fire after it.

The first start is `make run` itself, with the configuration the README promises (`AMIFLOW_KEYRING`,
`AMIFLOW_VAULT_DIR`, `AMIFLOW_LOG_FORMAT=json`); the second is `amiflow up --workers 2`, whose two
workers poll the same task queue. `up` starts the shipped call files, whose dates pass; dossiers are
submitted to a copy of the PMCB call with its dates moved around today (tests/dates.py), under an id of
its own, that the test starts in the running stack."""

from __future__ import annotations

import asyncio
import base64
import email
import email.message
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from amiflow.bootstrap import runtime
from amiflow.catalogue import load_call
from amiflow.dossiers import start_calls
from amiflow.settings import load_settings
from tests import dates
from tests.directory import add_people_to_stack

# `amiflow up` takes the ports 7233, 8233 and 8234 when free: with pytest-xdist, the tests that start it
# run on one worker, one after the other (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("amiflow-up")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
PMCB_COPY = "hdf-pmcb-reemploi-copie"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any AMIFLOW_ setting (nor a calling make's flags), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AMIFLOW_") and k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return env | (extra or {})


def amiflow(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), *args], cwd=ROOT,
                          env=clean_env(env), capture_output=True, text=True, timeout=120, check=False)


def wait_for_stack_file(data: Path, began: float, process: subprocess.Popen[str], deadline: float) -> None:
    """Until `up` writes this start's stack.json, after which `amiflow status` can say it runs: a file
    checked in-process, not a CLI process (a second of CPU each) spawned every half second."""
    stack_file = data / "stack.json"
    while time.monotonic() < deadline and process.poll() is None:
        if stack_file.exists() and stack_file.stat().st_mtime >= began - 1:
            return
        time.sleep(0.1)


def ready(data: Path, process: subprocess.Popen[str], env: dict[str, str] | None = None,
          began: float = 0.0) -> subprocess.Popen[str]:
    """`process` once `amiflow status` says the stack in `data` runs (`began`: when it was started, by
    the wall clock, so that an older stack.json is not taken for this start's)."""
    deadline = time.monotonic() + 90
    wait_for_stack_file(data, began, process, deadline)
    while time.monotonic() < deadline:
        if amiflow(data, "status", "--json", env=env).returncode == 0:
            add_people_to_stack(data)
            return process
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.5)
    process.kill()
    raise AssertionError("amiflow up did not become ready")


def api_answers(url: str) -> None:
    """The API `up` started serves its OpenAPI document, and refuses a call without a token."""
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            document = httpx.get(f"{url}/api/v1/openapi.json", timeout=10)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"the API does not answer at {url}"
            time.sleep(0.5)
    assert document.status_code == 200 and "/api/v1/dossiers" in document.json()["paths"]
    refused = httpx.get(f"{url}/api/v1/dossiers", timeout=10)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"


def web_answers(web_url: str, idp_url: str) -> None:
    """The back office `up` serves sends a stranger to sign in at the local provider, whose page lists
    the directory's people (seeded from the call files)."""
    import httpx

    with httpx.Client(timeout=20, follow_redirects=True) as http:
        login = http.get(web_url)
    assert login.status_code == 200 and str(login.url).startswith(idp_url), login.url
    assert "Choisir une personne" in login.text and 'name="sub"' in login.text


def start(data: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    began = time.time()
    process = subprocess.Popen([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), "up", *options],
                               cwd=ROOT, env=clean_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    return ready(data, process, env, began)


def make_run(data: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`make run` as typed in a terminal: its own process group (the terminal's foreground job), the
    data directory from AMIFLOW_DATA_DIR so that the checkout's .amiflow/ is left alone."""
    fresh = subprocess.run(["make", "-q", "-C", str(ROOT), ".venv/.installed"], env=clean_env(), check=False)
    assert fresh.returncode == 0, "the checkout's .venv is not installed: `make install` first"
    began = time.time()
    process = subprocess.Popen(["make", "-C", str(ROOT), "run"], env=clean_env(env | {"AMIFLOW_DATA_DIR": str(data)}),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return ready(data, process, env, began)


def open_pmcb_copy(data: Path, folder: Path, env: dict[str, str] | None = None) -> Path:
    """Start the PMCB call shifted to today (id PMCB_COPY) in the stack running in `data`, as `up`
    starts the shipped calls; returns the example dossier rewritten to name that call."""
    call = load_call(dates.write_shifted_call(folder, "hdf-pmcb-reemploi", datetime.now(UTC), call_id=PMCB_COPY))
    info = json.loads((data / "stack.json").read_text(encoding="utf-8"))

    async def start_call() -> None:
        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})  # the stack's own bootstrap, from its stack.json (and its keyring)
        try:
            async with runtime(load_settings(data)) as rt:
                await start_calls(rt.temporal(), info["task_queue"], [call])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k)
                else:
                    os.environ[k] = v

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
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


def processes_of(data: Path) -> list[int]:
    """Every live process that names the data directory in its command line or its environment:
    `up`, Temporal, PostgreSQL, the codec server and the workers all do."""
    marker = str(data.resolve()).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            named = marker in (proc / "cmdline").read_bytes() or marker in (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if named and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def stop(process: subprocess.Popen[str]) -> tuple[float, str]:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return time.monotonic() - began, out


def ctrl_c(process: subprocess.Popen[str]) -> tuple[float, str]:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground process group."""
    began = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    return time.monotonic() - began, out


def last_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The log's lines, each of which must be one JSON object (AMIFLOW_LOG_FORMAT=json)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines, path
    return [json.loads(line) for line in lines]


async def pollers(address: str, task_queue: str) -> set[int]:
    """The pids of the processes that poll the task queue for workflow and for activity tasks
    (the SDK's identity is pid@host), once both kinds have each of them."""
    client = await Client.connect(address)
    seen: set[int] = set()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=task_queue), task_queue_type=kind))
        pids = {int(p.identity.split("@")[0]) for p in answer.pollers}
        seen = pids if kind == TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW else seen & pids
    return seen


async def first_update_input(address: str, ident: str) -> dict[str, Any]:
    """The input of the dossier's first update as Temporal keeps it (sealed), in the codec protocol's JSON."""
    client = await Client.connect(address)
    history = await client.get_workflow_handle(ident).fetch_history()
    accepted = next(e.workflow_execution_update_accepted_event_attributes for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    return MessageToDict(Payloads(payloads=list(accepted.accepted_request.input.args.payloads)))


def decode(codec_url: str, body: dict[str, Any], token: str) -> tuple[int, str]:
    """POST /decode as any HTTP client would, the token as `Authorization: Bearer`."""
    request = urllib.request.Request(f"{codec_url}/decode", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def mails_to(maildrop: Path, recipient: str) -> list[email.message.EmailMessage]:
    """The notices delivered to `recipient` in the mail-drop folder."""
    read = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in maildrop.glob("*.eml")]
    return [m for m in read if isinstance(m, email.message.EmailMessage) and m["X-Amiflow-Recipient"] == recipient]


def event_types(data: Path, ident: str, env: dict[str, str]) -> list[dict[str, Any]]:
    run = amiflow(data, "dossier", "history", ident, "--json", "--as", "staff:amelie", env=env)
    assert run.returncode == 0, run.stderr
    events: list[dict[str, Any]] = json.loads(run.stdout)["events"]
    return events


@pytest.mark.timeout(420)
def test_up_runs_everything_stops_on_ctrl_c_and_sigterm_and_resumes(tmp_path: Path) -> None:  # noqa: PLR0915
    data = tmp_path / "stack"
    keyring, vault = tmp_path / "secrets" / "keyring.json", tmp_path / "shared-vault"
    env = {"AMIFLOW_KEYRING": str(keyring), "AMIFLOW_VAULT_DIR": str(vault), "AMIFLOW_LOG_FORMAT": "json"}
    process = make_run(data, env)
    try:
        info = json.loads(amiflow(data, "status", "--json", env=env).stdout)
        for key in ("temporal_address", "ui_url", "database_url", "worker_pids", "api_url", "web_url", "idp_url",
                    "idp_pid"):
            assert info[key], key
        with urllib.request.urlopen(f"{info['idp_url']}/.well-known/openid-configuration", timeout=10) as answer:
            assert json.load(answer)["issuer"] == info["idp_url"]  # the local OpenID provider
        assert (data / "idp" / "client_secret").stat().st_mode & 0o777 == 0o600
        assert isinstance(json.loads((data / "idp" / "people.json").read_text(encoding="utf-8")), list)
        api_answers(info["api_url"])
        web_answers(info["web_url"], info["idp_url"])
        assert (data / "temporal.db").exists() and (data / "pgdata").is_dir()
        assert info["calls"] == ["hdf-pmcb-reemploi", "normandie-crec-2018"]
        assert "hdf-ressourceries.yaml" in info["refused_calls"][0]["file"]
        # AMIFLOW_KEYRING: generated there on first start (0600), and nowhere else.
        assert keyring.stat().st_mode & 0o777 == 0o600
        assert not (data / "keys" / "keyring.json").exists()
        example = open_pmcb_copy(data, tmp_path / "calls", env)
        ident = last_line(amiflow(data, "dossier", "submit", "--call", PMCB_COPY, "--file", str(example),
                                  "--as", "holder:acme", env=env))
        # AMIFLOW_VAULT_DIR: the sealed document is written there, not in the data directory.
        piece = tmp_path / "budget.pdf"
        piece.write_bytes(b"%PDF budget previsionnel " * 40)
        document = last_line(amiflow(data, "dossier", "attach", ident, str(piece), "--as", "holder:acme", env=env))
        assert [p.name for p in (vault / ident).iterdir()] == [f"{document}.sealed"]
        assert not (data / "vault").exists()
        # A complement due in 30 s: its timer is armed now; the stack stops before it fires (a stop takes
        # less than 30 s, asserted below).
        due = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
        asked = amiflow(data, "dossier", "do", ident, "request-complement", "--pieces", "Kbis", "--due",
                        due.isoformat(), "--as", "staff:amelie", env=env)
        assert asked.returncode == 0, asked.stderr
        pids = [info["temporal_pid"], info["postgres_pid"], info["codec_pid"], info["api_pid"], info["idp_pid"],
                *info["worker_pids"]]
    finally:
        seconds, out = ctrl_c(process)
    # make reports the interrupt as a shell does (killed by SIGINT), after amiflow stopped everything.
    assert process.returncode == -signal.SIGINT, (process.returncode, out)
    assert "Ctrl-C" in out and "tout est arrêté" in out, out
    assert seconds < 30
    assert not [pid for pid in pids if alive(pid)]
    assert processes_of(data) == []
    assert amiflow(data, "status", env=env).returncode == 1
    # AMIFLOW_LOG_FORMAT=json: the worker's log is JSON lines, with ids and statuses (never content); the
    # journal stood at seq 4 (the complement asked) when the stack stopped: the due timer had not fired.
    logged = json_lines(data / "logs" / "worker-1.log")
    appended = [e for e in logged if e.get("event") == "journal.appended" and e.get("dossier_id") == ident]
    assert [(e["first_seq"], e["count"], e["status"]) for e in appended][-1] == (4, 1, "complement_requested")
    assert "Kbis" not in (data / "logs" / "worker-1.log").read_text()

    # The same data directory again, now with two workers on the task queue.
    process = start(data, "--workers", "2", env=env)
    try:
        info = json.loads(amiflow(data, "status", "--json", env=env).stdout)
        assert len(info["worker_pids"]) == 2 and all(alive(p) for p in info["worker_pids"])
        # A poll parked on a partition other than the root one (the describe lists the root's) can
        # stay there a whole long poll (up to a minute) before it is seen: wait beyond that.
        deadline = time.monotonic() + 150
        while (polling := asyncio.run(pollers(info["temporal_address"], info["task_queue"]))) != \
                set(info["worker_pids"]):
            assert time.monotonic() < deadline, (polling, info["worker_pids"])
            time.sleep(0.5)
        for n, pid in enumerate(info["worker_pids"], start=1):
            started = [e for e in json_lines(data / "logs" / f"worker-{n}.log") if e.get("event") == "worker.started"]
            assert started[-1]["pid"] == pid and started[-1]["task_queue"] == info["task_queue"]

        # The document comes back from AMIFLOW_VAULT_DIR, opened with the keyring AMIFLOW_KEYRING names.
        out_file = tmp_path / "budget-relu.pdf"
        fetched = amiflow(data, "dossier", "document", ident, document, "--out", str(out_file),
                          "--as", "staff:amelie", env=env)
        assert fetched.returncode == 0, fetched.stderr
        assert out_file.read_bytes() == piece.read_bytes()

        # `dossier list --status` keeps only the dossiers in that status.
        second_file = tmp_path / "second.yaml"
        second_file.write_text(example.read_text(encoding="utf-8").replace(
            'reference: "SIRET 90000000000017 - plateforme Lens-Liévin"',
            'reference: "SIRET 90000000000025 - plateforme Douai"'), encoding="utf-8")
        second = last_line(amiflow(data, "dossier", "submit", "--call", PMCB_COPY, "--file", str(second_file),
                                   "--as", "holder:acme", env=env))
        assert second != ident

        def listed(*options: str) -> list[tuple[str, str]]:
            run = amiflow(data, "dossier", "list", *options, "--json", env=env)
            assert run.returncode == 0, run.stderr
            return [(d["dossier_id"], d["status"]) for d in json.loads(run.stdout)["dossiers"]]

        assert sorted(listed("--call", PMCB_COPY)) == sorted([(ident, "complement_requested"), (second, "submitted")])
        assert listed("--status", "submitted") == [(second, "submitted")]
        assert listed("--status", "complement_requested") == [(ident, "complement_requested")]

        # A codec token from the command line, used by a plain HTTP client (no browser): the codec server
        # decodes for staff, refuses a made-up token, and each decode is in the dossier's read log.
        token = last_line(amiflow(data, "codec", "token", "--as", "staff:amelie", env=env))
        sealed = asyncio.run(first_update_input(info["temporal_address"], ident))
        assert "Consortium" not in json.dumps(sealed)
        code, answer = decode(info["codec_url"], sealed, token)
        assert code == 200, answer
        opened = b"".join(base64.b64decode(p["data"]) for p in json.loads(answer)["payloads"])
        assert "Consortium Réemploi Bâtiment Artois" in opened.decode()
        assert decode(info["codec_url"], sealed, token[:-4] + "abcd")[0] == 401
        read_log = json.loads(amiflow(data, "dossier", "history", ident, "--as", "auditor:odile", "--json",
                                      env=env).stdout)["reads"]
        assert [(r["actor"], r["granted"]) for r in read_log if r["via"] == "codec"] == [("staff:amelie", True)]

        # Meanwhile the timer armed before the stop has fired (or fires now): the overdue complement is
        # journaled and escalated to the desk by mail; the holder may still answer.
        deadline = time.monotonic() + 90
        while not (escalated := [m for m in mails_to(data / "maildrop", "staff:guichet")
                                 if m["X-Amiflow-Key"].startswith(f"{ident}|")]):
            assert time.monotonic() < deadline, "the complement's due timer did not fire after the restart"
            time.sleep(0.2)
        assert [m["X-Amiflow-Key"].split("|")[1] for m in escalated] == ["complement_overdue"]
        events = event_types(data, ident, env)
        assert [(e["seq"], e["type"]) for e in events][-2:] == [(4, "complement_requested"), (5, "complement_overdue")]
        answered = amiflow(data, "dossier", "do", ident, "provide-complement", "--note", "Kbis joint",
                           "--as", "holder:acme", env=env)
        assert answered.returncode == 0, answered.stderr
        pids = [info["temporal_pid"], info["postgres_pid"], info["codec_pid"], info["api_pid"], info["idp_pid"],
                *info["worker_pids"]]
    finally:
        seconds, out = stop(process)
    assert process.returncode == 0 and "tout est arrêté" in out and seconds < 30, out  # as clean as the first
    assert not [pid for pid in pids if alive(pid)]
    assert processes_of(data) == []

    # Without AMIFLOW_KEYRING the keyring is looked for in the data directory, where it is not: a clear
    # error, never a silent new key that would leave the journal unreadable.
    refused = subprocess.run([sys.executable, "-m", "amiflow.cli", "--data-dir", str(data), "up"], cwd=ROOT,
                             env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "Trousseau de clés introuvable" in refused.stderr, refused.stderr
    assert str(data / "keys" / "keyring.json") in refused.stderr and "restaurez" in refused.stderr
    assert not (data / "keys" / "keyring.json").exists()
    assert amiflow(data, "keys", "list").returncode == 1
