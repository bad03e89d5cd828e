"""Tabular ledger adapter: profiles, dialect and encoding detection, normalisation, structural errors.

Extracts are run on an in-memory DuckDB exactly as the loader would (``SELECT * FROM (<extract>)``), so these
tests see the real rows the loader gets, without the loader.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relance.raw_schema import ENTITIES
from relance.sources.amounts import parse_amount
from relance.sources.base import EntityExtract, SourceError
from relance.sources.encoding import detect_encoding, utf8_view
from relance.sources.tabular import (
    Profile,
    ProfileError,
    load_profile,
    packaged_profiles,
    parse_profile,
    read_tabular,
)

INVOICE_HEADER = "invoice_id,customer_id,issue_date,due_date,amount"

SMALL_PROFILE = """
name: small
description: test ledger
reader:
  delimiter: {delimiter}
  encoding: {encoding}
  decimal: "{decimal}"
  thousands: {thousands}
  date_format: "{date_format}"
  header_row: {header_row}
entities:
  customers:
    file: "*"
    distinct: true
    columns:
      customer_id: client
      customer_name: nom
  invoices:
    file: "*"
    columns:
      invoice_id: facture
      customer_id: client
      document_type: "'invoice'"
      issue_date: date_facture
      due_date: echeance
      amount: montant
      currency: "'EUR'"
      is_end_of_month_terms: false
"""


def profile_text(**overrides: object) -> str:
    """The small test profile's YAML with some reader options replaced."""
    options: dict[str, object] = {
        "delimiter": "auto",
        "encoding": "auto",
        "decimal": ".",
        "thousands": "null",
        "date_format": "%Y-%m-%d",
        "header_row": 1,
    }
    options.update(overrides)
    return SMALL_PROFILE.format(**options)


def small_profile(**overrides: object) -> Profile:
    return parse_profile(profile_text(**overrides), "small.yaml")


def rows(extract: EntityExtract) -> list[dict[str, object]]:
    """The extract's rows as the loader sees them."""
    con = duckdb.connect()
    if isinstance(extract.table, str):
        rel = con.sql(f"SELECT * FROM ({extract.table}) ORDER BY _source_row")
    else:
        con.register("t", extract.table)
        rel = con.sql("SELECT * FROM t ORDER BY _source_row")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def by_entity(extracts: list[EntityExtract]) -> dict[str, EntityExtract]:
    return {e.entity: e for e in extracts}


def write_ledger(path: Path, lines: list[str], *, encoding: str = "utf-8", delimiter: str = ";") -> Path:
    header = delimiter.join(["facture", "client", "nom", "date_facture", "echeance", "montant"])
    path.write_bytes(("\n".join([header, *lines]) + "\n").encode(encoding))
    return path


# ------------------------------------------------------------------------------------------------ profiles


def test_packaged_profiles_load_and_demo_is_the_identity_mapping() -> None:
    assert {"demo", "ibm_ar"} <= set(packaged_profiles())
    demo = load_profile("demo")
    assert set(demo.entities) == set(ENTITIES)
    for name, mapping in demo.entities.items():
        assert mapping.columns == {c: c for c in ENTITIES[name]}
    ibm = load_profile("ibm_ar")
    assert {"Disputed", "DaysToSettle", "DaysLate"} <= set(ibm.ignore_columns)
    assert "disputes" not in ibm.entities
    for mapping in ibm.entities.values():  # outcomes are never mapped into invoices or customers
        assert not any("DaysLate" in str(v) or "DaysToSettle" in str(v) for v in mapping.columns.values())


