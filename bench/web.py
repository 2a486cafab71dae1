"""Steps 9 and 10 of bench/run.py: the back office's pages, server time (the app served in process
through ASGI: no network, no browser), as staff signed in (a session cookie signed with the app's
own secret, as the sign-in sets it).

9. A call's list page (`/appels/{call}/dossiers`: a tab, filters, by next deadline) over the dossiers
   step 8 wrote into the list projection (10,000 in the full run).
10. A dossier page (`/dossiers/{id}`: summary, content, deadlines, timeline, the actions this person may
    take) of a dossier with 500 events (follow-up meetings given through the service layer first).
"""

from __future__ import annotations

import json
from base64 import b64encode
from datetime import UTC, datetime
from typing import Any

import httpx
import itsdangerous

from amiflow import signin
from amiflow.api import create_app
from amiflow.bootstrap import Runtime
from amiflow.services import dossiers as dossier_service
from amiflow.services import people
from amiflow.services.principal import Principal
from amiflow.settings import Settings
from amiflow.vault import Vault
from bench.api import CALL, MEETING, UNLIMITED, _ms, _pct, _timed
from domain import Actor

LIST_AIM_MS = 200.0  # p95: a list that answers like a local application
PAGE_AIM_MS = 300.0


def session_cookie(settings: Settings, person: str, role: str) -> str:
    """The session cookie sign-in would set for `person` (Starlette's format, the app's secret)."""
    data = b64encode(json.dumps({signin.PRINCIPAL: {"actor": f"{role}:{person}", "via": "oidc",
                                                    "person": person}}).encode("utf-8"))
    return itsdangerous.TimestampSigner(signin.session_secret(settings)).sign(data).decode("utf-8")


async def step_web(stack: Any, idents: list[str], requests: int, events: int) -> dict[str, Any]:
    """9 and 10; `stack` is bench/run.py's. The list rows are step 8's."""
    settings = Settings(data_dir=stack.tmp / "data", database_url=stack.app_url, task_queue=stack.task_queue)
    rt = Runtime(settings, stack.store, stack.keys, Vault(stack.tmp / "vault", stack.keys), stack.client)
    if await people.person(rt, "amelie") is None:
        await people.add(rt, "amelie", people.role_grants("staff", [CALL]))
    staff = Principal(Actor.parse("staff:amelie"), via="token", proven=True, person="amelie")
    long_one = idents[0]
    given = 0
    while (await dossier_service.show(rt, staff, long_one, datetime.now(UTC))).version < events:
        await dossier_service.command(rt, staff, long_one, "record-follow-up", MEETING)
        given += 1
    app = create_app(rt, per_address=UNLIMITED, per_token=UNLIMITED)
    cookies = {signin.COOKIE: session_cookie(settings, "amelie", "staff")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 cookies=cookies, timeout=60) as web:
        lists: list[dict[str, str]] = [
            {"onglet": "a-traiter"}, {"onglet": "en-suivi"}, {"onglet": "en-suivi", "en_retard": "1"},
            {"onglet": "clos", "type": "association"}, {"onglet": "en-revue", "territoire": "Nord"},
        ]

        async def list_page(i: int) -> None:
            answer = await web.get(f"/appels/{CALL}/dossiers", params=lists[i % len(lists)])
            assert answer.status_code == 200, answer.text[:300]

        async def dossier_page(i: int) -> None:
            answer = await web.get(f"/dossiers/{long_one}")
            assert answer.status_code == 200 and long_one in answer.text, answer.text[:300]

        list_lat = await _timed(requests, list_page, warmup=len(lists))
        page_lat = await _timed(requests, dossier_page, warmup=2)
    version = (await dossier_service.show(rt, staff, long_one, datetime.now(UTC))).version
    return {"requests": requests, "events": version, "commands_given": given,
            "list_p50_ms": _ms(_pct(list_lat, 50)), "list_p95_ms": _ms(_pct(list_lat, 95)),
            "page_p50_ms": _ms(_pct(page_lat, 50)), "page_p95_ms": _ms(_pct(page_lat, 95))}


def rows(w: dict[str, Any], list_rows: int) -> list[tuple[str, str, str, str]]:
    """The report's lines of steps 9 and 10."""
    from bench.run import verdict

    return [
        ("9", f"back office: a call's list page over {list_rows:,} dossiers ({w['requests']} pages), server time",
         f"p50 {w['list_p50_ms']} ms · p95 {w['list_p95_ms']} ms",
         verdict(w["list_p95_ms"] < LIST_AIM_MS, f"p95 < {LIST_AIM_MS:.0f} ms")),
        ("10", f"back office: a dossier page with {w['events']} events ({w['requests']} pages), server time",
         f"p50 {w['page_p50_ms']} ms · p95 {w['page_p95_ms']} ms",
         verdict(w["page_p95_ms"] < PAGE_AIM_MS, f"p95 < {PAGE_AIM_MS:.0f} ms")),
    ]
