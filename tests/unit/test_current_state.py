"""Current state is exact (issue 9, item 2) and nothing is silently rounded or trimmed (item 6): the loader side.

Each test starts from a reproduction of the issue: a revert that stayed at the corrected value, two versions of one
load resolved at random, a row only in a failed batch never coming back, a cancelled invoice that stayed current,
``12.345`` loaded as ``12.35``, ``'INV-1 '`` and ``'INV-1'`` as two invoices. "Current" is read with the loader's
own rule (:func:`relance.ingest.current_versions_sql`), which the staging macro mirrors (the dbt side is
``tests/integration/test_current_state_dbt.py``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from relance import ops
from relance.ingest import current_versions_sql, load_extracts
from relance.raw_schema import ensure_version_columns, entity
from relance.sources.base import EntityExtract, Reject, declare_full_snapshot
from relance.warehouse import connect, ensure_schemas


def _invoice(invoice_id: str, amount: str = "100.00", **over: str | None) -> dict[str, str | None]:
    row = {
        "invoice_id": invoice_id,
        "customer_id": "C1",
        "document_type": "invoice",
        "credited_invoice_id": None,
        "issue_date": "2026-01-01",
        "due_date": "2026-01-31",
        "amount": amount,
        "currency": "EUR",
        "payment_terms_days": "30",
        "is_end_of_month_terms": "false",
    }
    return row | over


def _extract(rows: list[dict], name: str, *, full_snapshot: bool = False, **kw: object) -> EntityExtract:
    """An invoices extract of ``rows`` from file ``name`` (its hash: the file name and the rows)."""
    table = pa.Table.from_pylist(rows)
    return EntityExtract("invoices", table, name, f"{name}:{hash(str(rows))}", full_snapshot=full_snapshot, **kw)  # type: ignore[arg-type]


def _current(con: duckdb.DuckDBPyConnection, entity_name: str = "invoices") -> dict[str, tuple]:
    """Live current versions: key -> (amount, batch id); tombstoned keys are left out."""
    rows = con.execute(
        "SELECT invoice_id, amount, _batch_id, coalesce(_deleted, false) "
        f"FROM ({current_versions_sql(entity(entity_name))})",
        [list(ops.EXCLUDED_STATES)],
    ).fetchall()
    return {r[0]: (str(r[1]), r[2]) for r in rows if not r[3]}


def _load(con: duckdb.DuckDBPyConnection, *extracts: EntityExtract, source: str = "erp"):
    return load_extracts(con, list(extracts), source_name=source, flow_run_id=None)


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


# --- reverts, same-load order, excluded batches ------------------------------------------------------------------


def test_a_reverted_value_is_appended_and_becomes_current(con) -> None:
    # repro: 100, then 80, then 100 again in three loads stayed at 80 ((key, hash) of 100 "already existed")
    for i, amount in enumerate(["100.00", "80.00", "100.00"]):
        report = _load(con, _extract([_invoice("I1", amount)], f"invoices-{i}.csv"))
        assert report.batches[0].rows_loaded == 1, amount

    assert _current(con)["I1"][0] == "100.00"
    assert con.execute("SELECT count(*) FROM raw.invoices").fetchone()[0] == 3
    # and the same value again is unchanged: nothing appended
    again = _load(con, _extract([_invoice("I1", "100.00")], "invoices-3.csv"))
    assert (again.batches[0].rows_loaded, again.batches[0].rows_unchanged) == (0, 1)


@pytest.mark.parametrize("first,second", [("100.00", "80.00"), ("80.00", "100.00")])
def test_two_files_of_one_load_the_later_file_wins(tmp_path: Path, first: str, second: str) -> None:
    # repro: two files of one load carry two versions; the tie on _loaded_at was broken by a random batch id.
    # Repeated in fresh warehouses: a coin flip would pass all of them with probability 2**-6.
    for attempt in range(6):
        with connect(tmp_path / f"w{attempt}.duckdb") as con:
            _load(con, _extract([_invoice("I1", first)], "a.csv"), _extract([_invoice("I1", second)], "b.csv"))
            assert _current(con)["I1"][0] == second
            seqs = con.execute("SELECT amount, _load_seq FROM raw.invoices ORDER BY _load_seq").fetchall()
            assert [str(a) for a, _ in seqs] == [first, second]


def test_within_one_file_the_later_row_wins(tmp_path: Path) -> None:
    for attempt in range(6):
        with connect(tmp_path / f"w{attempt}.duckdb") as con:
            _load(con, _extract([_invoice("I1", "100.00"), _invoice("I1", "80.00")], "a.csv"))
            assert _current(con)["I1"][0] == "80.00"


def test_rows_only_in_an_excluded_batch_are_appended_again(con) -> None:
    # repro: a batch that failed its contract keeps its rows out of the current state; the corrected file's rows that
    # were also in the failed batch were not appended again ((key, hash) existed), so they never became current
    _load(con, _extract([_invoice("I1")], "day1.csv"))
    failed = _load(con, _extract([_invoice("I1"), _invoice("I2", "50.00"), _invoice("I3"), _invoice("I3")], "day2.csv"))
    ops.set_validation_states(con, {failed.batches[0].batch_id: "failed"}, at=datetime(2026, 2, 1))
    assert set(_current(con)) == {"I1"}

    fixed = _load(con, _extract([_invoice("I1"), _invoice("I2", "50.00"), _invoice("I3", "70.00")], "day2-fixed.csv"))

    assert (fixed.batches[0].rows_loaded, fixed.batches[0].rows_unchanged) == (2, 1)
    current = _current(con)
    assert {k: v[0] for k, v in current.items()} == {"I1": "100.00", "I2": "50.00", "I3": "70.00"}
    assert current["I2"][1] == fixed.batches[0].batch_id


def test_old_raw_tables_get_version_columns_in_load_order(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.customers "
            "(customer_id VARCHAR, _batch_id VARCHAR, _loaded_at TIMESTAMP, _row_hash VARCHAR)"
        )
        con.execute(
            "INSERT INTO raw.customers VALUES ('C2', 'b2', '2026-01-02', 'h2'), ('C1', 'b1', '2026-01-01', 'h1'), "
            "('C1', 'b2', '2026-01-02', 'h3')"
        )
        ensure_version_columns(con)
        ensure_version_columns(con)  # idempotent
        rows = con.execute("SELECT _batch_id, _row_hash, _load_seq, _deleted FROM raw.customers ORDER BY 3").fetchall()
    assert rows == [("b1", "h1", 1, False), ("b2", "h2", 2, False), ("b2", "h3", 3, False)]


# --- deletions: full snapshots retire what their source no longer holds ----------------------------------------


def test_a_full_snapshot_retires_keys_it_no_longer_holds(con) -> None:
    # repro: I2 cancelled in the ERP (absent from the next full export) stayed current and kept being dunned
    _load(con, _extract([_invoice("I1"), _invoice("I2")], "invoices.csv", full_snapshot=True))
    second = _load(con, _extract([_invoice("I1")], "invoices.csv", full_snapshot=True))

    assert set(_current(con)) == {"I1"}
    [retired] = second.retired
    assert (retired.entity, retired.batch_id, retired.rows) == ("invoices", second.batches[0].batch_id, 1)
    assert second.batches[0].rows_loaded == 0  # tombstones are not rows read from the file
    tomb = con.execute(
        "SELECT amount, customer_id, _deleted, _batch_id FROM raw.invoices WHERE invoice_id = 'I2' "
        "ORDER BY _load_seq DESC LIMIT 1"
    ).fetchone()
    assert tomb == (pytest.approx(100), "C1", True, second.batches[0].batch_id)

    # a third snapshot without I2 retires nothing more; I2 back at the source is live again
    assert _load(con, _extract([_invoice("I1"), _invoice("I3")], "invoices.csv", full_snapshot=True)).retired == []
    _load(con, _extract([_invoice("I1"), _invoice("I2"), _invoice("I3")], "invoices.csv", full_snapshot=True))
    assert set(_current(con)) == {"I1", "I2", "I3"}


def test_a_snapshot_of_several_files_is_their_union(con) -> None:
    _load(
        con,
        _extract([_invoice("I1")], "a.csv", full_snapshot=True),
        _extract([_invoice("I2")], "b.csv", full_snapshot=True),
    )
    # a.csv unchanged (not read again as rows), b.csv lost I2 and gained I3: only I2 is retired
    report = _load(
        con,
        _extract([_invoice("I1")], "a.csv", full_snapshot=True),
        _extract([_invoice("I3")], "b.csv", full_snapshot=True),
    )
    assert [b.status for b in report.batches] == ["unchanged", "loaded"]
    assert set(_current(con)) == {"I1", "I3"}


def test_what_is_not_a_full_snapshot_retires_nothing(con) -> None:
    _load(con, _extract([_invoice("I1"), _invoice("I2")], "invoices.csv", full_snapshot=True))
    # an incremental extract
    assert _load(con, _extract([_invoice("I3")], "delta.csv")).retired == []
    # an empty snapshot (more likely a broken export than an empty ledger)
    empty = pa.Table.from_pylist([], schema=pa.Table.from_pylist([_invoice("I1")]).schema)
    assert _load(con, EntityExtract("invoices", empty, "empty.csv", "e", full_snapshot=True)).retired == []
    # a snapshot with rows the adapter could not read: their keys are unknown
    broken = _extract([_invoice("I1")], "broken.csv", full_snapshot=True, rejects=[Reject("invoices", 3, "bad line")])
    assert _load(con, broken).retired == []
    # another source's snapshot never retires this source's keys
    assert _load(con, _extract([_invoice("I9")], "other.csv", full_snapshot=True), source="other").retired == []
    assert set(_current(con)) == {"I1", "I2", "I3", "I9"}


def test_file_scoped_snapshots_retire_only_keys_of_files_with_the_same_name(con) -> None:
    # FEC: one fiscal year per legally named file; next year's file must not retire last year's documents
    year1 = [_invoice("A"), _invoice("B")]
    _load(con, _extract(year1, "/in/123456789FEC20241231.txt", snapshot_scope="file", full_snapshot=True))
    _load(con, _extract([_invoice("C")], "/in/123456789FEC20251231.txt", snapshot_scope="file", full_snapshot=True))
    assert set(_current(con)) == {"A", "B", "C"}
    # a re-export of year 1 (another directory, same name) without B retires B only
    report = _load(
        con, _extract([_invoice("A")], "/later/123456789FEC20241231.txt", snapshot_scope="file", full_snapshot=True)
    )
    assert [r.rows for r in report.retired] == [1]
    assert set(_current(con)) == {"A", "C"}


def test_a_table_can_declare_itself_a_full_snapshot() -> None:
    table = declare_full_snapshot(pa.Table.from_pylist([_invoice("I1")]), "file")
    ext = EntityExtract("invoices", table, "x.txt", "h")
    assert (ext.full_snapshot, ext.snapshot_scope) == (True, "file")
    assert not EntityExtract("invoices", pa.Table.from_pylist([_invoice("I1")]), "x", "h").full_snapshot


def test_a_failed_snapshot_batch_takes_its_tombstones_with_it(con) -> None:
    _load(con, _extract([_invoice("I1"), _invoice("I2")], "invoices.csv", full_snapshot=True))
    bad = _load(con, _extract([_invoice("I1", "90.00")], "invoices.csv", full_snapshot=True))
    assert set(_current(con)) == {"I1"}
    ops.set_validation_states(con, {bad.batches[0].batch_id: "failed"}, at=datetime(2026, 2, 1))
    assert {k: v[0] for k, v in _current(con).items()} == {"I1": "100.00", "I2": "100.00"}


# --- item 6: no silent rounding, ids trimmed by a documented rule --------------------------------------------------


def test_a_value_the_cast_would_round_is_quarantined_with_the_reason(con) -> None:
    # repro: 12.345 was loaded as 12.35, a term of 30.5 days as 31
    rows = [
        _invoice("I1", "12.345"),
        _invoice("I2", "12.3400"),  # trailing zeros lose nothing
        _invoice("I3", "120.00000000000001"),  # floating-point noise beyond the 10th decimal (a spreadsheet's)
        _invoice("I4", payment_terms_days="30.5"),
    ]
    report = _load(con, _extract(rows, "ledger.csv"))

    b = report.batches[0]
    assert (b.rows_read, b.rows_loaded, b.rows_quarantined) == (4, 2, 2)
    assert b.rows_read == b.rows_loaded + b.rows_unchanged + b.rows_quarantined
    assert {k: v[0] for k, v in _current(con).items()} == {"I2": "12.34", "I3": "120.00"}
    q = con.execute("SELECT natural_key, expectation, stage, reason FROM ops.quarantine ORDER BY row_number").fetchall()
    assert [r[:3] for r in q] == [("I1", "rounding", "load"), ("I4", "rounding", "load")]
    assert q[0][3] == "ledger.csv, row 1: column amount: 12.345 has more than 2 decimals: DECIMAL(18,2) would round it"
    assert q[1][3] == "ledger.csv, row 4: column payment_terms_days: 30.5 has decimals: INTEGER would round it"


def test_typed_decimals_are_checked_too(con) -> None:
    table = pa.table({**{k: [v] for k, v in _invoice("I1").items() if k != "amount"}, "amount": pa.array([12.345])})
    report = _load(con, EntityExtract("invoices", table, "ledger.parquet", "h"))
    assert report.batches[0].rows_quarantined == 1
    assert "more than 2 decimals" in report.rejected[0].reason


def test_ids_are_trimmed_so_padded_and_bare_ids_are_one_key(con) -> None:
    # repro: 'INV-1 ' and 'INV-1' were two invoices
    _load(con, _extract([_invoice("INV-1", customer_id="C1")], "a.csv"))
    report = _load(con, _extract([_invoice("INV-1 ", customer_id="\u00a0C1\t")], "b.csv"))

    assert (report.batches[0].rows_loaded, report.batches[0].rows_unchanged) == (0, 1)
    assert con.execute("SELECT DISTINCT invoice_id, customer_id FROM raw.invoices").fetchall() == [("INV-1", "C1")]
    # inner whitespace is data, and other text columns are left as they are
    _load(con, _extract([_invoice("INV 2", currency="EUR ")], "c.csv"))
    assert con.execute("SELECT invoice_id, currency FROM raw.invoices WHERE invoice_id LIKE 'INV 2%'").fetchall() == [
        ("INV 2", "EUR ")
    ]


def test_ensure_schemas_then_load_keeps_version_columns(con) -> None:
    ensure_schemas(con)
    cols = {r[0] for r in con.execute("DESCRIBE raw.invoices").fetchall()}
    assert {"_load_seq", "_deleted"} <= cols


def test_a_full_snapshot_profile_retires_rows_missing_from_the_next_export(con, tmp_path: Path) -> None:
    """The demo profile declares full exports; what its flag means for a load (relance.sources.tabular.read is to
    pass ``profile.full_snapshot`` to every extract it builds; until then the test applies it the same way)."""
    import dataclasses

    from relance.sources.tabular import load_profile, parse_profile, read_tabular
    from tests.unit.test_ingest import CUSTOMERS, INVOICES, write_csv

    profile = load_profile("demo")
    assert profile.full_snapshot and load_profile("ibm_ar").full_snapshot
    assert not parse_profile(
        "name: x\nentities: {customers: {file: c.csv, columns: {customer_id: id}}}", "x"
    ).full_snapshot

    def load_export(directory: Path, invoices: list[str]):
        write_csv(directory, "customers", CUSTOMERS)
        write_csv(directory, "invoices", invoices)
        extracts = [
            dataclasses.replace(e, full_snapshot=profile.full_snapshot) for e in read_tabular(directory, profile)
        ]
        return load_extracts(con, extracts, source_name=profile.name, flow_run_id=None)

    load_export(tmp_path / "day1", INVOICES)
    # I2 cancelled in the ERP: the next full export no longer has it
    report = load_export(tmp_path / "day2", [INVOICES[0], INVOICES[2]])

    assert [(r.entity, r.rows) for r in report.retired] == [("invoices", 1)]
    assert set(_current(con)) == {"I1", "I3"}


def test_keys_another_file_of_the_same_load_holds_are_not_retired(con) -> None:
    _load(con, _extract([_invoice("I1"), _invoice("I2")], "full.csv", full_snapshot=True))
    report = _load(
        con,
        _extract([_invoice("I2", "90.00")], "delta.csv"),
        _extract([_invoice("I3")], "full.csv", full_snapshot=True),
    )
    assert [r.rows for r in report.retired] == [1]
    assert set(_current(con)) == {"I2", "I3"}
