"""The codec server on the real components: sealed payloads taken from a dossier workflow's history
on the dev server, decoded (or not) by the aiohttp application run in process, with personal tokens
of the directory issued for real (in the `Authorization` header only), need-to-know decided on the
journal in PostgreSQL, and every decode in the read log. Then its hardening: caps, unknown dossiers,
payloads without a dossier, CORS from an allow-list, rate limits, and never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.json_format import MessageToDict
from sqlalchemy import select
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType

from amiflow.bootstrap import Runtime
from amiflow.codec import DOSSIER, ENCODING, KEY_ID
from amiflow.codec_server import CodecServer
from amiflow.dossiers import build_command, send, start_calls, submit
from amiflow.services import people as people_service
from amiflow.settings import Settings
from amiflow.vault import Vault
from domain import Actor
from domain.codec_policy import CodecLimits
from domain.state import Status
from domain.throttle import Rate
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore
from journal.schema import reads
from tests import dates
from tests.conftest import Stack
from tests.directory import add_test_people
from tests.test_resilience import free_port

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER_NAME = "Consortium Réemploi Bâtiment Artois (fictif)"
SECTION = "Plateforme de 6 000 m² de collecte, tri, reconditionnement"
HOLDER, OTHER = Actor.parse("holder:acme"), Actor.parse("holder:other")
STAFF, RITA = Actor.parse("staff:amelie"), Actor.parse("reviewer:rita")
UI_ORIGIN = "http://127.0.0.1:8233"


@dataclass
class Scene:
    """Two dossiers of the PMCB call: `first` under review with rita assigned (not yet declared),
    `second` submitted and assigned to nobody; the codec server in process, and the directory."""

    stack: Stack
    first: str
    second: str
    http: TestClient[Any, Any]
    rt: Runtime

    async def token(self, actor: Actor, days: int = 1, now: datetime | None = None) -> str:
        issued = await people_service.issue_token(self.rt, actor.name, days, now or datetime.now(UTC), actor.role)
        return issued.token

    async def do(self, ident: str, actor: Actor, name: str, **options: str) -> Status:
        return (await send(self.stack.client, ident, build_command(name, options), actor)).status

    async def decode(self, body: Any, token: str | None = None, http: TestClient[Any, Any] | None = None,
                     url: str = "/decode") -> tuple[int, Any]:
        """POST /decode with the token as `Authorization: Bearer`; the status and the JSON answer."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        async with (http or self.http).post(url, data=data, headers={"Content-Type": "application/json",
                                                                     **headers}) as r:
            text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text

    async def read_log(self) -> list[tuple[str, str, bool, str]]:
        """The codec's entries of the read log: (dossier, actor, granted, reason), oldest first."""
        async with self.stack.engine.connect() as conn:
            rows = await conn.execute(
                select(reads.c.dossier_id, reads.c.actor, reads.c.granted, reads.c.reason, reads.c.what, reads.c.via)
                .order_by(reads.c.id)
            )
            entries = rows.all()
        assert all(e.via == "codec" and e.what == "content" for e in entries), entries
        return [(e.dossier_id, e.actor, e.granted, e.reason) for e in entries]


def second_example(tmp_path: Path) -> Path:
    """The PMCB example under another reference: another dossier, same holder."""
    source = EXAMPLE.read_text()
    old = 'reference: "SIRET 90000000000017 - plateforme Lens-Liévin"'
    assert old in source
    path = tmp_path / "second.yaml"
    path.write_text(source.replace(old, 'reference: "SIRET 90000000000025 - plateforme Douai"'))
    return path


