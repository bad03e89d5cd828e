"""The one loader every receivables source goes through: extracts -> append-only raw tables.

Source adapters (``relance.sources``: tabular profiles, FEC, SQL) hand over :class:`EntityExtract` objects;
:func:`load_extracts` does what must be the same for all of them:

* typing: each column is cast to its raw-schema type with ``TRY_CAST``; a row with a non-empty value that does
  not cast, that the cast would round, or that the adapter rejected, goes to ``ops.quarantine`` with the reason
  (file, row, column, value, what was expected) instead of raw, so rows read = loaded + unchanged + quarantined
  for every batch;
* no silent rounding: a money value (``DECIMAL(18,2)``) with more than 2 decimals (``12.345``) or an ``INTEGER``
  value with decimals (``30.5``) is quarantined ("more than 2 decimals"), never rounded. Digits beyond the 10th
  decimal are taken as binary floating-point noise (a spreadsheet's ``120.00000000000001``) and dropped;
* id trimming: the natural key and every ``*_id`` column (:attr:`relance.raw_schema.Entity.id_columns`) are
  trimmed of leading and trailing whitespace (spaces, tabs, line breaks, no-break spaces, BOM) before hashing, so
  ``'INV-1 '`` and ``'INV-1'`` are one invoice (fixed-width ERP exports pad ids). Inner whitespace is kept, other
  columns are not touched; how many ids were trimmed is logged per batch;
* idempotence at two levels: an extract whose hash was already loaded for the same source and entity is an
  ``unchanged`` batch; otherwise every row gets ``_row_hash`` (md5 of its typed business columns as JSON) and is
  appended when its hash differs from its key's **current** version (see :mod:`relance.raw_schema`: the latest
  version, by ``_loaded_at`` then ``_load_seq``, of a batch not ``failed``, ``superseded`` or ``quarantined``).
  So a revert (100, 80, 100) is appended and becomes current, and re-delivering a corrected file re-appends the
  rows that were only in an excluded batch;
* same-load order: ``_load_seq`` numbers the appended rows of a raw table in load order (extracts in the order
  given, rows in source order), so when two files of one load (or two rows of one file) carry two versions of a
  key, the later one is current. Duplicate keys within one file still fail the batch's contract;
* deletions: an extract marked ``full_snapshot`` holds the entity's complete current state for its source. When
  a load holds full-snapshot extracts of an entity, every key of that (source, entity) whose current version is
  live but that no extract of the load holds gets a **tombstone**: a copy of its current version with
  ``_deleted = true``, appended to the batch of the load's last changed snapshot file of that entity (so it is
  validated, and excluded, with it) and counted in :attr:`ExtractLoadReport.retired`, not in ``rows_loaded``.
  Staging drops keys whose current version is a tombstone; a key that comes back later is appended again and is
  live. With ``snapshot_scope = "file"`` (FEC: one fiscal year per legally named file) only keys whose current
  version came from a file of the same name are retired. Nothing is retired when every snapshot file was loaded
  before (unchanged), when a snapshot is empty, or when a file of the snapshot had rows the adapter could not read
  (their keys are unknown); a warning says so;
* watermarks per (source, entity) that move only when the load commits;
* one transaction for the whole load (or the caller's): an :class:`IngestError` leaves raw, ``ops.ingest_batches``
  and the watermarks untouched. Everything happens inside DuckDB; large files are streamed, never loaded whole.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from relance import ops
from relance.raw_schema import LOAD_METADATA, VERSION_METADATA, Entity, ensure_version_columns, entity
from relance.sources.base import SOURCE_ROW, EntityExtract
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)


BatchStatus = ops.BatchStatus


class IngestError(ValueError):
    """Extracted rows that cannot be loaded at all (e.g. a raw column is missing). Nothing is loaded."""


#: One file loaded (or skipped as already loaded) into one raw table: the row ``ops.ingest_batches`` keeps.
BatchResult = ops.BatchRecord


@dataclass(frozen=True)
class LoadReport:
    """All batches of one load, in extract order."""

    flow_run_id: str | None
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def batch_ids(self) -> list[str]:
        """Ids of every batch, loaded or unchanged."""
        return [b.batch_id for b in self.batches]

    @property
    def loaded_batch_ids(self) -> list[str]:
        """Ids of the batches that read a new file (the ones worth validating)."""
        return [b.batch_id for b in self.batches if b.status == "loaded"]

    @property
    def rows_loaded(self) -> int:
        """Rows appended to raw over all entities."""
        return sum(b.rows_loaded for b in self.batches)

    def batch(self, entity_name: str) -> BatchResult:
        """The batch of one entity; ``KeyError`` if that entity had no file."""
        for b in self.batches:
            if b.entity == entity_name:
                return b
        raise KeyError(entity_name)


def _q(identifier: str) -> str:
    """Quote a SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


