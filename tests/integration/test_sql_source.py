"""The declared SQL source against a real PostgreSQL 15 (started by ``tests.pg``), loaded into a real DuckDB.

An ERP-like sales ledger (clients, invoices, payments, allocations, each with ``updated_at``) is mapped to the
canonical entities by the queries of a YAML config whose password comes from the environment. Imports read only
rows past the stored watermark: a second import loads nothing, a late payment is the only new row of the third,
an UPDATEd invoice is appended as a new version, and dbt's ``marts.invoices`` shows the invoice settled.
Errors (bad password, refused connection, missing columns, SQL errors, bad config) are specific and never show
the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from flows.import_receivables import import_source
from relance import dbt
from relance.ingest import ExtractLoadReport, IngestError, load_extracts, read_watermarks
from relance.settings import Settings
from relance.sources.base import SourceError
from relance.sources.limits import InputLimits
from relance.sources.sql import (
    SqlAuthenticationError,
    SqlColumnsError,
    SqlConfigError,
    SqlConnectionError,
    SqlQueryError,
    SqlSourceConfig,
    load_sql_config,
    load_sql_source,
    parse_sql_config,
)
from tests.conftest import DbtInvoke

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "erp_postgres.yaml"
PASSWORD_ENV = "RELANCE_TEST_ERP_PASSWORD"

ERP_DDL = """
CREATE TABLE clients (
    code text PRIMARY KEY, company_name text NOT NULL, siren text, naf text, email text, phone text,
    credit_limit numeric(18, 2), terms_days integer NOT NULL, end_of_month boolean NOT NULL DEFAULT false,
    created_on date NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE invoices (
    number text PRIMARY KEY, client_code text NOT NULL REFERENCES clients, kind text NOT NULL, credits text,
    issued_on date NOT NULL, due_on date NOT NULL, total_incl_tax numeric(18, 2) NOT NULL, currency char(3) NOT NULL,
    terms_days integer NOT NULL, end_of_month boolean NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE payments (
    ref text PRIMARY KEY, client_code text NOT NULL REFERENCES clients, value_date date NOT NULL,
    amount numeric(18, 2) NOT NULL, currency char(3) NOT NULL, method text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE allocations (
    payment_ref text REFERENCES payments, invoice_number text REFERENCES invoices, amount numeric(18, 2) NOT NULL,
    updated_at timestamptz NOT NULL, PRIMARY KEY (payment_ref, invoice_number));
INSERT INTO clients VALUES
    ('C1', 'Bâti Sud', '732829320', '41.20A', 'ap@batisud.fr', '+33491000000', 10000, 30, false, '2025-01-01',
     '2026-01-01 08:00+00'),
    ('C2', 'Jean Martin', NULL, NULL, 'jean@example.fr', NULL, NULL, 0, false, '2025-06-01', '2026-01-01 08:00+00'),
    ('C3', 'Menuiserie Dupont', '552100554', '43.32A', 'compta@dupont.fr', NULL, 5000, 45, true, '2025-03-01',
     '2026-01-02 08:00+00');
INSERT INTO invoices VALUES
    ('FA-001', 'C1', 'FA', NULL, '2026-01-05', '2026-02-04', 1000.00, 'EUR', 30, false, '2026-01-05 09:00+00'),
    ('FA-002', 'C1', 'FA', NULL, '2026-01-10', '2026-02-09', 500.00, 'EUR', 30, false, '2026-01-10 09:00+00'),
    ('FA-003', 'C3', 'FA', NULL, '2026-02-01', '2026-03-31', 1200.00, 'EUR', 45, true, '2026-02-01 09:00+00'),
    ('AV-001', 'C1', 'AV', 'FA-001', '2026-01-20', '2026-01-20', -100.00, 'EUR', 0, false, '2026-01-20 09:00+00');
INSERT INTO payments VALUES
    ('P1', 'C1', '2026-02-01', 900.00, 'EUR', 'VIR', '2026-02-01 18:00+00'),
    ('P2', 'C1', '2026-02-05', 200.00, 'EUR', 'CHQ', '2026-02-05 18:00+00');
INSERT INTO allocations VALUES
    ('P1', 'FA-001', 900.00, '2026-02-01 18:00+00'),
    ('P2', 'FA-002', 200.00, '2026-02-05 18:00+00');
"""
ROWS = {"customers": 3, "invoices": 4, "payments": 2, "payment_allocations": 2}

QUERIES = {
    "customers": """
        SELECT code AS customer_id, company_name AS customer_name,
               CASE WHEN siren IS NULL THEN 'B2C' ELSE 'B2B' END AS customer_type, siren, naf AS naf_code,
               CASE WHEN naf LIKE '4%' THEN 'F' END AS sector_section, NULL AS size_band, NULL AS region,
               'FR' AS country_code, email, phone, credit_limit, 'EUR' AS currency,
               terms_days AS payment_terms_days, end_of_month AS is_end_of_month_terms,
               created_on AS created_date, updated_at
        FROM clients""",
    "invoices": """
        SELECT number AS invoice_id, client_code AS customer_id,
               CASE kind WHEN 'AV' THEN 'credit_note' ELSE 'invoice' END AS document_type,
               credits AS credited_invoice_id, issued_on AS issue_date, due_on AS due_date,
               total_incl_tax AS amount, currency, terms_days AS payment_terms_days,
               end_of_month AS is_end_of_month_terms, updated_at
        FROM invoices""",
    "payments": """
        SELECT ref AS payment_id, client_code AS customer_id, value_date AS payment_date, amount, currency,
               CASE method WHEN 'VIR' THEN 'transfer' WHEN 'CHQ' THEN 'cheque' WHEN 'PRLV' THEN 'direct_debit'
                           ELSE 'card' END AS payment_method,
               updated_at
        FROM payments""",
    "payment_allocations": """
        SELECT payment_ref AS payment_id, invoice_number AS invoice_id, amount AS allocated_amount, updated_at
        FROM allocations""",
}


# --------------------------------------------------------------------------------------------------- helpers
def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database ``name`` (dropped first if it exists) on the server of ``server_url``; return
    its URL."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _erp_database(server_url: str, name: str) -> str:
    """Create a fresh database ``name`` on the server of ``server_url`` holding the ERP ledger; return its URL."""
    url = fresh_database(server_url, name)
    _execute(url, ERP_DDL)
    return url


def _execute(url: str, sql: str, params: dict | None = None) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, params) if params is None else conn.execute(sa.text(sql), params)


def _write_config(tmp_path: Path, url: str, *, name: str = "erp", chunk_size: int = 2, **overrides: dict) -> Path:
    """A YAML config whose url takes the password from ``${RELANCE_TEST_ERP_PASSWORD}``."""
    parsed = make_url(url)
    templated = (
        f"postgresql+psycopg://{parsed.username}:${{{PASSWORD_ENV}}}@{parsed.host}:{parsed.port}/{parsed.database}"
    )
    entities = {e: {"query": q, "watermark_column": "updated_at"} for e, q in QUERIES.items()}
    entities.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "url": templated, "chunk_size": chunk_size, "entities": entities}))
    return path


def _import(con: duckdb.DuckDBPyConnection, config_path: Path, run: str) -> ExtractLoadReport:
    """One incremental import through the product path: stored watermarks, extract past them, load, validate."""
    report = import_source(con, config_path, profile="sql", gx_dir=None, flow_run_id=run)
    assert report.reconciles() and report.success, report.validation
    return report.load


def _instant(watermark: str) -> datetime:
    return datetime.fromisoformat(watermark)


def _counts(report: ExtractLoadReport, field: str) -> dict[str, int]:
    return {b.entity: getattr(b, field) for b in report.batches}


@pytest.fixture()
def password_env(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    password = make_url(postgres_url).password
    assert password
    monkeypatch.setenv(PASSWORD_ENV, password)
    return password


@pytest.fixture()
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        yield con
    finally:
        con.close()


# --------------------------------------------------------------------------------------------------- imports
def test_incremental_imports_then_settled_in_marts(
    postgres_url: str,
    password_env: str,
    tmp_path: Path,
    warehouse: duckdb.DuckDBPyConnection,
    dbt_invoke: DbtInvoke,
) -> None:
    url = _erp_database(postgres_url, "erp_incremental")
    config_path = _write_config(tmp_path, url)
    con = warehouse

    # 1. first import: everything, and one watermark per entity = max(updated_at)
    first = _import(con, config_path, "run-1")
    assert _counts(first, "rows_loaded") == ROWS
    assert _counts(first, "rows_quarantined") == dict.fromkeys(ROWS, 0)
    for entity, n in ROWS.items():
        assert con.execute(f"SELECT count(*) FROM raw.{entity}").fetchone() == (n,)
    marks = read_watermarks(con, "erp")
    assert set(marks) == set(ROWS)
    assert _instant(marks["invoices"]) == datetime(2026, 2, 1, 9, tzinfo=UTC)  # max(updated_at), as ISO text
    assert _instant(marks["payments"]) == datetime(2026, 2, 5, 18, tzinfo=UTC)
    assert all(b.source_file.startswith("postgresql+psycopg://relance:***@127.0.0.1:") for b in first.batches)
    assert not any(password_env in b.source_file for b in first.batches)
    row = con.execute(
        "SELECT customer_id, document_type, credited_invoice_id, amount, is_end_of_month_terms, due_date "
        "FROM raw.invoices WHERE invoice_id = 'AV-001'"
    ).fetchone()
    assert row == ("C1", "credit_note", "FA-001", Decimal("-100.00"), False, date(2026, 1, 20))

    # 2. nothing changed: only the overlap window (a day before each watermark) is read again, all unchanged
    second = _import(con, config_path, "run-2")
    overlap_rows = {"customers": 3, "invoices": 1, "payments": 1, "payment_allocations": 1}
    assert _counts(second, "rows_read") == overlap_rows
    assert _counts(second, "rows_unchanged") == overlap_rows
    assert _counts(second, "rows_loaded") == dict.fromkeys(ROWS, 0)
    assert read_watermarks(con, "erp") == marks

    # 3. a late payment (and its allocation) settles FA-002: the only new rows
    _execute(
        url,
        "INSERT INTO payments VALUES ('P3', 'C1', '2026-03-10', 300.00, 'EUR', 'VIR', '2026-03-10 18:00+00');"
        "INSERT INTO allocations VALUES ('P3', 'FA-002', 300.00, '2026-03-10 18:00+00');",
    )
    third = _import(con, config_path, "run-3")
    assert _counts(third, "rows_read") == {"customers": 3, "invoices": 1, "payments": 2, "payment_allocations": 2}
    assert _counts(third, "rows_loaded") == {"customers": 0, "invoices": 0, "payments": 1, "payment_allocations": 1}
    assert con.execute(
        "SELECT payment_id, amount, payment_method, _flow_run_id FROM raw.payments WHERE _flow_run_id = 'run-3'"
    ).fetchall() == [("P3", Decimal("300.00"), "transfer", "run-3")]
    assert _instant(read_watermarks(con, "erp")["payments"]) == datetime(2026, 3, 10, 18, tzinfo=UTC)
    assert read_watermarks(con, "erp")["invoices"] == marks["invoices"]

    # 4. an invoice corrected in the ERP (new amount, later updated_at) is appended as a new version
    _execute(
        url, "UPDATE invoices SET total_incl_tax = 1250.00, updated_at = '2026-03-12 08:00+00' WHERE number = 'FA-003'"
    )
    fourth = _import(con, config_path, "run-4")
    assert _counts(fourth, "rows_loaded") == {"customers": 0, "invoices": 1, "payments": 0, "payment_allocations": 0}
    versions = con.execute(
        "SELECT amount, _flow_run_id FROM raw.invoices WHERE invoice_id = 'FA-003' ORDER BY _loaded_at"
    ).fetchall()
    assert versions == [(Decimal("1200.00"), "run-1"), (Decimal("1250.00"), "run-4")]
    batches = con.execute("SELECT count(*), count(DISTINCT source_name) FROM ops.ingest_batches").fetchone()
    assert batches == (16, 1)
    con.close()

    # 5. dbt: as of 2026-03-15, FA-002 is settled by the late payment and FA-003 has its corrected amount
    settings = Settings(data_dir=tmp_path, history_start_days=30)
    assert settings.warehouse == tmp_path / "warehouse.duckdb"
    args = dbt.dbt_args(settings, ["run"], as_of_date=date(2026, 3, 15), extra=("--select", "+invoices"))
    dbt.run_dbt(settings, args, invoke=dbt_invoke)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as dwh:
        marts = {
            r[0]: r[1:]
            for r in dwh.execute(
                "SELECT invoice_id, amount, paid_amount, credited_amount, open_amount, is_open, settled_date "
                "FROM marts.invoices"
            ).fetchall()
        }
    assert marts["FA-002"] == (500, 500, 0, 0, False, date(2026, 3, 10))
    assert marts["FA-001"] == (1000, 900, 100, 0, False, date(2026, 2, 1))
    assert marts["FA-003"][0] == 1250 and marts["FA-003"][4] is True
    assert "AV-001" not in marts


def test_streams_text_batches_in_chunks(postgres_url: str, password_env: str, tmp_path: Path) -> None:
    url = _erp_database(postgres_url, "erp_stream")
    config = load_sql_config(_write_config(tmp_path, url, chunk_size=3))
    (invoices,) = load_sql_source(config, watermarks={}, entities=["invoices"])
    assert isinstance(invoices.table, pa.RecordBatchReader)
    batches = list(invoices.table)
    assert [b.num_rows for b in batches] == [3, 1]  # fetched chunk by chunk
    assert all(b.schema.field("amount").type == pa.string() for b in batches)
    rows = [r for b in batches for r in b.to_pylist()]
    assert [r["_source_row"] for r in rows] == [1, 2, 3, 4]
    fa3 = next(r for r in rows if r["invoice_id"] == "FA-003")
    assert (fa3["amount"], fa3["issue_date"], fa3["is_end_of_month_terms"]) == ("1200.00", "2026-02-01", "true")
    assert invoices.watermark is not None and _instant(invoices.watermark) == datetime(2026, 2, 1, 9, tzinfo=UTC)
    assert invoices.source_file.endswith("/erp_stream#invoices") and password_env not in invoices.source_file
    # every read is a new batch (late rows may appear in a window already read); the next read starts again a
    # day before the watermark (FA-003 only) and keeps it
    (again,) = load_sql_source(config, watermarks={}, entities=["invoices"])
    (later,) = load_sql_source(config, watermarks={"invoices": invoices.watermark}, entities=["invoices"])
    assert len({invoices.file_hash, again.file_hash, later.file_hash}) == 3
    assert later.table.read_all().num_rows == 1 and later.watermark == invoices.watermark


def test_rows_committed_late_at_or_below_the_watermark_are_loaded(
    postgres_url: str, password_env: str, tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Repro (issue 9, item 9): after a load stored max(updated_at), a transaction that began earlier commits rows
    whose updated_at is equal to or just below that maximum. A strict ``> watermark`` skipped them forever."""
    url = _erp_database(postgres_url, "erp_late")
    config_path = _write_config(tmp_path, url)
    first = _import(warehouse, config_path, "run-1")
    mark = read_watermarks(warehouse, "erp")["invoices"]
    assert _instant(mark) == datetime(2026, 2, 1, 9, tzinfo=UTC) and first.batch("invoices").rows_loaded == 4
    _execute(
        url,
        "INSERT INTO invoices VALUES "
        "('FA-004', 'C3', 'FA', NULL, '2026-02-01', '2026-03-03', 80.00, 'EUR', 30, false, '2026-02-01 09:00+00'),"
        "('FA-005', 'C3', 'FA', NULL, '2026-02-01', '2026-03-03', 90.00, 'EUR', 30, false, '2026-02-01 08:59:59+00')",
    )
    second = _import(warehouse, config_path, "run-2")
    invoices = second.batch("invoices")
    # read again from a day before the watermark: FA-003 (unchanged) and the two late rows (loaded)
    assert (invoices.rows_read, invoices.rows_loaded, invoices.rows_unchanged, invoices.rows_quarantined) == (
        3,
        2,
        1,
        0,
    )
    for b in second.batches:
        assert b.rows_read == b.rows_loaded + b.rows_unchanged + b.rows_quarantined, b
    loaded = warehouse.execute("SELECT invoice_id FROM raw.invoices WHERE _flow_run_id = 'run-2' ORDER BY 1").fetchall()
    assert loaded == [("FA-004",), ("FA-005",)]
    assert warehouse.execute("SELECT count(*), count(DISTINCT invoice_id) FROM raw.invoices").fetchone() == (6, 6)
    assert read_watermarks(warehouse, "erp")["invoices"] == mark
    # a source that wants no time overlap still re-reads its watermark itself (>=): the equal row is never lost
    (zero,) = load_sql_source(
        load_sql_config(config_path),
        watermarks={"invoices": mark},
        entities=["invoices"],
        watermark_overlap=timedelta(0),
    )
    assert sorted(r["invoice_id"] for r in zero.table.read_all().to_pylist()) == ["FA-003", "FA-004"]


def test_value_over_the_cell_cap_quarantines_its_row(
    postgres_url: str, password_env: str, tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Repro: no cap on a database value. A 300-character name (cap 100) keeps its customer row out of raw."""
    url = _erp_database(postgres_url, "erp_cells")
    _execute(url, "UPDATE clients SET company_name = repeat('x', 300) WHERE code = 'C2'")
    config = load_sql_config(_write_config(tmp_path, url))
    extracts = load_sql_source(config, watermarks={}, entities=["customers"], limits=InputLimits(max_cell_chars=100))
    report = load_extracts(warehouse, extracts, source_name="erp", flow_run_id="run-1")
    customers = report.batch("customers")
    assert (customers.rows_read, customers.rows_loaded, customers.rows_quarantined) == (3, 2, 1)
    reason = warehouse.execute("SELECT reason FROM ops.quarantine WHERE entity = 'customers'").fetchone()[0]
    assert (
        "#customers, row " in reason
        and "column customer_name: value of 300 characters, over the 100-character cap" in reason
    )


# --------------------------------------------------------------------------------------------------- errors
def test_bad_password_is_an_authentication_error_without_the_password(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "Wr0ng:p@ss/word"  # needs percent-encoding in a URL: ${VAR} substitution does it
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    config_path = _write_config(tmp_path, postgres_url)
    with pytest.raises(SqlAuthenticationError) as info:
        load_sql_source(config_path, watermarks={})
    message = str(info.value)
    port = make_url(postgres_url).port
    assert "authentication failed" in message
    assert f"127.0.0.1:{port}" in message and "'relance'" in message
    assert wrong not in message and "Wr0ng" not in message
    assert make_url(postgres_url).password not in message
    assert isinstance(info.value, SourceError)


def test_refused_connection_names_host_and_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-value")
    config_path = _write_config(tmp_path, f"postgresql+psycopg://relance:x@127.0.0.1:{port}/erp")
    with pytest.raises(SqlConnectionError) as info:
        load_sql_source(config_path, watermarks={})
    assert not isinstance(info.value, SqlAuthenticationError)
    assert f"127.0.0.1:{port}" in str(info.value) and "'erp'" in str(info.value)
    assert "s3cret-value" not in str(info.value)


def test_missing_canonical_columns_are_named(
    postgres_url: str,
    password_env: str,
    tmp_path: Path,
) -> None:
    url = _erp_database(postgres_url, "erp_columns")
    bad_query = "SELECT number AS invoice_id, client_code AS customer_id, issued_on AS issue_date FROM invoices"
    config_path = _write_config(tmp_path, url, invoices={"query": bad_query, "watermark_column": "modified_at"})
    with pytest.raises(SqlColumnsError) as info:
        load_sql_source(config_path, watermarks={})
    message = str(info.value)
    assert "'invoices'" in message
    for column in ("document_type", "due_date", "amount", "currency", "modified_at (watermark_column)"):
        assert column in message
    assert "customer_id," not in message.split("returned:")[0]  # present columns are not reported missing


def test_sql_error_names_entity_and_database_message(
    postgres_url: str,
    password_env: str,
    tmp_path: Path,
) -> None:
    url = _erp_database(postgres_url, "erp_sqlerror")
    config_path = _write_config(tmp_path, url, payments={"query": "SELECT * FROM reglements"})
    with pytest.raises(SqlQueryError) as info:
        load_sql_source(config_path, watermarks={})
    assert "'payments'" in str(info.value) and 'relation "reglements" does not exist' in str(info.value)
    assert password_env not in str(info.value)


def test_failure_mid_stream_loads_nothing_and_keeps_the_watermark(
    postgres_url: str, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # row 3 divides by zero: the probe (columns, max watermark) passes, the stream fails after its first chunk
    query = (
        "SELECT 'I' || n AS invoice_id, 'C1' AS customer_id, 'invoice' AS document_type, NULL AS credited_invoice_id,"
        " DATE '2026-01-01' AS issue_date, DATE '2026-01-31' AS due_date, 100 / (n - 3) AS amount, 'EUR' AS currency,"
        " 30 AS payment_terms_days, false AS is_end_of_month_terms, n AS version FROM generate_series(1, 5) AS n"
    )
    config = parse_sql_config(
        {
            "name": "erp",
            "url": postgres_url,
            "chunk_size": 2,
            "entities": {"invoices": {"query": query, "watermark_column": "version"}},
        }
    )
    extracts = load_sql_source(config, watermarks={})
    assert [e.watermark for e in extracts] == ["5"]
    with pytest.raises(IngestError, match=r"'invoices': query failed: division by zero"):
        load_extracts(warehouse, extracts, source_name="erp", flow_run_id="run-1")
    assert warehouse.execute("SELECT count(*) FROM raw.invoices").fetchone() == (0,)
    assert read_watermarks(warehouse, "erp") == {}


def test_config_errors_are_specific(tmp_path: Path) -> None:
    good = {"name": "erp", "url": "postgresql+psycopg://u:${ERP_PW}@127.0.0.1:5432/erp", "entities": {}}
    with pytest.raises(SqlConfigError, match="ERP_PW"):
        parse_sql_config({**good, "entities": {"invoices": {"query": "SELECT 1"}}}, environ={})
    with pytest.raises(SqlConfigError, match=r"entities: .*unknown entity\(ies\) factures"):
        parse_sql_config({**good, "entities": {"factures": {"query": "SELECT 1"}}}, environ={"ERP_PW": "x"})
    with pytest.raises(SqlConfigError, match=r"entities.invoices.query: .*must be a SELECT"):
        parse_sql_config({**good, "entities": {"invoices": {"query": "DELETE FROM t"}}}, environ={"ERP_PW": "x"})
    with pytest.raises(SqlConfigError, match=r"entities.invoices.sql: Extra inputs"):
        parse_sql_config({**good, "entities": {"invoices": {"sql": "SELECT 1"}}}, environ={"ERP_PW": "x"})
    config = parse_sql_config(
        {**good, "entities": {"invoices": {"query": "select 1;"}}}, environ={"ERP_PW": "p@ss:w/rd"}
    )
    assert isinstance(config, SqlSourceConfig)
    assert config.sqlalchemy_url.password == "p@ss:w/rd"  # percent-encoded on substitution, decoded by SQLAlchemy
    assert "p@ss" not in repr(config) and "p@ss" not in config.safe_url
    with pytest.raises(SqlConfigError, match="cannot read"):
        load_sql_config(tmp_path / "missing.yaml")
    # the watermark overlap window is declared per source, as an ISO 8601 duration; never negative
    entities = {"invoices": {"query": "select 1", "watermark_column": "updated_at"}}
    hourly = parse_sql_config({**good, "entities": entities, "watermark_overlap": "PT1H"}, environ={"ERP_PW": "x"})
    assert hourly.watermark_overlap == timedelta(hours=1)
    with pytest.raises(SqlConfigError, match="watermark_overlap"):
        parse_sql_config({**good, "entities": entities, "watermark_overlap": "-PT1H"}, environ={"ERP_PW": "x"})


def test_example_config_is_valid() -> None:
    config = load_sql_config(EXAMPLE, environ={"ERP_DB_PASSWORD": "example"})
    assert set(config.entities) >= {"customers", "invoices", "payments", "payment_allocations"}
    assert all(spec.watermark_column for spec in config.entities.values())
