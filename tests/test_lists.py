"""The back office's lists through the API, on the real stack (issue 12): every tab reached by a real
dossier (and each status's tab, by the rule), the counts per tab, the filters, the deadline order paged
with its cursor, the next 7 days, a reviewer's assignments, the extension preview against the real
extension, drafts saved then submitted, and need-to-know on each of these endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from domain.state import Assignment, DossierState, Review, Status
from domain.tabs import TABS, Tab, list_metadata, tab_of
from tests import dates
from tests.apiworld import CALL_ID, OTHER_CALL, World, example, world
from tests.conftest import Stack
from tests.test_api import is_problem

REVIEW = {"scores": "solutions=4,court_terme=3,impact_socio_economique=5", "opinion": "Consortium solide"}


async def deposit(w: World, holder: str, reference: str, holder_type: str = "entreprise",
                  territory: str = "Pas-de-Calais") -> str:
    """A dossier of the example, with its own reference, holder type and territory, submitted."""
    body = example()
    body["reference"] = reference
    body["content"] |= {"holder_type": holder_type, "territory": territory}
    async with w.client(holder) as api:
        answer = await api.post("/api/v1/dossiers", json=body)
    assert answer.status_code == 201, answer.text
    ident: str = answer.json()["dossier_id"]
    return ident


async def do(w: World, who: str, ident: str, command: str, fields: dict[str, Any] | None = None) -> None:
    async with w.client(who) as api:
        answer = await api.post(f"/api/v1/dossiers/{ident}/commands/{command}", json=fields or {})
    assert answer.status_code == 200, (command, answer.text)


async def get(w: World, who: str, path: str, **params: Any) -> Any:
    async with w.client(who) as api:
        answer = await api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def ids(w: World, who: str, **params: Any) -> list[str]:
    return [d["dossier_id"] for d in (await get(w, who, "/api/v1/dossiers", **params))["items"]]


def closing_soon(w: World) -> str:
    """A call file (not started) whose single phase closes in 3 days, its committee someone else; its id."""
    data = yaml.safe_load(dates.shifted_call_text(CALL_ID, datetime.now(UTC)))
    data |= {"id": "hdf-pmcb-bis", "committee": ["zoe"]}
    data["phases"][0]["closes"] = {"date": dates.due(datetime.now(UTC), 3).day, "source": "essai"}
    (w.calls_dir / "hdf-pmcb-bis.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return "hdf-pmcb-bis"


async def one_per_tab(w: World) -> dict[str, str]:
    """Eight dossiers, one in each tab (the last one autre's, the others acme's): tab slug → id."""
    now = datetime.now(UTC)
    soon, later = dates.due(now, 3).arg, dates.due(now, 10).arg
    made = {tab.value: await deposit(w, "autre" if tab.value == "clos" else "acme", f"REF-{tab.value}",
                                     "acteur_ess" if tab.value in ("complets", "clos") else "entreprise",
                                     "Nord" if tab.value in ("complements-demandes", "complets") else "Pas-de-Calais")
            for tab in TABS}
    await do(w, "amelie", made["complements-demandes"], "acknowledge")
    await do(w, "amelie", made["complements-demandes"], "request-complement", {"pieces": "Kbis", "due": soon})
    for tab in ("complets", "en-revue", "a-decider", "decides", "en-suivi"):
        await do(w, "amelie", made[tab], "acknowledge")
        await do(w, "amelie", made[tab], "declare-complete")
    await do(w, "amelie", made["en-revue"], "assign-reviewers", {"reviewers": ["rita", "victor"], "due": later})
    await do(w, "rita", made["en-revue"], "declare-interests", {"conflict": False})
    await do(w, "victor", made["en-revue"], "declare-interests", {"conflict": True, "statement": "Associé"})
    for tab in ("a-decider", "decides", "en-suivi"):
        await do(w, "amelie", made[tab], "assign-reviewers", {"reviewers": ["rita"], "due": later})
        await do(w, "rita", made[tab], "declare-interests", {"conflict": False})
        await do(w, "rita", made[tab], "submit-review", REVIEW)
    await do(w, "cora", made["decides"], "decide", {"retained": "false", "reasons": "Hors périmètre"})
    await do(w, "cora", made["en-suivi"], "decide", {"retained": "true", "reasons": "Projet structurant"})
    await do(w, "amelie", made["en-suivi"], "orient")
    await do(w, "autre", made["clos"], "withdraw")
    return made


def test_each_status_has_its_tab_and_a_review_waits_for_every_assigned_reviewer() -> None:
    at = datetime.now(UTC)
    expected = {Status.NEW: None, Status.DRAFT: None, Status.SUBMITTED: Tab.A_TRAITER,
                Status.ACKNOWLEDGED: Tab.A_TRAITER, Status.COMPLEMENT_REQUESTED: Tab.COMPLEMENTS_DEMANDES,
                Status.COMPLETE: Tab.COMPLETS, Status.RETAINED: Tab.DECIDES, Status.NOT_RETAINED: Tab.DECIDES,
                Status.ORIENTED: Tab.EN_SUIVI, Status.FOLLOW_UP: Tab.EN_SUIVI, Status.CLOSED: Tab.CLOS,
                Status.WITHDRAWN: Tab.CLOS, Status.EXPIRED: Tab.CLOS}
    assert {s: tab_of(DossierState(status=s)) for s in Status if s is not Status.UNDER_REVIEW} == expected
    assert [t.label for t in TABS] == ["à traiter", "compléments demandés", "complets", "en revue", "à décider",
                                       "décidés", "en suivi", "clos"]

    def review(name: str) -> Review:
        return Review(reviewer=name, scores={}, opinion="", at=at)

    rita, victor = Assignment(reviewer="rita", declared=True), Assignment(reviewer="victor")
    under = DossierState(status=Status.UNDER_REVIEW, assignments=(rita, victor))
    assert tab_of(under) is Tab.EN_REVUE  # no review yet
    assert tab_of(under.model_copy(update={"reviews": (review("rita"),)})) is Tab.EN_REVUE  # victor's is owed
    both = under.model_copy(update={"reviews": (review("rita"), review("victor"))})
    assert tab_of(both) is Tab.A_DECIDER
    recused = DossierState(status=Status.UNDER_REVIEW, assignments=(rita,), recused=("victor",),
                           reviews=(review("rita"),))
    assert tab_of(recused) is Tab.A_DECIDER and list_metadata(recused).reviewers == ("rita",)
    assert tab_of(DossierState(status=Status.UNDER_REVIEW, recused=("victor",))) is Tab.EN_REVUE  # nobody left


async def test_tabs_counts_filters_deadline_order_and_the_next_seven_days(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    made = await one_per_tab(w)
    # each tab holds its dossier, for staff of the call
    for tab, ident in made.items():
        assert await ids(w, "amelie", call=CALL_ID, tab=tab) == [ident], tab
    listed = (await get(w, "amelie", "/api/v1/dossiers", call=CALL_ID))["items"]
    assert {d["dossier_id"]: d["tab"] for d in listed} == {i: t for t, i in made.items()}
    assert {d["holder_type"] for d in listed} == {"entreprise", "acteur_ess"}
    # filters, alone and together
    assert set(await ids(w, "amelie", holder_type="acteur_ess")) == {made["complets"], made["clos"]}
    assert set(await ids(w, "amelie", territory="Nord")) == {made["complements-demandes"], made["complets"]}
    assert await ids(w, "amelie", territory="Nord", holder_type="acteur_ess", tab="complets") == [made["complets"]]
    assert await ids(w, "amelie", territory="Nord", tab="clos") == []
    async with w.client("amelie") as staff:
        for params, said in (({"tab": "perdus"}, "Onglet inconnu"), ({"holder_type": "pirate"}, "Type de porteur"),
                             ({"sort": "deadline", "after": "pas-un-curseur"}, "Suite de liste")):
            refused = is_problem(await staff.get("/api/v1/dossiers", params=params), 422, "invalid_command")
            assert said in refused["detail"]
        is_problem(await staff.get("/api/v1/dossiers", params={"sort": "hasard"}), 422)

    # the deadline order: earliest first, none last, then id; paged with its cursor, the id order unchanged
    whole = (await get(w, "amelie", "/api/v1/dossiers", sort="deadline"))["items"]
    keys = [(d["next_deadline"] is None, datetime.fromisoformat(d["next_deadline"]) if d["next_deadline"] else None,
             d["dossier_id"]) for d in whole]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] or datetime.min.replace(tzinfo=UTC), k[2]))
    assert {d["dossier_id"] for d in whole} == set(made.values())
    assert whole[0]["dossier_id"] == made["complements-demandes"]  # due in 3 days, the soonest
    assert sum(1 for d in whole if d["next_deadline"] is not None) >= 2  # complement and review due
    pages, after = [], None
    while True:
        cursor = {"after": after} if after else {}
        page = await get(w, "amelie", "/api/v1/dossiers", sort="deadline", limit=3, **cursor)
        pages.append([d["dossier_id"] for d in page["items"]])
        if (after := page["next"]) is None:
            break
    assert [i for p in pages for i in p] == [d["dossier_id"] for d in whole] and len(pages) == 3
    by_id = await get(w, "amelie", "/api/v1/dossiers", limit=3)
    assert by_id["next"] == by_id["items"][-1]["dossier_id"] == sorted(made.values())[2]

    await home_page(w, made)
    await reviewers_lists(w, made)


async def home_page(w: World, made: dict[str, str]) -> None:
    """The home page: counts per tab in order, the next seven days, each person's part."""
    home = await get(w, "amelie", "/api/v1/overview")
    assert [(c["call_id"], list(c["counts"]), c["total"]) for c in home["calls"]] == \
        [(CALL_ID, [t.value for t in TABS], 8), (OTHER_CALL, [t.value for t in TABS], 0)]  # amelie's two calls
    assert set(home["calls"][0]["counts"].values()) == {1}
    assert [d["dossier_id"] for d in home["upcoming"]] == [made["complements-demandes"]]  # review due in 10 days
    assert home["closings"] == []  # the phase closes in months
    soon_call = closing_soon(w)
    home = await get(w, "amelie", "/api/v1/overview")  # a call of hers whose phase closes in 3 days
    assert [(c["call_id"], c["phase_id"]) for c in home["closings"]] == [(soon_call, "unique")]
    assert datetime.fromisoformat(home["closings"][0]["closes_at"]) <= datetime.fromisoformat(home["window_ends"])
    assert {c["call_id"] for c in home["calls"]} == {CALL_ID, soon_call, OTHER_CALL}
    assert (await get(w, "cora", "/api/v1/overview"))["closings"] == []  # not on that call's committee
    acme = await get(w, "acme", "/api/v1/overview")
    assert acme["calls"][0]["counts"]["clos"] == 0 and acme["calls"][0]["total"] == 7
    assert [d["dossier_id"] for d in acme["upcoming"]] == [made["complements-demandes"]]
    autre = await get(w, "autre", "/api/v1/overview")
    assert [(c["call_id"], c["total"], c["counts"]["clos"]) for c in autre["calls"]] == [(CALL_ID, 1, 1)]
    assert autre["upcoming"] == []
    bruno = await get(w, "bruno", "/api/v1/overview")  # on no call file's staff list: no call, no dossier
    assert bruno["calls"] == [] and bruno["upcoming"] == []
    for who, seen in (("autre", {made["clos"]}), ("bruno", set()), ("zoe", set())):
        for params in ({}, {"sort": "deadline"}, {"tab": "en-revue"}, {"territory": "Nord"}):
            assert set(await ids(w, who, **params)) <= seen, (who, params)
        assert set(await ids(w, who)) == seen


