"""The codec server on the real components: sealed payloads taken from a dossier workflow's history
on the dev server, decoded (or not) by the aiohttp application run in process, with tokens issued
for real, need-to-know decided on the journal in PostgreSQL, and every decode in the read log."""

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

from amiflow.codec import DOSSIER, ENCODING, KEY_ID
from amiflow.codec_server import TOKENS, CodecServer, Tokens
from amiflow.dossiers import build_command, send, start_calls, submit
from domain import Actor
from domain.state import Status
from journal.schema import reads
from tests import dates
from tests.conftest import Stack

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER_NAME = "Consortium Réemploi Bâtiment Artois (fictif)"
SECTION = "Plateforme de 6 000 m² de collecte, tri, reconditionnement"
HOLDER, OTHER = Actor.parse("holder:acme"), Actor.parse("holder:other")
STAFF, RITA = Actor.parse("staff:amelie"), Actor.parse("reviewer:rita")
UI_ORIGIN = "http://127.0.0.1:8233"


@dataclass
class Scene:
    """Two dossiers of the PMCB call: `first` under review with rita assigned (not yet declared),
    `second` submitted and assigned to nobody; the codec server in process, and its tokens."""

    stack: Stack
    first: str
    second: str
    http: TestClient[Any, Any]
    tokens: Tokens

    def token(self, actor: Actor, days: int = 1, now: datetime | None = None) -> str:
        return self.tokens.issue(actor, days, now or datetime.now(UTC))

    async def do(self, ident: str, actor: Actor, name: str, **options: str) -> Status:
        return (await send(self.stack.client, ident, build_command(name, options), actor)).status

    async def decode(self, body: Any, token: str | None = None, path: bool = False) -> tuple[int, Any]:
        """POST /decode (or /t/TOKEN/decode); the status and the JSON answer."""
        url, headers = "/decode", {}
        if token is not None and path:
            url = f"/t/{token}/decode"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        async with self.http.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as r:
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
    tokens = Tokens(stack.data_dir / TOKENS)
    app = CodecServer(stack.keys, stack.store, tokens).app()
    async with TestClient(TestServer(app)) as http:
        scene = Scene(stack, first, second, http, tokens)
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


