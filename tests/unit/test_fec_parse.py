"""relance.sources.fec on tiny inline FEC files: one test per quirk real exporters write, and the derivation.

Each file is written to tmp_path as bytes (so encodings, BOMs and line ends are exactly what is tested) and
read back with the public ``read_fec``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from relance.demo.fec_export import lettering_code
from relance.raw_schema import ENTITIES
from relance.sources.base import SourceError
from relance.sources.encoding import WESTERN_CODEPAGES, decode_bytes
from relance.sources.fec import FEC_COLUMNS, detect_layout, parse_amount, parse_date, read_fec
from relance.sources.separators import best_separator

HEADER = "\t".join(FEC_COLUMNS)


def fec_line(
    journal: str = "VE",
    num: str = "1",
    day: str = "20240105",
    account: str = "411000",
    aux: str = "C1",
    aux_label: str = "Client Un",
    piece: str = "F1",
    debit: str = "0,00",
    credit: str = "0,00",
    let: str = "",
    *,
    piece_date: str | None = None,
    journal_label: str | None = None,
    label: str = "ligne",
    account_label: str = "Clients",
    amount_ccy: str = "",
    ccy: str = "",
    date_let: str = "",
    sep: str = "\t",
) -> str:
    """One FEC line in the 18 legal columns."""
    labels = {"VE": "Ventes", "BQ": "Banque", "AN": "A nouveaux", "OD": "Operations diverses"}
    fields = [
        journal,
        journal_label if journal_label is not None else labels.get(journal.upper(), journal),
        num,
        day,
        account,
        account_label,
        aux,
        aux_label,
        piece,
        piece_date if piece_date is not None else day,
        label,
        debit,
        credit,
        let,
        date_let,
        day,
        amount_ccy,
        ccy,
    ]
    return sep.join(fields)


def write(tmp_path: Path, lines: list[str], *, header: str = HEADER, encoding: str = "utf-8", eol: str = "\n") -> Path:
    path = tmp_path / "FEC.txt"
    path.write_bytes((eol.join([header, *lines]) + eol).encode(encoding))
    return path


def read(path: Path, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows per entity, plus the rejects under '<entity>:rejects'."""
    out: dict[str, list[Any]] = {}
    for ext in read_fec(path, **kwargs):
        out[ext.entity] = ext.table.to_pylist()
        out[f"{ext.entity}:rejects"] = ext.rejects
    return out


def basic_books() -> list[str]:
    """Two invoices of C1, one payment lettered with the first, one credit note, an unrelated bank line."""
    return [
        fec_line("VE", "1", "20240105", piece="F1", debit="120,00", let="AA"),
        fec_line("VE", "1", "20240105", "706000", "", "", piece="F1", credit="100,00", account_label="Ventes"),
        fec_line("VE", "1", "20240105", "445710", "", "", piece="F1", credit="20,00", account_label="TVA"),
        fec_line("VE", "2", "20240110", piece="F2", debit="240,00"),
        fec_line("BQ", "3", "20240201", piece="R1", credit="120,00", let="AA"),
        fec_line("BQ", "3", "20240201", "512000", "", "", piece="R1", debit="120,00", account_label="Banque"),
    ]