# --- every source: extracts -> raw ---------------------------------------------------------------------------

_STAGE = "_relance_stage"
_TYPED = "_relance_typed"
#: Leading/trailing whitespace trimmed from id columns: RE2 ``\s`` plus no-break spaces and the BOM.
_EDGE_WHITESPACE = r"^[\s\x{00A0}\x{2007}\x{202F}\x{FEFF}]+|[\s\x{00A0}\x{2007}\x{202F}\x{FEFF}]+$"
#: Exact scale a value is compared at before it is cast to its raw type (beyond it: floating-point noise).
_EXACT = "DECIMAL(38,10)"
_EXCLUDED_STATES = list(ops.EXCLUDED_STATES)


@dataclass(frozen=True)
class RejectedRow:
    """A source row kept out of raw at load, with the reason (also written to ops.quarantine)."""

    entity: str
    row_number: int
    reason: str


@dataclass(frozen=True)
class RetiredKeys:
    """Keys a full-snapshot load found gone from their source: tombstones appended to ``batch_id``."""

    entity: str
    batch_id: str
    rows: int


@dataclass(frozen=True)
class ExtractLoadReport(LoadReport):
    """:class:`LoadReport` of :func:`load_extracts`, with the rejected rows' reasons (a sample per batch) and the
    keys full-snapshot extracts retired (tombstones, not counted in ``rows_loaded``)."""

    source_name: str = ""
    rejected: list[RejectedRow] = field(default_factory=list)
    dry_run: bool = False
    retired: list[RetiredKeys] = field(default_factory=list)

    @property
    def rows_retired(self) -> int:
        """Tombstones appended over all entities."""
        return sum(r.rows for r in self.retired)


