"""The dossier list exported (issue 12), on the real stack: CSV, XLSX and ODS read back with the
csv module, openpyxl and odfpy, and compared with the list itself, every page of it; French headers and
labels, Paris times with their offset, a holder's text never turned into a formula; need-to-know."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from odf import teletype
from odf.opendocument import load
from odf.table import Table, TableCell, TableRow
from openpyxl import load_workbook

from amiflow.services.exports import COLUMNS, export
from amiflow.services.principal import Principal
from domain.access import Actor
from domain.calls import HolderType
from domain.errors import InvalidCommand
from domain.state import Status
from tests import dates
from tests.apiworld import CALL_ID, World, world
from tests.conftest import Stack
from tests.test_api import is_problem
from tests.test_lists import deposit, do

FORMULA = "=1+1"


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM French spreadsheet software needs to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def read_xlsx(data: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    for cells in sheet.iter_rows():
        assert all(c.data_type == "s" for c in cells if c.value is not None)  # text, never a formula
    return [["" if v is None else str(v) for v in line] for line in sheet.iter_rows(values_only=True)]


def read_ods(data: bytes) -> list[list[str]]:
    [table] = load(io.BytesIO(data)).spreadsheet.getElementsByType(Table)
    return [[teletype.extractText(c) for c in tr.getElementsByType(TableCell)]
            for tr in table.getElementsByType(TableRow)]


READERS = {"csv": read_csv, "xlsx": read_xlsx, "ods": read_ods}


async def pages(w: World, who: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of the list, two dossiers at a time."""
    items, after = [], None
    async with w.client(who) as api:
        while True:
            page = (await api.get("/api/v1/dossiers", params=params | {"limit": 2} | ({"after": after} if after
                                                                                       else {}))).json()
            items += page["items"]
            if (after := page["next"]) is None:
                return items


async def test_the_list_exported_in_three_formats_reads_back_as_the_list(stack: Stack, tmp_path: Path) -> None:
    w = await world(stack, tmp_path)
    made = [await deposit(w, "acme", f"EXP-{i}", territory="Nord" if i else FORMULA) for i in range(4)]
    other = await deposit(w, "autre", "EXP-autre", holder_type="acteur_ess")
    await do(w, "amelie", made[2], "acknowledge")
    await do(w, "amelie", made[2], "request-complement", {"pieces": "Kbis", "due": dates.due(datetime.now(UTC), 5).arg})
    listed = await pages(w, "amelie", call=CALL_ID, sort="deadline")
    assert [d["dossier_id"] for d in listed][0] == made[2] and len(listed) == 5
    async with w.client("amelie") as staff, w.client("autre") as holder, w.client("bruno") as stranger:
        for fmt, read in READERS.items():
            answer = await staff.get("/api/v1/dossiers/export", params={"format": fmt, "call": CALL_ID,
                                                                        "sort": "deadline"})
            assert answer.status_code == 200, answer.text
            assert f".{fmt}" in answer.headers["content-disposition"]
            header, *rows = read(answer.content)
            assert tuple(header) == COLUMNS and header[-1] == "mis à jour le"
            assert [r[0] for r in rows] == [d["dossier_id"] for d in listed], fmt  # every page, in order
            for row, item in zip(rows, listed, strict=True):
                by = dict(zip(COLUMNS, row, strict=True))
                assert (by["appel"], by["phase"], by["porteur"]) == (item["call_id"], item["phase_id"], item["holder"])
                assert by["statut"] == Status(item["status"]).label
                assert by["onglet"] == ("compléments demandés" if item["dossier_id"] == made[2] else "à traiter")
                assert by["type de porteur"] == HolderType(item["holder_type"]).label
                shown = by["prochaine échéance"]
                if item["next_deadline"] is None:
                    assert shown == "" and by["nature de l’échéance"] == ""
                else:  # Paris time with its offset, the same instant
                    assert shown[-6:] in ("+01:00", "+02:00") and \
                        datetime.fromisoformat(shown) == datetime.fromisoformat(item["next_deadline"])
                    assert by["nature de l’échéance"] == "complément attendu"
                submitted = datetime.fromisoformat(item["submitted_at"]).replace(second=0, microsecond=0)
                assert datetime.fromisoformat(by["déposé le"]) == submitted  # to the minute, as staff read it
                assert "territoire" not in by  # what the holder wrote is content: never in the list
            assert b"Nord" not in answer.content and FORMULA.encode() not in answer.content
            nord = await staff.get("/api/v1/dossiers/export", params={"format": fmt, "territory": " nord "})
            assert sorted(r[0] for r in read(nord.content)[1:]) == sorted(made[1:])  # filtered all the same
            filtered = await staff.get("/api/v1/dossiers/export", params={"format": fmt, "holder_type": "acteur_ess"})
            assert [r[0] for r in read(filtered.content)[1:]] == [other]
            # need-to-know: a holder exports their own, staff of no call nothing
            mine = await holder.get("/api/v1/dossiers/export", params={"format": fmt})
            assert [r[0] for r in read(mine.content)[1:]] == [other]
            assert read((await stranger.get("/api/v1/dossiers/export", params={"format": fmt})).content)[1:] == []
        is_problem(await staff.get("/api/v1/dossiers/export", params={"format": "pdf"}), 422)
        is_problem(await staff.get("/api/v1/dossiers/export", params={"tab": "perdus"}), 422, "invalid_command")
    amelie = Principal(Actor.parse("staff:amelie"), via="token", proven=True, person="amelie")
    with pytest.raises(InvalidCommand, match="Format d’export inconnu"):
        await export(w.rt, amelie, datetime.now(UTC), "pdf")
