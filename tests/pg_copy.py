"""Copy DuckDB warehouse tables into PostgreSQL, for tests that build the dbt project on its ``postgres`` target.

Python writes only ``raw.*`` and ``ops.*`` (DuckDB); dbt reads them as sources. To build the same project on
PostgreSQL, a test seeds a DuckDB warehouse as usual, then :func:`copy_schemas` copies every table of those
schemas into a PostgreSQL database under the same schema, table and column names::

    with duckdb.connect(str(warehouse)) as duck, psycopg.connect(libpq_conninfo(postgres_url)) as pg:
        copy_schemas(duck, pg, ("raw", "ops"))

How: the table is created from DuckDB's column types (:func:`pg_type`; an unmapped type is an error, never a
silent ``text``), DuckDB writes the rows as CSV into a temporary file (C speed, doubles in shortest round-trip
form, NULL unquoted and empty strings quoted, so both survive) and the file is streamed through psycopg 3's
``COPY ... FROM STDIN (FORMAT csv)``. A table that already exists is truncated and refilled (not dropped), so dbt
views built on it stay valid: copy ``ops.predictions`` again after a scoring step. The caller commits.

:func:`libpq_conninfo` and :func:`dbt_pg_settings` turn the ``postgres_url`` fixture's SQLAlchemy URL
(``tests/conftest.py``, server from ``tests/pg.py``) into a psycopg conninfo string and into what dbt's ``postgres``
target needs: the ``pg_*`` fields of ``relance.settings.Settings`` (``relance.dbt`` writes the profile from them)
and the password, which dbt reads from ``RELANCE_PG_PASSWORD`` (``relance.dbt.PG_PASSWORD_ENV``) when it connects.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)$")
_TYPES = {
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(38,0)",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "UUID": "uuid",
    "INTERVAL": "interval",
}
_CHUNK = 1 << 20


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL type for a DuckDB column type (as ``duckdb_columns().data_type`` spells it).

    Raises:
        ValueError: a type without a faithful CSV round trip here (BLOB, LIST, STRUCT, MAP, ...).
    """
    spelled = duckdb_type.strip().upper()
    if spelled in _TYPES:
        return _TYPES[spelled]
    match = _DECIMAL.match(spelled)
    if match:
        return f"numeric({match.group(1)},{match.group(2)})"
    raise ValueError(f"no PostgreSQL mapping for DuckDB type {duckdb_type!r}")


def libpq_conninfo(url: str) -> str:
    """``postgresql+psycopg://user:pw@host:port/db`` (SQLAlchemy) -> a libpq conninfo string for psycopg."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return psycopg.conninfo.make_conninfo(
        host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password, dbname=parsed.database
    )


def dbt_pg_settings(url: str, database: str | None = None) -> tuple[dict[str, str | int], str]:
    """(``pg_host``, ``pg_port``, ``pg_user`` and ``pg_dbname`` of ``relance.settings.Settings``, the password) for
    dbt's ``postgres`` target on this URL; ``database`` instead of the URL's.

    The password is never a setting: set it as ``relance.dbt.PG_PASSWORD_ENV`` around the dbt calls (tests: with
    ``pytest.MonkeyPatch``), so the profile ``relance.dbt`` writes never holds it.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    fields: dict[str, str | int] = {
        "pg_host": str(parsed.host),
        "pg_port": int(parsed.port or 5432),
        "pg_user": str(parsed.username),
        "pg_dbname": str(database or parsed.database),
    }
    return fields, str(parsed.password or "")


def columns(duck: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(column name, DuckDB type) of a table, in column order."""
    return duck.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = ? and table_name = ? order by column_index",
        [schema, table],
    ).fetchall()


def tables(duck: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """Base tables (not views) of a DuckDB schema, by name."""
    rows = duck.execute(
        "select table_name from duckdb_tables() where schema_name = ? and not temporary order by table_name", [schema]
    ).fetchall()
    return [r[0] for r in rows]


@contextlib.contextmanager
def _utc(duck: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Write TIMESTAMP WITH TIME ZONE values in UTC (DuckDB prints them in its session time zone)."""
    try:
        previous = duck.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        duck.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # no ICU extension: no time zone setting, timestamptz is printed in UTC
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            duck.execute(f"SET TimeZone = '{previous}'")


def copy_table(duck: duckdb.DuckDBPyConnection, pg: psycopg.Connection, schema: str, table: str) -> int:
    """Create (or truncate) ``schema.table`` in PostgreSQL and COPY every DuckDB row into it; returns the count."""
    cols = columns(duck, schema, table)
    if not cols:
        raise ValueError(f"{schema}.{table}: no such DuckDB table")
    target = sql.Identifier(schema, table)
    col_defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type(dtype))) for name, dtype in cols
    )
    col_names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in cols)
    pg.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    pg.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, col_defs))
    pg.execute(sql.SQL("TRUNCATE {}").format(target))
    select_list = ", ".join(f'"{name}"' for name, _ in cols)
    with tempfile.TemporaryDirectory(prefix="relance-pgcopy-") as scratch, _utc(duck):
        csv_path = Path(scratch) / f"{schema}.{table}.csv"
        # DuckDB quotes empty strings and leaves NULL unquoted; PostgreSQL's CSV COPY reads them back the same way
        duck.execute(
            f'COPY (SELECT {select_list} FROM "{schema}"."{table}") TO \'{csv_path}\' '
            "(FORMAT csv, HEADER false, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULL '')"
        )
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, DELIMITER ',', QUOTE '\"', NULL '')")
        with pg.cursor() as cur, cur.copy(copy_sql.format(target, col_names)) as copy, csv_path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                copy.write(chunk)
    pg.execute(sql.SQL("ANALYZE {}").format(target))
    copied = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
    expected = duck.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
    if copied != expected:
        raise RuntimeError(f"{schema}.{table}: copied {copied} rows, DuckDB has {expected}")
    return int(copied)


def copy_schemas(
    duck: duckdb.DuckDBPyConnection, pg: psycopg.Connection, schemas: Iterable[str] = ("raw", "ops")
) -> dict[str, int]:
    """Copy every base table of these DuckDB schemas; returns ``{"schema.table": rows}``."""
    return {f"{s}.{t}": copy_table(duck, pg, s, t) for s in schemas for t in tables(duck, s)}