def test_profile_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(profile_text(date_format="%d/%m/%Y"))
    assert load_profile(path).name == "small"
    assert load_profile(str(path)).reader.date_format == "%d/%m/%Y"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (("  invoices:", "  invoicez:"), "entities.invoicez: unknown entity"),
        (("      amount: montant", "      amount: montant\n      amout: montant"), "unknown target column(s) amout"),
        (("      amount: montant\n", ""), "missing required mapping for amount"),
        (('decimal: "."', 'decimal: ";"'), "reader.decimal"),
        (("delimiter: auto", "delimiter: '#'"), "reader.delimiter: expected auto or one of"),
        (("encoding: auto", "encoding: klingon-8"), "unknown encoding 'klingon-8'"),
        (("header_row: 1", "header_row: 0"), "reader.header_row"),
        (("reader:", "reeder: {}\nreader:"), "reeder: unknown key"),
    ],
)
def test_profile_errors_name_the_file_the_key_and_what_was_expected(patch: tuple[str, str], expected: str) -> None:
    text = profile_text()
    assert patch[0] in text
    with pytest.raises(ProfileError) as err:
        parse_profile(text.replace(patch[0], patch[1], 1), "/profiles/broken.yaml")
    assert "profile /profiles/broken.yaml" in str(err.value)
    assert expected in str(err.value)


def test_unknown_profile_name_lists_the_packaged_ones() -> None:
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*demo.*ibm_ar"):
        load_profile("nope")


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ProfileError, match=r"x\.yaml: not valid YAML at line 2"):
        parse_profile("name: a\n  - : [\n", "x.yaml")


# ------------------------------------------------------------------------------------------------ CSV


def test_semicolon_cp1252_decimal_comma_file_is_detected_and_mapped(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "ledger.csv",
        [
            "F-1;C1;Société Générale;15/01/2024;14/02/2024;1 234,50",
            "F-2;C2;Café €uro;16/01/2024;15/02/2024;99,90",
            "F-3;C1;Société Générale;17/01/2024;16/02/2024;10",
        ],
        encoding="cp1252",
    )
    assert detect_encoding(path) == "cp1252"
    profile = small_profile(decimal=",", thousands="' '", date_format="%d/%m/%Y")
    extracts = by_entity(read_tabular(path, profile))
    invoices = rows(extracts["invoices"])
    assert [r["amount"] for r in invoices] == ["1234.50", "99.90", "10"]
    assert [r["issue_date"] for r in invoices] == ["2024-01-15", "2024-01-16", "2024-01-17"]
    assert [r["_source_row"] for r in invoices] == [2, 3, 4]
    assert invoices[0]["is_end_of_month_terms"] is False
    assert invoices[0]["credited_invoice_id"] is None  # unmapped optional column -> NULL
    customers = rows(extracts["customers"])
    assert [(c["customer_id"], c["customer_name"]) for c in customers] == [
        ("C1", "Société Générale"),
        ("C2", "Café €uro"),
    ]
    assert set(customers[0]) == {*ENTITIES["customers"], "_source_row"}


def test_space_thousands_also_strip_no_break_spaces_and_agree_with_the_fec_parser(tmp_path: Path) -> None:
    """One notion of an amount: the tabular SQL and the FEC's parse_amount read these the same way."""
    written = ["1 234,50", "2\u00a0000,00", "3\u202f456,78", "-12,5"]
    lines = [f"F-{i};C1;Nom;15/01/2024;14/02/2024;{amount}" for i, amount in enumerate(written)]
    path = write_ledger(tmp_path / "ledger.csv", lines)
    profile = small_profile(decimal=",", thousands="' '", date_format="%d/%m/%Y")
    got = [r["amount"] for r in rows(by_entity(read_tabular(path, profile))["invoices"])]
    assert got == ["1234.50", "2000.00", "3456.78", "-12.5"]
    assert [Decimal(g) for g in got] == [parse_amount(a) for a in written]


def test_unparseable_dates_keep_their_text_for_the_loader_to_quarantine(tmp_path: Path) -> None:
    path = write_ledger(
        tmp_path / "ledger.csv",
        [
            "F-1;C1;A;15/01/2024;14/02/2024;1",
            "F-2;C1;A;2024-01-16;2024-02-15;1",  # ISO: left as is, the loader's cast accepts it
            "F-3;C1;A;01/31/2024;03/01/2024;1",  # US order: month 31 does not parse, text kept
        ],
    )
    invoices = rows(by_entity(read_tabular(path, small_profile(date_format="%d/%m/%Y")))["invoices"])
    assert [r["issue_date"] for r in invoices] == ["2024-01-15", "2024-01-16", "01/31/2024"]
    con = duckdb.connect()
    assert con.sql("SELECT TRY_CAST('01/31/2024' AS DATE)").fetchone() == (None,)