# ---------------------------------------------------------------------------------------------------------
# value parsing
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234,56", "1234.56"),
        ("1234.56", "1234.56"),
        ("+000001107,13", "1107.13"),
        ("0000000069,60", "69.60"),
        ("2592", "2592.00"),
        ("-12,5", "-12.50"),
        ("1 234,56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("", "0.00"),
        ("  ", "0.00"),
    ],
)
def test_parse_amount_is_exact_decimal(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert isinstance(value, Decimal) and value == Decimal(expected)
    assert value.as_tuple().exponent == -2


@pytest.mark.parametrize("text", ["12,345", "abc", "12,3,4", "1e5", "--1"])
def test_parse_amount_refuses_non_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_parse_date_formats() -> None:
    assert parse_date("20240229") == date(2024, 2, 29)
    assert parse_date(" 20240105    ") == date(2024, 1, 5)
    assert parse_date("2024-01-05") == date(2024, 1, 5)
    assert parse_date("05/01/2024") == date(2024, 1, 5)
    for bad in ("20230229", "2024015", "", "20241301"):
        with pytest.raises(ValueError):
            parse_date(bad)


# ---------------------------------------------------------------------------------------------------------
# the derivation
# ---------------------------------------------------------------------------------------------------------
def test_basic_books_give_the_four_entities_with_raw_columns(tmp_path: Path) -> None:
    out = read(write(tmp_path, basic_books()))
    for entity in ("customers", "invoices", "payments", "payment_allocations"):
        assert out[entity], f"{entity}: nothing derived from the basic books"
        assert all(set(ENTITIES[entity]) <= set(row) for row in out[entity]), entity
        assert out[f"{entity}:rejects"] == []
    assert [c["customer_id"] for c in out["customers"]] == ["C1"]
    assert out["customers"][0]["customer_name"] == "Client Un"
    inv = {r["invoice_id"]: r for r in out["invoices"]}
    assert set(inv) == {"F1", "F2"}  # PieceRef unique among documents -> it is the id
    assert inv["F1"]["amount"] == Decimal("120.00") and inv["F1"]["currency"] == "EUR"
    assert inv["F1"]["issue_date"] == date(2024, 1, 5)
    assert inv["F1"]["due_date"] == date(2024, 2, 4)  # no DateRglt: issue + 30 days
    assert inv["F1"]["payment_terms_days"] == 30
    assert out["payments"] == [
        {
            "payment_id": "R1",
            "customer_id": "C1",
            "payment_date": date(2024, 2, 1),
            "amount": Decimal("120.00"),
            "currency": "EUR",
            "payment_method": None,
            "_source_row": 6,
        }
    ]
    assert out["payment_allocations"] == [
        {"payment_id": "R1", "invoice_id": "F1", "allocated_amount": Decimal("120.00")}
    ]


def test_default_terms_and_daterglt(tmp_path: Path) -> None:
    header = HEADER + "\tDateRglt\tModeRglt\tNatOp"
    lines = [
        fec_line(piece="F1", debit="10,00") + "\t20240315\tVIR\t",
        fec_line(piece="F2", debit="10,00") + "\t\t\t",
    ]
    out = read(write(tmp_path, lines, header=header), default_terms_days=45)
    inv = {r["invoice_id"]: r for r in out["invoices"]}
    assert inv["F1"]["due_date"] == date(2024, 3, 15) and inv["F1"]["payment_terms_days"] == 70
    assert inv["F2"]["due_date"] == date(2024, 2, 19)


def test_customer_is_the_411_subaccount_without_auxiliary(tmp_path: Path) -> None:
    lines = [
        fec_line(account="411DUPONT", aux="", aux_label="", account_label="DUPONT SA", piece="F1", debit="50"),
        fec_line(account="411MARTIN", aux="", aux_label="", account_label="MARTIN", piece="F2", debit="70"),
        fec_line(account="401FOURN", aux="", aux_label="", account_label="Fournisseur", piece="A1", credit="9"),
    ]
    out = read(write(tmp_path, lines))
    assert {c["customer_id"]: c["customer_name"] for c in out["customers"]} == {
        "411DUPONT": "DUPONT SA",
        "411MARTIN": "MARTIN",
    }
    assert {r["customer_id"] for r in out["invoices"]} == {"411DUPONT", "411MARTIN"}


def test_customer_accounts_prefix_is_a_parameter(tmp_path: Path) -> None:
    lines = [fec_line(account="411000", piece="F1", debit="50"), fec_line(account="416000", piece="F2", debit="70")]
    assert len(read(write(tmp_path, lines))["invoices"]) == 1
    assert len(read(write(tmp_path, lines), customer_accounts="41")["invoices"]) == 2


def test_partial_lettering_leaves_the_remainder_open(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="aa"),
        fec_line("BQ", "2", "20240201", piece="R1", credit="60,00", let="aa"),
    ]
    out = read(write(tmp_path, lines))
    assert out["payment_allocations"] == [{"payment_id": "R1", "invoice_id": "F1", "allocated_amount": Decimal("60")}]


