"""The holders' pages in a real browser (Debian's Chromium, the real OpenID provider, Temporal and
PostgreSQL): the open calls, a draft built from the call's sections, the rules' refusals next to the
right field, an attachment uploaded with its progress bar, the submission, and the answer to a
complement request; another holder does not find the draft (404). axe-core on every page visited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests import dates
from tests.apiworld import CALL_ID
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SECTIONS = ("presentation", "partenariats", "problematiques", "etapes", "suites", "impacts", "financement")


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


async def test_a_holder_drafts_attaches_submits_and_answers_a_complement(web: Web) -> None:
    page = await web.page("acme")
    ident = await _draft_refused_then_saved(web, page)
    await _attach_and_submit(web, page, ident)
    await _answer_complement(web, page, ident)
    async with web.http("autre") as http:  # another holder does not find it; nor may they attach to it
        http.headers["Origin"] = web.url  # as a browser says it on a form of the site
        assert (await http.get(f"/dossiers/{ident}/brouillon")).status_code == 404
        token = csrf_of((await http.get("/mes-dossiers")).text)
        sent = await http.post(f"/dossiers/{ident}/documents", data={"csrf": token},
                               files={"file": ("x.pdf", PDF, "application/pdf")})
        assert sent.status_code == 404 and "Page introuvable" in sent.text


async def _draft_refused_then_saved(web: Web, page: Any) -> str:
    """From the open calls to a saved draft, through a refusal next to its field; the dossier's id."""
    await web.goto(page, "/mes-dossiers")
    assert "aucun dossier" in await page.inner_text("main")
    await web.goto(page, "/depot")
    await page.get_by_role("link", name=re.compile("^Commencer un dossier")).first.click()
    await page.wait_for_url(re.compile(f"/depot/{CALL_ID}/unique$"))
    await web.check(page)

    # The form is the call's: its sections, the phase's eligible holder types only.
    await page.get_by_label("Référence du dossier").fill("Plateforme Lens")
    await page.get_by_label("Nom du porteur").fill("Consortium Réemploi Artois")
    types = await page.locator("#champ-holder-type option").evaluate_all("os => os.map(o => o.textContent)")
    assert "entreprise" in types and "association" not in types  # not eligible to this phase
    await page.get_by_label("Type de porteur").select_option("entreprise")
    await page.get_by_label("Territoire").fill("Pas-de-Calais\u202e")  # an invisible reversal: refused
    await page.get_by_label("Partenaires").fill("Valobat\nHabitat Artois")
    for section in SECTIONS[:-1]:  # the last one left empty: a draft may be incomplete
        await page.locator(f"#champ-sections-{section}").fill(f"Texte de {section}.")
    await page.get_by_label("investissement").check()
    await page.get_by_label("Montant demandé (euros)").fill("450000")
    await page.get_by_role("button", name="Enregistrer le brouillon").click()

    # Refused next to the territory, with the error summary linking to it; what was typed is kept.
    await page.wait_for_selector("#resume-erreurs")
    await web.check(page)
    error = await page.inner_text("#champ-territory-erreur")
    assert "territory" in error and "caractère" in error, error
    assert await page.get_attribute("#resume-erreurs a", "href") == "#champ-territory"
    assert await page.input_value("#champ-sections-presentation") == "Texte de presentation."
    await page.get_by_label("Territoire").fill("Pas-de-Calais")
    await page.get_by_role("button", name="Enregistrer le brouillon").click()
    await page.wait_for_url(re.compile(r"/dossiers/[^/]+/brouillon\?fait="))
    ident = page.url.split("/dossiers/")[1].split("/")[0]
    assert ident == f"{CALL_ID}.plateforme-lens"
    assert "Brouillon enregistré." in await page.inner_text(".notice")
    assert await page.input_value("#champ-partners") == "Valobat\nHabitat Artois"
    await web.check(page)
    return ident