def test_forced_wrong_delimiter_names_missing_columns_and_hints(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;A;2024-01-15;2024-02-14;1"])
    with pytest.raises(SourceError) as err:
        read_tabular(path, small_profile(delimiter="','"))
    msg = str(err.value)
    assert "missing column(s) 'client'" in msg and "'facture' (for invoices.invoice_id)" in msg
    assert "the file has 1 column(s)" in msg
    assert "Wrong delimiter?" in msg and "';'" in msg


def test_missing_column_is_named_with_what_the_file_has(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("facture,client,nom,date_facture,echeance\nF-1,C1,A,2024-01-15,2024-02-14\n")
    with pytest.raises(SourceError) as err:
        read_tabular(path, small_profile())
    assert "missing column(s) 'montant' (for invoices.amount)" in str(err.value)
    assert "'facture', 'client', 'nom', 'date_facture', 'echeance'" in str(err.value)
    assert "Wrong delimiter" not in str(err.value)


def test_extra_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        "facture,client,nom,date_facture,echeance,montant,commercial\nF-1,C1,A,2024-01-15,2024-02-14,1,Bob\n"
    )
    with caplog.at_level(logging.WARNING, logger="relance.sources.tabular"):
        extracts = read_tabular(path, small_profile())
    assert "ignoring column(s) commercial" in caplog.text
    assert "commercial" not in rows(by_entity(extracts)["invoices"])[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "file is empty"),
        (b"\n\n", "file is empty"),
        (b"facture,client,nom,date_facture,echeance,montant\n", "header only"),
        (b"facture,,nom,date_facture,echeance,montant\nF-1,C1,A,2024-01-15,2024-02-14,1\n", "empty column name"),
    ],
)
def test_structural_problems_are_specific_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=expected) as err:
        read_tabular(path, small_profile())
    assert str(path) in str(err.value)


def test_truncated_and_broken_lines_become_rejects_and_row_numbers_stay_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        "facture,client,nom,date_facture,echeance,montant\n"
        "F-1,C1,A,2024-01-15,2024-02-14,1\n"
        "F-2,C1,A,2024-01-15\n"  # line 3: too few fields
        "F-3,C1,A,2024-01-15,2024-02-14,3\n"
        "F-4,C1,A,2024-01-15,2024-02-14,4,surplus\n"  # line 5: too many fields
        "F-5,C1,A,2024-01-15,2024-02-14,5\n"
        "F-6,C1,A,2024-01"  # line 7: truncated last line, no newline
    )
    invoices = by_entity(read_tabular(path, small_profile()))["invoices"]
    got = rows(invoices)
    assert [(r["invoice_id"], r["_source_row"]) for r in got] == [("F-1", 2), ("F-3", 4), ("F-5", 6)]
    assert [r.row_number for r in invoices.rejects] == [3, 5, 7]
    assert "value holding the delimiter" in invoices.rejects[1].reason
    last = invoices.rejects[-1]
    assert "line 7" in last.reason and "truncated line?" in last.reason
    assert last.raw == {"line": "F-6,C1,A,2024-01"}
    assert invoices.entity == "invoices"