def read_watermarks(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """Last stored high-water mark per entity of one source (empty before the first load)."""
    ensure_schemas(con)
    return ops.read_watermarks(con, source_name)


def _blank_to_null(col: str) -> str:
    """Text cells that are empty or blank mean 'no value'; typed cells pass through."""
    c = _q(col)
    return f"CASE WHEN TRY_CAST({c} AS VARCHAR) IS NULL OR trim(CAST({c} AS VARCHAR)) = '' THEN NULL ELSE {c} END"


def _typed_expr(col: str, typ: str, ent: Entity) -> str:
    """The raw-typed value of a staged column: blank is null, ids trimmed, then ``TRY_CAST``."""
    value = _blank_to_null(col)
    if col in ent.id_columns:
        value = f"nullif(regexp_replace(CAST({value} AS VARCHAR), '{_EDGE_WHITESPACE}', '', 'g'), '')"
    return f"TRY_CAST({value} AS {typ})"


def _scale(typ: str) -> int | None:
    """Decimals a numeric raw type keeps (``DECIMAL(18,2)`` -> 2, ``INTEGER`` -> 0); None for other types."""
    if typ == "INTEGER":
        return 0
    if typ.startswith("DECIMAL("):
        return int(typ.rstrip(")").split(",")[1])
    return None


def _basename(path: str) -> str:
    """The file name of a path written with / or \\ separators."""
    return re.split(r"[/\\]", path)[-1]


def current_versions_sql(ent: Entity) -> str:
    """SELECT of the current version of every key of ``ent`` (deleted or not), with its raw columns.

    The rule of :mod:`relance.raw_schema` (the staging macro ``current_raw_rows`` applies the same one, and also
    drops contract-quarantined rows): the latest row by ``_loaded_at`` then ``_load_seq``, among rows whose batch is
    not failed, superseded or quarantined. Takes one parameter: the list of excluded batch states.
    """
    keys = ", ".join(f"r.{_q(k)}" for k in ent.key)
    return f"""
        SELECT * EXCLUDE (_version_rank) FROM (
            SELECT r.*, row_number() OVER (
                PARTITION BY {keys} ORDER BY r._loaded_at DESC, r._load_seq DESC NULLS LAST, r._batch_id DESC
            ) AS _version_rank
            FROM {ent.qualified} AS r
            WHERE NOT EXISTS (
                SELECT 1 FROM ops.ingest_batches AS b
                WHERE b.batch_id = r._batch_id AND list_contains(?::VARCHAR[], b.validation_state)
            )
        ) WHERE _version_rank = 1"""


def _stage_extract(con: duckdb.DuckDBPyConnection, ext: EntityExtract) -> list[str]:
    """Materialise the extract as a temp table (scanned once, even when streamed); return its columns."""
    con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    if isinstance(ext.table, str):
        source = f"({ext.table})"
    else:
        con.register("_relance_extract", ext.table)
        source = "_relance_extract"
    try:
        con.execute(f"CREATE TEMP TABLE {_STAGE} AS SELECT * FROM {source}")
    except duckdb.Error as exc:
        raise IngestError(f"{ext.source_file}: cannot read {ext.entity} rows: {str(exc).splitlines()[0]}") from exc
    finally:
        if not isinstance(ext.table, str):
            con.unregister("_relance_extract")
    return [r[0] for r in con.execute(f"DESCRIBE {_STAGE}").fetchall()]


def _type_extract(con: duckdb.DuckDBPyConnection, ext: EntityExtract, ent: Entity) -> None:
    """Stage the extract and type it into ``_relance_typed``: ``_row`` (source row), each raw column typed and
    its ``_src_`` original. Raises :class:`IngestError` when raw columns are missing."""
    columns = _stage_extract(con, ext)
    missing = [c for c in ent.columns if c not in columns]
    if missing:
        raise IngestError(
            f"{ext.source_file}: {ext.entity} rows lack column(s) {', '.join(missing)} "
            f"(has: {', '.join(c for c in columns if c != SOURCE_ROW)})"
        )
    extra = [c for c in columns if c not in ent.columns and c != SOURCE_ROW]
    if extra:
        log.warning("%s: ignoring column(s) %s not in raw.%s", ext.source_file, ", ".join(extra), ext.entity)
    row_expr = SOURCE_ROW if SOURCE_ROW in columns else "row_number() OVER ()"  # the staged table's (source) order
    typed = ", ".join(
        f"{_typed_expr(c, t, ent)} AS {_q(c)}, {_blank_to_null(c)} AS {_q('_src_' + c)}" for c, t in ent.columns.items()
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TYPED} AS SELECT CAST({row_expr} AS BIGINT) AS _row, {typed} FROM {_STAGE}"
    )
    con.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def _bad_value_checks(ent: Entity) -> list[tuple[str, str, str, str]]:
    """(column, check, expectation, reason) per way a typed value can be wrong: it did not cast, or the cast
    rounded it."""
    checks = []
    for c, t in ent.columns.items():
        src, typed = _q("_src_" + c), _q(c)
        if t == "VARCHAR":
            continue
        checks.append((c, f"{src} IS NOT NULL AND {typed} IS NULL", "cast", f"is not a valid {t}"))
        scale = _scale(t)
        if scale is not None:
            exact = f"TRY_CAST({src} AS {_EXACT})"
            what = f"more than {scale} decimals" if scale else "decimals"
            # the DOUBLE comparison first, in a CASE so DuckDB evaluates the exact one only on the rows where the
            # doubles differ (casting text to a 38-digit DECIMAL is ~200x slower; an AND under NOT is not lazy)
            quick = f"TRY_CAST({src} AS DOUBLE) IS DISTINCT FROM CAST({typed} AS DOUBLE)"
            check = (
                f"CASE WHEN {typed} IS NOT NULL AND {quick} "
                f"THEN coalesce({exact} <> CAST({typed} AS {_EXACT}), false) ELSE false END"
            )
            checks.append((c, check, "rounding", f"has {what}: {t} would round it"))
    return checks