@pytest.fixture
async def scene(stack: Stack, tmp_path: Path) -> AsyncIterator[Scene]:
    call = dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [call])
        first = (await submit(stack.client, stack.task_queue, EXAMPLE, HOLDER, datetime.now(UTC))).dossier_id
        second_file = second_example(tmp_path)
        second = (await submit(stack.client, stack.task_queue, second_file, HOLDER, datetime.now(UTC))).dossier_id
    assert first != second
    await add_test_people(stack.store)
    rt = Runtime(Settings(data_dir=stack.data_dir), stack.store, stack.keys, stack.vault)
    app = CodecServer(rt, origins=(UI_ORIGIN,)).app()
    async with TestClient(TestServer(app)) as http:
        scene = Scene(stack, first, second, http, rt)
        assert await scene.do(first, STAFF, "acknowledge") is Status.ACKNOWLEDGED
        assert await scene.do(first, STAFF, "declare-complete") is Status.COMPLETE
        now = await stack.env.get_current_time(stack.client.get_workflow_handle(first))
        due = (now + timedelta(days=20)).date().isoformat()
        assert await scene.do(first, STAFF, "assign-reviewers", reviewers="rita", due=due) is Status.UNDER_REVIEW
        yield scene


async def sealed(stack: Stack, ident: str) -> list[Payload]:
    """The input of the dossier's first update (start-draft, with the whole content), as Temporal
    keeps it: sealed."""
    history = await stack.client.get_workflow_handle(ident).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attributes = event.workflow_execution_update_accepted_event_attributes
            payloads = list(attributes.accepted_request.input.args.payloads)
            assert payloads and all(p.metadata["encoding"] == ENCODING for p in payloads)
            assert all(p.metadata[DOSSIER] == ident.encode() for p in payloads)
            assert all(HOLDER_NAME.encode() not in p.data for p in payloads)
            return payloads
    raise AssertionError(f"no update in the history of {ident}")


def body(payloads: list[Payload]) -> dict[str, Any]:
    """The codec protocol's JSON body."""
    return MessageToDict(Payloads(payloads=payloads))


def opened_text(answer: dict[str, Any]) -> str:
    """The decoded payloads' data, as text; each must be open (no longer sealed)."""
    texts = []
    for payload in answer["payloads"]:
        encoding = base64.b64decode(payload["metadata"]["encoding"])
        assert encoding != ENCODING and encoding == b"json/plain", encoding
        assert DOSSIER not in payload["metadata"] and KEY_ID not in payload["metadata"]
        texts.append(base64.b64decode(payload["data"]).decode())
    return "\n".join(texts)


def problem(answer: Any, status: int) -> str:
    """The French detail of an RFC 9457 problem, checked for its shape."""
    assert isinstance(answer, dict) and answer["status"] == status and answer["title"] and answer["code"], answer
    return str(answer["detail"])