def test_one_payment_for_several_invoices_oldest_first(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "2", "20240110", piece="F2", debit="200,00", let="AB"),
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="AB"),
        fec_line("VE", "3", "20240120", piece="F3", debit="50,00", let="AB"),
        fec_line("BQ", "4", "20240201", piece="R1", credit="250,00", let="AB"),
    ]
    out = read(write(tmp_path, lines))
    alloc = {r["invoice_id"]: r["allocated_amount"] for r in out["payment_allocations"]}
    assert alloc == {"F1": Decimal("100"), "F2": Decimal("150")}  # F3 (newest) stays open


def test_overpaid_group_leaves_credit_unallocated(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="AC"),
        fec_line("BQ", "2", "20240201", piece="R1", credit="130,00", let="AC"),
    ]
    out = read(write(tmp_path, lines))
    assert out["payments"][0]["amount"] == Decimal("130")
    assert out["payment_allocations"][0]["allocated_amount"] == Decimal("100")


def test_receipt_split_per_invoice_is_one_payment(tmp_path: Path) -> None:
    """A bank entry with one 411 line per invoice (each lettered with its invoice) is one payment."""
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="A"),
        fec_line("VE", "2", "20240106", piece="F2", debit="80,00", let="B"),
        fec_line("BQ", "3", "20240201", piece="R1", credit="100,00", let="A"),
        fec_line("BQ", "3", "20240201", piece="R1", credit="80,00", let="B"),
        fec_line("BQ", "3", "20240201", piece="R1", credit="5,00"),
    ]
    out = read(write(tmp_path, lines))
    assert [(p["payment_id"], p["amount"]) for p in out["payments"]] == [("R1", Decimal("185"))]
    assert {(a["invoice_id"], a["allocated_amount"]) for a in out["payment_allocations"]} == {
        ("F1", Decimal("100")),
        ("F2", Decimal("80")),
    }


def test_unlettered_credit_stays_on_account(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00"),
        fec_line("BQ", "2", "20240201", piece="R1", credit="100,00"),
    ]
    out = read(write(tmp_path, lines))
    assert len(out["payments"]) == 1 and out["payment_allocations"] == []


def test_lettering_is_case_sensitive_and_per_customer(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="AA"),
        fec_line("BQ", "2", "20240201", piece="R1", credit="100,00", let="aa"),
        fec_line("BQ", "3", "20240202", aux="C2", piece="R2", credit="100,00", let="AA"),
    ]
    out = read(write(tmp_path, lines))
    assert out["payment_allocations"] == []


def test_sales_journal_credit_is_a_credit_note(tmp_path: Path) -> None:
    lines = [
        fec_line("ve", "1", "20240105", piece="F1", debit="100,00", let="AD", journal_label="Ventes"),
        fec_line("ve", "2", "20240110", piece="AV1", credit="30,00", let="AD", journal_label="Ventes"),
        fec_line("70", "3", "20240111", piece="AV2", credit="5,00", journal_label="VENTES PAR TIERS"),
        fec_line("OD", "4", "20240112", piece="OD1", credit="7,00"),
    ]
    out = read(write(tmp_path, lines))
    docs = {r["invoice_id"]: r for r in out["invoices"]}
    assert docs["AV1"]["document_type"] == "credit_note" and docs["AV1"]["amount"] == Decimal("-30")
    assert docs["AV1"]["credited_invoice_id"] == "F1"
    assert docs["AV2"]["document_type"] == "credit_note" and docs["AV2"]["credited_invoice_id"] is None
    assert [p["amount"] for p in out["payments"]] == [Decimal("7")]  # OD credit: a payment, not a credit note