async def _attach_and_submit(web: Web, page: Any, ident: str) -> None:
    """A small PDF by the page's script; a refused submission, then the submission."""
    # A small PDF, uploaded by the page's script with a progress bar, then listed.
    assert await page.locator("form[data-envoi] progress").count() == 1
    assert await page.locator("form[data-envoi] [aria-live=polite]").count() == 1
    await page.set_input_files("#champ-file", files=[{"name": "devis.pdf", "mimeType": "application/pdf",
                                                      "buffer": PDF}])
    async with page.expect_request(f"**/dossiers/{ident}/documents") as sending:
        await page.get_by_role("button", name="Joindre le document").click()
    assert (await sending.value).headers.get("x-csrf-token")  # sent by the script, not the plain form
    await page.wait_for_selector("text=Document « devis.pdf » joint.")
    assert "devis.pdf" in await page.inner_text("table")

    # Submitting with a section empty: refused next to that section (409).
    last = f"#champ-sections-{SECTIONS[-1]}"
    await page.get_by_role("button", name="Déposer le dossier").click()
    await page.wait_for_selector(f"{last}-erreur")
    await web.check(page)
    assert "Sections à remplir" in await page.inner_text(f"{last}-erreur")
    await page.locator(last).fill("Des emplois en insertion.")
    await page.get_by_role("button", name="Déposer le dossier").click()
    await page.wait_for_url(re.compile(r"/mes-dossiers\?fait="))
    assert "Dossier déposé." in await page.inner_text(".notice")
    assert "déposé" in await page.inner_text("table")
    await web.check(page)


async def _answer_complement(web: Web, page: Any, ident: str) -> None:
    """Staff ask for a complement (through the API); the holder answers it on the page."""
    # Staff ask for a complement (through the API); the holder answers it on the page.
    async with web.world.client("amelie") as staff:
        answer = await staff.post(f"/api/v1/dossiers/{ident}/commands/request-complement",
                                  json={"pieces": "Le devis signé.", "due": dates.due(datetime.now(UTC), 10).arg})
        assert answer.status_code == 200, answer.text
    await web.goto(page, "/mes-dossiers")
    assert "complément attendu" in await page.inner_text("table")
    await page.get_by_role("link", name=ident).click()
    await page.wait_for_url(re.compile("/brouillon$"))
    await web.check(page)
    assert "Le devis signé." in await page.inner_text(".alerte")
    await page.get_by_label("Votre réponse à la demande de complément").fill("Le devis signé est joint.")
    await page.get_by_role("button", name="Envoyer le complément").click()
    await page.wait_for_url(re.compile(r"/mes-dossiers\?fait="))
    assert "Complément envoyé" in await page.inner_text(".notice")
    async with web.world.client("acme") as api:
        shown = (await api.get(f"/api/v1/dossiers/{ident}")).json()
    assert shown["status"] == "acknowledged" and shown["state"]["content"]["territory"] == "Pas-de-Calais"



async def test_an_upload_without_script_and_its_refusals(web: Web) -> None:
    """The upload form posted as a browser without JavaScript does: back to the page with a notice;
    a refused file said in French next to the file field; a post without the form's token refused."""
    async with web.http("acme") as http:
        http.headers["Origin"] = web.url  # as a browser says it on a form of the site
        form = await http.get(f"/depot/{CALL_ID}/unique")
        assert form.status_code == 200
        saved = await http.post(f"/depot/{CALL_ID}/unique", data={
            "csrf": csrf_of(form.text), "reference": "Sans script", "holder_name": "Acme", "holder_type": "entreprise",
            "region": "Hauts-de-France"})
        assert saved.status_code == 303, saved.text
        draft = saved.headers["location"].split("?")[0]
        ident = draft.split("/")[2]
        again = await http.post(f"/depot/{CALL_ID}/unique", data={  # a new dossier never overwrites a draft
            "csrf": csrf_of(form.text), "reference": "Sans script", "holder_name": "Autre nom",
            "holder_type": "entreprise", "region": "Hauts-de-France"})
        assert again.status_code == 409
        taken = re.search(r'id="champ-reference-erreur">(.*?)</p>', again.text, re.S)
        assert taken and "existe déjà" in taken.group(1), again.text[:2000]
        token = csrf_of((await http.get(draft)).text)
        sent = await http.post(f"/dossiers/{ident}/documents", data={"csrf": token},
                               files={"file": ("note.txt", b"Bonjour", "text/plain")})
        assert sent.status_code == 303 and sent.headers["location"].startswith(draft + "?fait=")
        shown = (await http.get(draft)).text
        assert "note.txt" in shown and 'value="Acme"' in shown
        wrong = await http.post(f"/dossiers/{ident}/documents", data={"csrf": token},
                                files={"file": ("outil.exe", b"MZ", "application/x-msdownload")})
        assert wrong.status_code == 422
        error = re.search(r'id="champ-file-erreur">(.*?)</p>', wrong.text, re.S)
        assert error and "Type de document refusé" in error.group(1), wrong.text[:2000]
        forged = await http.post(f"/dossiers/{ident}/documents",
                                 files={"file": ("note2.txt", b"Bonjour", "text/plain")})
        assert forged.status_code == 403
        assert "note2.txt" not in (await http.get(draft)).text
