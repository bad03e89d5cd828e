"""Excel workbooks (.xlsx): one sheet's header, its rows streamed as Arrow batches of text, mapped by DuckDB.

Cells become the text a CSV export of the sheet would hold (numbers in the profile's decimal convention, dates
ISO), so the same mapping SQL applies; ``_source_row`` is the sheet row number. openpyxl reads the workbook
read-only, row by row, so a large sheet never sits in memory whole.

Hardening: an .xlsx is a zip of XML written by whoever sent the file. Before openpyxl opens it, the zip's declared
sizes are checked against the caps of :mod:`relance.sources.limits` (zip bombs); openpyxl parses its XML with
defusedxml (a dependency; openpyxl uses it whenever it is importable), which refuses entity declarations, so
neither an entity expansion (billion laughs) nor an external entity (``<!ENTITY x SYSTEM "file:///...">``) is
ever expanded: such a workbook is a :class:`SourceError` naming the file. Without defusedxml (or with
``OPENPYXL_DEFUSEDXML=False``) Excel files are refused rather than parsed unhardened. A cell longer than the
cell cap rejects its row (quarantined with the column and length).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import pyarrow as pa

from relance.sources.base import Reject, SourceError, text_schema
from relance.sources.limits import (
    DEFAULT_LIMITS,
    InputLimits,
    check_file_size,
    check_zip_members,
    oversized_raw,
    oversized_reason,
)
from relance.sources.tabular.header import check_header
from relance.sources.tabular.mapping_sql import sandboxed_reader
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


def _xml_refusal(exc: BaseException) -> str | None:
    """What an XML parsing failure inside openpyxl means, if it is one (the cause chain is searched)."""
    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DefusedXmlException):
            return (
                f"refused: its XML declares entities or a DTD ({type(seen).__name__}: {seen}), which no "
                "spreadsheet application writes (entity expansion / external entity attack?)"
            )
        if isinstance(seen, ParseError):
            return f"its XML does not parse ({seen})"
        seen = seen.__cause__ or seen.__context__
    return None


def require_hardened_xml() -> None:
    """Refuse to read Excel files when openpyxl would parse them without defusedxml."""
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:
        raise SourceError(
            "Excel workbooks are read only with XML hardening: install defusedxml (a relance dependency) and "
            "leave OPENPYXL_DEFUSEDXML unset"
        )


OnReject = Callable[[int, str, dict[str, Any]], None]


class ExcelSheet:
    """One worksheet: its header (validated) and a lazy stream of its rows as Arrow batches of text."""

    def __init__(self, path: Path, reader: ReaderOptions, *, limits: InputLimits = DEFAULT_LIMITS) -> None:
        self.path, self.reader, self.limits = path, reader, limits
        if check_file_size(path, limits.max_file_bytes) == 0:
            raise SourceError(f"{path}: file is empty (0 bytes); expected an .xlsx workbook")
        require_hardened_xml()
        check_zip_members(
            path,
            max_uncompressed_bytes=limits.max_xlsx_uncompressed_bytes,
            max_ratio=limits.max_zip_ratio,
            ratio_min_bytes=limits.zip_ratio_min_bytes,
        )
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
                why = _xml_refusal(exc) or f"not a readable .xlsx workbook: {exc}"
                raise SourceError(f"{self.path}: {why}") from exc
            except Exception as exc:  # zipfile.BadZipFile and friends
                why = _xml_refusal(exc) or f"not a readable .xlsx workbook: {exc}"
                raise SourceError(f"{self.path}: {why}") from exc
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
                label = f"{self.path} [sheet {ws.title!r}]"
                try:
                    yield ws, label
                except SourceError:
                    raise
                except Exception as exc:  # the sheet's XML is parsed lazily, while rows are read
                    why = _xml_refusal(exc)
                    if why is None:
                        raise
                    raise SourceError(f"{label}: {why}") from exc
            finally:
                wb.close()

        return opened()

    @property
    def schema(self) -> pa.Schema:
        return text_schema(self.header)

    def batches(self, on_reject: OnReject | None = None) -> Iterator[pa.RecordBatch]:
        """Data rows below the header, fully blank rows skipped, ``_source_row`` = the sheet row number.

        A row with a cell longer than the cell cap is left out and handed to ``on_reject`` (row, reason, raw).
        """
        width = len(self.header)
        cap = self.limits.max_cell_chars
        with self._open() as (ws, _):
            buf: list[list[str | None]] = [[] for _ in range(width)]
            row_numbers: list[int] = []
            start = self.reader.header_row + 1
            for number, row in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
                cells = [cell_text(v, self.reader.decimal) for v in row[:width]]
                if all(c is None for c in cells):
                    continue
                cells += [None] * (width - len(cells))
                long_cell = next(((i, len(c)) for i, c in enumerate(cells) if c is not None and len(c) > cap), None)
                if long_cell is not None:
                    if on_reject is not None:
                        raw = oversized_raw(dict(zip(self.header, cells, strict=True)), cap)
                        on_reject(number, oversized_reason(self.header[long_cell[0]], long_cell[1], cap), raw)
                    continue
                for i, c in enumerate(cells):
                    buf[i].append(c)
                row_numbers.append(number)
                if len(row_numbers) >= EXCEL_BATCH_ROWS:
                    yield pa.record_batch([*buf, row_numbers], schema=self.schema)
                    buf, row_numbers = [[] for _ in range(width)], []
            if row_numbers:
                yield pa.record_batch([*buf, row_numbers], schema=self.schema)


def excel_extract_reader(
    sheet: ExcelSheet, select_sql: str, entity: str, rejects: list[Reject]
) -> pa.RecordBatchReader:
    """Stream the sheet through the mapping SQL on a sandboxed DuckDB connection (opened when first read).

    Rows left out for a cell over the cap are appended to ``rejects`` while the stream is read (the loader reads
    an extract's rejects after its rows).
    """

    def on_reject(row: int, reason: str, raw: dict[str, Any]) -> None:
        rejects.append(Reject(entity=entity, row_number=row, reason=reason, raw=raw))

    def rows() -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(sheet.schema, sheet.batches(on_reject))

    return sandboxed_reader(select_sql, sources={"src_sheet": (sheet.schema, rows)}, batch_rows=EXCEL_BATCH_ROWS)
