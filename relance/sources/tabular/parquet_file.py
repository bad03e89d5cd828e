"""Parquet files: the ``read_parquet`` source relation with the 1-based row number, and the file's columns.

The file size is capped, and the rows holding a text value over the cell cap are counted while the file is
scanned (:mod:`relance.sources.limits`); text (VARCHAR/BLOB) columns only: other types are bounded by their type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from relance.sources.base import SOURCE_ROW, SourceError
from relance.sources.limits import DEFAULT_LIMITS, InputLimits, check_file_size, oversized_sql
from relance.sources.tabular.mapping_sql import sql_string


@dataclass(frozen=True)
class ParquetSource:
    """The ``read_parquet`` relation of one file and what the scan found."""

    sql: str  # every column plus ``_source_row``
    header: list[str]
    text_columns: list[str]  # the columns the cell cap applies to
    oversized: int  # rows holding a text value over the cell cap


def parquet_source(path: Path, *, limits: InputLimits = DEFAULT_LIMITS) -> ParquetSource:
    """``read_parquet`` with the 1-based row number, the file's column names, and its rows over the cell cap."""
    if check_file_size(path, limits.max_file_bytes) == 0:
        raise SourceError(f"{path}: file is empty (0 bytes); expected a Parquet file")
    reader = f"read_parquet({sql_string(str(path))}, file_row_number = true)"
    with duckdb.connect() as scratch:
        try:
            described = scratch.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            text = [r[0] for r in described if r[0] != "file_row_number" and str(r[1]) in ("VARCHAR", "BLOB")]
            n_rows, oversized = scratch.sql(
                f"SELECT count(*), count(*) FILTER (WHERE {oversized_sql(text, limits.max_cell_chars)}) FROM {reader}"
            ).fetchone()  # type: ignore[misc]
        except duckdb.Error as exc:
            raise SourceError(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    header = [r[0] for r in described if r[0] != "file_row_number"]
    if n_rows == 0:
        raise SourceError(f"{path}: header only: the Parquet file has columns {header} but no rows")
    sql = f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {SOURCE_ROW} FROM {reader})"
    return ParquetSource(sql, header, text, int(oversized))
