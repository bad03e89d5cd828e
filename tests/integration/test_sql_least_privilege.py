"""Issue 9, scope 6: SQL source queries run on read-only connections, whatever the query says.

The config's SELECT-only check looks at the first word; a query can still write through a volatile function, or
smuggle a second statement past the subquery relance wraps it in. Each test starts from such a query against a
real database (PostgreSQL from ``tests.pg``, SQLite) and checks that it fails and that the table is intact.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from relance.sources.sql import SqlQueryError, load_sql_source, parse_sql_config
from relance.sources.sql.connection import engine_for
from tests.integration.test_sql_source import fresh_database

pytestmark = pytest.mark.integration

COLUMNS = (
    "number AS invoice_id, 'C1' AS customer_id, 'invoice' AS document_type, NULL AS credited_invoice_id, "
    "DATE '2026-01-01' AS issue_date, DATE '2026-01-31' AS due_date, amount, 'EUR' AS currency, "
    "30 AS payment_terms_days, false AS is_end_of_month_terms"
)


def _database(server_url: str, name: str) -> str:
    url = fresh_database(server_url, name)
    with sa.create_engine(url, poolclass=sa.pool.NullPool).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE invoices (number text PRIMARY KEY, amount numeric(18, 2));"
            "INSERT INTO invoices VALUES ('FA-1', 10), ('FA-2', 20);"
            "CREATE TABLE audit (note text);"
            # a function with a side effect, as an ERP might have (or an attacker might find)
            "CREATE FUNCTION purge() RETURNS integer LANGUAGE sql VOLATILE AS "
            "$$ DELETE FROM invoices; SELECT 1 $$;"
        )
    return url


def _count(url: str, table: str = "invoices") -> int:
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.parametrize(
    ("query", "error"),
    [
        # a volatile function that deletes, called from a SELECT (the count/max probe evaluates it)
        (f"SELECT {COLUMNS}, purge() AS touched FROM invoices", "cannot execute DELETE in a read-only transaction"),
        # a second statement smuggled past the wrapping subquery: "SELECT * FROM (<query>) src WHERE 1 = 0"
        (
            f"SELECT {COLUMNS} FROM invoices) src; DROP TABLE audit; SELECT * FROM (SELECT {COLUMNS} FROM invoices",
            "cannot execute DROP TABLE in a read-only transaction",
        ),
        # a data-modifying CTE (PostgreSQL refuses it inside the subquery relance wraps it in; refused either way)
        (
            f"WITH gone AS (DELETE FROM invoices RETURNING *) SELECT {COLUMNS} FROM gone",
            "WITH clause containing a data-modifying statement|read-only transaction",
        ),
    ],
)
def test_postgres_query_that_writes_fails_and_the_tables_are_intact(postgres_url: str, query: str, error: str) -> None:
    url = _database(postgres_url, "erp_least_privilege")
    config = parse_sql_config(
        {"name": "erp", "url": url, "entities": {"invoices": {"query": query, "watermark_column": "amount"}}}
    )
    with pytest.raises(SqlQueryError, match=error):
        extracts = load_sql_source(config, watermarks={})
        for ext in extracts:
            ext.table.read_all()  # type: ignore[union-attr]
    assert _count(url) == 2
    assert _count(url, "audit") == 0  # the table still exists


def test_postgres_plain_query_still_reads(postgres_url: str) -> None:
    url = _database(postgres_url, "erp_least_privilege_ok")
    config = parse_sql_config(
        {"name": "erp", "url": url, "entities": {"invoices": {"query": f"SELECT {COLUMNS} FROM invoices"}}}
    )
    (ext,) = load_sql_source(config, watermarks={})
    assert sorted(r["invoice_id"] for r in ext.table.read_all().to_pylist()) == ["FA-1", "FA-2"]  # type: ignore[union-attr]


def test_sqlite_source_connections_are_query_only(tmp_path: Path) -> None:
    """Repro: the engine relance opens on a SQLite source could write (any statement on its connections)."""
    db = tmp_path / "erp.sqlite"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE invoices (number text PRIMARY KEY, amount numeric)")
        raw.execute("INSERT INTO invoices VALUES ('FA-1', 10), ('FA-2', 20)")
    query = COLUMNS.replace("DATE '2026-01-01'", "'2026-01-01'").replace("DATE '2026-01-31'", "'2026-01-31'")
    config = parse_sql_config(
        {"name": "erp", "url": f"sqlite:///{db}", "entities": {"invoices": {"query": f"SELECT {query} FROM invoices"}}}
    )
    engine = engine_for(config)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA query_only").scalar_one() == 1
        with pytest.raises(sa.exc.OperationalError, match="readonly database"):
            conn.exec_driver_sql("DELETE FROM invoices")
    (ext,) = load_sql_source(config, watermarks={})
    assert ext.table.read_all().num_rows == 2  # type: ignore[union-attr]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM invoices").fetchone() == (2,)
