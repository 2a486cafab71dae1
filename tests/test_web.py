"""The back office's frame, through a real browser: sign-in through the local OpenID provider, the
page every role lands on, the HTML error pages in French (403, 404), the CSRF token every form
carries, the security headers (a strict CSP, no inline script), the skip link — axe-core on every
page visited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from amiflow.api import create_app
from amiflow.bootstrap import memory_runtime
from amiflow.settings import Settings
from amiflow.web.security import content_security_policy
from journal.keys import Keyring
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


async def test_a_page_asks_for_sign_in_then_comes_back(web: Web) -> None:
    page = await web.page()
    await page.goto(f"{web.url}/")
    assert page.url.startswith(web.issuer)  # sent to the provider first
    await page.get_by_role("button", name="amelie").first.click()
    await page.wait_for_url(f"{web.url}/appels")  # back home, which leads staff to their calls


async def test_an_unknown_page_is_a_french_404_and_the_frame_is_accessible(web: Web) -> None:
    page = await web.page("amelie")
    await web.goto(page, "/nulle-part", status=404)
    assert await page.get_attribute("html", "lang") == "fr"
    assert "Page introuvable" in await page.inner_text("h1")
    skip = page.get_by_role("link", name="Aller au contenu")
    await page.keyboard.press("Tab")
    assert await skip.evaluate("e => e === document.activeElement")  # the first stop of the keyboard
    assert await page.get_by_role("button", name="Se déconnecter").is_visible()


async def test_the_security_headers_and_no_inline_script(web: Web) -> None:
    async with web.http("amelie") as http:
        answer = await http.get("/nulle-part")
        csp = answer.headers["content-security-policy"]
        assert csp == content_security_policy(web.issuer)
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in answer.text and " on" + "click=" not in answer.text
        assert len(csrf_of(answer.text)) >= 32  # the sign-out form carries the session's token
        forged = await http.get("/nulle-part", params={"fait": "Votre dossier est rejeté"})
        assert "rejeté" not in forged.text  # a link cannot make the site say anything: notices live in the session
        css = await http.get("/static/amiflow.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]


async def test_axe_does_find_what_it_is_asked_to(web: Web) -> None:
    """The check itself: a field without a label and grey on grey are serious violations."""
    page = await web.page()
    await page.set_content('<html lang="fr"><head><title>t</title></head><body><main><h1>t</h1><input type="text">'
                           '<p style="color:#aaa;background:#bbb">illisible</p></main></body></html>')
    with pytest.raises(AssertionError) as caught:
        await web.check(page)
    assert {"label", "color-contrast"} <= {v["id"] for v in caught.value.args[0][1]}


@pytest.mark.parametrize("site", ["http://127.0.0.1:8000", "https://amiflow.region.example"])
async def test_the_session_cookie_is_httponly_samesite_and_secure_behind_https(site: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url=site)
    app = create_app(memory_runtime(settings, Keyring.open(tmp_path, create=True)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=site) as http:
        answer = await http.get("/nulle-part")  # a page: its forms' CSRF token opens the session
    assert answer.status_code == 404 and "Page introuvable" in answer.text
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("amiflow_session=") and "httponly" in cookie and "samesite=lax" in cookie
    assert ("secure" in cookie.split("; ")) is site.startswith("https://")