async def test_without_a_valid_token_nothing_is_decoded_nor_logged(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    expired = scene.token(STAFF, days=30, now=datetime.now(UTC) - timedelta(days=400))
    attempts: list[tuple[str | None, bool]] = [
        (None, False), ("jeton-invente", False), ("jeton-invente", True), (expired, False), (expired, True),
    ]
    for token, path in attempts:
        status, answer = await scene.decode(request, token, path=path)
        assert status == 401, (token, path, status, answer)
        assert "jeton absent, inconnu ou expiré" in answer["error"]
    # Another scheme than Bearer is no token either; nor does /encode work without one.
    valid = scene.token(STAFF)
    async with scene.http.post("/decode", json=request, headers={"Authorization": f"Basic {valid}"}) as r:
        assert r.status == 401
    async with scene.http.post("/encode", json=request) as r:
        assert r.status == 401
    assert await scene.read_log() == []


async def test_staff_decodes_with_bearer_and_in_the_path(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    token = scene.token(STAFF)
    for path in (False, True):
        status, answer = await scene.decode(request, token, path=path)
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
    token = scene.token(RITA)
    status, answer = await scene.decode(first, token)
    assert status == 403
    assert answer["error"] == (
        f"lecture refusée ({scene.first}) : expert affecté, mais l’absence de conflit d’intérêts "
        "n’est pas encore déclarée"
    )
    assert "payloads" not in answer
    await scene.do(scene.first, RITA, "declare-interests", conflict="false")
    status, answer = await scene.decode(first, token, path=True)
    assert status == 403 and answer["error"] == f"lecture refusée ({scene.first}) : {FULL_ONLY}"
    status, answer = await scene.decode(second, token)
    assert status == 403
    assert answer["error"] == f"lecture refusée ({scene.second}) : expert non affecté à ce dossier"
    assert await scene.read_log() == [
        (scene.first, "reviewer:rita", False,
         "expert affecté, mais l’absence de conflit d’intérêts n’est pas encore déclarée"),
        (scene.first, "reviewer:rita", False, FULL_ONLY),
        (scene.second, "reviewer:rita", False, "expert non affecté à ce dossier"),
    ]


async def test_holders_and_other_staff_are_refused_a_cleared_auditor_decodes(scene: Scene) -> None:
    request = body(await sealed(scene.stack, scene.first))
    status, answer = await scene.decode(request, scene.token(HOLDER))
    assert status == 403 and answer["error"] == f"lecture refusée ({scene.first}) : {FULL_ONLY}"
    status, answer = await scene.decode(request, scene.token(OTHER), path=True)
    assert status == 403
    assert answer["error"] == f"lecture refusée ({scene.first}) : ce dossier appartient à un autre porteur"
    status, _ = await scene.decode(request, scene.token(Actor.parse("staff:bruno")))
    assert status == 403  # staff of another call
    auditor = Actor.parse("auditor:odile")
    status, _ = await scene.decode(request, scene.token(auditor))
    assert status == 403
    await scene.do(scene.first, STAFF, "grant-clearance", auditor="odile", reason="Contrôle FEDER")
    status, answer = await scene.decode(request, scene.token(auditor))
    assert status == 200 and SECTION in opened_text(answer)
    assert [(d, a, g) for d, a, g, _ in await scene.read_log()] == [
        (scene.first, "holder:acme", False), (scene.first, "holder:other", False),
        (scene.first, "staff:bruno", False), (scene.first, "auditor:odile", False),
        (scene.first, "auditor:odile", True),
    ]


async def test_a_request_spanning_two_dossiers_needs_both(scene: Scene) -> None:
    await scene.do(scene.first, STAFF, "grant-clearance", auditor="odile", reason="Contrôle FEDER")
    both = await sealed(scene.stack, scene.first) + await sealed(scene.stack, scene.second)
    status, answer = await scene.decode(body(both), scene.token(Actor.parse("auditor:odile")))
    assert status == 403 and scene.second in answer["error"] and "payloads" not in answer
    status, answer = await scene.decode(body(both), scene.token(STAFF))
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


async def test_an_altered_payload_is_refused_with_422(scene: Scene) -> None:
    payloads = await sealed(scene.stack, scene.first)
    data = bytearray(payloads[0].data)
    data[len(data) // 2] ^= 0x01
    altered = Payload(metadata=dict(payloads[0].metadata), data=bytes(data))
    status, answer = await scene.decode(body([altered]), scene.token(STAFF))
    assert status == 422, answer
    assert f"charge utile du dossier {scene.first}" in answer["error"]
    assert "données altérées ou clé erronée" in answer["error"]
    # A payload of the first dossier relabelled as the second's does not open either (the dossier is
    # bound to the ciphertext), and the read is checked — and logged — against the dossier it names.
    moved = Payload(metadata={**payloads[0].metadata, DOSSIER: scene.second.encode()}, data=payloads[0].data)
    status, answer = await scene.decode(body([moved]), scene.token(STAFF))
    assert status == 422 and "données altérées" in answer["error"]
    # Sealed but without its key id: no key to open it with, said as such.
    keyless = Payload(metadata={k: v for k, v in payloads[0].metadata.items() if k != KEY_ID}, data=payloads[0].data)
    status, answer = await scene.decode(body([keyless]), scene.token(STAFF))
    assert status == 422 and f"pour le dossier {scene.first}" in answer["error"]
    # The untouched payload still opens.
    status, answer = await scene.decode(body(payloads), scene.token(STAFF))
    assert status == 200 and HOLDER_NAME in opened_text(answer)
    # Each attempt was checked and logged, against the dossier the payload names.
    log = [(d, a, g) for d, a, g, _ in await scene.read_log()]
    first, second = (scene.first, "staff:amelie", True), (scene.second, "staff:amelie", True)
    assert log == [first, second, first, first]


async def test_encode_then_decode_round_trip(scene: Scene) -> None:
    token = scene.token(OTHER)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"un signal de l\xe2\x80\x99interface"')
    async with scene.http.post("/encode", json=body([plain]), headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
        answer = await r.json()
    (encoded,) = answer["payloads"]
    assert base64.b64decode(encoded["metadata"]["encoding"]) == ENCODING
    assert base64.b64decode(encoded["metadata"][KEY_ID]) == scene.stack.keys.keyring.active.encode()
    assert b"signal" not in base64.b64decode(encoded["data"])
    status, back = await scene.decode(answer, token, path=True)
    assert status == 200 and back == body([plain])
    assert await scene.read_log() == []  # no dossier: nothing to log


async def test_cors_preflight_echoes_the_ui_origin(scene: Scene) -> None:
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace"}
    for url in ("/decode", "/encode", "/t/quelconque/decode"):
        async with scene.http.options(url, headers=preflight) as r:
            assert r.status == 204, url
            assert r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
            assert "X-Namespace" in r.headers["Access-Control-Allow-Headers"]
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
    # The answers themselves, refusals included, carry it too (else the browser hides them).
    async with scene.http.post("/decode", json={"payloads": []}, headers={"Origin": UI_ORIGIN}) as r:
        assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    # With configured origins, another origin is not echoed.
    app = CodecServer(scene.stack.keys, scene.stack.store, scene.tokens, origins=(UI_ORIGIN,)).app()
    async with TestClient(TestServer(app)) as http:
        async with http.options("/decode", headers={**preflight, "Origin": "http://evil.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        async with http.options("/decode", headers=preflight) as r:
            assert r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


async def test_a_body_that_is_not_the_protocol_is_400(scene: Scene) -> None:
    token = scene.token(STAFF)
    for bad in ("pas du JSON", "", '{"payloads": "x"}', '{"autre": 1}', "[1]", '{"payloads": [{"data": 1}]}',
                "null", "3"):
        status, answer = await scene.decode(bad, token)
        assert status == 400, (bad, status, answer)
        assert "corps JSON attendu" in answer["error"]
    assert await scene.read_log() == []