def test_credit_note_spread_over_invoices_is_split(tmp_path: Path) -> None:
    lines = [
        fec_line("VE", "1", "20240105", piece="F1", debit="100,00", let="AE"),
        fec_line("VE", "2", "20240106", piece="F2", debit="50,00", let="AE"),
        fec_line("VE", "3", "20240110", piece="AV1", credit="170,00", let="AE"),
    ]
    out = read(write(tmp_path, lines))
    parts = sorted(
        (r["invoice_id"], r["credited_invoice_id"], r["amount"])
        for r in out["invoices"]
        if r["document_type"] == "credit_note"
    )
    assert parts == [
        ("AV1", "F1", Decimal("-100")),
        ("AV1~2", "F2", Decimal("-50")),
        ("AV1~3", None, Decimal("-20")),
    ]


def test_opening_balance_items_keep_their_original_dates(tmp_path: Path) -> None:
    lines = [
        fec_line("AN", "AN1", "20240101", piece="171592", piece_date="20231219", debit="1468,80", let="AB"),
        fec_line("AN", "AN1", "20240101", piece="171592", piece_date="20231107", credit="1186,50", let="AB"),
        fec_line("AN", "AN1", "20240101", piece="x", piece_date="20240315", debit="10,00"),  # after: ignored
    ]
    out = read(write(tmp_path, lines))
    inv = {r["amount"]: r for r in out["invoices"]}
    assert inv[Decimal("1468.80")]["issue_date"] == date(2023, 12, 19)
    assert inv[Decimal("10.00")]["issue_date"] == date(2024, 1, 1)
    assert out["payments"][0]["payment_date"] == date(2023, 11, 7)
    assert out["payment_allocations"][0]["allocated_amount"] == Decimal("1186.50")


def test_zero_lines_make_no_document_but_keep_the_customer(tmp_path: Path) -> None:
    lines = [fec_line(aux="C9", piece="Z", debit="+000000000,00", credit="+000000000,00")]
    out = read(write(tmp_path, lines))
    assert [c["customer_id"] for c in out["customers"]] == ["C9"]
    assert out["invoices"] == [] and out["payments"] == []


def test_foreign_currency_uses_montantdevise(tmp_path: Path) -> None:
    lines = [fec_line(piece="F1", debit="117,00", amount_ccy="100,00", ccy="GBP"), fec_line(piece="F2", debit="5")]
    lines.append(fec_line(piece="F3", debit="8,00", amount_ccy="8,00", ccy="EUR"))
    out = read(write(tmp_path, lines))
    inv = {r["invoice_id"]: (r["amount"], r["currency"]) for r in out["invoices"]}
    assert inv == {"F1": (Decimal("100"), "GBP"), "F2": (Decimal("5"), "EUR"), "F3": (Decimal("8"), "EUR")}


# ---------------------------------------------------------------------------------------------------------
# what real exporters write
# ---------------------------------------------------------------------------------------------------------
def _same_state(a: dict[str, list[dict[str, Any]]], b: dict[str, list[dict[str, Any]]]) -> bool:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "_source_row"} for r in rows]  # noqa: E731
    return all(strip(a[e]) == strip(b[e]) for e in ("customers", "invoices", "payments", "payment_allocations"))


@pytest.mark.parametrize("eol", ["\r\n", "\r\r\n", "\r"])
def test_line_ends(tmp_path: Path, eol: str) -> None:
    (tmp_path / "lf").mkdir()
    reference = read(write(tmp_path / "lf", basic_books()))
    other = read(write(tmp_path, basic_books(), eol=eol))
    assert _same_state(reference, other)
    assert [p["_source_row"] for p in other["payments"]] == [6]  # records counted the same way


def test_utf8_bom_and_header_case(tmp_path: Path) -> None:
    header = HEADER.replace("CompteLib", "CompteLIB").replace("Montantdevise", "MontantDevise")
    lines = [fec_line(piece="F1", debit="10", aux_label="Société Générale")]
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join([header, *lines]) + "\n").encode("utf-8"))
    out = read(path)
    assert out["customers"][0]["customer_name"] == "Société Générale"
    assert out["invoices"][0]["invoice_id"] == "F1"


