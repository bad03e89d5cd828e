"""The demo's landing files: the Arrow schema of each raw entity's file, and an append-only writer (CSV or
Parquet) so blocks are written one after the other and never held together in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from relance.sources.base import entity_schema

FileFormat = Literal["csv", "parquet"]


def arrow_schema(entity: str, file_format: FileFormat = "csv") -> pa.Schema:
    """Arrow schema of a raw entity's landing file, in raw_schema column order.

    TIMESTAMP is written with second precision in CSV (``2026-01-05 09:30:00``) and microseconds in
    Parquet (which has no second unit).
    """
    return entity_schema(entity, timestamp_unit="s" if file_format == "csv" else "us")


class LandingFile:
    """Append-only writer for one landing file."""

    def __init__(self, path: Path, schema: pa.Schema, file_format: FileFormat) -> None:
        self.path, self.schema = path, schema
        if file_format == "csv":
            options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            self._writer: Any = pacsv.CSVWriter(str(path), schema, write_options=options)
        else:
            self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.select(self.schema.names).cast(self.schema))

    def close(self) -> None:
        self._writer.close()
