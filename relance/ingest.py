"""Load the demo export format from a landing directory into the append-only raw tables.

The landing directory holds one file per raw entity, ``<entity>.csv`` or ``<entity>.parquet``, whose
columns are exactly :data:`relance.raw_schema.ENTITIES[entity]` (any order). ``customers`` and
``invoices`` are required, the other entities are optional.

Everything is done inside DuckDB (``read_csv`` with explicit column types, ``read_parquet``,
``INSERT ... SELECT``): no file is ever loaded into pandas, so the same code streams large exports.

Idempotence works at two levels:

* file: a file whose sha256 was already loaded for that entity is recorded as an ``unchanged`` batch
  and nothing is read or inserted;
* row: every row gets ``_row_hash`` (md5 of its typed business columns as JSON) and only rows whose
  (natural key, ``_row_hash``) is not yet in raw are appended. A changed row is therefore appended
  again and staging keeps the latest version.

The whole load runs in one transaction: an :class:`IngestError` leaves raw and ``ops.ingest_batches``
untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from relance.raw_schema import ENTITIES, LOAD_METADATA, NATURAL_KEYS, entity
from relance.sources.base import EntityExtract
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

REQUIRED_ENTITIES: tuple[str, ...] = ("customers", "invoices")
SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
_HASH_CHUNK = 1 << 20

BatchStatus = Literal["loaded", "unchanged"]


class IngestError(ValueError):
    """Bad input in the landing directory: a missing file, wrong columns or a value that does not cast."""


@dataclass(frozen=True)
class BatchResult:
    """One file loaded (or skipped as already loaded) into one raw table."""

    batch_id: str
    entity: str
    source_file: str
    file_hash: str
    rows_read: int
    rows_loaded: int
    rows_unchanged: int
    rows_quarantined: int
    status: BatchStatus
    source_name: str | None = None


@dataclass(frozen=True)
class LoadReport:
    """All batches of one :func:`load_landing` call, in entity order."""

    landing_dir: Path
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


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _find_files(landing_dir: Path) -> dict[str, Path]:
    """Map entity -> landing file; raise :class:`IngestError` for missing required or ambiguous files."""
    if not landing_dir.is_dir():
        raise IngestError(f"landing directory {landing_dir} does not exist or is not a directory")
    found: dict[str, Path] = {}
    for name in ENTITIES:
        candidates = [landing_dir / f"{name}{sfx}" for sfx in SUPPORTED_SUFFIXES]
        present = [p for p in candidates if p.is_file()]
        if len(present) > 1:
            raise IngestError(
                f"{landing_dir}: both {present[0].name} and {present[1].name} exist for entity {name!r}; "
                "keep exactly one"
            )
        if present:
            found[name] = present[0]
        elif name in REQUIRED_ENTITIES:
            raise IngestError(
                f"{landing_dir}: required file {name}.csv (or {name}.parquet) is missing; "
                f"required entities: {', '.join(REQUIRED_ENTITIES)}"
            )
    known = {f"{n}{s}" for n in ENTITIES for s in SUPPORTED_SUFFIXES}
    for p in sorted(landing_dir.iterdir()):
        if p.is_file() and p.name not in known and not p.name.startswith("."):
            log.warning("ignoring %s: not a raw entity file (expected <entity>.csv|.parquet)", p)
    return found


def _reader_sql(path: Path, columns: dict[str, str], *, typed: bool) -> str:
    """DuckDB table function reading ``path``: typed by ``columns`` (CSV) or all columns as stored."""
    lit = _sql_str(str(path))
    if path.suffix == ".parquet":
        return f"read_parquet({lit})"
    if not typed:
        return f"read_csv({lit}, header = true, all_varchar = true)"
    types = ", ".join(f"{_sql_str(c)}: {_sql_str(t)}" for c, t in columns.items())
    return f"read_csv({lit}, header = true, types = {{{types}}})"


def _check_columns(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> None:
    """Raise :class:`IngestError` naming the file and every missing or unexpected column."""
    expected = list(ENTITIES[name])
    try:
        rel = con.sql(f"SELECT * FROM {_reader_sql(path, ENTITIES[name], typed=False)} LIMIT 0")
        actual = list(rel.columns)
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read file as {path.suffix[1:]}: {exc}") from exc
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    dupes = sorted({c for c in actual if actual.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}")
    if dupes:
        problems.append(f"duplicated column(s) {', '.join(dupes)}")
    if problems:
        raise IngestError(
            f"{path}: {'; '.join(problems)} for entity {name!r} (expected exactly: {', '.join(expected)})"
        )


_CSV_CAST_RE = re.compile(
    r'CSV Error on Line: (?P<line>\d+).*?Error when converting column "(?P<column>[^"]+)"\. '
    r'Could not convert string "(?P<value>.*?)" to \'(?P<type>[^\']+)\'',
    re.S,
)


def _cast_error(path: Path, name: str, exc: duckdb.Error) -> IngestError:
    """Turn a DuckDB conversion error into an :class:`IngestError` naming file, column, line and type."""
    columns = ENTITIES[name]
    m = _CSV_CAST_RE.search(str(exc))
    if m:
        col = m["column"]
        return IngestError(
            f"{path}, line {m['line']}, column {col!r}: value {m['value']!r} is not a valid "
            f"{columns.get(col, m['type'])}"
        )
    # Parquet (or an unexpected message): find the first offending value ourselves, on a scratch connection
    # because the load transaction is aborted by now.
    raw = _reader_sql(path, columns, typed=False)
    with duckdb.connect() as scratch:
        for col, typ in columns.items():
            if typ == "VARCHAR":
                continue
            q = (
                f"SELECT n, v FROM (SELECT row_number() OVER () AS n, {_q(col)} AS v FROM {raw}) "
                f"WHERE v IS NOT NULL AND TRY_CAST(v AS {typ}) IS NULL LIMIT 1"
            )
            try:
                hit = scratch.sql(q).fetchone()
            except duckdb.Error:
                continue
            if hit:
                where = f"line {hit[0] + 1}" if path.suffix == ".csv" else f"row {hit[0]}"
                return IngestError(f"{path}, {where}, column {col!r}: value {str(hit[1])!r} is not a valid {typ}")
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return IngestError(f"{path}: values do not match the expected column types: {first_line}")


def _q(identifier: str) -> str:
    """Quote a SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def _previous_batch(con: duckdb.DuckDBPyConnection, name: str, file_hash: str) -> tuple[int] | None:
    """rows_read of an earlier batch of the same entity and file hash, if any."""
    return con.execute(
        "SELECT rows_read FROM ops.ingest_batches WHERE entity = ? AND file_hash = ? AND status = 'loaded' "
        "ORDER BY loaded_at LIMIT 1",
        [name, file_hash],
    ).fetchone()