@pytest.mark.parametrize("encoding", ["cp1252", "iso-8859-15"])
def test_single_byte_encodings_are_decoded_not_garbled(tmp_path: Path, encoding: str) -> None:
    sep = "|"
    header = sep.join(FEC_COLUMNS)
    lines = [fec_line(piece="F1", debit="10", aux_label="Crédit Agricole Élevage", sep=sep, label="Règlement à")]
    out = read(write(tmp_path, lines, header=header, encoding=encoding))
    assert out["customers"][0]["customer_name"] == "Crédit Agricole Élevage"


def test_decoding_order_is_utf8_then_the_western_code_pages() -> None:
    """The FEC decodes with relance.sources.encoding.decode_bytes, in the tabular detector's order of preference."""
    text = "Société Générale"
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_bytes(text.encode("cp1252")) == (text, "cp1252")
    assert decode_bytes(b"Soci\xe9t\xe9 \x81")[1] == WESTERN_CODEPAGES[1]  # 0x81 is undefined in cp1252


def test_separator_is_the_one_that_yields_the_fec_columns() -> None:
    tab_header = HEADER + "\tNote|Libre"  # a pipe inside a tab header cannot fool it
    assert detect_layout(tab_header, encoding="utf-8", has_bom=False).separator_name == "tab"
    layout = detect_layout(HEADER.replace("\t", "|") + "|", encoding="utf-8", has_bom=False)
    assert (layout.separator, layout.trailing_separator, layout.columns) == ("|", True, FEC_COLUMNS)
    assert best_separator([";", ",", "|"], lambda sep: None if sep == ";" else 1) == ","  # first of the best


def test_undefined_cp1252_bytes_do_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    line = fec_line(piece="F1", debit="10", aux_label="X", sep="|").encode("ascii").replace(b"|X|", b"|X\x81\xf8|")
    path.write_bytes("|".join(FEC_COLUMNS).encode("ascii") + b"\n" + line + b"\n")
    out = read(path)
    assert len(out["invoices"]) == 1 and out["customers"][0]["customer_name"].startswith("X")


def test_pipe_fixed_width_signed_zero_padded_and_trailing_separator(tmp_path: Path) -> None:
    """The layout of neolegal 111111111 / ekylibre agrigest: padded fields, zero-padded amounts, trailing '|'."""
    header = "|".join(FEC_COLUMNS).replace("Montantdevise", "MontantDevise") + "|"
    pad = lambda s, n: s.ljust(n)  # noqa: E731
    lines = [
        "|".join(
            [pad("VE", 4), "VE11", "00000001", "20230109", "41100000", pad("CLIENTS A 5.5%", 28), "41101590",
             pad("E.LECLERC CARPENTR", 33), "VE  0123", "20230109", pad("VENTE NECTAR FRAISE", 28),
             "0000000074,70", "0000000000,00", "AA", "20230209", "20240331", "", ""]
        ) + "|",
        "|".join(
            [pad("C1", 4), "TR21", "00000002", "20230209", "41100000", pad("CLIENTS A 5.5%", 28), "41101590",
             pad("E.LECLERC CARPENTR", 33), "C1  0223", "20230209", pad("VIR LECLERC", 28),
             "+000000000,00", "+000000074,70", "AA", "20230209", "20240331", "", ""]
        ) + "|",
    ]  # fmt: skip
    out = read(write(tmp_path, lines, header=header, encoding="cp1252", eol="\r\n"))
    assert out["invoices:rejects"] == [] and out["payments:rejects"] == []
    assert out["customers"] == [
        {**{c: None for c in ENTITIES["customers"]}, "customer_id": "41101590", "customer_name": "E.LECLERC CARPENTR",
         "currency": "EUR"}
    ]  # fmt: skip
    assert out["invoices"][0]["invoice_id"] == "VE  0123" and out["invoices"][0]["amount"] == Decimal("74.70")
    assert out["payment_allocations"] == [
        {"payment_id": "C1  0223", "invoice_id": "VE  0123", "allocated_amount": Decimal("74.70")}
    ]