def _quarantine_bad_rows(
    con: duckdb.DuckDBPyConnection,
    ext: EntityExtract,
    ent: Entity,
    *,
    batch_id: str,
    loaded_at: datetime,
    flow_run_id: str | None,
) -> tuple[str, list[ops.QuarantineRow]]:
    """Quarantine the typed rows with a bad value and the adapter's rejects; return (the bad-row predicate, rows)."""
    checks = _bad_value_checks(ent)
    bad_any = " OR ".join(f"({chk})" for _, chk, _, _ in checks) or "false"
    cast_any = " OR ".join(f"({chk})" for _, chk, kind, _ in checks if kind == "cast") or "false"
    reasons = (
        " || ".join(
            f"CASE WHEN {chk} THEN 'column {c}: ' || {_q('_src_' + c)}::VARCHAR || ' {why}; ' ELSE '' END"
            for c, chk, _, why in checks
        )
        or "''"
    )
    key_expr = "concat_ws('|', " + ", ".join(f"CAST({_q(k)} AS VARCHAR)" for k in ent.key) + ")"
    bad = con.execute(
        f"SELECT _row, {key_expr}, rtrim({reasons}, '; '), to_json(struct_pack("
        + ", ".join(f"{_q(c)} := {_q('_src_' + c)}" for c in ent.columns)
        + f")), {cast_any} FROM {_TYPED} WHERE {bad_any} ORDER BY _row"
    ).fetchall()
    quarantine = [
        ops.QuarantineRow(
            batch_id=batch_id,
            entity=ext.entity,
            row_number=int(r[0]),
            natural_key=r[1],
            expectation="cast" if r[4] else "rounding",
            severity="error",
            reason=f"{ext.source_file}, row {r[0]}: {r[2]}",
            row_json=r[3],
            stage="load",
            quarantined_at=loaded_at,
            flow_run_id=flow_run_id,
        )
        for r in bad
    ]
    quarantine += [
        ops.QuarantineRow(
            batch_id=batch_id,
            entity=ext.entity,
            row_number=rj.row_number,
            natural_key=None,
            expectation="parse",
            severity="error",
            reason=f"{ext.source_file}, row {rj.row_number}: {rj.reason}",
            row_json=json.dumps(rj.raw, default=str),
            stage="load",
            quarantined_at=loaded_at,
            flow_run_id=flow_run_id,
        )
        for rj in ext.rejects
    ]
    ops.quarantine(con, quarantine)
    return bad_any, quarantine


def _log_trimmed_ids(ext: EntityExtract, ent: Entity, con: duckdb.DuckDBPyConnection) -> None:
    """Say how many id values lost surrounding whitespace (the documented normalisation, never silent)."""
    ids = ent.id_columns
    if not ids:
        return
    changed = " OR ".join(f"CAST({_q('_src_' + c)} AS VARCHAR) IS DISTINCT FROM {_q(c)}" for c in ids)
    n = con.execute(f"SELECT count(*) FROM {_TYPED} WHERE {changed}").fetchone()[0]
    if n:
        log.info("%s: %s: trimmed surrounding whitespace from the ids of %d row(s)", ext.source_file, ext.entity, n)


def _next_load_seq(con: duckdb.DuckDBPyConnection, ent: Entity) -> int:
    return int(con.execute(f"SELECT coalesce(max(_load_seq), 0) FROM {ent.qualified}").fetchone()[0])


