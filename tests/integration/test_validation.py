"""Integration tests: real DuckDB file + relance.ingest loads + GX file context validation."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from expectations.runner import CriticalValidationError, ValidationSummary, validate_batches
from relance.importer import load_landing
from relance.ingest import LoadReport
from relance.raw_schema import ENTITIES

pytestmark = pytest.mark.integration

CUSTOMERS = [
    "C1,Bati Sud,B2B,732829320,,41.20A,F,small,Occitanie,,,,,FR,,compta@batisud.fr,+33612345678,"
    "10000.00,EUR,30,false,2023-01-15",
    "C2,Jean Dupont,B2C,,,,,,Bretagne,,,,,FR,,jean@example.org,+33698765432,,EUR,30,false,2023-02-01",
]
BAD_SIREN_CUSTOMER = (
    "C3,Toitures Nord,B2B,732829321,,43.91A,F,micro,Hauts-de-France,,,,,FR,,contact@toitures.fr,+33320000000,"
    "5000.00,EUR,45,true,2023-03-01"
)
INVOICES = [
    "I1,C1,invoice,,2024-01-01,2024-01-31,1200.50,EUR,30,false",
    "I2,C1,invoice,,2024-01-10,2024-02-09,300.00,EUR,30,false",
    "I3,C2,credit_note,I1,2024-01-20,2024-01-20,-100.00,EUR,30,false",
]


def write_landing(directory: Path, customers: list[str], invoices: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in (("customers", customers), ("invoices", invoices)):
        lines = [",".join(ENTITIES[name]), *rows]
        (directory / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def load_and_validate(
    con: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    customers: list[str],
    invoices: list[str],
    *,
    data_docs: bool = False,
) -> tuple[LoadReport, ValidationSummary]:
    """Load a landing directory and validate its batches; data docs only for the tests that read them."""
    report = load_landing(con, write_landing(tmp_path / "landing", customers, invoices), flow_run_id="fr-1")
    summary = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id="fr-1", data_docs=data_docs)
    return report, summary


def test_clean_batch_passes_and_builds_data_docs(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _, summary = load_and_validate(con, tmp_path, CUSTOMERS, INVOICES, data_docs=True)

    assert summary.success, summary.critical_failures
    assert summary.critical_failures == []
    assert summary.warning_failures == []
    assert summary.quarantined_rows == 0
    assert summary.data_docs_index is not None
    assert summary.data_docs_index == tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert summary.data_docs_index.is_file()
    # one site build after every checkpoint renders the results of each entity validated, not only the last
    site = summary.data_docs_index.parent
    assert {p.parent.parent.parent.name for p in site.glob("validations/*/*/*/*.html")} == {
        "raw_customers",
        "raw_invoices",
    }
    assert (tmp_path / "gx" / "expectations" / "raw_invoices.json").is_file()
    summary.raise_for_critical()  # no exception
    run = con.execute(
        "SELECT success, critical_failures, warning_failures, flow_run_id, data_docs_path FROM ops.validation_runs "
        "WHERE validation_id = ?",
        [summary.validation_id],
    ).fetchone()
    assert run == (True, 0, 0, "fr-1", str(summary.data_docs_index))
    assert con.execute("SELECT count(*) FROM ops.quarantine").fetchone()[0] == 0


def test_without_data_docs_nothing_is_rendered(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    site = tmp_path / "gx" / "uncommitted" / "data_docs"
    report, summary = load_and_validate(con, tmp_path, CUSTOMERS, INVOICES, data_docs=False)

    assert summary.success, summary.critical_failures
    assert summary.data_docs_index is None
    assert not [f for f in site.rglob("*") if f.is_file()]  # GX scaffolds the empty folder, nothing more
    assert (tmp_path / "gx" / "expectations" / "raw_invoices.json").is_file()  # the suites are still written
    path = "SELECT data_docs_path FROM ops.validation_runs WHERE validation_id = ?"
    assert con.execute(path, [summary.validation_id]).fetchone() == (None,)

    # an existing site is neither updated nor pointed at by a call without data docs
    rendered = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None)
    assert rendered.data_docs_index is not None and rendered.data_docs_index.is_file()
    pages = sorted(site.rglob("*.html"))
    again = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)
    assert again.data_docs_index is None
    assert sorted(site.rglob("*.html")) == pages
    assert con.execute(path, [again.validation_id]).fetchone() == (None,)


def test_suite_json_carries_severity(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    load_and_validate(con, tmp_path, CUSTOMERS, INVOICES)
    suite = json.loads((tmp_path / "gx" / "expectations" / "raw_invoices.json").read_text())
    by_rule = {e["meta"]["rule"]: e for e in suite["expectations"]}
    assert by_rule["invoice_id is unique in the batch"]["severity"] == "critical"
    assert by_rule["an invoice amount is > 0"]["severity"] == "warning"
    assert by_rule["an invoice amount is > 0"]["meta"]["severity"] == "warning"


def test_warnings_quarantine_exactly_the_bad_rows_and_still_succeed(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    invoices = [INVOICES[0], INVOICES[1].replace("300.00", "-300.00"), INVOICES[2]]
    report, summary = load_and_validate(con, tmp_path, [*CUSTOMERS, BAD_SIREN_CUSTOMER], invoices)

    assert summary.success, summary.critical_failures
    assert summary.quarantined_rows == 2
    assert len(summary.warning_failures) == 2
    rows = con.execute(
        "SELECT entity, natural_key, row_number, expectation, severity, reason, row_json, flow_run_id "
        "FROM ops.quarantine ORDER BY entity"
    ).fetchall()
    # row numbers are the file's lines (header = line 1), as the loader's own rejects name them
    assert [(r[0], r[1], r[2]) for r in rows] == [("customers", "C3", 4), ("invoices", "I2", 3)]
    cust, inv = rows
    assert cust[3] == "expect_column_values_to_be_in_set(_siren_is_valid)"
    assert "SIREN" in cust[5] and "siren='732829321'" in cust[5]
    assert inv[3] == "expect_column_values_to_be_between(amount)"
    assert "invoice amount is > 0" in inv[5] and "amount=-300.0" in inv[5]
    assert {r[4] for r in rows} == {"warning"} and {r[7] for r in rows} == {"fr-1"}
    assert json.loads(inv[6])["invoice_id"] == "I2"
    assert json.loads(inv[6])["amount"] == -300.0
    per_batch = dict(
        con.execute("SELECT entity, rows_flagged FROM ops.ingest_batches").fetchall()  # type: ignore[arg-type]
    )
    assert per_batch == {"customers": 1, "invoices": 1}

    # validating the same batches again replaces, never duplicates, quarantine rows
    again = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id="fr-2", data_docs=False)
    assert again.success and again.quarantined_rows == 2
    assert con.execute("SELECT count(*) FROM ops.quarantine").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM ops.validation_runs").fetchone()[0] == 2


def test_null_invoice_id_is_critical(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    invoices = [INVOICES[0], INVOICES[1].replace("I2,", ",", 1), INVOICES[2]]
    _, summary = load_and_validate(con, tmp_path, CUSTOMERS, invoices)

    assert not summary.success
    assert any(
        "invoices" in m and "expect_column_values_to_not_be_null(invoice_id)" in m for m in summary.critical_failures
    ), summary.critical_failures
    with pytest.raises(CriticalValidationError, match=r"not_be_null\(invoice_id\)") as err:
        summary.raise_for_critical()
    assert err.value.summary is summary
    assert str(CriticalValidationError("plain message")) == "plain message"
    assert con.execute("SELECT success FROM ops.validation_runs").fetchone()[0] is False


def test_duplicate_invoice_ids_are_critical_with_examples(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    invoices = [*INVOICES, INVOICES[0].replace("1200.50", "99.00")]
    _, summary = load_and_validate(con, tmp_path, CUSTOMERS, invoices, data_docs=True)

    assert not summary.success
    [msg] = [m for m in summary.critical_failures if "to_be_unique(invoice_id)" in m]
    assert "2 unexpected" in msg and "'I1'" in msg
    assert summary.data_docs_index is not None and summary.data_docs_index.is_file()


def test_unknown_customer_is_critical(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    invoices = [*INVOICES, "I9,C404,invoice,,2024-01-01,2024-01-31,10.00,EUR,30,false"]
    _, summary = load_and_validate(con, tmp_path, CUSTOMERS, invoices)

    assert not summary.success
    assert [m for m in summary.critical_failures if "_customer_exists" in m]


def test_unchanged_batches_are_skipped(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    load_and_validate(con, tmp_path, CUSTOMERS, INVOICES)
    report = load_landing(con, tmp_path / "landing", flow_run_id="fr-3")
    assert {b.status for b in report.batches} == {"unchanged"}

    summary = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id="fr-3", data_docs=False)

    assert summary.success and summary.quarantined_rows == 0
    with pytest.raises(ValueError, match="unknown batch id"):
        validate_batches(con, ["nope"], gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)


def test_empty_batch_fails_volume_check(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    # A header-only CSV is refused by the tabular adapter; an empty batch can still come from another source
    # (an ERP query returning nothing), and the contract must stop it.
    import pyarrow as pa

    from relance.ingest import load_extracts
    from relance.sources.base import EntityExtract

    load_landing(con, write_landing(tmp_path / "landing", CUSTOMERS, INVOICES), flow_run_id=None)
    empty = pa.table({c: pa.array([], pa.string()) for c in ENTITIES["invoices"]})
    report = load_extracts(
        con, [EntityExtract("invoices", empty, "erp#invoices", "empty")], source_name="erp", flow_run_id=None
    )
    summary = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)

    assert not summary.success
    [msg] = [m for m in summary.critical_failures if "expect_table_row_count_to_be_between" in m]
    assert msg.startswith("invoices") and "observed 0" in msg


def test_optional_entities_rules(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", CUSTOMERS, INVOICES)
    extra = {
        "payments": ["P1,C1,2024-02-01,1200.50,EUR,transfer", "P2,C1,2024-02-02,-5.00,EUR,transfer"],
        "payment_allocations": ["P1,I1,1200.50", "P2,I2,0.00"],
        "reminders": [
            "R1,I1,C1,2024-02-05 09:00:00,email,cordial,none,,",
            "R2,I1,C1,2024-02-06 09:00:00,fax,firm,paid,2024-02-07 00:00:00,",
        ],
    }
    for name, rows in extra.items():
        (landing / f"{name}.csv").write_text("\n".join([",".join(ENTITIES[name]), *rows]) + "\n")
    report = load_landing(con, landing, flow_run_id=None)

    summary = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)

    assert summary.success, summary.critical_failures
    got = con.execute("SELECT entity, natural_key, expectation FROM ops.quarantine ORDER BY ALL").fetchall()
    assert got == [
        ("payment_allocations", "P2|I2", "expect_column_values_to_be_between(allocated_amount)"),
        ("payments", "P2", "expect_column_values_to_be_between(amount)"),
        ("reminders", "R2", "expect_column_values_to_be_in_set(channel)"),
    ]


def write_extra(landing: Path, extra: dict[str, list[str]]) -> None:
    for name, rows in extra.items():
        (landing / f"{name}.csv").write_text("\n".join([",".join(ENTITIES[name]), *rows]) + "\n")


def load_with_extra(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, extra: dict[str, list[str]], invoices: list[str] = INVOICES
) -> ValidationSummary:
    landing = write_landing(tmp_path / "landing", CUSTOMERS, invoices)
    write_extra(landing, extra)
    report = load_landing(con, landing, flow_run_id=None)
    return validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)


def test_payment_of_unknown_customer_is_critical(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    payments = ["P1,C1,2024-02-01,1200.50,EUR,transfer", "P2,C404,2024-02-02,5.00,EUR,transfer"]
    summary = load_with_extra(con, tmp_path, {"payments": payments})

    assert not summary.success
    [msg] = summary.critical_failures
    assert msg.startswith("payments [batch ")
    assert "(_customer_exists)" in msg and "customer_id not found in customers.customer_id" in msg
    assert "row 3 [P2] customer_id='C404'" in msg and "'C1'" not in msg
    with pytest.raises(CriticalValidationError, match="C404"):
        summary.raise_for_critical()
    assert con.execute("SELECT count(*) FROM ops.quarantine").fetchone()[0] == 0


def test_allocation_to_unknown_payment_or_invoice_is_critical(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    extra = {
        "payments": ["P1,C1,2024-02-01,1200.50,EUR,transfer"],
        "payment_allocations": ["P1,I1,1200.50", "P9,I2,10.00", "P1,I99,5.00"],
    }
    summary = load_with_extra(con, tmp_path, extra)

    assert not summary.success
    assert len(summary.critical_failures) == 2, summary.critical_failures
    [payment] = [m for m in summary.critical_failures if "(_payment_exists)" in m]
    [invoice] = [m for m in summary.critical_failures if "(_invoice_exists)" in m]
    assert payment.startswith("payment_allocations") and invoice.startswith("payment_allocations")
    assert "payment_id not found in payments.payment_id" in payment and "[P9|I2] payment_id='P9'" in payment
    assert "invoice_id not found in invoices.invoice_id" in invoice and "[P1|I99] invoice_id='I99'" in invoice
    assert "1 unexpected" in payment and "1 unexpected" in invoice


def test_references_resolve_against_earlier_loads(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    first = load_with_extra(con, tmp_path, {"payments": ["P1,C1,2024-02-01,1200.50,EUR,transfer"]})
    assert first.success, first.critical_failures
    landing = write_landing(tmp_path / "later", CUSTOMERS, INVOICES)  # unchanged files: not re-validated
    write_extra(landing, {"payment_allocations": ["P1,I1,1200.50"], "disputes": ["D1,I2,2024-02-10,,price"]})
    report = load_landing(con, landing, flow_run_id=None)

    summary = validate_batches(con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id=None, data_docs=False)

    assert summary.success, summary.critical_failures
    assert summary.warning_failures == [] and summary.quarantined_rows == 0


def test_orphan_disputes_reminders_and_credit_notes_are_quarantined(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    invoices = [*INVOICES, "I4,C1,credit_note,I404,2024-01-25,2024-01-25,-50.00,EUR,30,false"]
    extra = {
        "disputes": ["D1,I1,2024-02-10,,price", "D2,I405,2024-02-11,,quality"],
        "reminders": [
            "R1,I1,C1,2024-02-05 09:00:00,email,cordial,none,,",
            "R2,I406,C1,2024-02-06 09:00:00,email,firm,none,,",
        ],
    }
    summary = load_with_extra(con, tmp_path, extra, invoices=invoices)

    assert summary.success, summary.critical_failures
    assert summary.quarantined_rows == 3
    assert len(summary.warning_failures) == 3
    got = con.execute(
        "SELECT entity, natural_key, row_number, expectation, severity, reason FROM ops.quarantine ORDER BY entity"
    ).fetchall()
    assert [g[:4] for g in got] == [
        ("disputes", "D2", 3, "expect_column_values_to_be_in_set(_invoice_exists)"),
        ("invoices", "I4", 5, "expect_column_values_to_be_in_set(_credited_invoice_exists)"),
        ("reminders", "R2", 3, "expect_column_values_to_be_in_set(_invoice_exists)"),
    ]
    assert {g[4] for g in got} == {"warning"}
    reasons = {g[1]: g[5] for g in got}
    assert reasons["D2"] == "disputes.invoice_id refers to a loaded invoices.invoice_id; got invoice_id='I405'"
    assert "credited_invoice_id='I404'" in reasons["I4"]
    assert "invoice_id='I406'" in reasons["R2"]
    [msg] = [m for m in summary.warning_failures if m.startswith("disputes")]
    assert "invoice_id not found in invoices.invoice_id" in msg and "'I405'" in msg
    flagged = dict(con.execute("SELECT entity, rows_flagged FROM ops.ingest_batches").fetchall())  # type: ignore[arg-type]
    assert flagged == {"customers": 0, "invoices": 1, "disputes": 1, "reminders": 1}
