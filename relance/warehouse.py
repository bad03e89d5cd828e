"""DuckDB warehouse access: one connection helper and the operational (non-dbt) tables.

dbt owns every relational transformation. Python writes only raw loads (schema ``raw``) and operational facts
(schema ``ops``: load batches, quarantine, predictions, planned and sent reminders, report runs).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from relance.raw_schema import RAW_SCHEMA, all_entities, risk_entities

OPS_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.ingest_batches (
        batch_id VARCHAR PRIMARY KEY, entity VARCHAR, source_file VARCHAR, file_hash VARCHAR,
        rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, rows_unchanged BIGINT,
        status VARCHAR, loaded_at TIMESTAMP, flow_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.source_watermarks (
        source_name VARCHAR, entity VARCHAR, watermark VARCHAR, updated_at TIMESTAMP, batch_id VARCHAR,
        PRIMARY KEY (source_name, entity))""",
    """CREATE TABLE IF NOT EXISTS ops.quarantine (
        batch_id VARCHAR, entity VARCHAR, row_number BIGINT, natural_key VARCHAR, expectation VARCHAR,
        severity VARCHAR, reason VARCHAR, row_json VARCHAR, quarantined_at TIMESTAMP, flow_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.validation_runs (
        validation_id VARCHAR PRIMARY KEY, batch_ids VARCHAR, success BOOLEAN, critical_failures INTEGER,
        warning_failures INTEGER, data_docs_path VARCHAR, validated_at TIMESTAMP, flow_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.predictions (
        invoice_id VARCHAR, as_of_date DATE, p_late_30d DOUBLE, model_name VARCHAR, model_version VARCHAR,
        model_run_id VARCHAR, dbt_invocation_id VARCHAR, scored_at TIMESTAMP, flow_run_id VARCHAR,
        PRIMARY KEY (invoice_id, as_of_date))""",
    """CREATE TABLE IF NOT EXISTS ops.reminders_planned (
        reminder_key VARCHAR PRIMARY KEY, invoice_id VARCHAR, customer_id VARCHAR, as_of_date DATE,
        step VARCHAR, channel VARCHAR, tone VARCHAR, p_late_30d DOUBLE, open_amount DECIMAL(18,2),
        currency VARCHAR, recipient VARCHAR, model_version VARCHAR, model_run_id VARCHAR,
        dbt_invocation_id VARCHAR, planned_at TIMESTAMP, flow_run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.reminder_sends (
        reminder_key VARCHAR PRIMARY KEY, channel VARCHAR, status VARCHAR, provider_message_id VARCHAR,
        outbox_path VARCHAR, attempts INTEGER, last_error VARCHAR, sent_at TIMESTAMP, flow_run_id VARCHAR)""",
    # additive migrations for warehouses created by earlier versions
    "ALTER TABLE ops.ingest_batches ADD COLUMN IF NOT EXISTS source_name VARCHAR",
    # rows_quarantined: rejected at load (never in raw); rows_flagged: loaded, then quarantined by a data contract
    "ALTER TABLE ops.ingest_batches ADD COLUMN IF NOT EXISTS rows_flagged BIGINT",
    """CREATE TABLE IF NOT EXISTS ops.report_runs (
        report_id VARCHAR PRIMARY KEY, as_of_date DATE, html_path VARCHAR, csv_paths VARCHAR,
        model_version VARCHAR, created_at TIMESTAMP, flow_run_id VARCHAR)""",
)


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
    """Create the raw and ops tables if missing. Idempotent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for ent in [*all_entities(), *risk_entities()]:
        con.execute(ent.ddl())
    for stmt in OPS_DDL:
        con.execute(stmt)


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
