"""The reviewers' and the committee's pages, through Chromium on the real stack: a reviewer sees their
assignment, no content before declaring their interests, then the dossier and the scoring form (a
refusal next to its fields); a second reviewer cannot score before declaring; the committee reads the
score table (each score, the mean, the spread) beside the summary and decides with reasons, confirmed
on a page of its own; a member of another call's committee is told the dossier does not exist. axe-core
on every page visited; the scoring form's screenshot goes to docs/scoring-form.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Page

from tests import dates
from tests.apiworld import example, submitted
from tests.conftest import Stack
from tests.webworld import Web, csrf_of, web_world

SECTION = example()["content"]["sections"]["presentation"].split(",")[0]  # « Plateforme de 6 000 m² de collecte »
HOLDER_NAME = example()["content"]["holder_name"]
RITA = {"solutions": "4", "court_terme": "2", "impact_socio_economique": "5"}
VICTOR = {"solutions": "1", "court_terme": "2", "impact_socio_economique": "4"}


async def assigned(web: Web, reviewers: tuple[str, ...] = ("rita", "victor"), reference: str | None = None) -> str:
    """The example dossier (or one like it, of another reference), acknowledged, complete and assigned
    to `reviewers` (through the API)."""
    if reference is None:
        ident = await submitted(web.world)
    else:
        async with web.world.client("acme") as holder:
            answer = await holder.post("/api/v1/dossiers", json=example() | {"reference": reference})
        assert answer.status_code == 201, answer.text
        ident = answer.json()["dossier_id"]
    async with web.world.client("amelie") as staff:
        for command, fields in (("acknowledge", {}), ("declare-complete", {}),
                                ("assign-reviewers", {"reviewers": list(reviewers),
                                                      "due": dates.due(datetime.now(UTC), 20).arg})):
            answer = await staff.post(f"/api/v1/dossiers/{ident}/commands/{command}", json=fields)
            assert answer.status_code == 200, answer.text
    return ident


async def group(page: Page, legend: str, choice: str) -> None:
    """Check the radio button `choice` of the fieldset whose legend starts with `legend`."""
    await page.get_by_role("group", name=re.compile("^" + re.escape(legend))).get_by_label(choice, exact=True).check()


async def rita_declares_and_scores(web: Web, ident: str) -> None:
    page = await web.page("rita")
    await web.goto(page, "/expertises")
    row = page.get_by_role("row", name=re.compile(re.escape(ident)))
    declared, reviewed = (await row.get_by_role("cell").all_inner_texts())[-2:]
    assert declared == "non : à déclarer avant de lire le dossier" and reviewed == "non"
    assert re.search(r"dans (19|20) jours", await row.inner_text())  # the review's due date, how long is left
    await row.get_by_role("link").click()
    await page.wait_for_url(f"{web.url}/dossiers/{ident}/expertise")
    await web.check(page)
    html = await page.content()
    assert SECTION not in html and HOLDER_NAME not in html and "Présentation synthétique" not in html  # nothing yet
    assert await page.get_by_role("group", name=re.compile("^Avez-vous un conflit d’intérêts avec ce porteur")).count()
    await group(page, "Avez-vous un conflit", "Non")
    await page.get_by_label("Déclaration").fill("Aucun lien avec le porteur ni ses partenaires.")
    await page.get_by_role("button", name="Déclarer").click()
    await page.wait_for_url(re.compile(re.escape(f"/dossiers/{ident}/expertise?fait=")))
    await web.check(page)
    assert SECTION in await page.content() and HOLDER_NAME in await page.content()  # the dossier, now

    # a score missing: refused next to its field, what was typed kept
    await group(page, "Solutions apportées", RITA["solutions"])
    await page.get_by_label("Votre avis sur le dossier").fill("Consortium solide, gisement avéré.")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.get_by_role("heading", name="Votre expertise").evaluate("e => e.scrollIntoView()")
    await web.screenshot(page, "scoring-form.png")  # the README's picture of the scoring form
    await page.get_by_role("button", name="Rendre l’expertise").click()
    await page.wait_for_load_state()
    await web.check(page)
    summary = page.get_by_role("alert")
    assert "Notez le critère « Capacité à être mis en œuvre" in await summary.inner_text()
    assert await page.get_by_role("group", name=re.compile("^Solutions apportées")).get_by_label("4", exact=True) \
        .is_checked()
    await summary.get_by_role("link").first.click()  # the summary's link leads to the field
    assert await page.evaluate("document.activeElement.name") == "note-court_terme"

    for legend, key in (("Capacité à être mis", "court_terme"), ("Impact socio-économique", "impact_socio_economique")):
        await group(page, legend, RITA[key])
    await page.get_by_role("button", name="Rendre l’expertise").click()
    await page.wait_for_url(re.compile(re.escape("/expertises?fait=")))
    await web.check(page)
    row = page.get_by_role("row", name=re.compile(re.escape(ident)))
    assert (await row.get_by_role("cell").all_inner_texts())[-2:] == ["oui", "oui"]  # declared, review in


async def victor_cannot_score_before_declaring(web: Web, ident: str) -> None:
    async with web.http("victor") as http:
        http.headers["Origin"] = web.url  # a form of amiflow's own pages
        before = await http.get(f"/dossiers/{ident}/expertise")
        assert before.status_code == 200 and SECTION not in before.text and HOLDER_NAME not in before.text
        scores = {f"note-{k}": v for k, v in VICTOR.items()}
        early = await http.post(f"/dossiers/{ident}/expertise/notation",
                                data={"csrf": csrf_of(before.text), **scores, "opinion": "Trop tôt"})
        assert early.status_code == 409 and "Déclarez d’abord l’absence de conflit d’intérêts" in early.text
        assert SECTION not in early.text
        declared = await http.post(f"/dossiers/{ident}/expertise/declaration",
                                   data={"csrf": csrf_of(before.text), "conflict": "non", "statement": ""})
        assert declared.status_code == 303
        done = await http.post(f"/dossiers/{ident}/expertise/notation",
                               data={"csrf": csrf_of(before.text), **scores, "opinion": "Modèle économique fragile."})
        assert done.status_code == 303 and done.headers["location"].startswith("/expertises")

        other = await assigned(web, ("victor",), "SIRET 90000000000017 - second site")  # a conflict, this time
        recused = await http.post(f"/dossiers/{other}/expertise/declaration",
                                  data={"csrf": csrf_of(before.text), "conflict": "oui",
                                        "statement": "Administrateur du bailleur partenaire."})
        assert recused.status_code == 303
        listed = await http.get(recused.headers["location"])
        assert "votre affectation au dossier" in listed.text and "prend fin" in listed.text  # said so
        assert f'href="/dossiers/{other}/expertise"' not in listed.text and f'href="/dossiers/{ident}/expertise"' \
            in listed.text
        gone = await http.get(f"/dossiers/{other}/expertise")
        assert gone.status_code == 404 and SECTION not in gone.text  # no longer assigned: nothing to know


async def cora_decides(web: Web, ident: str) -> None:
    page = await web.page("cora")
    await web.goto(page, "/comite")
    ready = page.get_by_role("table", name="Les dossiers dont toutes les expertises sont rendues")
    await ready.get_by_role("link", name=re.compile(re.escape(ident))).click()
    await page.wait_for_url(f"{web.url}/dossiers/{ident}/decision")
    await web.check(page)
    table = page.get_by_role("table", name=re.compile("^Notes par critère"))
    header = await table.locator("thead th").all_inner_texts()
    assert header == ["Critère", "rita", "victor", "Moyenne", "Écart"]
    rows = [await r.locator("th, td").all_inner_texts() for r in await table.locator("tbody tr").all()]
    assert [r[1:] for r in rows] == [["4", "1", "2,5", "3"], ["2", "2", "2", "0"], ["5", "4", "4,5", "1"],
                                     ["11", "7", "9", "4"]]
    assert rows[0][0].startswith("Solutions apportées") and rows[-1][0] == "Total (sur 15)"
    summary = await page.get_by_role("region", name="Synthèse du dossier").inner_text()
    assert HOLDER_NAME in summary and "Lens-Liévin" in summary and "510\u202f000 €" in summary
    assert SECTION not in await page.content()  # the committee reads the summary, not the dossier

    await group(page, "Le dossier est-il retenu", "Oui")
    await page.get_by_role("button", name="Vérifier la décision").click()  # reasons missing
    await page.wait_for_load_state()
    await web.check(page)
    assert "Donnez les motifs de la décision" in await page.get_by_role("alert").inner_text()
    await page.get_by_label("Motifs de la décision").fill("Gisement avéré et consortium solide.")
    await page.get_by_role("button", name="Vérifier la décision").click()
    await page.wait_for_load_state()
    await web.check(page)
    assert "Confirmer la décision" in await page.inner_text("h1")
    async with web.world.client("amelie") as staff:  # nothing is decided before the confirmation
        assert (await staff.get(f"/api/v1/dossiers/{ident}")).json()["status"] == "under_review"
    await page.get_by_role("button", name="Confirmer la décision").click()
    await page.wait_for_url(re.compile(re.escape(f"/dossiers/{ident}/decision?fait=")))
    await web.check(page)
    assert "Retenu (lauréat)" in await page.content() and "Gisement avéré" in await page.content()
    async with web.world.client("amelie") as staff:
        assert (await staff.get(f"/api/v1/dossiers/{ident}")).json()["status"] == "retained"


async def test_reviewers_declare_then_score_and_the_committee_decides(stack: Stack, tmp_path: Path) -> None:
    async with web_world(stack, tmp_path) as web:
        ident = await assigned(web)
        await rita_declares_and_scores(web, ident)
        await victor_cannot_score_before_declaring(web, ident)
        async with web.http("zoe") as zoe:  # committee of another call: the dossier does not exist for her
            answer = await zoe.get(f"/dossiers/{ident}/decision")
            assert answer.status_code == 404 and "Page introuvable" in answer.text
        await cora_decides(web, ident)
