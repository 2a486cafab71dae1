"""The staff's pages in a real browser (Chromium, axe-core on every page): their home (counts per tab,
the next 7 days, a refused call file with its error), a call's dossiers in tabs with a filter and the
next page, the current list exported as CSV, XLSX and ODS (read back), a phase's extension previewed
then confirmed, and staff of another call answered 404."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amiflow.services import calls as call_service
from domain.calendar import PARIS
from tests import dates
from tests.apiworld import CALL_ID, OTHER_CALL, example, submitted
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world

LIST = f"/appels/{CALL_ID}/dossiers"


@pytest.fixture
async def web(stack: Stack, tmp_path: Path) -> AsyncIterator[Web]:
    async with web_world(stack, tmp_path) as found:
        yield found


async def _submit(web: Web, reference: str, territory: str) -> str:
    """The example dossier under another reference and territory, submitted by acme; its id."""
    body: dict[str, Any] = example()
    body["reference"] = reference
    body["content"]["territory"] = territory
    async with web.world.client("acme") as api:
        answer = await api.post("/api/v1/dossiers", json=body)
    assert answer.status_code == 201, answer.text
    ident: str = answer.json()["dossier_id"]
    return ident


def _ids(text: str) -> list[str]:
    """The dossier ids the list's table links to, in order."""
    return re.findall(r'<th scope="row"><a href="/dossiers/([^"]+)">', text)


async def test_home_tabs_filter_next_page_exports_and_refused_call_file(web: Web) -> None:
    (web.world.calls_dir / "casse.yaml").write_text("id: casse\ntitle: Appel incomplet\n", encoding="utf-8")
    lens = await _submit(web, "ref-lens", "Pas-de-Calais — Lens")
    oise = await _submit(web, "ref-oise", "Oise — Compiègne")
    asked = await _submit(web, "ref-somme", "Somme — Amiens")
    async with web.world.client("amelie") as staff:
        answer = await staff.post(f"/api/v1/dossiers/{asked}/commands/request-complement",
                                  json={"pieces": "Kbis", "due": dates.due(datetime.now(UTC), 3).arg})
        assert answer.status_code == 200, answer.text

    page = await web.page("amelie")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await web.goto(page, "/appels")
    call = page.locator("section.carte", has=page.get_by_role("heading", name=re.compile("PMCB|réemploi", re.I)))
    assert "à traiter : 2" in await call.inner_text()
    assert "compléments demandés : 1" in await call.inner_text()
    upcoming = page.get_by_role("table", name=re.compile("7 jours"))
    assert asked in await upcoming.inner_text() and "dans " in await upcoming.inner_text()
    assert "Par statut : déposé 2 · complément demandé 1." in await call.inner_text()  # per status, too
    refused = await page.locator("ul.refus").inner_text()
    assert "casse.yaml" in refused and "champ obligatoire absent" in refused, refused
    await page.get_by_role("link", name=re.compile("casse.yaml")).click()  # the call's page says why it is not
    await page.wait_for_url(f"{web.url}/appels/casse")
    await web.check(page)
    assert await page.inner_text("h1") == "Fichier d’appel refusé"
    assert "champ obligatoire absent" in await page.inner_text("main")
    await web.goto(page, "/appels")

    await call.get_by_role("link", name=re.compile("^à traiter")).click()
    await page.wait_for_url(re.compile(re.escape(LIST)))
    await web.check(page)
    assert await page.get_by_role("link", name=re.compile(r"^à traiter \(2\)")).get_attribute("aria-current") == "page"
    await _pages_and_filter(web, page, {lens, oise}, oise)
    await _exports(web, {lens, oise}, oise, asked)
    await _another_calls_staff(web)


async def _pages_and_filter(web: Web, page: Any, listed: set[str], oise: str) -> None:
    """The « à traiter » tab a dossier per page: the next page, back to the first; then a filter."""
    await web.goto(page, f"{LIST}?onglet=a-traiter&par_page=1")
    first = _ids(await page.content())
    await page.get_by_role("link", name="Page suivante").click()
    await page.wait_for_url(re.compile("apres="))
    await web.check(page)
    second = _ids(await page.content())
    assert len(first) == len(second) == 1 and {*first, *second} == listed
    assert await page.get_by_role("link", name="Page suivante").count() == 0  # the last page says so
    await page.get_by_role("link", name="Première page").click()
    await page.wait_for_url(re.compile(r"par_page=1$"))
    assert _ids(await page.content()) == first

    await web.goto(page, LIST)
    await page.get_by_label("Territoire").fill("Oise — Compiègne")
    await page.get_by_label("Type de porteur").select_option("entreprise")
    await page.get_by_role("button", name="Filtrer").click()
    await page.wait_for_url(re.compile("territoire=Oise"))  # the filters are in the address
    await web.check(page)
    assert _ids(await page.content()) == [oise]
    row = await page.locator("tbody tr").inner_text()
    assert "entreprise" in row and "acme" in row and "Oise" not in row  # the territory: filtered on, never shown
    await web.goto(page, f"{LIST}?onglet=a-traiter")
    await web.screenshot(page, "staff-list.png")


