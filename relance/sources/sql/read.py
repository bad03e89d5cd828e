"""The read: probe every configured entity, then hand the loader one streamed extract per entity (rows fetched in
chunks as Arrow batches of text, one connection per stream, opened when the loader starts reading).

Every connection is read-only in the database (:func:`~relance.sources.sql.connection.engine_for`). Incremental
reads start again ``watermark_overlap`` before the stored watermark (default :data:`DEFAULT_WATERMARK_OVERLAP`),
so rows committed late with an ``updated_at`` at or below it are not skipped; the loader's row-hash
deduplication reports the rows read again as ``unchanged``. A value longer than the cell cap
(:mod:`relance.sources.limits`) keeps its row out of the stream: it becomes a reject (quarantined with column and
length), found while the stream is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from relance.raw_schema import ENTITIES
from relance.redaction import redact
from relance.sources.base import SOURCE_ROW, EntityExtract, Reject, text_schema
from relance.sources.limits import DEFAULT_LIMITS, InputLimits, oversized_raw, oversized_reason
from relance.sources.sql.config import SqlSourceConfig, load_sql_config
from relance.sources.sql.connection import connection_error, engine_for, query_error
from relance.sources.sql.errors import SqlConfigError, SqlConnectionError
from relance.sources.sql.probe import Plan, probe
from relance.sources.sql.values import as_text

log = logging.getLogger(__name__)

DEFAULT_WATERMARK_OVERLAP = timedelta(days=1)  # longer than any transaction an ERP keeps open; re-reads are cheap


def _batches(
    engine: Engine,
    config: SqlSourceConfig,
    plan: Plan,
    schema: pa.Schema,
    *,
    max_cell_chars: int,
    rejects: list[Reject],
) -> Iterator[pa.RecordBatch]:
    """Stream the plan's rows in chunks of ``chunk_size`` as Arrow batches of text; one connection per stream.

    Rows holding a value over ``max_cell_chars`` characters are appended to ``rejects`` instead.
    """
    columns = list(ENTITIES[plan.entity])
    row_number = 0
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connection_error(config, exc) from None
    with conn:
        try:
            result = conn.execution_options(stream_results=True, max_row_buffer=config.chunk_size).execute(
                sa.text(plan.sql), plan.params
            )
            try:
                while rows := result.fetchmany(config.chunk_size):
                    texts = [[as_text(v) for v in row] for row in rows]
                    numbers = list(range(row_number + 1, row_number + len(rows) + 1))
                    row_number += len(rows)
                    keep = []
                    for n, values in zip(numbers, texts, strict=True):
                        long = next(
                            (i for i, v in enumerate(values) if v is not None and len(v) > max_cell_chars), None
                        )
                        if long is None:
                            keep.append((n, values))
                            continue
                        raw = oversized_raw(dict(zip(columns, values, strict=True)), max_cell_chars)
                        why = oversized_reason(columns[long], len(values[long] or ""), max_cell_chars)
                        rejects.append(Reject(plan.entity, n, why, raw))
                    data: dict[str, list[Any]] = {c: [v[i] for _, v in keep] for i, c in enumerate(columns)}
                    data[SOURCE_ROW] = [n for n, _ in keep]
                    yield pa.RecordBatch.from_pydict(data, schema=schema)
            finally:
                result.close()
        except DBAPIError as exc:
            raise query_error(config, plan.entity, exc) from None
    log.info("%s.%s: streamed %d row(s)", config.name, plan.entity, row_number)


def _file_hash(query: str, plan: Plan) -> str:
    """sha256 of what was asked: the query, the watermark window (read from, previous, new) and the read time.

    Why the read time: a full read (no ``watermark_column``) reads whatever the table holds now, and an
    incremental one re-reads its overlap window, where late rows may have appeared since a read of the very same
    window; neither may be mistaken by the loader for an already loaded, unchanged file (its row-hash
    deduplication keeps what was already loaded out of raw).
    """
    window: list[str | None] = [plan.read_from, plan.previous_watermark, plan.new_watermark]
    payload = json.dumps(
        {"query": query, "watermark": window, "incremental": plan.incremental, "read_at": datetime.now(UTC).isoformat()}
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_sql_source(
    config_path_or_model: Path | str | SqlSourceConfig,
    *,
    watermarks: Mapping[str, str],
    entities: Sequence[str] | None = None,
    watermark_overlap: timedelta | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> list[EntityExtract]:
    """Read a declared SQL source into one streamed :class:`EntityExtract` per configured entity.

    Args:
        config_path_or_model: a YAML config path (``${VAR}`` substituted from the environment) or a validated
            :class:`SqlSourceConfig`.
        watermarks: last stored watermark per entity for this source (``relance.ingest.read_watermarks(con,
            config.name)``); entities without one are read in full.
        entities: read only these configured entities (default: all, in raw-schema order).
        watermark_overlap: how far before the stored watermark an incremental read starts again (``>=``):
            this argument, else the config's ``watermark_overlap`` when it has one, else
            :data:`DEFAULT_WATERMARK_OVERLAP`. Dates re-read whole days of it; other watermarks re-read from
            the stored value itself.
        limits: the cell cap (``limits.max_cell_chars``): a longer value makes its row a reject.

    Returns:
        Extracts whose ``table`` is a ``RecordBatchReader`` streaming the rows on first read, ``source_file``
        ``<url without password>#<entity>``, ``file_hash`` the sha256 of the query and watermark window, and
        ``watermark`` the new high-water mark (``None`` for entities without ``watermark_column``).

    Raises:
        SqlConfigError, SqlConnectionError, SqlAuthenticationError, SqlQueryError, SqlColumnsError: all
        :class:`SourceError`, raised before any row is streamed.
    """
    config = (
        config_path_or_model
        if isinstance(config_path_or_model, SqlSourceConfig)
        else load_sql_config(config_path_or_model)
    )
    wanted = [e for e in ENTITIES if e in config.entities]
    if entities is not None:
        unknown = [e for e in entities if e not in config.entities]
        if unknown:
            raise SqlConfigError(
                f"SQL source {config.name!r}: entity(ies) {', '.join(unknown)} not configured "
                f"(configured: {', '.join(config.entities)})"
            )
        wanted = [e for e in wanted if e in entities]
    overlap = watermark_overlap
    if overlap is None:
        overlap = getattr(config, "watermark_overlap", None) or DEFAULT_WATERMARK_OVERLAP
    engine = engine_for(config)
    plans: list[Plan] = []
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connection_error(config, exc) from None
    except SQLAlchemyError as exc:
        why = redact(str(exc), config.secret_values())
        raise SqlConnectionError(f"SQL source {config.name!r}: cannot connect to {config.safe_url}: {why}") from None
    with conn:
        for name in wanted:
            plans.append(probe(conn, config, name, watermarks.get(name), overlap))
    extracts = []
    for plan in plans:
        schema = text_schema(ENTITIES[plan.entity])
        rejects: list[Reject] = []
        batches = _batches(engine, config, plan, schema, max_cell_chars=limits.max_cell_chars, rejects=rejects)
        reader = pa.RecordBatchReader.from_batches(schema, batches)
        extracts.append(
            EntityExtract(
                entity=plan.entity,
                table=reader,
                source_file=f"{config.safe_url}#{plan.entity}",
                file_hash=_file_hash(config.entities[plan.entity].query, plan),
                watermark=plan.new_watermark,
                rejects=rejects,
            )
        )
        if plan.incremental:
            log.info(
                "%s.%s: %s row(s) from %s (watermark %s less the overlap), new watermark %s",
                config.name,
                plan.entity,
                plan.rows_expected,
                plan.read_from,
                plan.previous_watermark,
                plan.new_watermark,
            )
        else:
            log.info("%s.%s: full read", config.name, plan.entity)
    return extracts
