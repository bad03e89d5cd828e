"""The read: probe every configured entity, then hand the loader one streamed extract per entity (rows fetched in
chunks as Arrow batches of text, one connection per stream, opened when the loader starts reading)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from relance.raw_schema import ENTITIES
from relance.sources.base import SOURCE_ROW, EntityExtract, text_schema
from relance.sources.sql.config import SqlSourceConfig, load_sql_config
from relance.sources.sql.connection import connection_error, engine_for, query_error
from relance.sources.sql.errors import SqlConfigError, SqlConnectionError
from relance.sources.sql.probe import Plan, probe
from relance.sources.sql.values import as_text

log = logging.getLogger(__name__)


def _batches(engine: Engine, config: SqlSourceConfig, plan: Plan, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Stream the plan's rows in chunks of ``chunk_size`` as Arrow batches of text; one connection per stream."""
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
                    data: dict[str, list[Any]] = {c: [as_text(row[i]) for row in rows] for i, c in enumerate(columns)}
                    data[SOURCE_ROW] = list(range(row_number + 1, row_number + len(rows) + 1))
                    row_number += len(rows)
                    yield pa.RecordBatch.from_pydict(data, schema=schema)
            finally:
                result.close()
        except DBAPIError as exc:
            raise query_error(config, plan.entity, exc) from None
    log.info("%s.%s: streamed %d row(s)", config.name, plan.entity, row_number)


def _file_hash(query: str, plan: Plan) -> str:
    """sha256 of what was asked: the query and the watermark window (previous, new).

    A full read (no ``watermark_column``) reads whatever the table holds now, so its hash also carries the read
    time: the same query is never mistaken by the loader for an already loaded, unchanged file.
    """
    window: list[str | None] = [plan.previous_watermark, plan.new_watermark]
    if not plan.incremental:
        window = [datetime.now(UTC).isoformat()]
    payload = json.dumps({"query": query, "watermark": window, "incremental": plan.incremental})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_sql_source(
    config_path_or_model: Path | str | SqlSourceConfig,
    *,
    watermarks: Mapping[str, str],
    entities: Sequence[str] | None = None,
) -> list[EntityExtract]:
    """Read a declared SQL source into one streamed :class:`EntityExtract` per configured entity.

    Args:
        config_path_or_model: a YAML config path (``${VAR}`` substituted from the environment) or a validated
            :class:`SqlSourceConfig`.
        watermarks: last stored watermark per entity for this source (``relance.ingest.read_watermarks(con,
            config.name)``); entities without one are read in full.
        entities: read only these configured entities (default: all, in raw-schema order).

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
    engine = engine_for(config)
    plans: list[Plan] = []
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connection_error(config, exc) from None
    except SQLAlchemyError as exc:
        raise SqlConnectionError(f"SQL source {config.name!r}: cannot connect to {config.safe_url}: {exc}") from None
    with conn:
        for name in wanted:
            plans.append(probe(conn, config, name, watermarks.get(name)))
    extracts = []
    for plan in plans:
        schema = text_schema(ENTITIES[plan.entity])
        reader = pa.RecordBatchReader.from_batches(schema, _batches(engine, config, plan, schema))
        extracts.append(
            EntityExtract(
                entity=plan.entity,
                table=reader,
                source_file=f"{config.safe_url}#{plan.entity}",
                file_hash=_file_hash(config.entities[plan.entity].query, plan),
                watermark=plan.new_watermark,
            )
        )
        if plan.incremental:
            log.info(
                "%s.%s: %s row(s) past watermark %s, new watermark %s",
                config.name,
                plan.entity,
                plan.rows_expected,
                plan.previous_watermark,
                plan.new_watermark,
            )
        else:
            log.info("%s.%s: full read", config.name, plan.entity)
    return extracts
