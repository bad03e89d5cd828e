"""Tables relance writes for people to open in a spreadsheet (the call list, the finance report CSVs): the one owner
of how a cell that comes from data is written, so that opening the file never runs a formula.

The threat (OWASP "CSV injection"): Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula, so a customer named ``=HYPERLINK("http://evil","click")`` or ``+cmd|' /C calc'!A0``
becomes a link or a command on the finance team's machine. Tab, CR and LF at the start are listed too (some
readers strip them, then evaluate), and so are the full-width forms ``＝ ＋ － ＠``, which some spreadsheet
locales fold to their ASCII twins.

The rule, applied by :func:`neutralise_cell` to every cell that holds **text**:

* a text cell whose first character, after any leading apostrophes and spaces, is one of those triggers (or
  that starts with tab, CR or LF) is written with one apostrophe in front: ``'=HYPERLINK(...)``. A spreadsheet
  shows it as text and evaluates nothing; the value is still all there.
* numbers, dates, booleans and missing values are written as they are: they are typed values, not text, so
  ``-12.50`` in an amount column stays a negative number a spreadsheet can sum. A number that arrives as text
  (``"-12.50"``) is text, and is neutralised.

Phone numbers: an E.164 number is text that starts with ``+``, so it is written ``'+33199001234``. This is the
choice for CSV: a spreadsheet keeps the whole number, ``+`` included, as text (without the apostrophe Excel
would read ``+33199001234`` as the number 33199001234 and drop the ``+``, or as a formula); the cost is an
apostrophe in front that a human reader ignores. There is no other way to write a CSV cell that Excel keeps as
text with its ``+`` and that is not a formula itself (``="+33..."`` is one).

XLSX (the finance workbooks, :func:`set_xlsx_cell`) needs no apostrophe: a cell has a type there, and every text
cell is written as a string cell (never a formula cell, whatever it starts with). A text that :func:`needs_quote`
also gets the text number format ``@`` and Excel's "quote prefix" flag, so editing it in Excel keeps it text. The
value read back is the original text, unchanged. Numbers, dates and booleans keep their types.

The rule is exactly invertible: :func:`restore_cell` removes the apostrophe it added (and only that one), so a
program reading a file back (the call list reading its own keys, a dialler import) gets the original values;
:func:`read_csv_records` does it for a whole file.
"""

from __future__ import annotations

import csv
import io
import numbers
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relance.files import write_text_atomic

QUOTE = "'"
FORMULA_TRIGGERS: frozenset[str] = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# after any apostrophes: tab/CR/LF at once, or (after spaces, no-break and ideographic spaces) a formula sign
_NEEDS_QUOTE = re.compile("'*(?:[\t\r\n]|[ \u00a0\u3000]*[=+\\-@\uff1d\uff0b\uff0d\uff20])")
_TYPED = (numbers.Number, np.bool_, date, datetime, time, timedelta, pd.Timestamp, pd.Timedelta, np.datetime64)


def needs_quote(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula (see the module docstring for the rule)."""
    return _NEEDS_QUOTE.match(text) is not None


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-likes
        return False


def neutralise_cell(value: Any) -> Any:
    """The value to write for one cell: text that could start a formula gets a leading apostrophe; numbers,
    dates, booleans and missing values are returned unchanged; any other object is written as its text."""
    if isinstance(value, str):
        return QUOTE + value if needs_quote(value) else value
    if isinstance(value, _TYPED) or _is_missing(value):
        return value
    text = str(value)
    return QUOTE + text if needs_quote(text) else text


#: Control characters XML 1.0 cannot hold (an XLSX is XML): replaced, so one odd byte never breaks a workbook.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Excel's limit of characters in a cell.
XLSX_MAX_CELL_CHARS = 32767


def set_xlsx_cell(cell: Any, value: Any) -> Any:
    """Write ``value`` into an openpyxl cell so that no spreadsheet evaluates it; returns the cell.

    Missing values leave the cell empty; booleans, numbers (numpy's and ``Decimal`` too), dates and datetimes are
    written as typed values; anything else is text, written as a string cell: openpyxl would store a text that
    starts with ``=`` as a formula, so the cell's type is set to string after the value. A text that could start
    a formula elsewhere (:func:`needs_quote`) also gets the ``@`` number format and the quote-prefix flag."""
    if _is_missing(value):
        cell.value = None
        return cell
    if isinstance(value, bool | np.bool_):
        cell.value = bool(value)
        return cell
    if isinstance(value, numbers.Integral):
        cell.value = int(value)
        return cell
    if isinstance(value, numbers.Number):
        cell.value = float(value)
        return cell
    if isinstance(value, pd.Timestamp | np.datetime64):
        value = pd.Timestamp(value).to_pydatetime()
    if isinstance(value, datetime):
        cell.value = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)  # as UTC
        return cell
    if isinstance(value, date):
        cell.value = value
        return cell
    text = _XML_ILLEGAL.sub("\ufffd", value if isinstance(value, str) else str(value))[:XLSX_MAX_CELL_CHARS]
    cell.value = text
    cell.data_type = "s"  # a string cell, never a formula, whatever the text starts with
    if needs_quote(text):
        cell.number_format = "@"
        cell.quotePrefix = True
    return cell


def restore_cell(value: Any) -> Any:
    """The inverse of :func:`neutralise_cell` for text read back from a file: drops the apostrophe it added."""
    if isinstance(value, str) and value.startswith(QUOTE) and needs_quote(value[1:]):
        return value[1:]
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell neutralised; numeric, boolean and datetime columns untouched."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if (
            pd.api.types.is_numeric_dtype(series.dtype)
            or pd.api.types.is_bool_dtype(series.dtype)
            or pd.api.types.is_datetime64_any_dtype(series.dtype)
            or pd.api.types.is_timedelta64_dtype(series.dtype)
        ):
            continue
        out[column] = series.astype(object).map(neutralise_cell)
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (header, no index), every text cell neutralised."""
    return neutralise_frame(frame).to_csv(index=False)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as CSV (UTF-8, header, no index), whole or not at all, every text cell
    neutralised. Rewriting replaces the file."""
    path = Path(path)
    write_text_atomic(path, csv_text(frame))
    return path


def csv_rows(records: Iterable[Mapping[str, Any]], columns: tuple[str, ...], *, header: bool) -> str:
    """CSV lines for ``records`` (missing keys and missing values blank), every text cell neutralised; the
    header line first if ``header``. For files appended to a line at a time, like the call list."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    if header:
        writer.writeheader()
    for record in records:
        writer.writerow({c: _csv_value(record.get(c)) for c in columns})
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    cell = neutralise_cell(value)
    return "" if _is_missing(cell) else cell


def read_csv_records(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV written here, as text, with the apostrophes :func:`neutralise_cell` added removed."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return [{k: restore_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]