async def reviewers_lists(w: World, made: dict[str, str]) -> None:
    """A reviewer lists their assignments only (not those they declared a conflict on)."""
    assigned = {made[t] for t in ("en-revue", "a-decider", "decides", "en-suivi")}
    assert set(await ids(w, "rita")) == assigned
    assert await ids(w, "rita", tab="en-revue") == [made["en-revue"]]
    assert await ids(w, "victor") == []  # declared a conflict: no longer assigned
    rita = await get(w, "rita", "/api/v1/overview")
    assert [(c["call_id"], c["total"]) for c in rita["calls"]] == [(CALL_ID, 4)]
    assert rita["calls"][0]["counts"]["en-revue"] == rita["calls"][0]["counts"]["a-decider"] == 1
    assert (await get(w, "victor", "/api/v1/overview"))["calls"] == []


async def test_the_extension_preview_counts_what_the_extension_touches(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    made = {await deposit(w, "acme", f"REF-{i}") for i in range(3)}
    closed = await deposit(w, "autre", "REF-retire")
    await do(w, "autre", closed, "withdraw")
    call = await get(w, "amelie", f"/api/v1/calls/{CALL_ID}")
    closes = datetime.fromisoformat(call["phases"][0]["closes_at"])
    until = (closes + timedelta(days=30)).isoformat()
    path = f"/api/v1/calls/{CALL_ID}/phases/unique/extension-preview"
    preview = await get(w, "amelie", path, until=until)
    assert preview["dossiers"] == 3 and datetime.fromisoformat(preview["closes_at"]) == closes
    async with w.client("amelie") as staff, w.client("bruno") as other, w.client("acme") as holder:
        refused = is_problem(await staff.get(path, params={"until": closes.isoformat()}), 422, "invalid_command")
        assert "n’est pas après" in refused["detail"]
        is_problem(await staff.get(f"/api/v1/calls/{CALL_ID}/phases/nulle/extension-preview",
                                   params={"until": until}), 422, "invalid_command")
        for api in (other, holder):  # refused as the extension itself is
            said = (await api.get(path, params={"until": until}))
            done = (await api.post(f"/api/v1/calls/{CALL_ID}/phases/unique/extension", json={"until": until}))
            assert said.status_code == done.status_code >= 400 and said.json()["code"] == done.json()["code"]
        extended = await staff.post(f"/api/v1/calls/{CALL_ID}/phases/unique/extension", json={"until": until})
    assert extended.status_code == 200, extended.text
    assert set(extended.json()["dossiers"]) == made and len(extended.json()["dossiers"]) == preview["dossiers"]


async def test_a_draft_saved_twice_then_submitted(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    body = example() | {"reference": "Brouillon 1"}
    async with w.client("acme") as holder, w.client("autre") as other:
        first = await holder.put("/api/v1/drafts", json=body)
        assert first.status_code == 200, first.text
        ident = first.json()["dossier_id"]
        assert first.json()["status"] == "draft"
        body["content"] |= {"territory": "Nord"}
        second = await holder.put("/api/v1/drafts", json=body)
        assert second.status_code == 200 and second.json()["status"] == "draft"
        assert second.json()["version"] > first.json()["version"]
        [draft] = (await holder.get("/api/v1/dossiers")).json()["items"]
        assert (draft["dossier_id"], draft["tab"]) == (ident, None) and "territory" not in draft  # content
        # the same rules as a submission on the content; another holder is not told the dossier exists
        bad = is_problem(await holder.put("/api/v1/drafts", json=body | {"content": {"region": "Nord"}}), 422)
        assert "holder_name" in bad["detail"]
        is_problem(await other.put("/api/v1/drafts", json=body), 404, "not_found")
        done = await holder.post(f"/api/v1/dossiers/{ident}/commands/submit", json={})
        assert done.status_code == 200 and done.json()["status"] == "submitted"
        [sent] = (await holder.get("/api/v1/dossiers")).json()["items"]
        assert sent["tab"] == "a-traiter"
        assert [d["dossier_id"] for d in (await holder.get("/api/v1/dossiers", params={"territory": "NORD"})).json()[
            "items"]] == [ident]  # filtered through its blind index, case aside
        is_problem(await holder.put("/api/v1/drafts", json=body), 409)  # submitted: no longer a draft
        ended = body | {"reference": "Brouillon 2"}
        withdrawn = (await holder.put("/api/v1/drafts", json=ended)).json()["dossier_id"]
        await holder.post(f"/api/v1/dossiers/{withdrawn}/commands/withdraw", json={})
        await w.stack.client.get_workflow_handle(withdrawn).result()
        is_problem(await holder.put("/api/v1/drafts", json=ended), 409)  # its workflow ended: the rules' refusal
