"""The HTTP API on the real stack, with real personal tokens: every endpoint, need-to-know on every
dossier endpoint (each refusal in the read log under the authenticated person), and every error as
application/problem+json."""

from __future__ import annotations

import asyncio
import io
import socket
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from amiflow.services import people
from domain.throttle import Rate
from domain.uploads import DOCUMENT_MAX_BYTES, DOCUMENTS_PER_DOSSIER_MAX
from tests import dates
from tests.apiworld import CALL_ID, EXAMPLE, World, example, submitted, under_review, world
from tests.conftest import Stack

PDF = b"%PDF-1.4\n% amiflow test\n"


def is_problem(answer: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer is an RFC 9457 problem of that status (and code); its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.headers
    body: dict[str, Any] = answer.json()
    assert set(body) == {"type", "title", "status", "detail", "code"}, body
    assert body["status"] == status and body["detail"] and "Traceback" not in answer.text
    if code is not None:
        assert body["code"] == code, body
    return body


async def test_a_dossier_through_every_endpoint(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    async with w.client("acme") as holder, w.client("amelie") as staff, w.client("odile") as auditor, \
            w.client("cora") as committee:
        me = (await holder.get("/api/v1/me")).json()
        assert me == {"actor": "holder:acme", "role": "holder", "name": "acme", "person": "acme", "via": "token"}
        calls = (await staff.get("/api/v1/calls")).json()
        assert {c["id"] for c in calls} == {CALL_ID, "hdf-ressourceries"}
        call = (await staff.get(f"/api/v1/calls/{CALL_ID}")).json()
        phase = call["phases"][0]
        assert phase["id"] == "unique"

        ident = await submitted(w)
        again = await holder.post("/api/v1/dossiers", json=example())  # the same reference: the same dossier
        assert again.status_code == 201 and again.json()["dossier_id"] == ident

        listed = await staff.get("/api/v1/dossiers", params={"call": CALL_ID, "status": "submitted", "limit": 1})
        assert listed.status_code == 200 and [d["dossier_id"] for d in listed.json()["items"]] == [ident]
        assert listed.json()["next"] == ident
        rest = await staff.get("/api/v1/dossiers", params={"call": CALL_ID, "after": ident})
        assert rest.json() == {"items": [], "next": None}
        assert (await staff.get("/api/v1/dossiers", params={"overdue": "true"})).json()["items"] == []
        assert (await staff.get("/api/v1/dossiers", params={"phase": "unique"})).json()["items"][0]["status"] \
            == "submitted"

        commands = await staff.get(f"/api/v1/dossiers/{ident}/commands")
        assert "acknowledge" in {c["name"] for c in commands.json()}
        done = await staff.post(f"/api/v1/dossiers/{ident}/commands/acknowledge")
        assert done.status_code == 200 and done.json()["status"] == "acknowledged"
        acknowledged_at = datetime.now(UTC)
        due = dates.due(datetime.now(UTC), 30)
        asked = await staff.post(f"/api/v1/dossiers/{ident}/commands/request-complement",
                                 json={"pieces": "Kbis de moins de 3 mois", "due": due.arg})
        assert asked.json()["status"] == "complement_requested"

        sent = await holder.post(f"/api/v1/dossiers/{ident}/documents",
                                 files={"file": ("kbis.pdf", PDF, "application/pdf")})
        assert sent.status_code == 201, sent.text
        document = sent.json()["document"]
        assert document["name"] == "kbis.pdf" and document["size"] == len(PDF)
        fetched = await staff.get(f"/api/v1/dossiers/{ident}/documents/{document['id']}")
        assert fetched.status_code == 200 and fetched.content == PDF
        assert fetched.headers["x-amiflow-media-type"] == "application/pdf"

        shown = (await staff.get(f"/api/v1/dossiers/{ident}")).json()
        assert shown["status"] == "complement_requested" and shown["content_granted"] is True
        assert shown["state"]["content"]["holder_name"]
        before = (await holder.get(f"/api/v1/dossiers/{ident}",
                                   params={"as_of": (datetime.now(UTC) - timedelta(days=1)).isoformat()}))
        is_problem(before, 422, "invalid_command")  # it did not exist yet
        past = (await holder.get(f"/api/v1/dossiers/{ident}", params={"as_of": acknowledged_at.isoformat()})).json()
        assert past["status"] == "acknowledged" and past["as_of"] is not None
        summary = (await committee.get(f"/api/v1/dossiers/{ident}")).json()
        assert summary["content_granted"] is False and summary["state"]["content"]["sections"] == {}

        history = (await staff.get(f"/api/v1/dossiers/{ident}/history", params={"bodies": "true"})).json()
        assert [e["type"] for e in history["events"]][:3] == ["draft_started", "submitted",
                                                             "acknowledged"]
        assert history["content_granted"] is True
        timeline = (await auditor.get(f"/api/v1/dossiers/{ident}/timeline")).json()
        reads = [e for e in timeline["entries"] if e["kind"] == "read"]
        assert any(r["actor"] == "staff:amelie" and r["via"] == "token" and r["granted"] for r in reads)

    await _audit_calls_and_tokens(w, ident, phase)


async def _audit_calls_and_tokens(w: World, ident: str, phase: dict[str, Any]) -> None:
    async with w.client("acme") as holder, w.client("amelie") as staff, w.client("odile") as auditor:
        verified = await auditor.get("/api/v1/audit/verify", params={"dossier": ident})
        assert verified.status_code == 200 and verified.json()["ok"] is True
        assert (await auditor.get("/api/v1/audit/verify")).json()["ok"] is True
        bundle = await auditor.get(f"/api/v1/audit/dossiers/{ident}/export")
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/gzip"
        with tarfile.open(fileobj=io.BytesIO(bundle.content)) as tar:
            assert f"bundle-{ident}/events.jsonl" in tar.getnames()

        until = datetime.fromisoformat(phase["closes_at"]) + timedelta(days=10)
        extended = await staff.post(f"/api/v1/calls/{CALL_ID}/phases/unique/extension",
                                    json={"until": until.isoformat()})
        assert extended.status_code == 200, extended.text
        assert ident in extended.json()["dossiers"]
        moved = (await staff.get(f"/api/v1/calls/{CALL_ID}")).json()["phases"][0]
        assert datetime.fromisoformat(moved["closes_at"]) == until

        made = await holder.post("/api/v1/tokens", json={"days": 7, "label": "script de suivi"})
        assert made.status_code == 201
        mine = (await holder.get("/api/v1/tokens")).json()
        assert {t["name"] for t in mine} == {"acme"} and made.json()["id"] in {t["id"] for t in mine}
        async with w.client(token=made.json()["token"]) as script:
            assert (await script.get("/api/v1/me")).json()["actor"] == "holder:acme"
            gone = await holder.delete(f"/api/v1/tokens/{made.json()['id']}")
            assert gone.status_code == 200 and gone.json()["state"] == "revoked"
            is_problem(await script.get("/api/v1/me"), 401, "unauthenticated")
        someone_elses = next(t["id"] for t in await _tokens_of(w, "amelie"))
        is_problem(await holder.delete(f"/api/v1/tokens/{someone_elses}"), 404, "not_found")


async def _tokens_of(w: World, name: str) -> list[dict[str, Any]]:
    return [t.model_dump() for t in await people.tokens(w.rt, name)]


async def test_need_to_know_on_every_dossier_endpoint(stack: Stack, tmp_path: Path) -> None:
    """A holder cannot read another holder's dossier, an unassigned reviewer cannot read a dossier, a
    committee member of another call cannot either, nor staff of another call: each is answered as if
    the dossier did not exist (404, the same answer as an unknown id), and each refusal is in the read log
    under the authenticated person."""
    w = await world(stack, tmp_path)
    ident = await under_review(w)
    async with w.client("acme") as holder:
        sent = await holder.post(f"/api/v1/dossiers/{ident}/documents",
                                 files={"file": ("budget.pdf", PDF, "application/pdf")})
    document = sent.json()["document"]["id"]
    now = datetime.now(UTC).isoformat()
    reads = [
        f"/api/v1/dossiers/{ident}", f"/api/v1/dossiers/{ident}?as_of={now.replace('+', '%2B')}",
        f"/api/v1/dossiers/{ident}/history", f"/api/v1/dossiers/{ident}/timeline",
        f"/api/v1/dossiers/{ident}/commands", f"/api/v1/dossiers/{ident}/documents/{document}",
    ]
    unknown = "hdf-pmcb-reemploi.siret-00000000000000-nulle-part"
    for who in ("autre", "victor", "zoe", "bruno"):
        async with w.client(who) as api:
            for path in reads:
                refused = is_problem(await api.get(path), 404, "not_found")
                assert ident in refused["detail"] and "inconnu" in refused["detail"].lower()
                missing = is_problem(await api.get(path.replace(ident, unknown)), 404, "not_found")
                assert missing["title"] == refused["title"]
            told = is_problem(await api.post(f"/api/v1/dossiers/{ident}/commands/withdraw", json={}), 404, "not_found")
            nowhere = is_problem(await api.post(f"/api/v1/dossiers/{unknown}/commands/withdraw", json={}), 404)
            assert told["detail"].replace(ident, unknown) == nowhere["detail"]  # the same words: no telling apart
            is_problem(await api.post(f"/api/v1/dossiers/{ident}/documents",
                                      files={"file": ("x.pdf", PDF, "application/pdf")}), 404, "not_found")
            listed = (await api.get("/api/v1/dossiers")).json()
            assert ident not in {d["dossier_id"] for d in listed["items"]}
        refused_reads = [r for r in await stack.store.reads(ident) if r.actor.endswith(f":{who}")]
        assert len(refused_reads) >= len(reads) and not any(r.granted for r in refused_reads), who
        assert {r.via for r in refused_reads} == {"token"}
    # Related, but refused a part: told why (403), and logged too.
    async with w.client("odile") as auditor:
        body = is_problem(await auditor.get(f"/api/v1/dossiers/{ident}/documents/{document}"), 403, "read_refused")
        assert "habilitation" in body["detail"]
        nope = is_problem(await auditor.get(f"/api/v1/dossiers/{ident}/documents/doc-nope"), 403, "read_refused")
        assert document not in nope["detail"]  # a document's id is content too: not listed to who may not read
    assert any(r.actor == "auditor:odile" and not r.granted for r in await stack.store.reads(ident))
    async with w.client("rita") as reviewer:  # assigned and declared: reads it, and lists it (issue 12)
        assert (await reviewer.get(f"/api/v1/dossiers/{ident}")).status_code == 200
        assert [d["dossier_id"] for d in (await reviewer.get("/api/v1/dossiers")).json()["items"]] == [ident]
    async with w.client("acme") as holder:
        assert {d["dossier_id"] for d in (await holder.get("/api/v1/dossiers")).json()["items"]} == {ident}


async def test_errors_are_problems(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path, per_token=Rate(burst=40, per_second=0.5))
    ident = await submitted(w)
    async with w.client() as anonymous, w.client(token="pas-un-jeton") as forged:
        for api in (anonymous, forged):
            answer = await api.get("/api/v1/dossiers")
            is_problem(answer, 401, "unauthenticated")
            assert answer.headers["www-authenticate"].startswith("Bearer")
        is_problem(await anonymous.get("/api/v1/dossiers", headers={"Authorization": "Basic eDp5"}), 401)
        assert (await anonymous.get("/api/v1/openapi.json")).json()["openapi"].startswith("3.")
        is_problem(await anonymous.get("/api/v1/nulle-part"), 404, "not_found")
        assert (await anonymous.get("/docs")).status_code == 404  # no page that loads anything from a CDN
    async with w.client("acme") as holder, w.client("amelie") as staff:
        refused = is_problem(await holder.post(f"/api/v1/dossiers/{ident}/commands/acknowledge"), 409, "not_allowed")
        assert "chargé" in refused["detail"] or "rôle" in refused["detail"]
        is_problem(await staff.post(f"/api/v1/dossiers/{ident}/commands/declare-complete", json={}), 409,
                   "invalid_transition")
        is_problem(await staff.post(f"/api/v1/dossiers/{ident}/commands/fly", json={}), 422, "invalid_command")
        is_problem(await staff.post(f"/api/v1/dossiers/{ident}/commands/request-complement",
                                    json={"pieces": "Kbis", "due": "2001-01-01"}), 422, "invalid_command")
        is_problem(await staff.post(f"/api/v1/dossiers/{ident}/commands/request-complement",
                                    json={"pieces": "Kbis", "due": "demain"}), 422, "invalid_command")
        is_problem(await holder.post(f"/api/v1/dossiers/{ident}/commands/update-draft",
                                     json={"content": str(EXAMPLE)}), 422, "invalid_command")  # no server file
        is_problem(await staff.post(f"/api/v1/dossiers/{ident}/commands/acknowledge", content=b"[1,2"), 422,
                   "invalid_input")
        is_problem(await staff.get("/api/v1/dossiers", params={"limit": 0}), 422, "invalid_input")
        is_problem(await staff.get("/api/v1/dossiers", params={"status": "perdu"}), 422, "invalid_command")
        is_problem(await staff.get(f"/api/v1/dossiers/{ident}", params={"as_of": "hier"}), 422, "invalid_input")
        missing = is_problem(await holder.post("/api/v1/dossiers", json={"call": CALL_ID}), 422, "invalid_command")
        assert missing["detail"] == "dossier envoyé : champs absents : phase, reference, content."  # no server path
        is_problem(await holder.post("/api/v1/dossiers", content=b"x" * (2 * 1024 * 1024),
                                     headers={"content-type": "application/json"}), 413, "too_large")
        upload = f"/api/v1/dossiers/{ident}/documents"
        is_problem(await holder.post(upload, content=b"%PDF", headers={"content-type": "application/pdf"}), 415)
        is_problem(await holder.post(upload, files={"file": ("run.sh", b"#!/bin/sh", "application/x-sh")}), 422,
                   "invalid_command")
        is_problem(await holder.post(upload, files={"file": ("kbis.pdf", b"x", "image/png")}), 422)
        is_problem(await holder.post(upload, files={"other": ("kbis.pdf", PDF, "application/pdf")}), 422)
        big = is_problem(await holder.post(upload, files={"file": ("big.pdf", _chunks(DOCUMENT_MAX_BYTES + 1),
                                                                   "application/pdf")}), 413, "too_large")
        assert str(DOCUMENT_MAX_BYTES // (1024 * 1024)) in big["detail"]
        assert not list((w.rt.settings.data_dir / "uploads").iterdir())  # nothing left behind
        assert (await holder.get(f"/api/v1/dossiers/{ident}")).json()["state"]["documents"] == []
        is_problem(await holder.get(f"/api/v1/dossiers/{ident}/documents/doc-0000000000000000"), 404)
        is_problem(await staff.get("/api/v1/audit/verify"), 403, "read_refused")
        is_problem(await staff.get(f"/api/v1/audit/dossiers/{ident}/export"), 403, "read_refused")
        is_problem(await staff.get("/api/v1/calls/nulle-part"), 404, "not_found")
        statuses = [(await holder.get("/api/v1/me")).status_code for _ in range(45)]
        assert 429 in statuses
        limited = await holder.get("/api/v1/me")
        is_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert (await staff.get("/api/v1/me")).status_code == 200  # another token has its own bucket
    assert DOCUMENTS_PER_DOSSIER_MAX >= 10


def _chunks(size: int) -> Any:
    """A file body of `size` bytes, as a stream (never whole in memory here either)."""
    class Body(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * n
            self.left -= n
            return n

    return io.BufferedReader(Body(), 1024 * 1024)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(stack: Stack, tmp_path: Path) -> Any:
    """The API served by a real uvicorn on a free port, in this process."""
    w = await world(stack, tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(w.app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield w, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_served_by_uvicorn_over_tcp(served: Any) -> None:
    w, url = served
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {w.tokens['acme']}"}) as api:
        answer = await api.post("/api/v1/dossiers", json=example())
        assert answer.status_code == 201 and answer.json()["status"] == "submitted"
        ident = answer.json()["dossier_id"]
        sent = await api.post(f"/api/v1/dossiers/{ident}/documents",
                              files={"file": ("note.txt", b"texte", "text/plain")})
        assert sent.status_code == 201, sent.text
        is_problem(await api.get("/api/v1/audit/verify"), 403)


async def test_an_unexpected_failure_is_a_problem_without_traceback(tmp_path: Path) -> None:
    from amiflow.api import create_app
    from amiflow.bootstrap import memory_runtime
    from amiflow.settings import Settings
    from journal.keys import Keyring

    async def broken(*_: Any) -> None:
        raise RuntimeError("/secret/path/keyring.json exploded")

    settings = Settings(data_dir=tmp_path)
    app = create_app(memory_runtime(settings, Keyring.open(tmp_path, create=True)), sources=[broken])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        answer = await api.get("/api/v1/me")
    body = is_problem(answer, 500, "internal_error")
    assert "secret" not in answer.text and "RuntimeError" not in body["detail"]