def _append_changed_rows(
    con: duckdb.DuckDBPyConnection, ext: EntityExtract, ent: Entity, bad_any: str, meta: list[object]
) -> int:
    """Append the good typed rows whose hash differs from their key's current version; return how many."""
    hash_expr = "md5(to_json(struct_pack({})))".format(", ".join(f"{_q(c)} := {_q(c)}" for c in ent.columns))
    key_match = " AND ".join(f"cur.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)}" for k in ent.key)
    in_load = " AND ".join(f"l.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)}" for k in ent.key)
    target_cols = ", ".join(_q(c) for c in [*ent.columns, *LOAD_METADATA, *VERSION_METADATA])
    cols = ", ".join(_q(c) for c in ent.columns)
    return int(
        con.execute(
            f"""
            INSERT INTO {ent.qualified} ({target_cols})
            WITH s AS (
                SELECT _row, {cols}, {hash_expr} AS _row_hash FROM {_TYPED} WHERE NOT ({bad_any})
            ),
            cur AS (
                SELECT * FROM ({current_versions_sql(ent)}) AS l
                WHERE EXISTS (SELECT 1 FROM s WHERE {in_load})
            )
            SELECT {", ".join(f"s.{_q(c)}" for c in ent.columns)}, ?, ?, ?, s._row_hash, ?, ?,
                ? + row_number() OVER (ORDER BY s._row), false, s._row
            FROM s LEFT JOIN cur ON {key_match}
            WHERE cur._row_hash IS DISTINCT FROM s._row_hash
            """,
            [_EXCLUDED_STATES, *meta, _next_load_seq(con, ent)],
        ).fetchone()[0]
    )


def _load_extract(
    con: duckdb.DuckDBPyConnection,
    ext: EntityExtract,
    *,
    source_name: str,
    loaded_at: datetime,
    flow_run_id: str | None,
    rejected: list[RejectedRow],
    snapshots: _Snapshots,
) -> BatchResult:
    ent = entity(ext.entity)
    batch_id = uuid.uuid4().hex
    previous = ops.loaded_file_rows(con, entity=ext.entity, file_hash=ext.file_hash, source_name=source_name)
    if previous is not None:
        n = previous
        result = BatchResult(
            batch_id, ext.entity, ext.source_file, ext.file_hash, n, 0, n, 0, "unchanged", source_name, loaded_at,
            flow_run_id,
        )  # fmt: skip
        log.info("%s/%s: %s already loaded (hash %s…)", source_name, ext.entity, ext.source_file, ext.file_hash[:12])
    else:
        _type_extract(con, ext, ent)
        bad_any, quarantine = _quarantine_bad_rows(
            con, ext, ent, batch_id=batch_id, loaded_at=loaded_at, flow_run_id=flow_run_id
        )
        rejected += [RejectedRow(ext.entity, q.row_number, q.reason) for q in quarantine[:50]]
        _log_trimmed_ids(ext, ent, con)
        if ext.entity in snapshots.entities:
            snapshots.add_keys(con, ext, ent)
        n_bad = len(quarantine) - len(ext.rejects)
        good = con.execute(f"SELECT count(*) FROM {_TYPED} WHERE NOT ({bad_any})").fetchone()[0]
        meta = [batch_id, ext.source_file, ext.file_hash, loaded_at, flow_run_id]
        inserted = _append_changed_rows(con, ext, ent, bad_any, meta)
        n_read = int(good) + n_bad + len(ext.rejects)
        result = BatchResult(
            batch_id,
            ext.entity,
            ext.source_file,
            ext.file_hash,
            n_read,
            inserted,
            int(good) - inserted,
            n_bad + len(ext.rejects),
            "loaded",
            source_name,
            loaded_at,
            flow_run_id,
        )
        con.execute(f"DROP TABLE IF EXISTS {_TYPED}")
        log.info(
            "%s/%s: read %d, appended %d, unchanged %d, quarantined %d",
            source_name,
            ext.entity,
            n_read,
            result.rows_loaded,
            result.rows_unchanged,
            result.rows_quarantined,
        )
    ops.record_batch(con, result)
    if ext.watermark is not None:
        ops.set_watermark(
            con,
            source_name=source_name,
            entity=ext.entity,
            watermark=ext.watermark,
            updated_at=loaded_at,
            batch_id=result.batch_id,
        )
    return result


# --- full snapshots: what a source no longer holds is retired ------------------------------------------------


def _snapshot_table(entity_name: str) -> str:
    return f"_relance_snapshot_{entity_name}"


