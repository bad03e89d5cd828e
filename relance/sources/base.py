"""What every source adapter hands to the loader.

An adapter reads a source and returns one :class:`EntityExtract` per canonical entity it can provide. It does
the source-specific work (encodings, separators, column mapping, FEC lettering, SQL queries) and nothing else:
typing, row hashing, deduplication against what is already loaded, quarantine, batch records and watermarks
are the loader's (``relance.ingest.load_extracts``), so every source gets the same guarantees.

Values may arrive typed or as text: the loader casts each column to its raw-schema type with ``TRY_CAST`` and
quarantines a row whose non-empty value does not cast, naming row, column, value and expected type. Rows the
adapter itself could not parse at all (a truncated line, a row with too many fields) are passed as
:class:`Reject` so that rows read = rows loaded + rows unchanged + rows quarantined, always.

An adapter whose read holds an entity's *complete* current state (a full export, an FEC: every entry of a fiscal
year) marks the extract ``full_snapshot``: the loader then retires (tombstones) the keys of that source and entity
that the snapshot no longer holds, so a document deleted or cancelled at the source stops being current. With
``snapshot_scope = "file"`` the snapshot is complete only for what files of the same name held (an FEC re-export
of one fiscal year keeps its legal name ``<SIREN>FEC<closing date>``; another year's file retires nothing of it).
An adapter that builds Arrow tables may instead declare it on the table's schema metadata
(:func:`declare_full_snapshot`), which the extract reads. An incremental read (a watermark query) is never a full
snapshot, and an entity with no extract in a load is not an empty snapshot: nothing of it is retired.

The shape of an extract lives here too: ``_source_row`` (:data:`SOURCE_ROW`) and the Arrow schemas of an entity
typed as the raw schema says (:func:`entity_schema`) or read as text (:func:`text_schema`), so adapters and the
demo generator build the same tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from relance.raw_schema import ENTITIES

SOURCE_ROW = "_source_row"  # optional extract column: 1-based row number in the source, for messages and quarantine
_HASH_CHUNK = 1 << 20
#: ``source``: the snapshot holds every key of its (source, entity); ``file``: every key loaded from files of the
#: same name (one FEC fiscal year).
SnapshotScope = Literal["source", "file"]
#: Arrow schema metadata key by which a table declares itself a full snapshot (value: its scope).
SNAPSHOT_METADATA = b"relance.full_snapshot"
# Arrow type of each raw-schema type (TIMESTAMP's unit is the caller's: see entity_schema).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DECIMAL(18,2)": pa.decimal128(18, 2),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
}


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks (large exports are never read whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SourceError(ValueError):
    """Input that cannot be read at all, with a specific message: file, row, column, what was expected."""


@dataclass(frozen=True)
class Reject:
    """A source row the adapter could not turn into an entity row."""

    entity: str
    row_number: int  # 1-based position in the source (file line, sheet row, query row) as the user sees it
    reason: str  # specific: column, value, what was expected
    raw: dict[str, Any] = field(default_factory=dict)  # the source row as read (for the quarantine's row_json)


@dataclass
class EntityExtract:
    """Rows of one canonical entity from one source read.

    ``table`` holds exactly the columns of ``relance.raw_schema.ENTITIES[entity]`` (any order; text or typed
    values) plus optionally ``_source_row`` (int, 1-based row number in the source, for error messages and
    quarantine). It is an Arrow table, an Arrow ``RecordBatchReader`` (streamed: large files never sit in
    memory whole), or a DuckDB ``SELECT`` over files (``read_csv``/``read_parquet``) that the loader runs.
    ``source_file`` and ``file_hash`` identify what was read (for a database: the URL without password and a
    hash of the query and watermark). ``full_snapshot``: the rows are the entity's complete current state for the
    source (or, with ``snapshot_scope = "file"``, for files of this name); see the module docstring. A table
    declared a snapshot by :func:`declare_full_snapshot` sets both.
    """

    entity: str
    table: pa.Table | pa.RecordBatchReader | str
    source_file: str
    file_hash: str
    rejects: list[Reject] = field(default_factory=list)
    watermark: str | None = None  # the source's high-water mark after this read (e.g. max updated_at), if any
    full_snapshot: bool = False
    snapshot_scope: SnapshotScope = "source"

    def __post_init__(self) -> None:
        declared = declared_snapshot(self.table)
        if declared is not None and not self.full_snapshot:
            self.full_snapshot, self.snapshot_scope = True, declared


def declare_full_snapshot(table: pa.Table, scope: SnapshotScope = "source") -> pa.Table:
    """``table`` marked, in its schema metadata, as a full snapshot of its entity (an extract of it is one)."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), SNAPSHOT_METADATA: scope.encode()})


def declared_snapshot(table: object) -> SnapshotScope | None:
    """The scope a table (or stream) declared itself a full snapshot for, or None."""
    schema = getattr(table, "schema", None)
    value = (getattr(schema, "metadata", None) or {}).get(SNAPSHOT_METADATA)
    if value is None:
        return None
    scope = value.decode()
    if scope not in ("source", "file"):
        raise ValueError(f"schema metadata {SNAPSHOT_METADATA.decode()}={scope!r}: expected 'source' or 'file'")
    return scope  # type: ignore[return-value]


def entity_schema(entity: str, *, timestamp_unit: str = "us", source_row: bool = False) -> pa.Schema:
    """Arrow schema of a raw entity with its raw-schema types, in raw_schema column order (+ ``_source_row``)."""
    fields = [
        (col, pa.timestamp(timestamp_unit) if typ == "TIMESTAMP" else _ARROW_TYPES[typ])
        for col, typ in ENTITIES[entity].items()
    ]
    return pa.schema(fields + ([(SOURCE_ROW, pa.int64())] if source_row else []))


def text_schema(columns: Iterable[str]) -> pa.Schema:
    """Arrow schema of an extract read as text: every column a string, plus the int64 ``_source_row``."""
    return pa.schema([*(pa.field(c, pa.string()) for c in columns), pa.field(SOURCE_ROW, pa.int64())])