def test_ecriturenum_zero_and_repeated_pieceref_give_distinct_ids(tmp_path: Path) -> None:
    lines = [
        fec_line("ve", "0", "20230131", aux="CCB", piece="01/2023", debit="26608,35", label="RECETTE CB"),
        fec_line("ve", "0", "20230131", aux="CESP", piece="01/2023", debit="10333,15", label="RECETTE ESPECES"),
        fec_line("bq", "0", "20230104", aux="CCB", piece="REM CB", credit="630,47"),
        fec_line("bq", "0", "20230106", aux="CCB", piece="REM CB", credit="963,98"),
        fec_line("bq", "0", "20230106", aux="CCB", piece="REM CB", credit="1,00"),
    ]
    out = read(write(tmp_path, lines))
    ids = {r["customer_id"]: r["invoice_id"] for r in out["invoices"]}
    # the first-ranked line keeps the shared PieceRef (same journal, number and dates: account CCB before CESP)
    assert ids["CCB"] == "01/2023" and ids["CESP"].startswith("FEC-")
    pays = sorted((p["payment_date"], p["amount"]) for p in out["payments"])
    assert pays == [(date(2023, 1, 4), Decimal("630.47")), (date(2023, 1, 6), Decimal("964.98"))]
    assert len({p["payment_id"] for p in out["payments"]}) == 2


def test_ids_are_stable_when_the_books_grow_and_get_lettered(tmp_path: Path) -> None:
    """A later export of the same books (more lines, old lines now lettered) maps old documents to the same ids."""
    early = [
        fec_line("VE", "0", "20240105", piece="P", debit="100,00", label="a"),
        fec_line("VE", "0", "20240105", piece="P", debit="100,00", label="a"),  # identical twin line
        fec_line("VE", "0", "20240106", piece="P", debit="70,00", label="b"),
        fec_line("VE", "7", "20240107", piece="UNIQUE1", debit="5,00"),
    ]
    later = [
        fec_line("VE", "0", "20240101", piece="P", debit="33,00", label="new, earlier in the file"),
        fec_line("VE", "0", "20240105", piece="P", debit="100,00", label="a", let="AA"),
        fec_line("VE", "0", "20240105", piece="P", debit="100,00", label="a", let="AB"),
        fec_line("VE", "0", "20240106", piece="P", debit="70,00", label="b", let="AC"),
        fec_line("VE", "7", "20240107", piece="UNIQUE1", debit="5,00"),
        fec_line("BQ", "0", "20240301", piece="R", credit="270,00", let="AA"),
    ]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = {(r["amount"], r["issue_date"]) for r in read(write(tmp_path / "a", early))["invoices"]}
    ids_first = sorted(r["invoice_id"] for r in read(write(tmp_path / "a", early))["invoices"])
    ids_later = sorted(r["invoice_id"] for r in read(write(tmp_path / "b", later))["invoices"])
    assert len(first) == 3 and len(set(ids_first)) == 4
    assert set(ids_first) <= set(ids_later)
    assert "UNIQUE1" in ids_first


def test_montant_sens_variant(tmp_path: Path) -> None:
    cols = [c for c in FEC_COLUMNS if c not in ("Debit", "Credit")] + ["Montant", "Sens"]
    row = dict(zip(FEC_COLUMNS, fec_line(piece="F1").split("\t"), strict=True))
    pay = dict(zip(FEC_COLUMNS, fec_line("BQ", piece="R1").split("\t"), strict=True))
    lines = [
        "\t".join([*(row[c] for c in cols[:-2]), "12,00", "D"]),
        "\t".join([*(pay[c] for c in cols[:-2]), "2,00", "C"]),
    ]
    out = read(write(tmp_path, lines, header="\t".join(cols)))
    assert [r["amount"] for r in out["invoices"]] == [Decimal("12")]
    assert [r["amount"] for r in out["payments"]] == [Decimal("2")]