async def test_without_a_valid_token_nothing_is_decoded_nor_logged(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    expired = await scene.token(STAFF, days=30, now=datetime.now(UTC) - timedelta(days=400))
    revoked = await scene.token(STAFF)
    (listed,) = [t for t in await people_service.tokens(scene.rt, "amelie") if t.state == "active"]
    await scene.stack.store.revoke_token(listed.id, datetime.now(UTC))
    for token in (None, "jeton-invente", expired, revoked, "x" * 5000):
        status, answer = await scene.decode(request, token)
        assert status == 401, (token, status, answer)
        assert "Jeton absent, inconnu, expiré ou révoqué" in problem(answer, 401)
    valid = await scene.token(STAFF)
    # Another scheme than Bearer is no token either; the URL is never a way in; nor is /encode.
    async with scene.http.post("/decode", json=request, headers={"Authorization": f"Basic {valid}"}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.headers["Content-Type"].startswith("application/problem+json")
    status, answer = await scene.decode(request, url=f"/t/{valid}/decode")
    assert status == 404 and valid not in problem(answer, 404)
    async with scene.http.post("/encode", json=request) as r:
        assert r.status == 401
    assert await scene.read_log() == []


async def test_staff_decodes_with_a_personal_token(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    token = await scene.token(STAFF)
    for _ in range(2):
        status, answer = await scene.decode(request, token)
        assert status == 200, answer
        text = opened_text(answer)
        assert HOLDER_NAME in text and SECTION in text
        assert "start-draft" in text
    # The staff of the call read the other dossier too.
    status, answer = await scene.decode(body(await sealed(scene.stack, scene.second)), token)
    assert status == 200 and HOLDER_NAME in opened_text(answer)
    granted = (True, "chargé de mission de l’appel")
    assert await scene.read_log() == [
        (scene.first, "staff:amelie", *granted), (scene.first, "staff:amelie", *granted),
        (scene.second, "staff:amelie", *granted),
    ]


FULL_ONLY = "le décodage montre tout le dossier, expertises comprises : lisez-le avec amiflow dossier show"


async def test_a_reviewer_never_decodes_even_once_declared(scene: Scene) -> None:
    """A payload may carry anything of the dossier, other reviews included: reviewers read the
    dossier through `amiflow dossier show`, not through the codec server."""
    first, second = body(await sealed(scene.stack, scene.first)), body(await sealed(scene.stack, scene.second))
    token = await scene.token(RITA)
    status, answer = await scene.decode(first, token)
    assert problem(answer, 403) == (
        f"lecture refusée ({scene.first}) : expert affecté, mais l’absence de conflit d’intérêts "
        "n’est pas encore déclarée"
    )
    assert "payloads" not in answer
    await scene.do(scene.first, RITA, "declare-interests", conflict="false")
    status, answer = await scene.decode(first, token)
    assert problem(answer, 403) == f"lecture refusée ({scene.first}) : {FULL_ONLY}"
    status, answer = await scene.decode(second, token)
    assert problem(answer, 403) == f"lecture refusée ({scene.second}) : expert non affecté à ce dossier"
    assert await scene.read_log() == [
        (scene.first, "reviewer:rita", False,
         "expert affecté, mais l’absence de conflit d’intérêts n’est pas encore déclarée"),
        (scene.first, "reviewer:rita", False, FULL_ONLY),
        (scene.second, "reviewer:rita", False, "expert non affecté à ce dossier"),
    ]


async def test_holders_and_other_staff_are_refused_a_cleared_auditor_decodes(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    status, answer = await scene.decode(request, await scene.token(HOLDER))
    assert problem(answer, 403) == f"lecture refusée ({scene.first}) : {FULL_ONLY}"
    status, answer = await scene.decode(request, await scene.token(OTHER))
    assert problem(answer, 403) == f"lecture refusée ({scene.first}) : ce dossier appartient à un autre porteur"
    status, _ = await scene.decode(request, await scene.token(Actor.parse("staff:bruno")))
    assert status == 403  # staff of another call
    auditor = Actor.parse("auditor:odile")
    status, _ = await scene.decode(request, await scene.token(auditor))
    assert status == 403
    await scene.do(scene.first, STAFF, "grant-clearance", auditor="odile", reason="Contrôle FEDER")
    status, answer = await scene.decode(request, await scene.token(auditor))
    assert status == 200 and SECTION in opened_text(answer)
    assert [(d, a, g) for d, a, g, _ in await scene.read_log()] == [
        (scene.first, "holder:acme", False), (scene.first, "holder:other", False),
        (scene.first, "staff:bruno", False), (scene.first, "auditor:odile", False),
        (scene.first, "auditor:odile", True),
    ]


async def test_a_request_spanning_two_dossiers_needs_both(scene: Scene) -> None:
    await scene.do(scene.first, STAFF, "grant-clearance", auditor="odile", reason="Contrôle FEDER")
    both = await sealed(scene.stack, scene.first) + await sealed(scene.stack, scene.second)
    status, answer = await scene.decode(body(both), await scene.token(Actor.parse("auditor:odile")))
    assert status == 403 and scene.second in problem(answer, 403) and "payloads" not in answer
    status, answer = await scene.decode(body(both), await scene.token(STAFF))
    assert status == 200 and len(answer["payloads"]) == len(both)
    log = await scene.read_log()
    assert (scene.second, "auditor:odile", False, "auditeur sans habilitation au contenu de ce dossier "
            "(demandez-la à un chargé de mission)") in log
    # Decoded whole or not at all: the dossier she may read was not decoded, and the log says so.
    (mine,) = [row for row in log if row[:2] == (scene.first, "auditor:odile")]
    assert mine[2] is False and scene.second in mine[3]
    assert [(d, a) for d, a, _, _ in log if a == "staff:amelie"] == sorted(
        [(scene.first, "staff:amelie"), (scene.second, "staff:amelie")]
    )


async def test_an_altered_payload_is_refused_with_422_naming_no_key(scene: Scene) -> None:
    payloads = await sealed(scene.stack, scene.first)
    token = await scene.token(STAFF)
    key_id = payloads[0].metadata[KEY_ID].decode()
    data = bytearray(payloads[0].data)
    data[len(data) // 2] ^= 0x01
    altered = Payload(metadata=dict(payloads[0].metadata), data=bytes(data))
    # A payload of the first dossier relabelled as the second's does not open either (the dossier is
    # bound to the ciphertext), and the read is checked — and logged — against the dossier it names.
    moved = Payload(metadata={**payloads[0].metadata, DOSSIER: scene.second.encode()}, data=payloads[0].data)
    # Sealed but without its key id, or naming a key that does not exist.
    keyless = Payload(metadata={k: v for k, v in payloads[0].metadata.items() if k != KEY_ID}, data=payloads[0].data)
    unknown = Payload(metadata={**payloads[0].metadata, KEY_ID: b"k-inexistante"}, data=payloads[0].data)
    for bad, dossier in ((altered, scene.first), (moved, scene.second), (keyless, scene.first),
                         (unknown, scene.first)):
        status, answer = await scene.decode(body([bad]), token)
        detail = problem(answer, 422)
        assert f"du dossier {dossier} illisible" in detail and "données altérées" in detail, detail
        assert key_id not in detail and "k-inexistante" not in detail and "/" not in detail
    # The untouched payload still opens.
    status, answer = await scene.decode(body(payloads), token)
    assert status == 200 and HOLDER_NAME in opened_text(answer)
    # Each attempt was checked and logged, against the dossier the payload names.
    log = [(d, a, g) for d, a, g, _ in await scene.read_log()]
    first, second = (scene.first, "staff:amelie", True), (scene.second, "staff:amelie", True)
    assert log == [first, second, first, first, first]


async def test_encode_for_readers_only_and_what_names_no_dossier_for_operators_only(scene: Scene) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"un signal de l\xe2\x80\x99interface"')
    async with scene.http.post("/encode", json=body([plain]),
                               headers={"Authorization": f"Bearer {await scene.token(OTHER)}"}) as r:
        assert r.status == 403  # a holder never reads a dossier whole: nothing to seal for them
    token = await scene.token(STAFF)
    async with scene.http.post("/encode", json=body([plain]), headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
        answer = await r.json()
    (encoded,) = answer["payloads"]
    assert base64.b64decode(encoded["metadata"]["encoding"]) == ENCODING
    assert base64.b64decode(encoded["metadata"][KEY_ID]) == scene.stack.keys.keyring.active.encode()
    assert b"signal" not in base64.b64decode(encoded["data"])
    # Sealed with a master key, naming no dossier: staff do not decode it; an operator of the server does.
    status, refused = await scene.decode(answer, token)
    assert status == 403 and "opérateurs" in problem(refused, 403)
    operators = CodecServer(scene.rt, operators=frozenset({"amelie"})).app()
    async with TestClient(TestServer(operators)) as http:
        status, back = await scene.decode(answer, token, http)
    assert status == 200 and back == body([plain])
    assert await scene.read_log() == []  # no dossier: nothing in a dossier's read log (the server's log says it)


async def test_caps_unknown_dossiers_and_bad_bodies_are_refused_unlogged(scene: Scene) -> None:
    token = await scene.token(STAFF)
    for bad in ("pas du JSON", "", '{"payloads": "x"}', '{"autre": 1}', "[1]", '{"payloads": [{"data": 1}]}',
                "null", "3", "[" * 100_000):
        status, answer = await scene.decode(bad, token)
        assert "Corps JSON attendu" in problem(answer, 400), bad[:20]
    (one,) = (await sealed(scene.stack, scene.first))[:1]
    # A dossier the journal does not know: 404, and no read entry for it.
    ghost = Payload(metadata={**one.metadata, DOSSIER: b"hdf-pmcb-reemploi.inconnu"}, data=one.data)
    status, answer = await scene.decode(body([ghost]), token)
    assert "inconnu" in problem(answer, 404)
    # A dossier id no dossier has, or not text at all.
    for name in (b"../../etc/passwd", b"\xff\xfe", b"a" * 300):
        odd = Payload(metadata={**one.metadata, DOSSIER: name}, data=one.data)
        status, answer = await scene.decode(body([odd]), token)
        assert "forme attendue" in problem(answer, 400)
    # Too many dossiers, or payloads, in one request; a body too large.
    many = [Payload(metadata={**one.metadata, DOSSIER: f"hdf-pmcb-reemploi.d{i}".encode()}, data=one.data)
            for i in range(CodecLimits().dossiers + 1)]
    status, answer = await scene.decode(body(many), token)
    assert "dossiers par requête" in problem(answer, 413)
    status, answer = await scene.decode(body([one] * (CodecLimits().payloads + 1)), token)
    assert "charges utiles par requête" in problem(answer, 413)
    small = CodecServer(scene.rt, limits=CodecLimits(body_bytes=1024)).app()
    async with TestClient(TestServer(small)) as http:
        status, answer = await scene.decode(body([one]), token, http)
    assert "Corps de requête" in problem(answer, 413)
    assert await scene.read_log() == []


async def test_cors_answers_the_allowed_origins_only(scene: Scene) -> None:
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    for url in ("/decode", "/encode"):
        async with scene.http.options(url, headers=preflight) as r:
            assert r.status == 204, url
            assert r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            assert "X-Namespace" in r.headers["Access-Control-Allow-Headers"]
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            assert "Access-Control-Allow-Credentials" not in r.headers
    # The answers themselves, refusals included, carry it too (else the browser hides them).
    async with scene.http.post("/decode", json={"payloads": []}, headers={"Origin": UI_ORIGIN}) as r:
        assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    # Another origin is never echoed, nor any origin when none is configured.
    async with scene.http.options("/decode", headers={**preflight, "Origin": "http://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
    async with TestClient(TestServer(CodecServer(scene.rt).app())) as http:
        async with http.options("/decode", headers=preflight) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_token_use_is_rate_limited(scene: Scene) -> None:
    limits = CodecLimits(failures_per_client=Rate(per_second=0.001, burst=3), per_token=Rate(per_second=0.001, burst=2))
    request = body(await sealed(scene.stack, scene.second))
    token = await scene.token(STAFF)
    async with TestClient(TestServer(CodecServer(scene.rt, limits=limits).app())) as http:
        assert [(await scene.decode(request, token, http))[0] for _ in range(3)] == [200, 200, 429]
        assert [(await scene.decode(request, f"faux-{i}", http))[0] for i in range(4)] == [401, 401, 401, 429]
        async with http.post("/decode", json=request, headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1  # guessing from there stops everything
            assert "Trop de jetons refusés" in problem(await r.json(), 429)


async def test_the_journal_out_of_reach_is_a_503_never_a_500(tmp_path: Path) -> None:
    port = free_port()
    away = PostgresStore.from_url(f"postgresql://amiflow@127.0.0.1:{port}/absente", pool_size=1)
    keys = DossierKeys(Keyring.open(tmp_path, create=True), away)
    rt = Runtime(Settings(data_dir=tmp_path), away, keys, Vault(tmp_path / "vault", keys))
    try:
        async with TestClient(TestServer(CodecServer(rt).app())) as http:
            async with http.post("/decode", json={"payloads": []}, headers={"Authorization": "Bearer jeton"}) as r:
                assert r.status == 503 and "Retry-After" in r.headers
                detail = problem(await r.json(), 503)
            async with http.get("/decode") as r:
                assert r.status == 405 and "POST" in problem(await r.json(), 405)
    finally:
        await away.dispose()
    assert str(port) not in detail and "absente" not in detail
