"""The Temporal Web UI that `make run` starts, seen by a real browser (headless Chromium from Debian,
driven by Playwright): without a token it shows ciphertext; with a person's token in the
`Authorization` header of its requests (as the Web UI's « pass access token », or a header extension,
sends it: never in a URL) it shows the dossier decoded, and the decode is in the dossier's read log.
The same stack's workers link each notice to its dossier's page at the stack's address.

Skipped where Chromium is not installed (`apt-get install chromium`), except in CI (`CI=true`, as
`.ci/run` sets it): there a missing browser fails the test, so that a broken install never passes
silently. Dossiers go to the PMCB call shifted to today (see tests/test_up.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.test_deadline_timers import eventually
from tests.test_up import PMCB_COPY, amiflow, open_pmcb_copy, start, stop

# `amiflow up` takes the ports 7233, 8233 and 8234 when free: with pytest-xdist, the tests that start it
# run on one worker, one after the other (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("amiflow-up")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_chromium(chromium: str = CHROMIUM) -> None:
    """Skip without Chromium, but fail in CI: there the browser test must run."""
    if Path(chromium).exists():
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"Chromium absent ({chromium}) with CI={os.environ['CI']}: the Web UI test must run in CI "
                    "(.ci/run installs it: apt-get install chromium; see its output for why it could not)",
                    pytrace=False)
    pytest.skip("Chromium absent (apt-get install chromium)")


# The Web UI has shown the workflow's input, decoded or not.
SHOWN = """() => { const t = document.body.innerText;
  return t.includes("Input") && (t.includes("dossier_id") || t.includes("Codec Server could not connect")); }"""


async def page_text(url: str, headers: dict[str, str] | None = None) -> str:
    """The text a browser shows at `url`, its requests carrying `headers` if asked: once the page has
    rendered and the codec server has answered (or said it could not)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(extra_http_headers=headers or {})
            page = await context.new_page()
            await page.goto(url)
            try:  # the page renders, then asks the codec server: wait for its answer (or its failure)
                await page.wait_for_function(SHOWN, timeout=20_000)
                await page.wait_for_timeout(1000)  # the rest of the event history fills in
            except PlaywrightTimeout:
                pass  # the assertions say what was shown instead
            return await page.locator("body").inner_text()
        finally:
            await browser.close()


def read_mail(path: Path) -> EmailMessage:
    mail = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


@pytest.mark.timeout(240)
def test_the_web_ui_shows_ciphertext_without_a_token_and_the_dossier_with_one(tmp_path: Path) -> None:
    require_chromium()
    data = tmp_path / "stack"
    process = start(data)
    try:
        info = json.loads(amiflow(data, "status", "--json").stdout)
        example = open_pmcb_copy(data, tmp_path / "calls")
        submitted = amiflow(data, "dossier", "submit", "--call", PMCB_COPY, "--file", str(example),
                            "--as", "holder:acme")
        assert submitted.returncode == 0, submitted.stderr
        ident = submitted.stdout.strip().splitlines()[-1]
        url = f"{info['ui_url']}/namespaces/default/workflows/{ident}"
        decoded = f'"dossier_id": "{ident}"'

        blind = asyncio.run(page_text(url))
        assert "Codec Server could not connect" in blind and decoded not in blind
        sealed = blind.split("Input", 1)[1].split("Result", 1)[0].strip().strip('"')
        assert ident.encode() not in base64.b64decode(sealed)  # what the UI shows is ciphertext

        token = amiflow(data, "codec", "token", "--as", "staff:amelie").stdout.strip().splitlines()[-1]
        seen = asyncio.run(page_text(url, {"Authorization": f"Bearer {token}"}))
        assert decoded in seen and "Codec Server could not connect" not in seen

        history = json.loads(amiflow(data, "dossier", "history", ident, "--as", "auditor:odile", "--json").stdout)
        assert any(r["via"] == "codec" and r["actor"] == "staff:amelie" and r["granted"] for r in history["reads"])

        # The holder's acknowledgement of deposit, dropped by a worker of `amiflow up`, links to the
        # dossier's page at the stack's web address (its API's, as no AMIFLOW_PUBLIC_URL is set).
        async def dropped_link() -> str:
            bodies = [mail.get_content() for mail in map(read_mail, sorted((data / "maildrop").glob("*.eml")))
                      if mail["X-Amiflow-Key"].startswith(f"{ident}|submitted|")]
            assert bodies
            return str(bodies[0])

        body = asyncio.run(eventually(dropped_link))
        assert f"Voir le dossier : {info['api_url']}/dossiers/{ident}" in body, body
    finally:
        stop(process)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_without_chromium_ci_fails_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="Chromium absent"):
        require_chromium(str(tmp_path / "no-chromium"))


def test_without_chromium_outside_ci_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_chromium(str(tmp_path / "no-chromium"))