async def _exports(web: Web, listed: set[str], oise: str, elsewhere: str) -> None:
    """The current list (same tab and filters, every page) as CSV, XLSX and ODS, read back."""
    async with web.http("amelie") as http:
        files = {}
        for fmt in ("csv", "xlsx", "ods"):
            answer = await http.get(f"{LIST}.{fmt}", params={"onglet": "a-traiter", "par_page": "1"})
            assert answer.status_code == 200, answer.text
            disposition = answer.headers["content-disposition"]
            assert disposition.startswith("attachment;") and disposition.endswith(f".{fmt}"), disposition
            files[fmt] = answer.content
        lines = list(csv.reader(io.StringIO(files["csv"].decode("utf-8-sig")), delimiter=";"))
        assert lines[0][0] == "dossier" and {line[0] for line in lines[1:]} == listed
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(files["xlsx"]), read_only=True).active
        assert [r[0] for r in sheet.iter_rows(values_only=True)] == [line[0] for line in lines]
        with zipfile.ZipFile(io.BytesIO(files["ods"])) as ods:
            content = ods.read("content.xml").decode("utf-8")
        assert all(ident in content for ident in listed) and elsewhere not in content
        for wrong in ({"par_page": "0"}, {"onglet": "nulle-part"}):  # refused in French, not a traceback
            answer = await http.get(LIST, params=wrong)
            assert answer.status_code == 422 and "Saisie invalide" in answer.text, wrong
        assert (await http.get(f"{LIST}.pdf")).status_code == 422
        idle = await http.get(f"/appels/{OTHER_CALL}")  # a call whose workflow is not running: as its file says
        assert idle.status_code == 200 and "Phases" in idle.text
        filtered = await http.get(f"{LIST}.csv", params={"onglet": "a-traiter", "territoire": "Oise — Compiègne"})
        assert [line[0] for line in csv.reader(io.StringIO(filtered.content.decode("utf-8-sig")),
                                               delimiter=";")][1:] == [oise]


async def _another_calls_staff(web: Web) -> None:
    """Staff of another call: as if the call did not exist; a holder: these pages are not theirs."""
    async with web.http("bruno") as http:
        for path in (f"/appels/{CALL_ID}", LIST, f"{LIST}.csv"):
            answer = await http.get(path)
            assert answer.status_code == 404 and "Page introuvable" in answer.text, path
        home = await http.get("/appels")
        assert home.status_code == 200 and CALL_ID not in home.text
        tried = await http.post(f"/appels/{CALL_ID}/phases/unique/prolongation",
                                data={"csrf": csrf_of(home.text),
                                      "cloture-unique": _local(datetime.now(UTC) + timedelta(days=900))},
                                headers={"origin": web.url})
        assert tried.status_code == 404
    async with web.http("acme") as http:
        assert (await http.get("/appels")).status_code == 403
    bruno = await web.page("bruno")
    await web.goto(bruno, f"/appels/{CALL_ID}", status=404)


def _local(instant: datetime) -> str:
    """An instant as a datetime-local field takes it: Paris wall-clock time to the minute."""
    return instant.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


async def test_extension_previewed_then_confirmed_and_an_earlier_date_refused(web: Web) -> None:
    await submitted(web.world)
    closes = next(p for p in (await call_service.show(web.world.rt, CALL_ID)).phases if p.id == "unique").closes_at
    page = await web.page("amelie")
    await web.goto(page, f"/appels/{CALL_ID}")
    assert "date supposée" in await page.locator("#phase-unique + dl").inner_text()
    field = page.get_by_label(re.compile("^Nouvelle clôture"))

    await field.fill(_local(closes - timedelta(days=1)))
    async with page.expect_navigation() as refused:
        await page.get_by_role("button", name="Prévisualiser la prolongation").click()
    assert (await refused.value).status == 422
    await web.check(page)
    error = await page.locator(".message-erreur").inner_text()
    assert "repousse la clôture" in error
    assert await page.locator(".resume-erreurs a").get_attribute("href") == "#champ-cloture-unique"

    until = (closes + timedelta(days=10)).replace(second=0, microsecond=0)
    await field.fill(_local(until))
    await page.get_by_role("button", name="Prévisualiser la prolongation").click()
    await page.wait_for_url(re.compile("/prolongation$"))
    await web.check(page)
    assert "1 dossier ouvert suivra la nouvelle clôture" in await page.inner_text("main")
    await page.get_by_role("button", name="Confirmer la prolongation").click()
    await page.wait_for_url(re.compile(rf"/appels/{CALL_ID}\?fait="))
    await web.check(page)
    assert "1 dossier ouvert suit" in await page.get_by_role("status").inner_text()
    shown = await page.locator("#phase-unique + dl time").nth(1).get_attribute("datetime")
    assert shown is not None and datetime.fromisoformat(shown) == until
    assert (await call_service.show(web.world.rt, CALL_ID)).phases[0].closes_at == until
