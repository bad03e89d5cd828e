"""Parquet files: the ``read_parquet`` source relation with the 1-based row number, and the file's columns."""

from __future__ import annotations

from pathlib import Path

import duckdb

from relance.sources.base import SOURCE_ROW, SourceError
from relance.sources.tabular.mapping_sql import sql_string


def parquet_source(path: Path) -> tuple[str, list[str]]:
    """``read_parquet`` with the 1-based row number, and the file's column names."""
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty (0 bytes); expected a Parquet file")
    reader = f"read_parquet({sql_string(str(path))}, file_row_number = true)"
    with duckdb.connect() as scratch:
        try:
            described = scratch.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            n_rows = scratch.sql(f"SELECT count(*) FROM {reader}").fetchone()[0]  # type: ignore[index]
        except duckdb.Error as exc:
            raise SourceError(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    header = [r[0] for r in described if r[0] != "file_row_number"]
    if n_rows == 0:
        raise SourceError(f"{path}: header only: the Parquet file has columns {header} but no rows")
    sql = f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {SOURCE_ROW} FROM {reader})"
    return sql, header
