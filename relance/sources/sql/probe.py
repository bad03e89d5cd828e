"""The probe: before anything is loaded, check that an entity's query returns the canonical columns, take the new
watermark, and build the query that streams the rows from the previous watermark (less the overlap window,
:func:`~relance.sources.sql.values.overlap_start`) up to the new one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from relance.raw_schema import ENTITIES, OPTIONAL_COLUMNS
from relance.sources.sql.config import SqlSourceConfig
from relance.sources.sql.connection import query_error
from relance.sources.sql.errors import SqlColumnsError
from relance.sources.sql.values import overlap_start, watermark_param, watermark_to_str

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What to read for one entity, decided by the probe."""

    entity: str
    sql: str
    params: dict[str, Any]
    result_columns: dict[str, str]  # canonical column -> column name as the database returns it
    incremental: bool  # the entity has a watermark_column
    previous_watermark: str | None
    new_watermark: str | None
    rows_expected: int | None  # rows from the re-read start on (incremental reads only)
    read_from: str | None = None  # the lower bound actually read (>=): previous watermark less the overlap


def probe(
    conn: sa.Connection,
    config: SqlSourceConfig,
    entity: str,
    previous: str | None,
    overlap: timedelta = timedelta(0),
) -> Plan:
    """Check the query's columns and take the new watermark; build the streaming query for one entity.

    An incremental read takes the rows with ``watermark_column >= overlap_start(previous)`` and at most the new
    watermark (``max`` taken now): rows committed late below the stored watermark are read again.
    """
    spec = config.entities[entity]
    quote = conn.dialect.identifier_preparer.quote
    try:
        result = conn.execute(sa.text(f"SELECT * FROM ({spec.query}) src WHERE 1 = 0"))
        returned = list(result.keys())
        result.close()
    except DBAPIError as exc:
        conn.rollback()
        raise query_error(config, entity, exc) from None
    by_lower = {name.lower(): name for name in returned}
    canonical = list(ENTITIES[entity])
    optional = set(OPTIONAL_COLUMNS.get(entity, ()))
    missing = [c for c in canonical if c.lower() not in by_lower and c not in optional]
    wm = spec.watermark_column
    if wm is not None and wm.lower() not in by_lower:
        missing.append(f"{wm} (watermark_column)")
    if missing:
        raise SqlColumnsError(
            f"SQL source {config.name!r}, entity {entity!r}: the query does not return column(s) "
            f"{', '.join(missing)} (returned: {', '.join(returned) or 'none'}; expected the canonical columns "
            f"{', '.join(canonical)}, aliased with AS)"
        )
    extra = [n for n in returned if n.lower() not in {c.lower() for c in canonical} and n.lower() != (wm or "").lower()]
    if extra:
        log.info("%s.%s: ignoring non-canonical column(s) %s", config.name, entity, ", ".join(extra))
    result_columns = {c: by_lower[c.lower()] for c in canonical if c.lower() in by_lower}
    # a column of OPTIONAL_COLUMNS the query does not return is NULL (a query written before it existed)
    select = ", ".join(
        f"src.{quote(result_columns[c])} AS {quote(c)}" if c in result_columns else f"NULL AS {quote(c)}"
        for c in canonical
    )
    params: dict[str, Any] = {}
    new: str | None = None
    rows_expected: int | None = None
    read_from: str | None = None
    if wm is None:
        sql = f"SELECT {select} FROM ({spec.query}) src"
    else:
        wm_col = f"src.{quote(by_lower[wm.lower()])}"
        after = f"{wm_col} >= :previous_watermark" if previous is not None else "1 = 1"
        if previous is not None:
            start = overlap_start(watermark_param(previous), overlap)
            params["previous_watermark"] = start
            read_from = watermark_to_str(start)
        try:
            count, top = conn.execute(
                sa.text(f"SELECT count(*), max({wm_col}) FROM ({spec.query}) src WHERE {after}"), params
            ).one()
        except DBAPIError as exc:
            conn.rollback()
            raise query_error(config, entity, exc) from None
        rows_expected = int(count)
        if top is None:  # nothing new: read nothing, keep the stored watermark
            new = previous
            sql = f"SELECT {select} FROM ({spec.query}) src WHERE 1 = 0"
            params = {}
        else:
            new = watermark_to_str(top)
            params["new_watermark"] = top
            sql = f"SELECT {select} FROM ({spec.query}) src WHERE {after} AND {wm_col} <= :new_watermark"
    return Plan(entity, sql, params, result_columns, wm is not None, previous, new, rows_expected, read_from)
