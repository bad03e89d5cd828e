"""The finance workbook (openpyxl): a summary sheet, then one sheet per table of the document, every row.

Sheet names and headings are in the document's language (:mod:`relance.reports.i18n`). Cells keep their types:
amounts are numbers with the currency's number format (``#,##0.00 "€"`` in French, ``"€"#,##0.00`` in English,
the reader's spreadsheet shows its own separators), shares are fractions shown as percentages, dates are dates.
Every cell is written by :func:`relance.tabular_output.set_xlsx_cell`, the one owner of how a cell that comes
from data is written: a customer named ``=HYPERLINK(...)`` is a string cell, never a formula. The header row is
frozen and filtered; columns are as wide as their content (within bounds).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from relance.reports import i18n
from relance.reports.finance_tables import Column, FinanceDocument, Table
from relance.tabular_output import set_xlsx_cell

HEADER_FILL = PatternFill("solid", fgColor="DCE6F0")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
MIN_WIDTH, MAX_WIDTH = 8, 60
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def number_format(kind: str, language: str, currency: Any = None, decimals: int = 1) -> str | None:
    """The spreadsheet format of a column kind (None: leave openpyxl's default)."""
    if kind == "money":
        return i18n.money_format(currency, language)
    if kind == "int":
        return "#,##0"
    if kind in ("number", "days"):
        return "#,##0" + ("." + "0" * decimals if decimals else "")
    if kind in ("ratio", "percent"):
        return "0.0%"
    if kind == "rate":
        return "0.00%"
    if kind == "points":
        return "+0.0%;-0.0%;0.0%"
    if kind == "date":
        return "DD/MM/YYYY" if language == "fr" else "D MMM YYYY"
    return None


def cell_value(value: Any, kind: str) -> Any:
    """The value stored for a column kind: a percentage in percent (``cei_pct`` 95.2) becomes the fraction 0.952
    so the spreadsheet's ``%`` format shows 95.2 %; everything else as it is."""
    if kind == "percent" and not i18n.is_missing(value):
        return float(value) / 100
    return value


def _sheet_name(name: str, taken: set[str]) -> str:
    base = _SHEET_FORBIDDEN.sub(" ", name).strip("'")[:31] or "Sheet"
    candidate, n = base, 2
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def _fit_widths(ws: Any, widths: dict[int, int]) -> None:
    for index, width in widths.items():
        ws.column_dimensions[get_column_letter(index)].width = max(MIN_WIDTH, min(MAX_WIDTH, width + 2))


def _write_row(ws: Any, row: int, values: Iterable[Any], widths: dict[int, int], **style: Any) -> list[Any]:
    cells = []
    for col, value in enumerate(values, start=1):
        cell = set_xlsx_cell(ws.cell(row=row, column=col), value)
        for attr, v in style.items():
            setattr(cell, attr, v)
        widths[col] = max(widths.get(col, 0), len(str(value)) if value is not None else 0)
        cells.append(cell)
    return cells


def _write_table(ws: Any, table: Table, language: str) -> None:
    widths: dict[int, int] = {}
    columns: tuple[Column, ...] = table.columns_for_xlsx()
    _write_row(
        ws,
        1,
        [c.label for c in columns],
        widths,
        font=BOLD,
        fill=HEADER_FILL,
        alignment=Alignment(wrap_text=True, vertical="bottom"),
    )
    for r, record in enumerate(table.frame.to_dict("records"), start=2):
        total = record.get("_total") in (True, 1)
        for col, c in enumerate(columns, start=1):
            raw = record.get(c.key)
            cell = set_xlsx_cell(ws.cell(row=r, column=col), cell_value(raw, c.kind))
            fmt = number_format(c.kind, language, record.get("currency"), c.decimals)
            if fmt and cell.data_type != "s":
                cell.number_format = fmt
            if total:
                cell.font = BOLD
            shown = table_text_width(raw, c, language, record.get("currency"))
            widths[col] = max(widths.get(col, 0), shown)
    for col, c in enumerate(columns, start=1):  # headings wrap: a long one need not widen its column fully
        widths[col] = max(min(widths.get(col, 0), MAX_WIDTH), min(len(c.label), 18))
    _fit_widths(ws, widths)
    ws.freeze_panes = "A2"
    if len(table.frame):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(table.frame) + 1}"


def table_text_width(value: Any, column: Column, language: str, currency: Any) -> int:
    from relance.reports.finance_tables import format_value

    return len(format_value(value, column.kind, language, currency, column.decimals))


def _write_summary(ws: Any, document: FinanceDocument) -> None:
    lang = document.language
    widths: dict[int, int] = {1: 30}
    set_xlsx_cell(ws.cell(row=1, column=1), document.title).font = TITLE
    set_xlsx_cell(ws.cell(row=2, column=1), document.meta)
    row = 3
    for banner in document.banners:
        set_xlsx_cell(ws.cell(row=row, column=1), banner).font = BOLD
        row += 1
    row += 1
    header_row = row
    _write_row(
        ws,
        row,
        [i18n.t(lang, "col_metric"), *document.currencies],
        {},
        font=BOLD,
        fill=HEADER_FILL,
    )
    for figure in document.key_figures:
        row += 1
        set_xlsx_cell(ws.cell(row=row, column=1), figure.label)
        widths[1] = max(widths[1], len(figure.label))
        for col, currency in enumerate(document.currencies, start=2):
            raw = figure.values.get(currency)
            value = figure.texts[currency] if figure.kind == "text" else cell_value(raw, figure.kind)
            cell = set_xlsx_cell(ws.cell(row=row, column=col), value)
            fmt = number_format(figure.kind, lang, currency, figure.decimals)
            if fmt and cell.data_type != "s":
                cell.number_format = fmt
            widths[col] = max(widths.get(col, 14), len(figure.texts[currency]))
    row += 2
    for section in document.sections:
        for text in ([section.unavailable] if section.unavailable else []) + list(section.notes):
            set_xlsx_cell(
                ws.cell(row=row, column=1), f"{section.title} : {text}" if lang == "fr" else f"{section.title}: {text}"
            )
            row += 1
    _fit_widths(ws, widths)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=2)


def build_workbook(document: FinanceDocument) -> Workbook:
    """The document as a workbook: the summary sheet first, then one sheet per table (in the document's order)."""
    wb = Workbook()
    taken: set[str] = set()
    summary = wb.active
    summary.title = _sheet_name(i18n.t(document.language, "sheet_summary"), taken)
    _write_summary(summary, document)
    for table in document.tables():
        ws = wb.create_sheet(_sheet_name(table.sheet, taken))
        _write_table(ws, table, document.language)
    if document.workbook_notes:
        ws = wb.create_sheet(_sheet_name(i18n.t(document.language, "sheet_notes"), taken))
        set_xlsx_cell(ws.cell(row=1, column=1), i18n.t(document.language, "notes_title")).font = BOLD
        for row, note in enumerate(document.workbook_notes, start=2):
            set_xlsx_cell(ws.cell(row=row, column=1), note).alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions["A"].width = 120
    wb.properties.title = document.title
    wb.properties.creator = "relance"
    wb.properties.language = document.language
    return wb


def workbook_bytes(document: FinanceDocument) -> bytes:
    buf = io.BytesIO()
    build_workbook(document).save(buf)
    return buf.getvalue()
