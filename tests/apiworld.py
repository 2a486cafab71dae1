"""A world for the HTTP API's tests: the real stack (Temporal, PostgreSQL, a worker), the PMCB call
shifted to today with a named committee, a directory of people with real personal tokens, and the
API app on a runtime built from the stack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from amiflow.api import create_app
from amiflow.bootstrap import Runtime
from amiflow.catalogue import load_call
from amiflow.dossiers import start_calls
from amiflow.services import people
from amiflow.settings import Settings
from domain.access import Role
from domain.throttle import Rate
from tests import dates
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
CALL_ID = "hdf-pmcb-reemploi"
OTHER_CALL = "hdf-ressourceries"
# name -> (role, calls)
PEOPLE: dict[str, tuple[str, list[str]]] = {
    "acme": ("holder", []), "autre": ("holder", []),
    "amelie": ("staff", [CALL_ID]), "bruno": ("staff", [OTHER_CALL]),
    "rita": ("reviewer", []), "victor": ("reviewer", []),
    "cora": ("committee", [CALL_ID]), "zoe": ("committee", [OTHER_CALL]),
    "odile": ("auditor", []),
}
GENEROUS = Rate(burst=100_000, per_second=100_000.0)


@dataclass
class World:
    """The stack, its runtime, the API app, a token per person, and the example dossier file."""

    stack: Stack
    rt: Runtime
    app: Any
    tokens: dict[str, str]
    calls_dir: Path

    def client(self, who: str | None = None, token: str | None = None) -> httpx.AsyncClient:
        """An HTTP client on the app (in process, ASGI), with `who`'s token (or `token`)."""
        secret = token or (self.tokens[who] if who else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://api",
                                 headers=headers)


def runtime_of(stack: Stack, calls_dir: Path) -> Runtime:
    """A runtime on the stack's store, keys, vault and client (as amiflow.bootstrap assembles one)."""
    settings = Settings(data_dir=stack.data_dir, namespace=stack.namespace, database_url=stack.database_url,
                        task_queue=stack.task_queue, maildrop=stack.mail_dir, calls_dir=calls_dir)
    return Runtime(settings, stack.store, stack.keys, stack.vault, stack.client)


async def world(stack: Stack, tmp_path: Path, **limits: Rate) -> World:
    """Start the call, fill the directory, issue everyone a token."""
    now = datetime.now(UTC)
    calls_dir = tmp_path / "calls"
    calls_dir.mkdir()
    text = dates.shifted_call_text(CALL_ID, now).replace("\ncommittee: []", "\ncommittee: [cora]")
    (calls_dir / f"{CALL_ID}.yaml").write_text(text, encoding="utf-8")
    (calls_dir / f"{OTHER_CALL}.yaml").write_text(dates.shifted_call_text(OTHER_CALL, now), encoding="utf-8")
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [load_call(calls_dir / f"{CALL_ID}.yaml")])
    rt = runtime_of(stack, calls_dir)
    tokens = {}
    for name, (role, calls) in PEOPLE.items():
        await people.add(rt, name, people.role_grants(role, calls))
        tokens[name] = (await people.issue_token(rt, name, 1, now, role=Role(role))).token
    app = create_app(rt, **({"per_address": GENEROUS, "per_token": GENEROUS} | limits))
    return World(stack, rt, app, tokens, calls_dir)


def example() -> dict[str, Any]:
    """The shipped PMCB dossier file, as the JSON body of a submission."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


async def submitted(w: World) -> str:
    """The example dossier, submitted by acme through the API; its id."""
    async with w.client("acme") as api:
        answer = await api.post("/api/v1/dossiers", json=example())
    assert answer.status_code == 201, answer.text
    ident: str = answer.json()["dossier_id"]
    return ident


async def under_review(w: World) -> str:
    """The example dossier acknowledged, complete, and assigned to rita, who declared no conflict."""
    ident = await submitted(w)
    async with w.client("amelie") as staff, w.client("rita") as rita:
        for command, fields in (("acknowledge", {}), ("declare-complete", {}),
                                ("assign-reviewers", {"reviewers": ["rita"],
                                                      "due": dates.due(datetime.now(UTC), 20).arg})):
            answer = await staff.post(f"/api/v1/dossiers/{ident}/commands/{command}", json=fields)
            assert answer.status_code == 200, answer.text
        answer = await rita.post(f"/api/v1/dossiers/{ident}/commands/declare-interests", json={"conflict": False})
        assert answer.status_code == 200, answer.text
    return ident
