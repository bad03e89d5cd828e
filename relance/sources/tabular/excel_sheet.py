"""Excel workbooks (.xlsx): one sheet's header, its rows streamed as Arrow batches of text, mapped by DuckDB.

Cells become the text a CSV export of the sheet would hold (numbers in the profile's decimal convention, dates
ISO), so the same mapping SQL applies; ``_source_row`` is the sheet row number. openpyxl reads the workbook
read-only, row by row, so a large sheet never sits in memory whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from relance.sources.base import SourceError, text_schema
from relance.sources.tabular.header import check_header
from relance.sources.tabular.profile import ReaderOptions

EXCEL_BATCH_ROWS = 10_000


def cell_text(value: Any, decimal: str) -> str | None:
    """An Excel cell as the text a CSV export would hold (numbers in the profile's decimal convention)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
        return text.replace(".", ",") if decimal == "," else text
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return text if text.strip() else None


class ExcelSheet:
    """One worksheet: its header (validated) and a lazy stream of its rows as Arrow batches of text."""

    def __init__(self, path: Path, reader: ReaderOptions) -> None:
        self.path, self.reader = path, reader
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: file is empty (0 bytes); expected an .xlsx workbook")
        with self._open() as (ws, label):
            self.label = label
            rows = ws.iter_rows(min_row=reader.header_row, max_row=reader.header_row + 5, values_only=True)
            header_cells = next(rows, None)
            data = [r for r in rows if any(cell_text(c, ".") is not None for c in r)]
        if header_cells is None or all(c is None for c in header_cells):
            raise SourceError(f"{label}: row {reader.header_row} (reader.header_row) is empty; expected column names")
        cells = list(header_cells)
        while cells and cells[-1] is None:
            cells.pop()
        # a title row is narrower than the data below it: its missing cells are empty column names
        data_width = max(
            (max(i + 1 for i, c in enumerate(r) if cell_text(c, ".") is not None) for r in data), default=0
        )
        cells += [None] * (data_width - len(cells))
        first_data = data[0] if data else None
        names = ["" if c is None else str(c).strip() for c in cells]
        self.header = check_header(names, label, reader.header_row)
        if first_data is None:
            raise SourceError(f"{label}: header only: row {reader.header_row} holds the column names but no data rows")

    def _open(self) -> Any:
        """Context manager yielding (worksheet, label) of the workbook opened read-only."""
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        @contextlib.contextmanager
        def opened() -> Iterator[tuple[Any, str]]:
            try:
                wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
            except (InvalidFileException, OSError, KeyError, ValueError) as exc:
                raise SourceError(f"{self.path}: not a readable .xlsx workbook: {exc}") from exc
            except Exception as exc:  # zipfile.BadZipFile and friends
                raise SourceError(f"{self.path}: not a readable .xlsx workbook: {exc}") from exc
            try:
                sheet = self.reader.sheet
                if sheet is None:
                    ws = wb.worksheets[0]
                elif isinstance(sheet, int):
                    if not 1 <= sheet <= len(wb.worksheets):
                        raise SourceError(f"{self.path}: no sheet number {sheet}; the workbook has {wb.sheetnames}")
                    ws = wb.worksheets[sheet - 1]
                else:
                    if sheet not in wb.sheetnames:
                        raise SourceError(f"{self.path}: no sheet named {sheet!r}; the workbook has {wb.sheetnames}")
                    ws = wb[sheet]
                yield ws, f"{self.path} [sheet {ws.title!r}]"
            finally:
                wb.close()

        return opened()

    @property
    def schema(self) -> pa.Schema:
        return text_schema(self.header)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Data rows below the header, fully blank rows skipped, ``_source_row`` = the sheet row number."""
        width = len(self.header)
        with self._open() as (ws, _):
            buf: list[list[str | None]] = [[] for _ in range(width)]
            row_numbers: list[int] = []
            start = self.reader.header_row + 1
            for number, row in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
                cells = [cell_text(v, self.reader.decimal) for v in row[:width]]
                if all(c is None for c in cells):
                    continue
                cells += [None] * (width - len(cells))
                for i, c in enumerate(cells):
                    buf[i].append(c)
                row_numbers.append(number)
                if len(row_numbers) >= EXCEL_BATCH_ROWS:
                    yield pa.record_batch([*buf, row_numbers], schema=self.schema)
                    buf, row_numbers = [[] for _ in range(width)], []
            if row_numbers:
                yield pa.record_batch([*buf, row_numbers], schema=self.schema)


def excel_extract_reader(sheet: ExcelSheet, select_sql: str) -> pa.RecordBatchReader:
    """Stream the sheet through the mapping SQL on a private DuckDB connection (opened when first read)."""
    with duckdb.connect() as scratch:
        scratch.register("src_sheet", pa.Table.from_batches([], schema=sheet.schema))
        schema = scratch.execute(select_sql).fetch_record_batch().schema

    def batches() -> Iterator[pa.RecordBatch]:
        con = duckdb.connect()
        try:
            con.register("src_sheet", pa.RecordBatchReader.from_batches(sheet.schema, sheet.batches()))
            result = con.execute(select_sql).fetch_record_batch(EXCEL_BATCH_ROWS)
            for batch in result:
                yield batch.cast(schema) if batch.schema != schema else batch
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())
