"""The command line as an API client: `amiflow … --api URL` with a personal token in AMIFLOW_TOKEN, against
a real uvicorn serving the API over the real stack. The same output as in process, the token's person in
the journal and the read log, the API's refusals said as the CLI says refusals (French, exit 1)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amiflow.services import dossiers as dossier_service
from amiflow.services.principal import Principal
from domain.access import Actor, Role
from tests.apiworld import CALL_ID, EXAMPLE
from tests.test_api import free_port, served  # noqa: F401  # the API by a real uvicorn on a free port

ROOT = Path(__file__).resolve().parent.parent
Run = tuple[int, str, str]


async def test_the_cli_through_the_api_with_a_personal_token(served: Any, tmp_path: Path) -> None:  # noqa: F811
    w, url = served
    # Nothing of a stack here: the CLI only knows the API's address and the token.
    base = {k: v for k, v in os.environ.items() if not k.startswith("AMIFLOW_")} | {
        "AMIFLOW_DATA_DIR": str(tmp_path / "nothing")}

    async def cli(who: str | None, *args: str, token: str | None = None, api: str = url) -> Run:
        env = base | {"AMIFLOW_TOKEN": token or (w.tokens[who] if who else "")}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "amiflow.cli", *args, "--api", api,
                                                       cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert b"Traceback" not in err, err.decode()
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = await cli("acme", "dossier", "submit", "--call", CALL_ID, "--file", str(EXAMPLE))
    assert code == 0 and "Dossier déposé, version" in out, (out, err)
    ident = out.strip().splitlines()[-1]
    between = datetime.now(UTC)

    (code, out, err), (posed, _, why), (stranger, _, unknown) = await asyncio.gather(
        cli("amelie", "dossier", "do", ident, "acknowledge", "--json"),
        cli("amelie", "dossier", "show", ident, "--as", "staff:amelie"),  # the token is who reads: no --as
        cli("autre", "dossier", "show", ident))  # another holder may not even know it exists
    assert code == 0 and json.loads(out)["status"] == "acknowledged", (out, err)
    assert posed == 2 and "--as n’a pas de sens avec --api" in why
    assert stranger == 1 and unknown.startswith("amiflow : ") and "Dossier inconnu" in unknown, unknown

    asked, listed, shown, before, history, timeline, calls = await asyncio.gather(
        cli("amelie", "dossier", "do", ident, "acknowledge"),  # the rules refuse it twice (409)
        cli("amelie", "dossier", "list", "--call", CALL_ID, "--status", "acknowledged", "--limit", "1", "--json"),
        cli("amelie", "dossier", "show", ident, "--json"),
        cli("acme", "dossier", "show", ident, "--as-of", (between - timedelta(days=1)).isoformat(timespec="seconds")),
        cli("amelie", "dossier", "history", ident),
        cli("odile", "dossier", "timeline", ident, "--json"),
        cli("rita", "calls", "list", "--json"))
    assert asked[0] == 1 and asked[2].startswith("amiflow : ") and asked[1] == "", asked
    page = json.loads(listed[1])
    assert [d["dossier_id"] for d in page["dossiers"]] == [ident] and page["next"] == ident, listed
    view = json.loads(shown[1])
    assert view["status"] == "acknowledged" and view["content_granted"] is True, shown
    # The day before, replayed from the journal: it did not exist yet (422, said as the CLI says refusals).
    assert before[0] == 1 and "n’existait pas encore" in before[2] and before[1] == "", before
    assert history[0] == 0 and "staff:amelie" in history[1] and "holder:acme" in history[1], history
    entries = {(e["kind"], e["actor"]) for e in json.loads(timeline[1])["entries"]}
    assert timeline[0] == 0 and {("event", "holder:acme"), ("event", "staff:amelie"),
                                 ("read", "holder:autre")} <= entries, timeline
    assert {c["id"] for c in json.loads(calls[1])["calls"]} == {CALL_ID, "hdf-ressourceries"}, calls

    # One's own tokens: a new one (printed last), then listed with it, never its value.
    code, out, err = await cli("acme", "tokens", "issue", "--days", "2", "--label", "script")
    assert code == 0 and "Jeton tok-" in out, (out, err)
    fresh = out.strip().splitlines()[-1]
    (code, out, err), (down, _, said) = await asyncio.gather(
        cli(None, "tokens", "list", "--json", token=fresh),
        cli("acme", "dossier", "list", api=f"http://127.0.0.1:{free_port()}"))
    mine = json.loads(out)
    assert code == 0 and {t["name"] for t in mine} == {"acme"} and len(mine) == 2 and fresh not in out, out
    assert {t["label"] for t in mine} == {None, "script"}
    assert down == 1 and "API injoignable" in said, said

    # A document up (multipart) and down again, each as the token's person; another holder gets nothing.
    piece = tmp_path / "budget.pdf"
    piece.write_bytes(b"%PDF-1.4 budget previsionnel " * 64)
    code, out, err = await cli("acme", "dossier", "attach", ident, str(piece))
    assert code == 0 and "budget.pdf joint à" in out, (out, err)
    document = out.strip().splitlines()[-1]
    fetched, other = tmp_path / "relu.pdf", tmp_path / "vole.pdf"
    (code, out, err), (refused, _, why) = await asyncio.gather(
        cli("amelie", "dossier", "document", ident, document, "--out", str(fetched)),
        cli("autre", "dossier", "document", ident, document, "--out", str(other)))
    assert code == 0 and out.startswith("budget.pdf → ") and fetched.read_bytes() == piece.read_bytes(), (out, err)
    assert refused == 1 and "Dossier inconnu" in why and not other.exists(), why

    # The journal and the read log name the token's person, come through the API.
    auditor = Principal(Actor(role=Role.AUDITOR, name="odile"), via="token", proven=True, person="odile")
    recorded = await dossier_service.history(w.rt, auditor, ident, datetime.now(UTC))
    actors = {e.type: e.actor for e in recorded.events}
    assert actors["submitted"] == "holder:acme" and actors["acknowledged"] == "staff:amelie", actors
    reads = {(r.actor, r.via, r.granted) for r in await w.rt.store.reads(ident)}
    assert ("staff:amelie", "token", True) in reads and ("holder:autre", "token", False) in reads, reads
    assert {via for _, via, _ in reads} == {"token"}, reads  # never an operator's command line (cli:…)