# ---------------------------------------------------------------------------------------------------------
# errors and rejects
# ---------------------------------------------------------------------------------------------------------
def test_not_an_fec_names_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("date;account;debit;credit\n2024-01-01;411;10;0\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"not an FEC file.*JournalCode.*EcritureDate.*CompteNum"):
        read_fec(path)
    header = HEADER.replace("\tEcritureLet", "").replace("\tIdevise", "")
    with pytest.raises(SourceError, match=r"lacks mandatory column\(s\) EcritureLet, Idevise"):
        read_fec(write(tmp_path, [], header=header))


def test_empty_file_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"\r\n\r\n")
    with pytest.raises(SourceError, match="empty"):
        read_fec(path)


def test_unparseable_lines_are_rejected_with_line_and_reason(tmp_path: Path) -> None:
    lines = [
        fec_line(piece="F1", debit="10,00"),  # line 2: fine
        fec_line(piece="F2", debit="12,5O"),  # line 3: letter O in the amount
        fec_line(day="20241345", piece="F3", debit="10,00"),  # line 4: bad date
        fec_line("BQ", piece="R1", credit="abc"),  # line 5: a payment's amount
        fec_line(piece="F4", debit="10,00") + "\textra\tfields",  # line 6: too many fields
        "VE\tVentes\t1\t20240105",  # line 7: truncated
        fec_line(account="706000", aux="", piece="F5", credit="1x"),  # line 8: not a customer line: ignored
    ]
    out = read(write(tmp_path, lines))
    rejects = {r.row_number: r for r in out["invoices:rejects"] + out["payments:rejects"]}
    assert sorted(rejects) == [3, 4, 5, 6, 7]
    assert "Debit/Credit" in rejects[3].reason and "12,5O" in rejects[3].reason
    assert "EcritureDate" in rejects[4].reason and rejects[4].raw["EcritureDate"] == "20241345"
    assert rejects[5].entity == "payments"
    assert "20 tab-separated fields, header has 18" in rejects[6].reason
    assert "4 tab-separated fields" in rejects[7].reason
    assert [r["invoice_id"] for r in out["invoices"]] == ["F1"]


# ---------------------------------------------------------------------------------------------------------
# the invariant the integration test checks on real files, on a mixed little ledger
# ---------------------------------------------------------------------------------------------------------
def test_open_items_minus_unallocated_credit_equal_the_ledger_balance(tmp_path: Path) -> None:
    lines = [
        fec_line("AN", "0", "20240101", piece="x", debit="500,00", let="A"),
        fec_line("VE", "1", "20240105", piece="F1", debit="120,00", let="A"),
        fec_line("VE", "2", "20240110", piece="F2", debit="240,00", let="b"),
        fec_line("VE", "3", "20240111", piece="AV", credit="300,00", let="b"),
        fec_line("BQ", "4", "20240201", piece="R1", credit="400,00", let="A"),
        fec_line("BQ", "5", "20240202", piece="R2", credit="33,33"),
        fec_line("OD", "6", "20240203", piece="O1", debit="1,11", credit="0,11"),
    ]
    out = read(write(tmp_path, lines))
    invoices = [r for r in out["invoices"] if r["document_type"] == "invoice"]
    applied: dict[str, Decimal] = {r["invoice_id"]: Decimal(0) for r in invoices}
    for a in out["payment_allocations"]:
        applied[a["invoice_id"]] += a["allocated_amount"]
    unallocated = sum(p["amount"] for p in out["payments"]) - sum(applied.values())
    for cn in (r for r in out["invoices"] if r["document_type"] == "credit_note"):
        if cn["credited_invoice_id"]:
            applied[cn["credited_invoice_id"]] -= cn["amount"]
        else:
            unallocated -= cn["amount"]
    open_items = sum(r["amount"] - applied[r["invoice_id"]] for r in invoices)
    assert all(r["amount"] >= applied[r["invoice_id"]] for r in invoices)  # never over-allocated
    assert open_items - unallocated == Decimal("500") + 120 + 240 - 300 - 400 - Decimal("33.33") + 1


def test_lettering_codes_of_the_demo_writer() -> None:
    assert [lettering_code(n, partial=False) for n in (0, 25, 26, 27, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]
    assert lettering_code(0, partial=True) == "a"
