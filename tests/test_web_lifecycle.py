"""One dossier's whole life through the back office, in Debian's Chromium and nothing else — no API
call, no command line: every step is a person signed in through the local OpenID provider, reading a
page and filling its form; axe-core checks every page on the way.

1. A holder signs in, fills the draft form built from the call's sections, attaches a file, submits.
2. Staff acknowledge and ask for a complement; the holder answers it.
3. Staff declare it complete and assign two reviewers; each declares no conflict and scores.
4. The committee decides, with reasons.
5. Staff orient the laureate and record the signed charter.
6. The holder files the first follow-up report.
7. An auditor reads the timeline and downloads the export bundle, which verifies.

On the way, the holder opening the auditors' page is refused with a French 403.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amiflow.web.kit import field_id
from domain.calendar import PARIS
from tests.apiworld import example
from tests.conftest import Stack
from tests.webworld import Web, web_world

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


async def status_of(web: Web, page: Any, ident: str) -> str:
    """The status the dossier page shows (its summary's « Statut »)."""
    await web.goto(page, f"/dossiers/{ident}")
    return str(await page.locator("dl dt:text-is('Statut') + dd").first.inner_text()).strip()


async def act(web: Web, page: Any, ident: str, command: str, **fields: str) -> None:
    """On the dossier page, fill the form of `command` and send it (confirming an irreversible step)."""
    await web.goto(page, f"/dossiers/{ident}")
    form = page.locator(f'form[action="/dossiers/{ident}/commandes/{command}"]')
    for name, value in fields.items():
        box = form.locator(f"#{field_id(f'{command}.{name}')}")
        if await box.evaluate("e => e.tagName") == "SELECT":
            await box.select_option(value)
        else:
            await box.fill(value)
    await form.get_by_role("button").click()
    await page.wait_for_load_state()
    if await page.get_by_role("button", name="Confirmer").count():
        await web.check(page)
        await page.get_by_role("button", name="Confirmer").click()
        await page.wait_for_load_state()
    await web.check(page)
    assert await page.locator(".message-erreur, .resume-erreurs").count() == 0, await page.inner_text("main")


def paris_input(instant: datetime) -> str:
    """What a datetime-local field takes: Paris wall-clock time."""
    return instant.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


async def test_a_dossier_s_whole_life_in_the_browser(web: Web, tmp_path: Path) -> None:  # noqa: PLR0915
    content = example()["content"]
    now = datetime.now(UTC)

    # 1. The holder: a draft from the call's form, a document, the submission.
    acme = await web.page("acme")
    await web.goto(acme, "/depot")
    await acme.get_by_role("link", name=re.compile("Commencer un dossier")).first.click()
    await acme.wait_for_load_state()
    await web.check(acme)
    await acme.fill(f"#{field_id('reference')}", "plateforme-lens-navigateur")
    await acme.fill(f"#{field_id('holder_name')}", content["holder_name"])
    await acme.select_option(f"#{field_id('holder_type')}", content["holder_type"])
    await acme.fill(f"#{field_id('territory')}", content["territory"])
    await acme.fill(f"#{field_id('partners')}", "\n".join(content["partners"]))
    for section, text in content["sections"].items():
        await acme.fill(f"#{field_id('sections.' + section)}", text)
    for kind in content["financing_need"]["kinds"]:
        await acme.locator(f'input[type="checkbox"][value="{kind}"]').check()
    await acme.fill(f"#{field_id('financing_need.amount_eur')}", content["financing_need"]["amount_eur"])
    await acme.fill(f"#{field_id('financing_need.description')}", content["financing_need"]["description"])
    await acme.get_by_role("button", name="Enregistrer le brouillon").click()
    await acme.wait_for_url(re.compile(r"/dossiers/[^/]+/brouillon"))
    await web.check(acme)
    ident = acme.url.split("/dossiers/")[1].split("/")[0].split("?")[0]
    pdf = tmp_path / "devis.pdf"
    pdf.write_bytes(PDF)
    await acme.set_input_files(f"#{field_id('file')}", str(pdf))
    await acme.get_by_role("button", name="Joindre le document").click()
    await acme.get_by_text("devis.pdf").first.wait_for()
    await web.check(acme)
    await acme.get_by_role("button", name="Déposer le dossier").click()
    await acme.wait_for_load_state()
    await web.check(acme)
    assert await status_of(web, acme, ident) == "déposé"

    await web.goto(acme, "/audit", status=403)  # the auditors' page is not hers: refused, in French
    assert await acme.inner_text("h1") == "Accès refusé" and "auditeur" in await acme.inner_text("main")

    # 2. Staff acknowledge and ask for a complement; the holder answers.
    amelie = await web.page("amelie")
    await web.goto(amelie, f"/dossiers/{ident}")
    need = await amelie.locator("dt:text-is('Besoin de financement') + dd").inner_text()
    assert need.startswith("investissement, étude — 510\u202f000 €"), need  # labels and amounts as French writes them
    await act(web, amelie, ident, "acknowledge")
    await act(web, amelie, ident, "request-complement", pieces="Le plan de financement signé.",
              due=paris_input(now + timedelta(days=15)))
    assert await status_of(web, amelie, ident) == "complément demandé"
    await web.goto(acme, f"/dossiers/{ident}/brouillon")
    await acme.fill(f"#{field_id('note')}", "Plan de financement signé joint.")
    await acme.get_by_role("button", name="Envoyer le complément").click()
    await acme.wait_for_load_state()
    await web.check(acme)
    assert await status_of(web, amelie, ident) == "en instruction"

    # 3. Complete; two reviewers, each declares no conflict and scores.
    await act(web, amelie, ident, "declare-complete")
    await act(web, amelie, ident, "assign-reviewers", reviewers="rita, victor",
              due=paris_input(now + timedelta(days=20)))
    for reviewer, scores in (("rita", ("4", "3", "5")), ("victor", ("2", "3", "4"))):
        page = await web.page(reviewer)
        await web.goto(page, "/expertises")
        await page.get_by_role("link", name=re.compile(re.escape(ident))).first.click()
        await page.wait_for_load_state()
        await web.check(page)
        assert content["sections"]["presentation"][:40] not in await page.content()  # nothing before declaring
        await page.get_by_role("group", name=re.compile("conflit d’intérêts")).get_by_label("Non", exact=True).check()
        await page.get_by_role("button", name="Déclarer").click()
        await page.wait_for_load_state()
        await web.check(page)
        link = page.get_by_role("link", name="Télécharger devis.pdf")  # declared: the documents open too
        fetched = await page.request.get(web.url + str(await link.get_attribute("href")))
        assert fetched.status == 200 and await fetched.body() == PDF
        groups = page.locator("form.notation fieldset")
        assert await groups.count() == len(scores)
        for i, score in enumerate(scores):
            await groups.nth(i).get_by_label(score, exact=True).check()
        await page.get_by_label("Votre avis sur le dossier").fill(f"Avis de {reviewer} : dossier solide.")
        await page.get_by_role("button", name="Rendre l’expertise").click()
        await page.wait_for_load_state()
        await web.check(page)

    # 4. The committee decides.
    cora = await web.page("cora")
    await web.goto(cora, "/comite")
    await cora.get_by_role("link", name=re.compile(re.escape(ident))).first.click()
    await cora.wait_for_load_state()
    await web.check(cora)
    table = await cora.locator("table").first.inner_text()
    assert "3" in table and "4,5" in table  # means of the first and last criteria: (4+2)/2, (5+4)/2
    await cora.get_by_role("group", name=re.compile("retenu")).get_by_label("Oui", exact=True).check()
    await cora.get_by_label("Motifs de la décision").fill("Gisement avéré, consortium solide.")
    await cora.get_by_role("button", name="Vérifier la décision").click()
    await cora.wait_for_load_state()
    await web.check(cora)
    await cora.get_by_role("button", name="Confirmer la décision").click()
    await cora.wait_for_load_state()
    await web.check(cora)
    assert await status_of(web, amelie, ident) == "retenu (lauréat)"

    # 5. Staff orient the laureate and record the signed charter.
    await act(web, amelie, ident, "orient")
    await act(web, amelie, ident, "record-follow-up", kind="charter_signed", note="Charte signée en réunion.")
    assert await status_of(web, amelie, ident) == "suivi de coopération"

    # 6. The holder sees the report's due date on the dossier's page, and files the first report.
    await web.goto(acme, f"/dossiers/{ident}")
    assert "rapport de suivi attendu" in (await acme.inner_text("main")).lower()
    await act(web, acme, ident, "file-report", period="1", summary="Site aménagé, 4 valoristes recrutés.")

    # 7. The auditor: the timeline, then the bundle, which verifies by itself.
    odile = await web.page("odile")
    await web.goto(odile, "/audit")
    await web.goto(odile, f"/dossiers/{ident}/chronologie")
    timeline = await odile.inner_text("main")
    for who in ("acme", "amelie", "rita", "victor", "cora"):
        assert who in timeline, who
    async with odile.expect_download() as caught:
        await odile.evaluate(f"() => {{ location.href = '/audit/dossiers/{ident}/export'; }}")
    download = await caught.value
    bundle = tmp_path / "bundle.tar.gz"
    await download.save_as(bundle)
    with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes()), mode="r:gz") as tar:
        tar.extractall(tmp_path / "bundle", filter="data")
    (folder,) = (tmp_path / "bundle").iterdir()
    verified = subprocess.run([sys.executable, "-I", str(folder / "verify.py")], cwd=folder, capture_output=True,
                              text=True, timeout=120, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert web.checked and all(not found for found in web.checked.values())
