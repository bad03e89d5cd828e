"""The one loader every receivables source goes through: extracts -> append-only raw tables.

Source adapters (``relance.sources``: tabular profiles, FEC, SQL) hand over :class:`EntityExtract` objects;
:func:`load_extracts` does what must be the same for all of them:

* typing: each column is cast to its raw-schema type with ``TRY_CAST``; a row with a non-empty value that does
  not cast, or that the adapter rejected, goes to ``ops.quarantine`` with the reason (file, row, column, value,
  expected type) instead of raw, so rows read = loaded + unchanged + quarantined for every batch;
* idempotence at two levels: an extract whose hash was already loaded for the same source and entity is an
  ``unchanged`` batch; otherwise every row gets ``_row_hash`` (md5 of its typed business columns as JSON) and only
  rows whose (natural key, ``_row_hash``) is not yet in raw are appended. A changed row is appended again and
  staging keeps the latest version;
* watermarks per (source, entity) that move only when the load commits;
* one transaction for the whole load (or the caller's): an :class:`IngestError` leaves raw, ``ops.ingest_batches``
  and the watermarks untouched. Everything happens inside DuckDB; large files are streamed, never loaded whole.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from relance import ops
from relance.raw_schema import LOAD_METADATA, NATURAL_KEYS, entity
from relance.sources.base import EntityExtract
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


@dataclass(frozen=True)
class RejectedRow:
    """A source row kept out of raw at load, with the reason (also written to ops.quarantine)."""

    entity: str
    row_number: int
    reason: str


@dataclass(frozen=True)
class ExtractLoadReport(LoadReport):
    """:class:`LoadReport` of :func:`load_extracts`, with the rejected rows' reasons (a sample per batch)."""

    source_name: str = ""
    rejected: list[RejectedRow] = field(default_factory=list)
    dry_run: bool = False


def read_watermarks(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """Last stored high-water mark per entity of one source (empty before the first load)."""
    ensure_schemas(con)
    return ops.read_watermarks(con, source_name)


def _blank_to_null(col: str) -> str:
    """Text cells that are empty or blank mean 'no value'; typed cells pass through."""
    c = _q(col)
    return f"CASE WHEN TRY_CAST({c} AS VARCHAR) IS NULL OR trim(CAST({c} AS VARCHAR)) = '' THEN NULL ELSE {c} END"


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


def _load_extract(
    con: duckdb.DuckDBPyConnection,
    ext: EntityExtract,
    *,
    source_name: str,
    loaded_at: datetime,
    flow_run_id: str | None,
    rejected: list[RejectedRow],
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
        columns = _stage_extract(con, ext)
        missing = [c for c in ent.columns if c not in columns]
        if missing:
            raise IngestError(
                f"{ext.source_file}: {ext.entity} rows lack column(s) {', '.join(missing)} "
                f"(has: {', '.join(c for c in columns if c != '_source_row')})"
            )
        extra = [c for c in columns if c not in ent.columns and c != "_source_row"]
        if extra:
            log.warning("%s: ignoring column(s) %s not in raw.%s", ext.source_file, ", ".join(extra), ext.entity)
        row_expr = "_source_row" if "_source_row" in columns else "row_number() OVER ()"
        typed = ", ".join(
            f"TRY_CAST({_blank_to_null(c)} AS {t}) AS {_q(c)}, {_blank_to_null(c)} AS {_q('_src_' + c)}"
            for c, t in ent.columns.items()
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _relance_typed AS SELECT CAST({row_expr} AS BIGINT) AS _row, {typed} "
            f"FROM {_STAGE}"
        )
        # a non-empty value that does not cast to its raw type keeps the whole row out of raw, with the reason
        bad_checks = [
            (c, t, f"{_q('_src_' + c)} IS NOT NULL AND {_q(c)} IS NULL")
            for c, t in ent.columns.items()
            if t != "VARCHAR"
        ]
        bad_any = " OR ".join(chk for _, _, chk in bad_checks) or "false"
        reasons = (
            " || ".join(
                f"CASE WHEN {chk} THEN 'column {c}: ' || {_q('_src_' + c)}::VARCHAR || ' is not a valid {t}; ' "
                "ELSE '' END"
                for c, t, chk in bad_checks
            )
            or "''"
        )
        key_expr = "concat_ws('|', " + ", ".join(f"CAST({_q(k)} AS VARCHAR)" for k in NATURAL_KEYS[ext.entity]) + ")"
        bad = con.execute(
            f"SELECT _row, {key_expr}, rtrim({reasons}, '; '), to_json(struct_pack("
            + ", ".join(f"{_q(c)} := {_q('_src_' + c)}" for c in ent.columns)
            + f")) FROM _relance_typed WHERE {bad_any} ORDER BY _row"
        ).fetchall()
        quarantine = [
            ops.QuarantineRow(
                batch_id=batch_id,
                entity=ext.entity,
                row_number=int(r[0]),
                natural_key=r[1],
                expectation="cast",
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
        rejected += [RejectedRow(ext.entity, q.row_number, q.reason) for q in quarantine[:50]]
        hash_expr = "md5(to_json(struct_pack({})))".format(", ".join(f"{_q(c)} := {_q(c)}" for c in ent.columns))
        key_match = " AND ".join(f"r.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)}" for k in ent.key)
        target_cols = ", ".join(_q(c) for c in [*ent.columns, *LOAD_METADATA])
        select_cols = ", ".join(f"s.{_q(c)}" for c in ent.columns)
        good = con.execute(f"SELECT count(*) FROM _relance_typed WHERE NOT ({bad_any})").fetchone()[0]
        inserted = con.execute(
            f"""
            INSERT INTO {ent.qualified} ({target_cols})
            WITH s AS (
                SELECT {", ".join(_q(c) for c in ent.columns)}, {hash_expr} AS _row_hash
                FROM _relance_typed WHERE NOT ({bad_any})
            )
            SELECT {select_cols}, ?, ?, ?, s._row_hash, ?, ?
            FROM s
            WHERE NOT EXISTS (SELECT 1 FROM {ent.qualified} r WHERE r._row_hash = s._row_hash AND {key_match})
            """,
            [batch_id, ext.source_file, ext.file_hash, loaded_at, flow_run_id],
        ).fetchone()[0]
        n_read = int(good) + len(bad) + len(ext.rejects)
        result = BatchResult(
            batch_id,
            ext.entity,
            ext.source_file,
            ext.file_hash,
            n_read,
            int(inserted),
            int(good) - int(inserted),
            len(bad) + len(ext.rejects),
            "loaded",
            source_name,
            loaded_at,
            flow_run_id,
        )
        con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        con.execute("DROP TABLE IF EXISTS _relance_typed")
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

    Per extract: values are cast to the raw types with ``TRY_CAST``; a row with a non-empty value that does not
    cast, or that the adapter rejected, goes to ``ops.quarantine`` with the reason (file, row, column, value,
    expected type) instead of raw; the others are appended unless the same (natural key, row hash) is already
    there. An extract whose file hash was already loaded for this source is an ``unchanged`` batch. Watermarks
    move only when the load commits. Counts reconcile per batch: rows read = loaded + unchanged + quarantined.

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
    try:
        for ext in extracts:
            report.batches.append(
                _load_extract(
                    con,
                    ext,
                    source_name=source_name,
                    loaded_at=loaded_at,
                    flow_run_id=flow_run_id,
                    rejected=report.rejected,
                )
            )
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
