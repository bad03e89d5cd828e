"""DuckDB warehouse access: the connection helper, the schemas Python writes, and reading what dbt built.

dbt owns every relational transformation. Python writes only raw loads (schema ``raw``, ``relance.ingest``) and
operational facts (schema ``ops``, ``relance.ops``: load batches, quarantine, predictions, planned and sent
reminders, report runs).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from relance.ops import ensure_ops
from relance.raw_schema import RAW_SCHEMA, all_entities, contact_entities, ensure_version_columns, risk_entities


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. ``read_only`` only works in a process where nothing else holds the file: dbt run in
    process (prefect-dbt) keeps a read-write connection open, and DuckDB refuses a second one with another
    configuration, so flows and benchmarks use read-write connections."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


@contextlib.contextmanager
def connection(path: Path | str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables (``relance.raw_schema``) and the ops tables (``relance.ops``) if missing. Idempotent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for ent in [*all_entities(), *risk_entities(), *contact_entities()]:
        con.execute(ent.ddl())
    ensure_version_columns(con)  # raw tables of earlier versions get _load_seq and _deleted
    ensure_ops(con)


_RELATION = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_ORDER_BY = re.compile(r"^[a-z_][a-z0-9_]*( (asc|desc))?(, [a-z_][a-z0-9_]*( (asc|desc))?)*$")


def read_for_date(
    con: duckdb.DuckDBPyConnection, relation: str, as_of_date: date, *, order_by: str | None = None
) -> pd.DataFrame:
    """The rows of a dbt relation (``schema.name``) for one as-of date: how Python reads what dbt built."""
    if not _RELATION.match(relation):
        raise ValueError(f"not a relation name: {relation!r} (expected schema.name)")
    if order_by is not None and not _ORDER_BY.match(order_by):
        raise ValueError(f"not a column list to order by: {order_by!r}")
    order = f" ORDER BY {order_by}" if order_by else ""
    return con.execute(f"SELECT * FROM {relation} WHERE as_of_date = ?{order}", [as_of_date]).df()


def relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether dbt has built ``schema.name`` (a table or a view) in this warehouse: a warehouse built by an earlier
    version may lack a newer relation, and its readers fall back instead of failing."""
    if not _RELATION.match(relation):
        raise ValueError(f"not a relation name: {relation!r} (expected schema.name)")
    schema, name = relation.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
        ).fetchone()[0]
    )


def read_relation(
    con: duckdb.DuckDBPyConnection, relation: str, *, columns: str = "*", order_by: str | None = None
) -> pd.DataFrame:
    """Every row of a dbt relation that holds a current state, not one row set per date (a view such as
    ``serving.customer_risk_status``, or ``marts.customers``). ``columns``: ``*`` or a comma-separated list."""
    if not _RELATION.match(relation):
        raise ValueError(f"not a relation name: {relation!r} (expected schema.name)")
    if columns != "*" and not _ORDER_BY.match(columns):
        raise ValueError(f"not a column list: {columns!r}")
    if order_by is not None and not _ORDER_BY.match(order_by):
        raise ValueError(f"not a column list to order by: {order_by!r}")
    order = f" ORDER BY {order_by}" if order_by else ""
    return con.execute(f"SELECT {columns} FROM {relation}{order}").df()
