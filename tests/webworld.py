"""A world for the back office's tests: the API world (real Temporal, PostgreSQL, worker, the PMCB call,
a directory of people: `tests/apiworld.py`) served by a real uvicorn on a free port, the REAL local
OpenID provider (deploy/idp, the pinned `oidc-provider`) for sign-in, Debian's Chromium driven by
Playwright, and axe-core run on every page a test visits.

    async with web_world(stack, tmp_path) as web:
        page = await web.page("amelie")         # a browser of its own, signed in through the provider
        await web.goto(page, "/appels")         # visits, then checks the page with axe
        async with web.http("amelie") as http:  # the same, without a browser (httpx, session cookie)
            ...
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from amiflow import signin
from amiflow.api import create_app
from tests.apiworld import GENEROUS, World, world
from tests.conftest import Stack
from tests.test_resilience import free_port, stop_process
from tests.test_web_ui import CHROMIUM, require_chromium

SECRET = secrets.token_urlsafe(24)
SERIOUS = ("serious", "critical")
DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass
class Web:
    """The served app, its provider, a browser, and what axe found on each page visited."""

    world: World
    url: str
    issuer: str
    people_file: Path
    browser: Any = None  # playwright Browser, started on first use
    playwright: Any = None
    contexts: list[Any] = field(default_factory=list)
    checked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # url -> serious violations

    async def refresh_people(self) -> None:
        """The provider's login page lists the directory as it is now (after people were added)."""
        signin.write_idp_people(self.people_file, await signin.idp_people(self.world.rt, self.issuer))

    # --- in a browser -------------------------------------------------------------------------

    async def page(self, who: str | None = None) -> Any:
        """A new browser page (its own cookies), signed in as `who` through the provider's login page."""
        if self.browser is None:
            require_chromium()
            from playwright.async_api import async_playwright

            self.playwright = await async_playwright().start()
            self.browser = await self.playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await self.browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
        context.set_default_timeout(30_000)
        self.contexts.append(context)
        page = await context.new_page()
        if who is not None:
            await page.goto(f"{self.url}/auth/login?next=/auth/me")
            await page.get_by_role("button", name=re.compile(f"^{re.escape(who)}\\b")).click()
            await page.wait_for_url(f"{self.url}/auth/me")
        return page

    async def goto(self, page: Any, path: str, status: int = 200) -> Any:
        """Visit a page of the app, check its status, and run axe on it."""
        answer = await page.goto(self.url + path)
        assert answer is not None and answer.status == status, (path, answer.status if answer else None)
        await self.check(page)
        return answer

    async def screenshot(self, page: Any, name: str) -> Path:
        """A picture of the page (1280×800) for the README: into docs/ with AMIFLOW_SCREENSHOTS=1
        (`make screenshots`), else beside the test's files, so that a test run leaves the checkout as it was."""
        folder = DOCS if os.environ.get("AMIFLOW_SCREENSHOTS") else self.world.calls_dir.parent
        await page.set_viewport_size({"width": 1280, "height": 800})
        path = folder / name
        await page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, path  # a page, not a blank
        return path

    async def check(self, page: Any) -> None:
        """axe-core on the page as it is now: no violation of impact serious or critical."""
        from axe_playwright_python.async_playwright import Axe

        results = await Axe().run(page)
        serious = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                    "nodes": [n["target"] for n in v["nodes"]][:5]}
                   for v in results.response["violations"] if v.get("impact") in SERIOUS]
        self.checked[page.url] = serious
        assert not serious, (page.url, serious)

    # --- without a browser ----------------------------------------------------------------------

    @asynccontextmanager
    async def http(self, who: str) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client with `who`'s session: signed in by following the provider's redirects."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            start = await http.get("/auth/login", params={"next": "/auth/me"})
            assert start.status_code == 302, start.text
            login = await http.get(start.headers["location"], follow_redirects=True)
            action = re.search(r'<form method="post" action="([^"]+/login)"', login.text)
            assert action, login.text[:500]
            done = await http.post(httpx.URL(str(login.url)).join(action.group(1)), data={"sub": who},
                                   follow_redirects=True)
            assert done.status_code == 200 and done.json()["person"] == who, done.text
            yield http


def csrf_of(page_html: str) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page_html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@asynccontextmanager
async def web_world(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    """The API world with sign-in through the local provider, served on a free port."""
    from amiflow.stack import start_idp, wait_idp

    base = await world(stack, tmp_path)
    rp = f"http://127.0.0.1:{free_port()}"
    issuer = f"http://127.0.0.1:{free_port()}"
    people_file, log = tmp_path / "idp-people.json", tmp_path / "idp.log"
    people_file.write_text("[]")
    process = start_idp(issuer, SECRET, [f"{rp}/auth/callback"], [f"{rp}/auth/logged-out"], people_file, log)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    web: Web | None = None
    try:
        await asyncio.to_thread(wait_idp, issuer, process, log)
        settings = replace(base.rt.settings, oidc_issuer=issuer, oidc_client_id="amiflow", oidc_client_secret=SECRET,
                           public_url=rp)
        rt = replace(base.rt, settings=settings)
        app = create_app(rt, per_address=GENEROUS, per_token=GENEROUS, sign_in_rate=GENEROUS)
        base = replace(base, rt=rt, app=app)
        web = Web(base, rp, issuer, people_file)
        await web.refresh_people()
        port = int(rp.rsplit(":", 1)[1])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield web
    finally:
        if web is not None:
            for context in web.contexts:
                await context.close()
            if web.browser is not None:
                await web.browser.close()
                await web.playwright.stop()
        if server is not None and task is not None:
            server.should_exit = True
            await task
        stop_process(process)