def _load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    *,
    loaded_at: datetime,
    flow_run_id: str | None,
) -> BatchResult:
    """Load one landing file into ``raw.<name>`` inside the caller's transaction."""
    ent = entity(name)
    batch_id = uuid.uuid4().hex
    file_hash = file_sha256(path)
    source_file = str(path.resolve())

    previous = _previous_batch(con, name, file_hash)
    if previous is not None:
        rows_read = int(previous[0] or 0)
        result = BatchResult(batch_id, name, source_file, file_hash, rows_read, 0, rows_read, 0, "unchanged")
        log.info("%s: %s already loaded (sha256 %s…), nothing to do", name, path.name, file_hash[:12])
    else:
        _check_columns(con, path, name)
        reader = _reader_sql(path, ent.columns, typed=True)
        cast_cols = ", ".join(f"CAST({_q(c)} AS {t}) AS {_q(c)}" for c, t in ent.columns.items())
        hash_expr = "md5(to_json(struct_pack({})))".format(", ".join(f"{_q(c)} := {_q(c)}" for c in ent.columns))
        key_match = " AND ".join(f"r.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)}" for k in ent.key)
        target_cols = ", ".join(_q(c) for c in [*ent.columns, *LOAD_METADATA])
        select_cols = ", ".join(f"s.{_q(c)}" for c in ent.columns)
        try:
            rows_read = int(con.sql(f"SELECT count(*) FROM {reader}").fetchone()[0])  # type: ignore[index]
            inserted = con.execute(
                f"""
                INSERT INTO {ent.qualified} ({target_cols})
                WITH typed AS (SELECT {cast_cols} FROM {reader}),
                     s AS (SELECT *, {hash_expr} AS _row_hash FROM typed)
                SELECT {select_cols}, ?, ?, ?, s._row_hash, ?, ?
                FROM s
                WHERE NOT EXISTS (
                    SELECT 1 FROM {ent.qualified} r WHERE r._row_hash = s._row_hash AND {key_match}
                )
                """,
                [batch_id, source_file, file_hash, loaded_at, flow_run_id],
            )
            rows_loaded = int(inserted.fetchone()[0])  # type: ignore[index]
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            raise _cast_error(path, name, exc) from exc
        result = BatchResult(
            batch_id,
            name,
            source_file,
            file_hash,
            rows_read,
            rows_loaded,
            rows_read - rows_loaded,
            0,
            "loaded",
        )
        log.info(
            "%s: read %d rows from %s, appended %d, unchanged %d",
            name,
            rows_read,
            path.name,
            rows_loaded,
            result.rows_unchanged,
        )
    con.execute(
        "INSERT INTO ops.ingest_batches (batch_id, entity, source_file, file_hash, rows_read, rows_loaded, "
        "rows_quarantined, rows_unchanged, status, loaded_at, flow_run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            result.entity,
            result.source_file,
            result.file_hash,
            result.rows_read,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_unchanged,
            result.status,
            loaded_at,
            flow_run_id,
        ],
    )
    return result


