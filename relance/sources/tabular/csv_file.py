"""CSV files: the dialect (encoding, delimiter, header row), and the DuckDB ``read_csv`` source with rejected lines.

The file is handed to DuckDB as UTF-8 (transcoded when needed, :mod:`relance.sources.encoding`), with a fixed
dialect and every column as text (no sniffing, nothing typed). One parallel scan finds the lines DuckDB
cannot parse; they become rejects naming the line, and ``_source_row`` stays the file's line number. The same
scan counts the rows holding a field over the cell cap (:mod:`relance.sources.limits`); when there are any, they
are located, left out of the source and become rejects naming line, column and length.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import duckdb

from relance.sources.base import SOURCE_ROW, SourceError
from relance.sources.encoding import utf8_view
from relance.sources.limits import DEFAULT_LIMITS, InputLimits, check_file_size, oversized_sql
from relance.sources.separators import best_separator
from relance.sources.tabular.header import check_header
from relance.sources.tabular.mapping_sql import sql_string
from relance.sources.tabular.profile import DELIMITERS, ReaderOptions

log = logging.getLogger(__name__)

MAX_REJECTED_LINES = 1000  # more unparseable lines than this means the dialect is wrong, not a few bad rows
_SAMPLE_BYTES = 1 << 16
_COLUMN_COUNT_RE = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def detect_delimiter(lines: list[str], quote: str) -> str:
    """The delimiter giving the header the most fields with the same count on the following lines."""

    def score(delim: str) -> tuple[int, float] | None:
        counts = [len(r) for r in csv.reader(lines, delimiter=delim, quotechar=quote)]
        if not counts or counts[0] < 2:
            return None
        consistent = sum(c == counts[0] for c in counts) / len(counts)
        return (1 if consistent >= 0.8 else 0, consistent * counts[0])

    return best_separator(DELIMITERS, score) or ","


class CsvFile:
    """One CSV file made ready for DuckDB: UTF-8 path, dialect, header, rejected lines."""

    def __init__(
        self, path: Path, reader: ReaderOptions, workdir: Path, *, limits: InputLimits = DEFAULT_LIMITS
    ) -> None:
        self.path = path
        self.max_cell_chars = limits.max_cell_chars
        if check_file_size(path, limits.max_file_bytes) == 0:
            raise SourceError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
        self.utf8_path, self.encoding = utf8_view(path, reader.encoding, workdir=workdir)
        with self.utf8_path.open("r", encoding="utf-8-sig", newline="") as fh:
            head = fh.read(_SAMPLE_BYTES)
            complete = fh.read(1) == ""
        if not complete:
            head = head[: head.rfind("\n") + 1] or head
        lines = head.splitlines()
        self.header_row = reader.header_row
        body = lines[self.header_row - 1 :]
        if not "".join(lines).strip():
            raise SourceError(f"{path}: file is empty (only blank lines); expected a header row and data rows")
        if not body or not body[0].strip():
            raise SourceError(
                f"{path}: no header at line {self.header_row} (reader.header_row); the file has {len(lines)} line(s)"
            )
        self.delimiter = reader.delimiter if reader.delimiter != "auto" else detect_delimiter(body[:50], reader.quote)
        self.quote = reader.quote
        header = next(csv.reader([body[0]], delimiter=self.delimiter, quotechar=self.quote))
        self.header = check_header([h.strip() for h in header], f"{path}", self.header_row)
        if complete and not any(line.strip() for line in body[1:]):
            raise SourceError(
                f"{path}: header only: line {self.header_row} holds the column names but there are no data rows"
            )
        self.rejects: list[tuple[int, str, str]] = []  # (line, reason, raw line)
        self.oversized = 0  # rows holding a field over the cell cap (left out of source_sql)

    def read_csv(self, *, ignore_errors: bool, store_rejects: bool = False) -> str:
        """DuckDB ``read_csv`` call with the fixed dialect and every column as text (no sniffing)."""
        columns = ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in self.header)
        opts = [
            "header = true",
            "auto_detect = false",
            f"delim = {sql_string(self.delimiter)}",
            f"quote = {sql_string(self.quote)}",
            f"escape = {sql_string(self.quote)}",
            f"skip = {self.header_row - 1}",
            f"columns = {{{columns}}}",
        ]
        if ignore_errors:
            opts.append("ignore_errors = true")
        if store_rejects:
            opts += ["store_rejects = true", f"rejects_limit = {MAX_REJECTED_LINES + 1}"]
        return f"read_csv({sql_string(str(self.utf8_path))}, {', '.join(opts)})"

    def scan_rejects(self) -> int:
        """Read the whole file once (DuckDB, parallel) to find lines it cannot parse; return the good rows."""
        with duckdb.connect() as scratch:
            try:
                # fetchall, not fetchone: the rejects table is written only once the scan has fully finished
                long_rows = oversized_sql(self.header, self.max_cell_chars)
                good, self.oversized = scratch.sql(
                    f"SELECT count(*), count(*) FILTER (WHERE {long_rows}) "
                    f"FROM {self.read_csv(ignore_errors=True, store_rejects=True)}"
                ).fetchall()[0]
            except duckdb.Error as exc:
                raise SourceError(
                    f"{self.path}: DuckDB cannot read the file as CSV: {str(exc).splitlines()[0]}"
                ) from exc
            try:
                rows = scratch.sql(
                    "SELECT line, string_agg(DISTINCT error_message, '; '), any_value(csv_line) "
                    "FROM reject_errors GROUP BY line ORDER BY line"
                ).fetchall()
            except duckdb.CatalogException:  # DuckDB creates the rejects table only when a line was rejected
                rows = []
        self.rejects = [(int(line), str(msg), str(raw or "").rstrip("\r\n")) for line, msg, raw in rows]
        if len(self.rejects) > MAX_REJECTED_LINES or (self.rejects and good == 0):
            first = self.rejects[0]
            raise SourceError(
                f"{self.path}: {len(self.rejects)}{'+' if len(self.rejects) > MAX_REJECTED_LINES else ''} line(s) "
                f"cannot be parsed with delimiter {self.delimiter!r} and quote {self.quote!r} (first: line "
                f"{first[0]}: {first[1]}); wrong delimiter or quote character?"
            )
        for line, msg, _ in self.rejects[:5]:
            log.warning("%s: line %d cannot be parsed: %s", self.path, line, msg)
        return int(good)

    def source_sql(self) -> str:
        """Every column as text plus ``_source_row`` = the file line number of the row (rows with a field over
        the cell cap included: :func:`relance.sources.tabular.read` locates and leaves them out)."""
        header_line = self.header_row
        rn = "__relance_rn"
        line = f"{rn} + {header_line}"
        if self.rejects:
            # rows after a rejected line sit one line further down: shift by the rejected lines before them
            thresholds = [r - header_line - i for i, (r, _, _) in enumerate(self.rejects, start=1)]
            line += f" + len(list_filter({thresholds}, lambda t: {rn} > t))"
        inner = f"(SELECT *, row_number() OVER () AS {rn} FROM {self.read_csv(ignore_errors=bool(self.rejects))})"
        return f"(SELECT * EXCLUDE ({rn}), CAST({line} AS BIGINT) AS {SOURCE_ROW} FROM {inner})"


def reject_hint(message: str) -> str:
    """What a DuckDB reject message most likely means for a ledger file."""
    m = _COLUMN_COUNT_RE.search(message)
    if m and int(m[2]) < int(m[1]):
        return " (truncated line?)"
    if m and int(m[2]) > int(m[1]):
        return " (a value holding the delimiter without quotes?)"
    return ""
