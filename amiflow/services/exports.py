"""The dossier list exported as a spreadsheet: the whole filtered list (every page), with French
column titles and labels, times in Paris with their offset. CSV is UTF-8 with a byte-order mark and
`;` between fields, as French spreadsheet software opens it; XLSX is written with openpyxl, ODS with
odfpy. Only what the list shows is exported: ids, statuses, deadlines, no content."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from amiflow.bootstrap import Runtime
from amiflow.services import dossiers as dossier_service
from amiflow.services.principal import Principal
from amiflow.services.views import DossierItem
from domain.calendar import show
from domain.calls import HolderType
from domain.errors import InvalidCommand
from domain.state import DeadlineKind

COLUMNS = ("dossier", "appel", "phase", "porteur", "type de porteur", "statut", "onglet",
           "prochaine échéance", "nature de l’échéance", "déposé le", "mis à jour le")
FORMATS: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}
SHEET = "dossiers"


@dataclass(frozen=True)
class Exported:
    """A file to download: its bytes, its media type and a file name."""

    data: bytes
    media_type: str
    filename: str


async def export(rt: Runtime, who: Principal, now: datetime, fmt: str, *, call_id: str | None = None,
                 status: str | None = None, phase_id: str | None = None, overdue: bool = False,
                 tab: str | None = None, holder_type: str | None = None, territory: str | None = None,
                 order: str = "id") -> Exported:
    """The list the person may see, with the same filters and order as `dossiers.listing`, in `fmt`
    (csv, xlsx or ods).

    Raises:
        InvalidCommand: an unknown format (or filter, as the listing refuses it).
    """
    if fmt not in FORMATS:
        raise InvalidCommand(f"Format d’export inconnu « {fmt} » ({', '.join(FORMATS)}).")
    page = await dossier_service.listing(rt, now, call_id, status, phase_id, overdue, None, None, who=who, tab=tab,
                                         holder_type=holder_type, territory=territory, order=order)
    rows = [row(item) for item in page.items]
    write = {"csv": _csv, "xlsx": _xlsx, "ods": _ods}[fmt]
    stamp = show(now).replace(":", "h")[:16]
    name = f"dossiers-{call_id}-{stamp}" if call_id else f"dossiers-{stamp}"
    return Exported(data=write(rows), media_type=FORMATS[fmt], filename=f"{name}.{fmt}")


def row(item: DossierItem) -> list[str]:
    """One line of the export, as the columns say it (empty cells for what the dossier has not)."""
    return [
        item.dossier_id, item.call_id, item.phase_id, item.holder, _label(HolderType, item.holder_type),
        item.status.label, item.tab.label if item.tab else "",
        show(item.next_deadline) if item.next_deadline else "", _label(DeadlineKind, item.next_deadline_kind),
        show(item.submitted_at) if item.submitted_at else "", show(item.updated_at),
    ]


def _label(kind: type[HolderType] | type[DeadlineKind], value: str | None) -> str:
    """The French label of an enumerated value ("" for none; the value itself when unknown)."""
    if value is None:
        return ""
    known = {k.value: k.label for k in kind}
    return known.get(value, value)


# A cell that starts so is a formula to spreadsheet software: a holder's text must not become one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """A value as a CSV cell: a leading apostrophe keeps what looks like a formula as text (OWASP)."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _csv(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([_text(v) for v in line] for line in rows)
    return out.getvalue().encode("utf-8-sig")


def _xlsx(rows: Sequence[Sequence[str]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET)
    for line in (COLUMNS, *rows):
        cells = []
        for value in line:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # text, never a formula
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _ods(rows: Sequence[Sequence[str]]) -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name=SHEET)
    for line in (COLUMNS, *rows):
        tr = TableRow()
        for value in line:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=value))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()
