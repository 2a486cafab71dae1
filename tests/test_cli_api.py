"""The command line as an API client: `amiflow … --api URL` with a personal token in AMIFLOW_TOKEN, against
a real uvicorn serving the API over the real stack. The same output as in process, the token's person in
the journal and the read log, the API's refusals said as the CLI says refusals (French, exit 1)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from amiflow.api_client import unpack_bundle
from amiflow.services import audit as audit_service
from amiflow.services import dossiers as dossier_service
from amiflow.services.principal import Principal
from domain.access import Actor, Role
from domain.errors import InvalidCommand
from tests.apiworld import CALL_ID, EXAMPLE
from tests.test_api import free_port, served  # noqa: F401  # the API by a real uvicorn on a free port

ROOT = Path(__file__).resolve().parent.parent
Run = tuple[int, str, str]


class Cli(Protocol):
    async def __call__(self, who: str | None, *args: str, token: str | None = None, api: str = ...) -> Run: ...


def client_cli(w: Any, url: str, tmp_path: Path) -> Cli:
    """`amiflow … --api URL` in a subprocess, with `who`'s token (or `token`) in AMIFLOW_TOKEN. Nothing
    of a stack there: the CLI only knows the API's address and the token."""
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

    return cli


async def test_the_cli_through_the_api_with_a_personal_token(served: Any, tmp_path: Path) -> None:  # noqa: F811
    w, url = served
    cli = client_cli(w, url, tmp_path)

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

    asked, listed, tabbed, shown, before, history, timeline, calls = await asyncio.gather(
        cli("amelie", "dossier", "do", ident, "acknowledge"),  # the rules refuse it twice (409)
        cli("amelie", "dossier", "list", "--call", CALL_ID, "--status", "acknowledged", "--limit", "1", "--json"),
        cli("amelie", "dossier", "list", "--tab", "a-traiter", "--sort", "deadline", "--json"),
        cli("amelie", "dossier", "show", ident, "--json"),
        cli("acme", "dossier", "show", ident, "--as-of", (between - timedelta(days=1)).isoformat(timespec="seconds")),
        cli("amelie", "dossier", "history", ident),
        cli("odile", "dossier", "timeline", ident, "--json"),
        cli("rita", "calls", "list", "--json"))
    assert asked[0] == 1 and asked[2].startswith("amiflow : ") and asked[1] == "", asked
    page = json.loads(listed[1])
    assert [d["dossier_id"] for d in page["dossiers"]] == [ident] and page["next"] == ident, listed
    assert [d["dossier_id"] for d in json.loads(tabbed[1])["dossiers"]] == [ident], tabbed  # the back office's tab
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


async def test_an_auditor_verifies_and_exports_through_the_api(served: Any, tmp_path: Path) -> None:  # noqa: F811
    w, url = served
    cli = client_cli(w, url, tmp_path)
    code, out, err = await cli("acme", "dossier", "submit", "--call", CALL_ID, "--file", str(EXAMPLE))
    assert code == 0, (out, err)
    ident = out.strip().splitlines()[-1]
    bundle, again, stolen = tmp_path / "bundle", tmp_path / "encore", tmp_path / "vole"

    verified, one, exported, (refused, said, why), (barred, _, nope), (posed, _, usage) = await asyncio.gather(
        cli("odile", "audit", "verify", "--json"),
        cli("odile", "audit", "verify", "--dossier", ident),
        cli("odile", "audit", "export", ident, "--out", str(bundle), "--json"),
        cli("acme", "audit", "verify", "--dossier", ident),  # a holder is no auditor
        cli("acme", "audit", "export", ident, "--out", str(stolen)),
        cli("odile", "audit", "export", ident, "--out", str(again), "--as", "auditor:odile"))
    # The same report as the service gives in process, and the same text as the local command prints.
    assert verified[0] == 0 and json.loads(verified[1]) == (await audit_service.verify(w.rt)).model_dump(), verified
    assert one[0] == 0 and one[1] == f"Intègre : dossier {ident}.\n", one
    assert refused == 1 and said == "" and why.startswith("amiflow : Refusé (audit verify)"), why
    assert barred == 1 and nope.startswith("amiflow : ") and "auditeur" in nope and not stolen.exists(), nope
    assert posed == 2 and "--as n’a pas de sens avec --api" in usage and not again.exists(), usage

    # The bundle, unpacked where asked, counted as the local export counts it, verifies by itself.
    summary = json.loads(exported[1])
    events = await w.rt.store.events(ident)
    assert exported[0] == 0 and summary["dossier_id"] == ident and summary["out"] == str(bundle), exported
    assert summary["events"] == len(events) >= 2 and summary["chain"] >= 2 and summary["temporal_history"], summary
    assert {p.name for p in bundle.iterdir()} == {"README.md", "anchors.jsonl", "chain.jsonl", "events.jsonl",
                                                  "reads.jsonl", "temporal-history.json", "verify.py"}
    own = await asyncio.create_subprocess_exec(sys.executable, str(bundle / "verify.py"), str(bundle), cwd=tmp_path,
                                               stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    said_by_own = await asyncio.wait_for(own.communicate(), 60)
    assert own.returncode == 0, said_by_own

    (code, out, err), (twice, _, exists) = await asyncio.gather(
        cli("odile", "audit", "export", ident, "--out", str(again)),
        cli("odile", "audit", "export", ident, "--out", str(bundle)))
    assert code == 0 and out.startswith(f"Bundle de {ident} : {len(events)} événement(s), ") and \
        out.rstrip().endswith(f"→ {again}\nVérifier : python {again}/verify.py {again}"), (out, err)
    assert twice == 1 and "existe déjà" in exists, exists
    reads = {(r.actor, r.what, r.via, r.granted) for r in await w.rt.store.reads(ident)}
    assert ("auditor:odile", "export", "token", True) in reads and ("holder:acme", "export", "token", False) in reads


@pytest.mark.parametrize("member", ["/etc/amiflow", "bundle/../../dehors", "bundle/lien", "bundle/dur", "seul"])
def test_an_unsafe_bundle_is_refused_and_nothing_is_written(member: str, tmp_path: Path) -> None:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        ok = tarfile.TarInfo("bundle/events.jsonl")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"{}\n"))
        bad = tarfile.TarInfo(member)
        if member.endswith("lien"):
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif member.endswith("dur"):
            bad.type, bad.linkname = tarfile.LNKTYPE, "bundle/events.jsonl"
        tar.addfile(bad, io.BytesIO(b""))
    out = tmp_path / "out"
    with pytest.raises(InvalidCommand, match="^Bundle reçu refusé : .* rien n’a été écrit.$"):
        unpack_bundle(packed.getvalue(), out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidCommand, match="Bundle reçu illisible"):
        unpack_bundle(b"pas un tar.gz", out)