def test_garbage_with_wrong_quote_is_a_source_error_not_a_thousand_rejects(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("facture,client,nom,date_facture,echeance,montant\n" + "x\n" * 1200)
    with pytest.raises(SourceError, match="cannot be parsed.*wrong delimiter or quote"):
        read_tabular(path, small_profile())


def test_forced_utf8_on_cp1252_is_a_clear_error_and_auto_transcodes(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;Société;2024-01-15;2024-02-14;1"], encoding="cp1252")
    with pytest.raises(SourceError, match=r"not valid UTF-8 at line 2 .*looks like cp1252"):
        read_tabular(path, small_profile(encoding="utf-8"))
    view, enc = utf8_view(path, "auto", workdir=tmp_path)
    assert enc == "cp1252" and view != path
    assert "Société" in view.read_text(encoding="utf-8")


def test_undecodable_bytes_name_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(b"facture;client\nF-1;C\x81\n")  # 0x81 is undefined in cp1252
    with pytest.raises(SourceError, match=r"undecodable bytes b'\\x81' at line 2 \(byte offset 20\)"):
        utf8_view(path, "cp1252", workdir=tmp_path)


def test_utf8_bom_and_tab_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "ledger.tsv"
    path.write_bytes(
        "\ufefffacture\tclient\tnom\tdate_facture\techeance\tmontant\nF-1\tC1\tÉtienne\t2024-01-15\t2024-02-14\t1\n".encode()
    )
    got = rows(by_entity(read_tabular(path, small_profile()))["customers"])
    assert got[0]["customer_name"] == "Étienne"


def test_large_file_transcodes_in_chunks(tmp_path: Path) -> None:
    lines = [f"F-{i};C{i % 7};Sté n°{i};2024-01-15;2024-02-14;{i},5" for i in range(60_000)]  # > 1 MiB
    path = write_ledger(tmp_path / "ledger.csv", lines, encoding="cp1252")
    assert path.stat().st_size > 2 * (1 << 20)
    invoices = by_entity(read_tabular(path, small_profile(decimal=",")))["invoices"]
    got = rows(invoices)
    assert (len(got), got[-1]["_source_row"]) == (60_000, 60_001)
    assert got[-1]["invoice_id"] == "F-59999" and got[-1]["amount"] == "59999.5"


def test_directory_input_and_required_entity(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(
        ",".join(ENTITIES["customers"]) + "\nC1,A,B2B,,,,,,,,,,,FR,,,,,EUR,30,false,2024-01-01\n"
    )
    (tmp_path / "invoices.csv").write_text(
        ",".join(ENTITIES["invoices"]) + "\nF1,C1,invoice,,2024-01-01,2024-01-31,10.00,EUR,30,false\n"
    )
    (tmp_path / "notes.txt").write_text("not a ledger")
    extracts = read_tabular(tmp_path, load_profile("demo"))
    assert sorted(e.entity for e in extracts) == ["customers", "invoices"]  # optional entities without a file: none
    assert rows(by_entity(extracts)["invoices"])[0]["amount"] == "10.00"
    (tmp_path / "customers.csv").rename(tmp_path / "clients.csv")
    with pytest.raises(SourceError, match="no file for required entity 'customers'"):
        read_tabular(tmp_path, load_profile("demo"))


def test_demo_invoices_required_too(tmp_path: Path) -> None:
    (tmp_path / "invoices.csv").write_text(",".join(ENTITIES["invoices"]) + "\n")
    with pytest.raises(SourceError, match="required entity 'customers'"):
        read_tabular(tmp_path, load_profile("demo"))


def test_extracts_carry_the_profile_full_snapshot_flag(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;A;2024-01-15;2024-02-14;1"])
    assert not any(e.full_snapshot for e in read_tabular(path, small_profile()))
    full = small_profile().model_copy(update={"full_snapshot": True})
    assert all(e.full_snapshot for e in read_tabular(path, full))


def test_extract_hash_changes_with_the_profile(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;A;15/01/2024;14/02/2024;1"])
    a = by_entity(read_tabular(path, small_profile(date_format="%d/%m/%Y")))["invoices"].file_hash
    b = by_entity(read_tabular(path, small_profile(date_format="%d/%m/%Y")))["invoices"].file_hash
    c = by_entity(read_tabular(path, small_profile(date_format="%m/%d/%Y")))["invoices"].file_hash
    assert a == b != c


def test_bad_expression_fails_early_naming_profile_and_entity(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;A;2024-01-15;2024-02-14;1"])
    profile = small_profile()
    profile.entities["invoices"].columns["payment_terms_days"] = "no_such_function(montant)"
    with pytest.raises(SourceError, match="profile 'small', entity invoices: the column mapping does not compile"):
        read_tabular(path, profile)


# ------------------------------------------------------------------------------------------------ Excel, Parquet


def write_xlsx(path: Path, table: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grand livre"
    for r in table:
        ws.append(r)
    wb.save(path)
    return path


def test_excel_two_row_header_needs_header_row(tmp_path: Path) -> None:
    import datetime as dt

    path = write_xlsx(
        tmp_path / "ledger.xlsx",
        [
            ["Grand livre clients au 31/01/2024"],
            ["facture", "client", "nom", "date_facture", "echeance", "montant"],
            ["F-1", "C1", "Société", dt.datetime(2024, 1, 15), dt.date(2024, 2, 14), 1234.5],
            [None, None, None, None, None, None],  # blank row: skipped
            ["F-2", "C2", "Café", "16/01/2024", "15/02/2024", 99],
        ],
    )
    with pytest.raises(SourceError, match=r"header row 1 has empty column name.*set reader.header_row") as err:
        read_tabular(path, small_profile(date_format="%d/%m/%Y"))
    assert "sheet 'Grand livre'" in str(err.value)
    extracts = by_entity(read_tabular(path, small_profile(date_format="%d/%m/%Y", header_row=2)))
    assert isinstance(extracts["invoices"].table, pa.RecordBatchReader)
    got = rows(extracts["invoices"])
    assert [(r["invoice_id"], r["issue_date"], r["due_date"], r["amount"], r["_source_row"]) for r in got] == [
        ("F-1", "2024-01-15", "2024-02-14", "1234.5", 3),
        ("F-2", "2024-01-16", "2024-02-15", "99", 5),
    ]


def test_excel_decimal_comma_profile_keeps_numeric_cells_right(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ledger.xlsx",
        [["facture", "client", "nom", "date_facture", "echeance", "montant"], ["F-1", "C1", "A", "x", "y", 1234.5]],
    )
    got = rows(by_entity(read_tabular(path, small_profile(decimal=",", thousands="'.'")))["invoices"])
    assert got[0]["amount"] == "1234.5"


def test_excel_duplicate_header_names(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "ledger.xlsx", [["facture", "montant", "montant"], ["F-1", 1, 2]])
    with pytest.raises(SourceError, match="duplicated column name"):
        read_tabular(path, small_profile())


def test_parquet_rows_and_row_numbers(tmp_path: Path) -> None:
    table = pa.table(
        {
            "facture": ["F-1", "F-2"],
            "client": ["C1", "C2"],
            "nom": ["A", "B"],
            "date_facture": ["2024-01-15", "2024-01-16"],
            "echeance": ["2024-02-14", "2024-02-15"],
            "montant": [1.5, 2.25],
        }
    )
    pq.write_table(table, tmp_path / "ledger.parquet")
    got = rows(by_entity(read_tabular(tmp_path / "ledger.parquet", small_profile()))["invoices"])
    assert [(r["invoice_id"], r["amount"], r["_source_row"]) for r in got] == [("F-1", 1.5, 1), ("F-2", 2.25, 2)]
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    with pytest.raises(SourceError, match="header only"):
        read_tabular(tmp_path / "empty.parquet", small_profile())


def test_csv_title_row_hint_and_header_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        "Grand livre clients\nfacture;client;nom;date_facture;echeance;montant\nF-1;C1;A;2024-01-15;2024-02-14;1\n"
    )
    with pytest.raises(SourceError, match=r"A title row above the header\? set reader.header_row \(now 1\)"):
        read_tabular(path, small_profile())
    got = rows(by_entity(read_tabular(path, small_profile(header_row=2)))["invoices"])
    assert [(r["invoice_id"], r["_source_row"]) for r in got] == [("F-1", 3)]


def test_western_text_prefers_cp1252_over_equally_scored_code_pages(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_bytes("id,name\nC1,Hélène Müller\nC2,Société d'Ébénisterie\n".encode("cp1252"))
    assert detect_encoding(path) == "cp1252"  # cp1250 decodes the same bytes as 'Hélčne'
    path.write_bytes("id,name\nC1,Hélène €\n".encode())
    assert detect_encoding(path) == "utf-8"
