"""The dossier page in Chromium: staff acknowledge a submitted dossier and ask for a complement through
the forms built from the commands' fields (the page follows), a due date in the past refused in French
next to its form with the typed values kept, a close that asks for confirmation first (no JavaScript),
and without a browser: another holder's French 404, a form without its CSRF token refused, a rules'
refusal (409) for a command no longer offered, a document downloaded — axe on every page visited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.actions import choices, confirmation, event_label, is_irreversible, read_label
from domain.calendar import PARIS
from tests import dates
from tests.apiworld import submitted
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


def _wall_clock(instant: datetime) -> str:
    """An instant as a datetime-local field takes it: Paris time, to the minute."""
    return instant.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


async def test_staff_acknowledge_ask_a_complement_and_close_through_the_forms(web: Web) -> None:
    ident = await submitted(web.world)
    page = await web.page("amelie")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await web.goto(page, f"/dossiers/{ident}")
    assert await page.inner_text("h1") == f"Dossier {ident}"
    assert await page.inner_text("dd.statut") == "déposé"
    await page.locator("form[action$='/commandes/acknowledge'] button").click()
    await page.wait_for_url(f"**/dossiers/{ident}?fait=*")
    assert await page.inner_text("dd.statut") == "en instruction"
    assert "Accuser réception" in await page.inner_text(".notice")
    await web.check(page)

    asking = page.locator("form[action$='/commandes/request-complement']")
    await asking.get_by_label("Pièces demandées").fill("Kbis de moins de 3 mois")
    await asking.get_by_label("Échéance").fill(_wall_clock(datetime.now(UTC) - timedelta(days=2)))
    await asking.get_by_role("button").click()
    await page.wait_for_load_state()
    refused = page.locator("form[action$='/commandes/request-complement'] .message-erreur")
    assert "doit être dans le futur" in await refused.inner_text()  # next to ITS form
    summary = page.locator("#resume-erreurs a")
    assert await summary.get_attribute("href") == "#champ-commande-request-complement"
    assert await asking.get_by_label("Pièces demandées").input_value() == "Kbis de moins de 3 mois"  # kept
    assert await page.inner_text("dd.statut") == "en instruction"
    await web.check(page)

    due = dates.due(datetime.now(UTC), 10)
    await asking.get_by_label("Échéance").fill(f"{due.arg}T00:00")
    await asking.get_by_role("button").click()
    await page.wait_for_url(f"**/dossiers/{ident}?fait=*")
    assert await page.inner_text("dd.statut") == "complément demandé"
    deadlines = await page.inner_text("#echeances + table")
    assert "complément attendu" in deadlines and ("dans 9 jours" in deadlines or "dans 10 jours" in deadlines)
    assert "complément demandé" in await page.inner_text("#chronologie ~ table")
    await web.check(page)
    await web.screenshot(page, "dossier-page.png")

    closing = page.locator("form[action$='/commandes/close']")
    await closing.get_by_label("Motif").fill("Doublon d’un autre dépôt")
    await closing.get_by_role("button").click()
    await page.wait_for_load_state()
    assert await page.inner_text("h1") == f"Clore le dossier {ident} ?"  # asked first, nothing done yet
    await web.check(page)
    await page.get_by_role("button", name="Confirmer").click()
    await page.wait_for_url(f"**/dossiers/{ident}?fait=*")
    assert await page.inner_text("dd.statut") == "clos"
    assert "Doublon d’un autre dépôt" in await page.inner_text("dl.resume")
    await web.check(page)


async def test_refusals_without_a_browser(web: Web) -> None:
    ident = await submitted(web.world)
    async with web.world.client("acme") as holder:
        sent = await holder.post(f"/api/v1/dossiers/{ident}/documents",
                                 files={"file": ("kbis.pdf", PDF, "application/pdf")})
        assert sent.status_code == 201, sent.text
    document = sent.json()["document"]["id"]
    async with web.http("amelie") as staff, web.http("autre") as other:
        shown = await staff.get(f"/dossiers/{ident}")
        assert shown.status_code == 200 and f"/dossiers/{ident}/documents/{document}" in shown.text
        fetched = await staff.get(f"/dossiers/{ident}/documents/{document}")
        assert fetched.status_code == 200 and fetched.content == PDF
        assert fetched.headers["x-content-type-options"] == "nosniff"
        assert fetched.headers["content-disposition"].startswith("attachment")

        own = await holder_page(web, ident)
        assert f'action="/dossiers/{ident}/commandes/withdraw"' in own and "Retirer le dossier" in own
        unknown = await other.get(f"/dossiers/{ident}")  # another holder: as if it did not exist
        assert unknown.status_code == 404 and "Dossier inconnu" in unknown.text
        assert "<h1>Page introuvable</h1>" in unknown.text
        assert (await other.get(f"/dossiers/{ident}/documents/{document}")).status_code == 404

        forged = await staff.post(f"/dossiers/{ident}/commandes/acknowledge", data={"csrf": "pas-le-bon"})
        assert forged.status_code == 403 and "Ce formulaire a expiré" in forged.text
        token, origin = csrf_of(shown.text), {"origin": web.url}
        done = await staff.post(f"/dossiers/{ident}/commandes/acknowledge", data={"csrf": token}, headers=origin)
        assert done.status_code == 303
        again = await staff.post(f"/dossiers/{ident}/commandes/acknowledge", data={"csrf": token}, headers=origin)
        assert again.status_code == 409 and "est impossible" in again.text  # the rules' words, on the page
        assert 'href="#champ-commande-acknowledge"' in again.text and 'id="champ-commande-acknowledge"' in again.text
        assert (await staff.get(f"/dossiers/{ident}", params={"au": "hier"})).status_code == 422
        dedicated = await staff.post(f"/dossiers/{ident}/commandes/submit", data={"csrf": token}, headers=origin)
        assert dedicated.status_code == 303 and dedicated.headers["location"].endswith(f"/dossiers/{ident}/brouillon")


async def holder_page(web: Web, ident: str) -> str:
    """The dossier page as its holder sees it."""
    async with web.http("acme") as holder:
        answer = await holder.get(f"/dossiers/{ident}")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_forms_choices_and_confirmations_come_from_the_rules() -> None:
    assert [v for v, _ in choices("record-follow-up", "kind")] == ["charter_signed", "meeting_attended"]
    assert choices("extend-deadline", "deadline") == [("phase_closing", "clôture de la phase"),
                                                      ("complement_due", "complément attendu"),
                                                      ("review_due", "expertise attendue")]
    assert dict(choices("record-filing", "outcome"))["granted"] == "aide accordée"
    assert choices("close", "reason") == [] and choices("nulle", "part") == []
    assert is_irreversible("close") and is_irreversible("destroy-content") and not is_irreversible("acknowledge")
    assert confirmation("close", "appel.ref") == "Clore le dossier appel.ref ?"
    assert event_label("clearance_granted") == "auditeur habilité"
    assert read_label("document:doc-0123") == "document doc-0123"
    assert read_label("content@2020-01-01T10:00Z") == "contenu du dossier (tel qu’au 2020-01-01T10:00Z)"