@dataclass
class _Snapshots:
    """The keys one load holds of each entity it has a full-snapshot extract of: per snapshot scope for the
    snapshot's own extracts, and (scope null: held for every scope) for the load's other extracts of that entity."""

    entities: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)

    @staticmethod
    def scope_of(ext: EntityExtract) -> str | None:
        """The file name a ``file``-scoped snapshot is complete for; None for a whole-source snapshot."""
        return _basename(ext.source_file) if ext.snapshot_scope == "file" else None

    def add_keys(self, con: duckdb.DuckDBPyConnection, ext: EntityExtract, ent: Entity) -> None:
        """Record the keys of the typed extract (rows with bad values too: the source still holds them)."""
        table = _snapshot_table(ent.name)
        keys = ", ".join(_q(k) for k in ent.key)
        if table not in self.tables:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {keys}, ''::VARCHAR AS _scope FROM {_TYPED} LIMIT 0"
            )
            self.tables.add(table)
        scope = (self.scope_of(ext) or "") if ext.full_snapshot else None
        con.execute(f"INSERT INTO {table} SELECT {keys}, ? FROM {_TYPED}", [scope])

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in self.tables:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        self.tables.clear()


def _retire_missing_keys(
    con: duckdb.DuckDBPyConnection,
    snapshots: _Snapshots,
    extracts: list[EntityExtract],
    batches: list[BatchResult],
    *,
    source_name: str,
    loaded_at: datetime,
    flow_run_id: str | None,
) -> list[RetiredKeys]:
    """Append a tombstone for every live current key of a full-snapshot (source, entity[, file name]) that no
    extract of the load holds. See the module docstring for when nothing is retired."""
    groups: dict[tuple[str, str | None], list[tuple[EntityExtract, BatchResult]]] = {}
    for ext, batch in zip(extracts, batches, strict=True):
        if ext.full_snapshot:
            groups.setdefault((ext.entity, snapshots.scope_of(ext)), []).append((ext, batch))
    changed = {name for (name, _), members in groups.items() if any(b.status == "loaded" for _, b in members)}
    for ext, batch in zip(extracts, batches, strict=True):
        if ext.entity in changed and batch.status == "unchanged":  # its keys are still held: read them again
            ent = entity(ext.entity)
            _type_extract(con, ext, ent)
            snapshots.add_keys(con, ext, ent)
            con.execute(f"DROP TABLE IF EXISTS {_TYPED}")
    rejected_files = {e.source_file for e in extracts if e.rejects}
    retired: list[RetiredKeys] = []
    for (entity_name, scope), members in groups.items():
        loaded = [b for _, b in members if b.status == "loaded"]
        if not loaded:
            continue  # every file as loaded before: the state they gave has not changed
        where = f"{source_name}/{entity_name}" + (f" ({scope})" if scope else "")
        if any(e.source_file in rejected_files for e, _ in members):
            log.warning("%s: not retiring missing keys: the snapshot has rows that could not be read", where)
            continue
        table = _snapshot_table(entity_name)
        held = con.execute(f"SELECT count(*) FROM {table} WHERE _scope = ?", [scope or ""]).fetchone()[0]
        if held == 0:
            log.warning("%s: not retiring missing keys: the snapshot is empty", where)
            continue
        target = loaded[-1]
        n = _append_tombstones(
            con,
            entity(entity_name),
            table,
            scope,
            source_name=source_name,
            batch=target,
            loaded_at=loaded_at,
            flow_run_id=flow_run_id,
        )
        if n:
            log.info("%s: %d key(s) no longer in the snapshot: tombstones in batch %s", where, n, target.batch_id)
            retired.append(RetiredKeys(entity_name, target.batch_id, n))
    return retired


