"""The demo landing format through the shared path (demo profile -> loader): tiny CSV/Parquet files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from relance.importer import load_landing
from relance.ingest import LoadReport
from relance.raw_schema import ENTITIES
from relance.sources.base import SourceError, file_sha256

CUSTOMER_RECORDS: list[dict[str, str]] = [
    {
        "customer_id": "C1", "customer_name": "Bati Sud", "customer_type": "B2B", "siren": "732829320",
        "naf_code": "41.20A", "sector_section": "F", "size_band": "small", "region": "Occitanie",
        "address_line1": "12 rue des Lilas", "address_line2": "ZA des Portes", "postal_code": "09100",
        "city": "Pamiers", "country_code": "FR", "email": "compta@batisud.fr", "phone": "+33612345678",
        "credit_limit": "10000.00", "currency": "EUR", "payment_terms_days": "30", "is_end_of_month_terms": "false",
        "created_date": "2023-01-15",
    },
    {
        "customer_id": "C2", "customer_name": "Jean Dupont", "customer_type": "B2C", "region": "Bretagne",
        "country_code": "FR", "email": "jean@example.org", "phone": "+33698765432", "currency": "EUR",
        "payment_terms_days": "30", "is_end_of_month_terms": "false", "created_date": "2023-02-01",
    },
]  # fmt: skip


def customer_lines(columns: list[str], records: list[dict[str, str]] = CUSTOMER_RECORDS) -> list[str]:
    """The records as CSV data lines with these columns (a column a record lacks is empty)."""
    return [",".join(r.get(c, "") for c in columns) for r in records]


CUSTOMERS = customer_lines(list(ENTITIES["customers"]))
INVOICES = [
    "I1,C1,invoice,,2024-01-01,2024-01-31,1200.50,EUR,30,false",
    "I2,C1,invoice,,2024-01-10,2024-02-09,300.00,EUR,30,false",
    "I3,C2,credit_note,I1,2024-01-20,2024-01-20,-100.00,EUR,30,false",
]
PAYMENTS = ["P1,C1,2024-02-01,1200.50,EUR,transfer"]


def write_csv(directory: Path, entity: str, rows: list[str], header: list[str] | None = None) -> Path:
    """Write ``<entity>.csv`` with the raw-schema header (or ``header``) and the given data lines."""
    directory.mkdir(parents=True, exist_ok=True)
    cols = header if header is not None else list(ENTITIES[entity])
    path = directory / f"{entity}.csv"
    path.write_text("\n".join([",".join(cols), *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    d = tmp_path / "landing"
    write_csv(d, "customers", CUSTOMERS)
    write_csv(d, "invoices", INVOICES)
    write_csv(d, "payments", PAYMENTS)
    return d


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_load_inserts_rows_with_metadata(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    report = load_landing(con, landing, flow_run_id="run-1")

    assert isinstance(report, LoadReport)
    assert [b.entity for b in report.batches] == ["customers", "invoices", "payments"]
    inv = report.batch("invoices")
    assert (inv.status, inv.rows_read, inv.rows_loaded, inv.rows_unchanged, inv.rows_quarantined) == (
        "loaded",
        3,
        3,
        0,
        0,
    )
    # the extract hash covers the file's sha256 and the profile's mapping (a fixed profile re-reads the file)
    assert len(inv.file_hash) == 64 and inv.file_hash != file_sha256(landing / "invoices.csv")
    assert len(inv.batch_id) == 32
    assert count(con, "raw.invoices") == 3
    row = con.execute(
        "SELECT amount, issue_date, _batch_id, _file_hash, _flow_run_id, length(_row_hash), _source_file, "
        "_loaded_at IS NOT NULL FROM raw.invoices WHERE invoice_id = 'I1'"
    ).fetchone()
    assert str(row[0]) == "1200.50"
    assert str(row[1]) == "2024-01-01"
    assert row[2:6] == (inv.batch_id, inv.file_hash, "run-1", 32)
    assert row[6].endswith("invoices.csv") and row[7] is True
    # typed: SIREN kept as text with its leading digits, empty cells are NULL
    assert con.execute("SELECT siren, credit_limit FROM raw.customers WHERE customer_id='C2'").fetchone() == (
        None,
        None,
    )
    batches = con.execute(
        "SELECT entity, status, rows_read, rows_loaded, flow_run_id FROM ops.ingest_batches ORDER BY entity"
    ).fetchall()
    assert batches == [
        ("customers", "loaded", 2, 2, "run-1"),
        ("invoices", "loaded", 3, 3, "run-1"),
        ("payments", "loaded", 1, 1, "run-1"),
    ]


def test_reload_same_directory_changes_nothing(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    load_landing(con, landing, flow_run_id="run-1")
    before = {t: count(con, f"raw.{t}") for t in ("customers", "invoices", "payments")}

    report = load_landing(con, landing, flow_run_id="run-2")

    assert {b.status for b in report.batches} == {"unchanged"}
    assert report.rows_loaded == 0
    assert report.batch("invoices").rows_unchanged == 3
    assert report.loaded_batch_ids == []
    assert {t: count(con, f"raw.{t}") for t in before} == before
    assert count(con, "raw.invoices WHERE _flow_run_id = 'run-2'") == 0


def test_changed_row_is_appended_and_unchanged_rows_are_not(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    load_landing(con, landing, flow_run_id=None)
    changed = [
        INVOICES[0],
        INVOICES[1].replace("300.00", "350.00"),
        INVOICES[2],
        INVOICES[2].replace("I3", "I4"),
    ]
    write_csv(landing, "invoices", changed)

    report = load_landing(con, landing, flow_run_id=None)

    inv = report.batch("invoices")
    assert (inv.status, inv.rows_read, inv.rows_loaded, inv.rows_unchanged) == ("loaded", 4, 2, 2)
    assert report.batch("customers").status == "unchanged"
    amounts = con.execute("SELECT amount FROM raw.invoices WHERE invoice_id = 'I2' ORDER BY _loaded_at").fetchall()
    assert [str(a[0]) for a in amounts] == ["300.00", "350.00"]
    new_keys = con.execute("SELECT invoice_id FROM raw.invoices WHERE _batch_id = ? ORDER BY 1", [inv.batch_id])
    assert [r[0] for r in new_keys.fetchall()] == ["I2", "I4"]


def test_parquet_file_loads_with_same_row_hash_as_csv(
    con: duckdb.DuckDBPyConnection, landing: Path, tmp_path: Path
) -> None:
    load_landing(con, landing, flow_run_id=None)
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    for ent in ("customers", "invoices"):
        cols = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in ENTITIES[ent].items())
        con.execute(
            f"COPY (SELECT {cols} FROM read_csv('{landing / (ent + '.csv')}', header=true, "
            "all_varchar=true)) "
            f"TO '{pq_dir / (ent + '.parquet')}' (FORMAT parquet)"
        )

    report = load_landing(con, pq_dir, flow_run_id=None)

    assert report.batch("invoices").status == "loaded"
    assert report.batch("invoices").rows_unchanged == 3
    assert report.rows_loaded == 0


def test_missing_required_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    d = tmp_path / "landing"
    write_csv(d, "customers", CUSTOMERS)
    with pytest.raises(SourceError, match=r"required entity 'invoices'.*invoices\.csv"):
        load_landing(con, d, flow_run_id=None)


def test_missing_and_extra_columns_are_named_with_the_file(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    header = [c for c in ENTITIES["invoices"] if c != "due_date"] + ["vat_rate"]
    rows = [",".join(r.split(",")[:5] + r.split(",")[6:] + ["0.2"]) for r in INVOICES]
    write_csv(landing, "invoices", rows, header=header)

    with pytest.raises(SourceError) as err:
        load_landing(con, landing, flow_run_id=None)

    msg = str(err.value)
    assert "invoices.csv" in msg
    assert "missing column(s) 'due_date'" in msg
    assert "'vat_rate'" in msg  # the message lists what the file has


def test_column_order_does_not_matter(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    cols = list(ENTITIES["payments"])
    write_csv(landing, "payments", ["EUR,P1,C1,2024-02-01,1200.50,transfer"], header=[cols[4], *cols[:4], cols[5]])
    load_landing(con, landing, flow_run_id=None)
    assert con.execute("SELECT currency, amount FROM raw.payments").fetchone()[0] == "EUR"


def test_bad_date_is_quarantined_naming_file_line_column_and_type(
    con: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    rows = [INVOICES[0], INVOICES[1].replace("2024-02-09", "2024-02-31"), INVOICES[2]]
    write_csv(landing, "invoices", rows)

    report = load_landing(con, landing, flow_run_id=None)

    inv = report.batch("invoices")
    assert (inv.rows_read, inv.rows_loaded, inv.rows_quarantined) == (3, 2, 1)
    (rejected,) = [r for r in report.rejected if r.entity == "invoices"]
    assert "invoices.csv" in rejected.reason and "row 3" in rejected.reason
    assert "column due_date: 2024-02-31 is not a valid DATE" in rejected.reason
    assert con.execute("SELECT natural_key FROM ops.quarantine WHERE entity = 'invoices'").fetchall() == [("I2",)]


def test_bad_decimal_in_parquet_is_located(con: duckdb.DuckDBPyConnection, tmp_path: Path, landing: Path) -> None:
    d = tmp_path / "pq"
    d.mkdir()
    (d / "customers.csv").write_text((landing / "customers.csv").read_text())
    con.execute(
        f"COPY (SELECT * FROM read_csv('{landing / 'invoices.csv'}', header=true, all_varchar=true) "
        f"UNION ALL SELECT 'I9','C1','invoice',NULL,'2024-01-01','2024-01-31','12,5','EUR','30','false') "
        f"TO '{d / 'invoices.parquet'}' (FORMAT parquet)"
    )
    report = load_landing(con, d, flow_run_id=None)
    (rejected,) = report.rejected
    assert "invoices.parquet" in rejected.reason and "row 4" in rejected.reason
    assert "column amount: 12,5 is not a valid DECIMAL(18,2)" in rejected.reason


def test_failure_rolls_back_the_whole_load(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    # customers and invoices are fine and load first; payments lacks a column and fails last.
    write_csv(
        landing,
        "payments",
        ["P1,C1,2024-02-01,EUR,transfer"],
        header=["payment_id", "customer_id", "payment_date", "currency", "payment_method"],
    )

    with pytest.raises(SourceError, match=r"payments\.csv.*'amount'"):
        load_landing(con, landing, flow_run_id=None)

    assert count(con, "raw.customers") == 0
    assert count(con, "raw.invoices") == 0
    assert count(con, "ops.ingest_batches") == 0
    # and the connection is usable again: fixing the file loads everything
    write_csv(landing, "payments", PAYMENTS)
    assert load_landing(con, landing, flow_run_id=None).rows_loaded == 6


def test_missing_landing_directory(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_landing(con, tmp_path / "nope", flow_run_id=None)


def test_an_export_written_before_company_number_and_the_address_existed_still_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """customers.company_number (UK companies), the postal address and the language came later: a demo-format file
    without them loads, those columns null."""
    later = ("company_number", "address_line1", "address_line2", "postal_code", "city", "language")
    d = tmp_path / "old"
    old_header = [c for c in ENTITIES["customers"] if c not in later]
    write_csv(d, "customers", customer_lines(old_header), header=old_header)
    write_csv(d, "invoices", INVOICES)
    load_landing(con, d, flow_run_id="run-old")
    assert con.execute(
        "SELECT customer_id, siren, company_number, address_line1, address_line2, postal_code, city, language "
        "FROM raw.customers ORDER BY 1"
    ).fetchall() == [
        ("C1", "732829320", None, None, None, None, None, None),
        ("C2", None, None, None, None, None, None, None),
    ]


def test_the_postal_address_loads_as_text(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    """The postal code is text (the leading zero of 09100 kept); a customer without an address has nulls."""
    load_landing(con, landing, flow_run_id="run-1")
    assert con.execute(
        "SELECT customer_id, address_line1, address_line2, postal_code, city FROM raw.customers ORDER BY 1"
    ).fetchall() == [("C1", "12 rue des Lilas", "ZA des Portes", "09100", "Pamiers"), ("C2", None, None, None, None)]
