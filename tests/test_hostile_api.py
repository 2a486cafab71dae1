"""The hostile-input corpus (tests/hostile/*.yaml) through the HTTP API, in process, on one real stack:
every case that enters by the API (a command's JSON body, a document upload, an explicit request) and
every dossier file (its JSON as the body of a submission) is refused with a 4xx problem+json carrying
the case's code and French words; nothing is written; the dossier still answers and takes a command."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from amiflow.api.problems import STATUS_OF_CODE
from domain import Actor
from domain.errors import DomainError
from tests.apiworld import PEOPLE, World, submitted, world
from tests.conftest import Stack
from tests.test_api import is_problem
from tests.test_hostile import CASES, EXAMPLE, Case, _patched, _written, delivered, eventually, expand


def _is_json(spec: dict[str, Any]) -> bool:
    """Whether a dossier file of the corpus can be sent as JSON (not YAML's aliases, not Latin-1 bytes:
    the API reads JSON in UTF-8 only, its own cases `http/…` say how it refuses the rest)."""
    if "raw_latin1" in spec:
        return False
    try:
        json.loads(spec.get("raw", "{}"))
    except ValueError:
        return False
    return True


# Every case that enters by the API, but the 31st document and the 200 Mio dossier (they need a dossier
# full of documents first: the domain's checks and the services cover them); and every dossier file
# JSON can say, as the body of a submission.
API_CASES = [c for c in CASES if "api" in c.data["entry"] and "existing" not in c.data.get("attach", {})]
FILE_CASES = [c for c in CASES if "submit" in c.data and c not in API_CASES and _is_json(c.data["submit"])]


def expected(case: Case) -> dict[str, str]:
    """What the API answers: the case's refusal, or `expect_api` when the API refuses it at its edge
    (a body over its size, a path that is no address of the API) with its own words."""
    found: dict[str, str] = case.data.get("expect_api", case.expect)
    return found


def person(case: Case) -> str | None:
    """The person of the directory whose token sends the case (None: the `as` names none)."""
    try:
        name = Actor.parse(expand(case.data["as"])).name
    except DomainError:
        return None
    return name if name in PEOPLE else None


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _file_body(case: Case) -> bytes:
    """A dossier file of the corpus as the JSON a client sends."""
    spec = case.data["submit"]
    if "raw" in spec:
        return str(spec["raw"]).encode("utf-8")
    return _json(_patched(EXAMPLE, spec.get("patch", {})))


async def _upload(api: httpx.AsyncClient, path: str, name: str, size: int) -> httpx.Response:
    """A multipart upload of a file of `size` bytes named `name` (raw in the part's header, as a hostile
    client writes it), streamed with its declared length: never whole in memory."""
    boundary = "hostile-boundary-7f3a"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        left = size
        block = b"\0" * (1024 * 1024)
        while left > 0:
            yield block[:min(left, len(block))]
            left -= len(block)
        yield tail

    return await api.post(path, content=chunks(), headers={
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(len(head) + size + len(tail))})


async def send(w: World, case: Case, ident: str) -> httpx.Response:
    """The case as an HTTP request to the app, with its person's token."""
    data = case.data
    async with w.client(person(case)) as api:
        if "submit" in data:
            return await api.post("/api/v1/dossiers", content=_file_body(case),
                                  headers={"content-type": "application/json"})
        request = expand(case.api())
        path = request["path"].replace("{dossier}", quote(data.get("dossier", ident), safe=""))
        if "attach" in data:
            return await _upload(api, path, data["attach"].get("name", "piece.pdf"), data["attach"]["size"])
        headers = {"content-type": "application/json", **request.get("headers", {})}
        if "raw_latin1" in request:
            body = request["raw_latin1"].encode("latin-1")
        elif "raw" in request:
            body = request["raw"].encode("utf-8", "surrogatepass")
        else:
            body = _json(expand(request["body"]))
        if request.get("chunked"):  # no declared length: the body arrives in pieces
            content: Any = _pieces(body)
        else:
            content = body
        return await api.request(request["method"], path, content=content, headers=headers)


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start:start + 64 * 1024]


async def test_the_corpus_through_the_http_api_is_refused_and_writes_nothing(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    ident = await submitted(w)
    await eventually(delivered, stack, ident, "submitted")  # the notice of the submission, sent after the answer
    before = await _written(stack)
    assert all(person(c) for c in API_CASES)
    run = API_CASES + [c for c in FILE_CASES if person(c)]  # a file given `as` no one: the CLI's case
    assert len(run) >= 120
    failures = []
    for case in run:
        answer = await send(w, case, ident)
        want = expected(case)
        status = STATUS_OF_CODE.get(want["code"], 409)
        try:
            body = is_problem(answer, status, want["code"])
            assert want["message"] in body["detail"], body["detail"]
        except AssertionError as exc:
            failures.append(f"{case.id}: {answer.status_code} {answer.text[:300]!r} ({exc})")
    assert not failures, "\n".join(failures)
    assert await _written(stack) == before
    assert not list((w.rt.settings.data_dir / "uploads").iterdir())  # no upload left behind
    async with w.client("amelie") as staff:
        shown = await staff.get(f"/api/v1/dossiers/{ident}")
        assert shown.status_code == 200 and shown.json()["version"] == 2, shown.text
        done = await staff.post(f"/api/v1/dossiers/{ident}/commands/acknowledge", json={})
        assert done.status_code == 200 and done.json()["version"] == 3, done.text