def load_landing(con: duckdb.DuckDBPyConnection, landing_dir: Path, *, flow_run_id: str | None) -> LoadReport:
    """Load every entity file of ``landing_dir`` into the raw tables, in one transaction.

    Args:
        con: an open DuckDB connection with no transaction in progress.
        landing_dir: directory holding ``<entity>.csv`` or ``<entity>.parquet`` files.
        flow_run_id: orchestrator run id stored with every row and batch (``None`` outside a flow).

    Returns:
        A :class:`LoadReport` with one :class:`BatchResult` per file found.

    Raises:
        IngestError: missing required file, wrong columns, or a value that does not cast. Nothing is loaded.
    """
    landing_dir = Path(landing_dir)
    ensure_schemas(con)
    files = _find_files(landing_dir)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    report = LoadReport(landing_dir=landing_dir, flow_run_id=flow_run_id)
    con.begin()
    try:
        for name, path in files.items():
            report.batches.append(_load_file(con, path, name, loaded_at=loaded_at, flow_run_id=flow_run_id))
        con.commit()
    except IngestError:
        con.rollback()
        raise
    except duckdb.Error as exc:
        con.rollback()
        raise IngestError(f"{landing_dir}: load failed, nothing was loaded: {exc}") from exc
    except BaseException:
        con.rollback()
        raise
    log.info("loaded %d rows from %s in %d batch(es)", report.rows_loaded, landing_dir, len(report.batches))
    return report


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
    rows = con.execute(
        "SELECT entity, watermark FROM ops.source_watermarks WHERE source_name = ?", [source_name]
    ).fetchall()
    return {e: w for e, w in rows if w is not None}


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
    previous = con.execute(
        "SELECT rows_read FROM ops.ingest_batches WHERE entity = ? AND file_hash = ? AND status = 'loaded' "
        "AND coalesce(source_name, '') = ? ORDER BY loaded_at LIMIT 1",
        [ext.entity, ext.file_hash, source_name],
    ).fetchone()
    if previous is not None:
        n = int(previous[0] or 0)
        result = BatchResult(batch_id, ext.entity, ext.source_file, ext.file_hash, n, 0, n, 0, "unchanged", source_name)
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
            (
                batch_id,
                ext.entity,
                int(r[0]),
                r[1],
                "load:cast",
                "error",
                f"{ext.source_file}, row {r[0]}: {r[2]}",
                r[3],
                loaded_at,
                flow_run_id,
            )
            for r in bad
        ]
        quarantine += [
            (
                batch_id,
                ext.entity,
                rj.row_number,
                None,
                "load:parse",
                "error",
                f"{ext.source_file}, row {rj.row_number}: {rj.reason}",
                json.dumps(rj.raw, default=str),
                loaded_at,
                flow_run_id,
            )
            for rj in ext.rejects
        ]
        if quarantine:
            con.executemany(
                "INSERT INTO ops.quarantine (batch_id, entity, row_number, natural_key, expectation, severity, "
                "reason, row_json, quarantined_at, flow_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                quarantine,
            )
            rejected += [RejectedRow(ext.entity, q[2], q[6]) for q in quarantine[:50]]
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
    con.execute(
        "INSERT INTO ops.ingest_batches (batch_id, entity, source_file, file_hash, rows_read, rows_loaded, "
        "rows_quarantined, rows_unchanged, status, loaded_at, flow_run_id, source_name) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            result.entity,
            result.source_file,
            result.file_hash,
            result.rows_read,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_unchanged,
            result.status,
            loaded_at,
            flow_run_id,
            source_name,
        ],
    )
    if ext.watermark is not None:
        con.execute(
            "INSERT INTO ops.source_watermarks (source_name, entity, watermark, updated_at, batch_id) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_name, entity) DO UPDATE SET "
            "watermark = excluded.watermark, updated_at = excluded.updated_at, batch_id = excluded.batch_id",
            [source_name, ext.entity, ext.watermark, loaded_at, result.batch_id],
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
        landing_dir=Path(extracts[0].source_file) if extracts else Path("."),
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
