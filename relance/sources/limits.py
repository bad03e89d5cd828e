"""Size caps on every input, and the checks that enforce them with a clear error.

A ledger export, an FEC or an ERP table is data a customer's system wrote; a wrong export (a binary dump renamed
``.csv``, a runaway free-text column) or a hostile file (a zip bomb disguised as ``.xlsx``) must not exhaust the
machine before relance can say what is wrong. Every adapter takes these caps as keyword arguments with the
defaults below (tests pass tiny ones):

* **per file** (:data:`MAX_FILE_BYTES`): a CSV, Excel, Parquet or FEC file larger than the cap is refused with a
  :class:`~relance.sources.base.SourceError` naming the file, its size and the cap; nothing of it is loaded.
* **per cell** (:data:`MAX_CELL_CHARS`): a cell (CSV field, sheet cell, Parquet text value, FEC field, SQL column
  value as text) longer than the cap rejects *its row*: the row goes to ``ops.quarantine`` with a reason naming
  the column, the length and the cap (:func:`oversized_reason`), the other rows load. Why a reject and not an
  error: one bad row should not block a ledger, and the quarantine is where people look for rows left out.
* **per workbook** (:data:`MAX_XLSX_UNCOMPRESSED_BYTES`, :data:`MAX_ZIP_RATIO`): an ``.xlsx`` is a zip; its
  members' declared uncompressed sizes (which bound what Python's zipfile will inflate) must stay under the cap,
  and no member above :data:`ZIP_RATIO_MIN_BYTES` may inflate more than :data:`MAX_ZIP_RATIO` times (real sheets
  compress 5 to 30 times; a zip bomb thousands of times).
* **per line** (:data:`MAX_LINE_CHARS`): a text record longer than this (an FEC line; DuckDB's own
  ``max_line_size`` for CSV) means the file is not a line-oriented ledger.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from relance.sources.base import SourceError

MAX_FILE_BYTES = 2 * 1024**3  # 2 GiB: ten times the largest ledger export seen; split bigger ones
MAX_CELL_CHARS = 10_000  # no invoice id, name or amount is this long; Excel itself stops at 32,767
MAX_XLSX_UNCOMPRESSED_BYTES = 4 * 1024**3  # a full 1,048,576-row sheet is about 1-2 GiB of XML
MAX_ZIP_RATIO = 100  # uncompressed / compressed size of one workbook member
ZIP_RATIO_MIN_BYTES = 1 << 20  # members smaller than this are not ratio-checked (tiny XML compresses oddly)
MAX_LINE_CHARS = 1 << 20  # one FEC record (18 short fields) is a few hundred characters


@dataclass(frozen=True)
class InputLimits:
    """The caps one read applies (the module defaults unless a caller, or a test, passes others)."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_cell_chars: int = MAX_CELL_CHARS
    max_xlsx_uncompressed_bytes: int = MAX_XLSX_UNCOMPRESSED_BYTES
    max_zip_ratio: float = MAX_ZIP_RATIO
    zip_ratio_min_bytes: int = ZIP_RATIO_MIN_BYTES
    max_line_chars: int = MAX_LINE_CHARS


DEFAULT_LIMITS = InputLimits()


def _size(n: int) -> str:
    """Bytes as people read them: ``2.0 GiB (2,147,483,648 bytes)``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def check_file_size(path: Path, max_bytes: int = MAX_FILE_BYTES) -> int:
    """The file's size; :class:`SourceError` naming file, size and cap when it is over ``max_bytes``."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise SourceError(
            f"{path}: file is {_size(size)}, over the {_size(max_bytes)} cap for one input file; nothing was "
            "loaded (split the export, or raise relance.sources.limits.MAX_FILE_BYTES)"
        )
    return size


def oversized_reason(column: str, length: int, max_chars: int = MAX_CELL_CHARS) -> str:
    """Quarantine reason of a row holding a cell over the cap."""
    return f"column {column}: value of {length:,} characters, over the {max_chars:,}-character cap for one cell"


def oversized_raw(values: dict[str, str | None], max_chars: int, keep: int = 200) -> dict[str, str | None]:
    """The row as read, for the quarantine: every cell cut to ``keep`` characters when over the cap."""
    return {
        k: (v[:keep] + f"… ({len(v):,} characters)" if isinstance(v, str) and len(v) > max_chars else v)
        for k, v in values.items()
    }


def check_zip_members(
    path: Path,
    *,
    max_uncompressed_bytes: int = MAX_XLSX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_ZIP_RATIO,
    ratio_min_bytes: int = ZIP_RATIO_MIN_BYTES,
) -> None:
    """Refuse a zip container (``.xlsx``) that would inflate past the caps: a zip bomb, named as one.

    Python's zipfile never inflates a member past its declared size (and checks the CRC at the end), so
    checking the declared sizes bounds what opening the workbook can cost.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable .xlsx workbook (not a zip archive): {exc}") from exc
    total = sum(m.file_size for m in members)
    if total > max_uncompressed_bytes:
        raise SourceError(
            f"{path}: the workbook inflates to {_size(total)}, over the {_size(max_uncompressed_bytes)} cap "
            "(relance.sources.limits.MAX_XLSX_UNCOMPRESSED_BYTES); refused without opening it (zip bomb?)"
        )
    for m in members:
        if m.file_size > ratio_min_bytes and m.file_size > max_ratio * max(m.compress_size, 1):
            raise SourceError(
                f"{path}: workbook member {m.filename} inflates {m.file_size / max(m.compress_size, 1):,.0f} times "
                f"({_size(m.compress_size)} -> {_size(m.file_size)}), over the {max_ratio:g}x cap "
                "(relance.sources.limits.MAX_ZIP_RATIO); refused without opening it (zip bomb?)"
            )


def oversized_sql(columns: list[str], max_chars: int, *, quote: bool = True) -> str:
    """DuckDB condition true for a row holding a text cell longer than ``max_chars`` (never NULL)."""
    if not columns:
        return "false"
    names = ['"' + c.replace('"', '""') + '"' if quote else c for c in columns]
    return " OR ".join(f"coalesce(length(CAST({n} AS VARCHAR)), 0) > {int(max_chars)}" for n in names)
