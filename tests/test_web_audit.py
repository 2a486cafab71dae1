"""The auditors' pages in Chromium: odile opens a dossier by its id, sees the clearance amelie granted
through the generic form (who, why, when) and so its content, reads the whole timeline, looks at the
dossier as it stood when it was submitted, verifies the journal, and downloads the bundle (httpx), which
verifies itself with its own verify.py; a holder opening the auditors' page gets a French 403 — axe on
every page visited."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from domain.calendar import PARIS
from tests.apiworld import submitted
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


async def test_an_auditor_reads_looks_back_verifies_and_downloads_the_bundle(web: Web, tmp_path: Path) -> None:
    ident = await submitted(web.world)
    async with web.world.client("amelie") as api:
        assert (await api.post(f"/api/v1/dossiers/{ident}/commands/acknowledge")).status_code == 200
        entries = (await api.get(f"/api/v1/dossiers/{ident}/timeline")).json()["entries"]
    submitted_at = next(datetime.fromisoformat(e["at"]) for e in entries if e.get("type") == "submitted")
    await _grant_clearance_through_the_form(web, ident)

    page = await web.page("odile")
    await web.goto(page, "/audit")
    assert ident in await page.inner_text("table")
    await page.get_by_label("Identifiant du dossier").fill(ident)
    await page.get_by_role("button", name="Ouvrir le dossier").click()
    await page.wait_for_url(f"**/dossiers/{ident}")
    await web.check(page)
    cleared = await page.inner_text("#habilitations + table")
    assert "odile" in cleared and "Contrôle FEDER 2027" in cleared and "staff:amelie" in cleared
    assert "Structure" in await page.inner_text("#contenu-dossier + dl")  # cleared: the content shows

    await page.get_by_role("link", name=f"Toute la chronologie du dossier {ident}").click()
    await page.wait_for_url(f"**/dossiers/{ident}/chronologie")
    await web.check(page)
    whole = await page.inner_text("table")
    assert "dossier déposé" in whole and "accusé de réception" in whole and "auditeur habilité" in whole
    assert "Lecture : contenu du dossier — accordée" in whole

    wall = submitted_at.astimezone(PARIS).replace(tzinfo=None).isoformat()  # as it stood once submitted
    await web.goto(page, f"/dossiers/{ident}?au={quote(wall)}")
    assert "tel qu’il était le" in await page.inner_text(".alerte")
    assert await page.inner_text("dd.statut") == "déposé" and await page.locator("#actions").count() == 0

    await web.goto(page, "/audit")
    await page.get_by_role("button", name="Vérifier tout le journal").click()
    await page.wait_for_url("**/audit/verification*")
    await web.check(page)
    assert "aucune rupture" in await page.inner_text(".notice") and "tout le journal" in await page.inner_text("main")

    async with web.http("odile") as auditor, web.http("acme") as holder:
        mine = await auditor.get("/audit/verification", params={"dossier": ident})
        assert mine.status_code == 200 and f"dossier {ident}" in mine.text and "aucune rupture" in mine.text
        bundle = await auditor.get(f"/audit/dossiers/{ident}/export")
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/gzip"
        assert f"bundle-{ident}.tar.gz" in bundle.headers["content-disposition"]
        refused = await holder.get("/audit")
        assert refused.status_code == 403 and "<h1>Accès refusé</h1>" in refused.text
        assert "réservé aux auditeurs" in refused.text
        assert (await holder.get(f"/audit/dossiers/{ident}/export")).status_code == 403
        unknown = await holder.get(f"/audit/dossiers/{ident}-inexistant/export")  # the same refusal: no oracle
        assert unknown.status_code == 403 and "Accès refusé" in unknown.text

    _bundle_verifies(bundle.content, tmp_path / "bundle", ident)


async def _grant_clearance_through_the_form(web: Web, ident: str) -> None:
    """amelie lets odile read the dossier through the generic form, confirmed (a clearance is for good)."""
    async with web.http("amelie") as staff:
        token = csrf_of((await staff.get(f"/dossiers/{ident}")).text)
        fields = {"csrf": token, "grant-clearance.auditor": "odile", "grant-clearance.reason": "Contrôle FEDER 2027"}
        origin = {"origin": web.url}
        asked = await staff.post(f"/dossiers/{ident}/commandes/grant-clearance", data=fields, headers=origin)
        assert asked.status_code == 200 and "Habiliter cet auditeur" in asked.text  # confirmed first
        assert 'name="grant-clearance.reason" value="Contrôle FEDER 2027"' in asked.text
        done = await staff.post(f"/dossiers/{ident}/commandes/grant-clearance", data={**fields, "confirme": "oui"},
                                headers=origin)
        assert done.status_code == 303, done.text


def _bundle_verifies(data: bytes, where: Path, ident: str) -> None:
    """The downloaded tar.gz holds a bundle its own verify.py finds whole, without amiflow."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(where, filter="data")
    folder = where / f"bundle-{ident}"
    checked = subprocess.run([sys.executable, "-I", str(folder / "verify.py"), str(folder)], capture_output=True,
                             text=True, timeout=60, check=False, cwd=where)  # -I: no amiflow, no site
    assert checked.returncode == 0 and "intègre" in checked.stdout, checked.stdout + checked.stderr