def _append_tombstones(
    con: duckdb.DuckDBPyConnection,
    ent: Entity,
    snapshot: str,
    scope: str | None,
    *,
    source_name: str,
    batch: BatchResult,
    loaded_at: datetime,
    flow_run_id: str | None,
) -> int:
    cols = ", ".join(f"cur.{_q(c)}" for c in ent.columns)
    tomb_hash = "md5(to_json(struct_pack({}, _deleted := true)))".format(
        ", ".join(f"{_q(c)} := cur.{_q(c)}" for c in ent.columns)
    )
    held = " AND ".join(f"h.{_q(k)} IS NOT DISTINCT FROM cur.{_q(k)}" for k in ent.key)
    keys = ", ".join(f"cur.{_q(k)}" for k in ent.key)
    target_cols = ", ".join(_q(c) for c in [*ent.columns, *LOAD_METADATA, *VERSION_METADATA])
    file_scope = "AND regexp_extract(b.source_file, '[^/\\\\]+$') = ?" if scope is not None else ""
    params: list[object] = [
        batch.batch_id,
        batch.source_file,
        batch.file_hash,
        loaded_at,
        flow_run_id,
        _next_load_seq(con, ent),
        _EXCLUDED_STATES,
        ent.name,
        source_name,
        *([scope] if scope is not None else []),
        scope or "",
    ]
    return int(
        con.execute(
            f"""
            INSERT INTO {ent.qualified} ({target_cols})
            SELECT {cols}, ?, ?, ?, {tomb_hash}, ?, ?, ? + row_number() OVER (ORDER BY {keys}), true, NULL
            FROM ({current_versions_sql(ent)}) AS cur
            JOIN ops.ingest_batches AS b ON b.batch_id = cur._batch_id
            WHERE NOT coalesce(cur._deleted, false)
                AND b.entity = ? AND coalesce(b.source_name, '') = ? {file_scope}
                AND NOT EXISTS (SELECT 1 FROM {snapshot} AS h WHERE (h._scope = ? OR h._scope IS NULL) AND {held})
            """,
            params,
        ).fetchone()[0]
    )


def load_extracts(
    con: duckdb.DuckDBPyConnection,
    extracts: list[EntityExtract],
    *,
    source_name: str,
    flow_run_id: str | None,
    dry_run: bool = False,
    in_transaction: bool = False,
) -> ExtractLoadReport:
    """Load what a source adapter extracted into the raw tables, in one transaction.

    Per extract: values are cast to the raw types with ``TRY_CAST`` (ids trimmed of surrounding whitespace); a row
    with a non-empty value that does not cast or that the cast would round, or that the adapter rejected, goes to
    ``ops.quarantine`` with the reason (file, row, column, value, what was expected) instead of raw; the others are
    appended when they differ from their key's current version, numbered in load order (``_load_seq``). An extract
    whose file hash was already loaded for this source is an ``unchanged`` batch. Then full-snapshot extracts
    retire the keys their source no longer holds (tombstones, :attr:`ExtractLoadReport.retired`). Watermarks move
    only when the load commits. Counts reconcile per batch: rows read = loaded + unchanged + quarantined.

    With ``dry_run`` everything runs and is reported, then rolled back: nothing is written. With
    ``in_transaction`` the caller's open transaction is used and the caller commits or rolls back.

    Raises:
        IngestError: an extract cannot be read or lacks raw columns. Nothing is loaded.
    """
    ensure_schemas(con)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    report = ExtractLoadReport(
        flow_run_id=flow_run_id,
        source_name=source_name,
        dry_run=dry_run,
    )
    own_transaction = not in_transaction
    if own_transaction:
        con.begin()
    snapshots = _Snapshots(entities={e.entity for e in extracts if e.full_snapshot})
    try:
        ensure_version_columns(con)
        for ext in extracts:
            report.batches.append(
                _load_extract(
                    con,
                    ext,
                    source_name=source_name,
                    loaded_at=loaded_at,
                    flow_run_id=flow_run_id,
                    rejected=report.rejected,
                    snapshots=snapshots,
                )
            )
        report.retired.extend(
            _retire_missing_keys(
                con,
                snapshots,
                extracts,
                report.batches,
                source_name=source_name,
                loaded_at=loaded_at,
                flow_run_id=flow_run_id,
            )
        )
        snapshots.drop(con)
        if own_transaction and dry_run:
            con.rollback()
        elif own_transaction:
            con.commit()
    except IngestError:
        if own_transaction:
            con.rollback()
        raise
    except duckdb.Error as exc:
        if own_transaction:
            con.rollback()
        raise IngestError(f"{source_name}: load failed, nothing was loaded: {exc}") from exc
    except BaseException:
        if own_transaction:
            con.rollback()
        raise
    return report
