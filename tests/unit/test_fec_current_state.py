"""FEC exports of the same books, one after the other: stable ids and re-lettering (issue 9, item 2).

Reproductions: an invoice's id switched from its ``PieceRef`` to a hash when a later export held a second
document with the same reference (one invoice, two reminder keys); a payment re-lettered from invoice A to invoice
B left the (payment, A) allocation current forever, so A stayed paid.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from relance import ops
from relance.ingest import current_versions_sql, load_extracts
from relance.raw_schema import entity
from relance.sources.fec import read_fec
from relance.warehouse import connect
from tests.unit.test_fec_parse import fec_line, read, write


def _export(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """One export of the books, in its own directory under the same legal file name."""
    (tmp_path / name).mkdir()
    return write(tmp_path / name, lines)


def _ids(path: Path, entity_name: str = "invoices") -> dict[tuple, str]:
    key = "invoice_id" if entity_name == "invoices" else "payment_id"
    return {(r["customer_id"], str(r["amount"])): r[key] for r in read(path)[entity_name]}


def _current(con: duckdb.DuckDBPyConnection, entity_name: str, *cols: str) -> set[tuple]:
    rows = con.execute(
        f"SELECT {', '.join(cols)} FROM ({current_versions_sql(entity(entity_name))}) "
        "WHERE NOT coalesce(_deleted, false)",
        [list(ops.EXCLUDED_STATES)],
    ).fetchall()
    return {tuple(str(v) for v in r) for r in rows}


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


INVOICE = fec_line("VE", "1", "20240105", piece="F001", debit="120,00")
PAYMENT = fec_line("BQ", "3", "20240201", piece="R1", credit="50,00")


@pytest.mark.parametrize(
    "added",
    [
        # a credit note entered later with the invoice's reference
        fec_line("VE", "5", "20240201", piece="F001", credit="20,00", label="avoir"),
        # a second invoice line (instalment, correction) entered later with the same reference
        fec_line("VE", "9", "20240301", piece="F001", debit="30,00", label="complément"),
        # the same reference in another customer's entry
        fec_line("VE", "12", "20240302", aux="C2", aux_label="Client Deux", piece="F001", debit="10,00"),
    ],
    ids=["credit-note", "second-line", "other-customer"],
)
def test_an_invoice_keeps_its_piece_ref_when_a_later_document_reuses_it(tmp_path: Path, added: str) -> None:
    first = _ids(_export(tmp_path, "jan", [INVOICE]))
    later = _ids(_export(tmp_path, "mar", [INVOICE, added]))

    assert first == {("C1", "120.00"): "F001"}
    assert later[("C1", "120.00")] == "F001"
    assert len(set(later.values())) == len(later)  # the newcomer gets an id of its own


def test_the_id_does_not_come_back_when_the_reuse_goes_away(tmp_path: Path) -> None:
    # an export with two F001 lines then one with only the later line: the later line keeps its own id
    both = _ids(_export(tmp_path, "a", [INVOICE, fec_line("VE", "9", "20240301", piece="F001", debit="30,00")]))
    only_later = _ids(_export(tmp_path, "b", [fec_line("VE", "9", "20240301", piece="F001", debit="30,00")]))
    assert both[("C1", "120.00")] == "F001"
    # documented limit: the holder gone, the next line takes the reference (a deleted validated entry is not legal)
    assert only_later[("C1", "30.00")] == "F001"


def test_a_payment_keeps_its_piece_ref_when_a_later_receipt_shares_it(tmp_path: Path) -> None:
    later_receipt = fec_line("BQ", "8", "20240215", aux="C2", aux_label="Client Deux", piece="R1", credit="70,00")
    first = _ids(_export(tmp_path, "a", [INVOICE, PAYMENT]), "payments")
    later = _ids(_export(tmp_path, "b", [INVOICE, PAYMENT, later_receipt]), "payments")
    assert first[("C1", "50.00")] == "R1" == later[("C1", "50.00")]
    assert later[("C2", "70.00")].startswith("FEC-P")


def test_two_exports_with_a_reused_reference_are_one_invoice_in_raw(tmp_path: Path, con) -> None:
    credit_note = fec_line("VE", "5", "20240201", piece="F001", credit="20,00", label="avoir")
    for name, lines in (("jan", [INVOICE]), ("feb", [INVOICE, credit_note])):
        load_extracts(con, read_fec(_export(tmp_path, name, lines)), source_name="fec", flow_run_id=None)
    current = _current(con, "invoices", "invoice_id", "document_type", "amount")
    assert ("F001", "invoice", "120.00") in current
    assert len(current) == 2  # the invoice and its credit note, no second copy of the invoice under a hash


def test_a_relettered_payment_moves_its_allocation(tmp_path: Path, con) -> None:
    invoice_a = fec_line("VE", "1", "20240105", piece="A", debit="100,00", let="AA")
    invoice_b = fec_line("VE", "2", "20240110", piece="B", debit="100,00")
    payment = fec_line("BQ", "3", "20240201", piece="P", credit="100,00", let="AA")
    first = [invoice_a, invoice_b, payment]
    # the accountant finds the receipt was for B: A unlettered, B and the payment lettered together
    relettered = [
        fec_line("VE", "1", "20240105", piece="A", debit="100,00"),
        fec_line("VE", "2", "20240110", piece="B", debit="100,00", let="AB"),
        fec_line("BQ", "3", "20240201", piece="P", credit="100,00", let="AB"),
    ]
    load_extracts(con, read_fec(_export(tmp_path, "v1", first)), source_name="fec", flow_run_id=None)
    assert _current(con, "payment_allocations", "payment_id", "invoice_id") == {("P", "A")}

    report = load_extracts(con, read_fec(_export(tmp_path, "v2", relettered)), source_name="fec", flow_run_id=None)

    assert _current(con, "payment_allocations", "payment_id", "invoice_id") == {("P", "B")}
    assert [(r.entity, r.rows) for r in report.retired] == [("payment_allocations", 1)]
    # another fiscal year's file (another legal name) retires nothing of this one
    other = tmp_path / "y2"
    other.mkdir()
    path = other / "123456789FEC20251231.txt"
    write(other, [fec_line("VE", "1", "20250105", piece="Z", debit="10,00")]).rename(path)
    assert load_extracts(con, read_fec(path), source_name="fec", flow_run_id=None).retired == []
    assert ("A", "invoice", "100.00") in _current(con, "invoices", "invoice_id", "document_type", "amount")
