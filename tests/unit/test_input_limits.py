"""Issue 9, scope 6 (inputs): hostile workbooks, size caps per file and per cell, least privilege for profile
expressions. Each test starts from the reproduction in the issue ("Excel files are opened without XML hardening",
"no input has a size cap", "profile expressions run with the warehouse's full rights")."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relance.ingest import load_extracts
from relance.sources.base import EntityExtract, SourceError
from relance.sources.limits import InputLimits
from relance.sources.tabular import read_tabular
from relance.warehouse import connect
from tests.unit.test_tabular import by_entity, rows, small_profile, write_ledger

# ------------------------------------------------------------------------------------------------ helpers


def _workbook(path: Path, table: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in table:
        ws.append(r)
    wb.save(path)
    return path


LEDGER = [
    ["facture", "client", "nom", "date_facture", "echeance", "montant"],
    ["F-1", "C1", "Alpha", "2024-01-15", "2024-02-14", 10],
    ["F-2", "C2", "Beta", "2024-01-16", "2024-02-15", 20],
]


def _rewrite_member(src: Path, dst: Path, member: str, transform) -> Path:  # noqa: ANN001
    """Copy an .xlsx, rewriting one of its XML members (what a hostile sender would do)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info, transform(data) if info.filename == member else data)
    return dst


def _billion_laughs(data: bytes) -> bytes:
    entities = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    return b'<?xml version="1.0"?><!DOCTYPE lolz [' + entities + b"]>" + data.replace(b"<t>F-1</t>", b"<t>&lol9;</t>")


def _external_entity(secret: Path):  # noqa: ANN202
    def transform(data: bytes) -> bytes:
        doctype = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'.encode()
        return doctype + data.replace(b"<t>F-1</t>", b"<t>&xxe;</t>")

    return transform


def _load(tmp_path: Path, extracts: list[EntityExtract]):  # noqa: ANN202
    con = connect(tmp_path / "w.duckdb")
    report = load_extracts(con, extracts, source_name="ledger", flow_run_id=None)
    return con, report


# ------------------------------------------------------------------------------------------------ Excel XML


@pytest.mark.parametrize("member", ["xl/worksheets/sheet1.xml"])
def test_billion_laughs_workbook_is_refused_naming_the_file(tmp_path: Path, member: str) -> None:
    """Repro: a sheet whose XML declares nested entities (billion laughs). Before: openpyxl's parser raised a bare
    xml ParseError (no SourceError, no file named) or, without expat's limits, expanded it."""
    good = _workbook(tmp_path / "good.xlsx", LEDGER)
    bad = _rewrite_member(good, tmp_path / "laughs.xlsx", member, _billion_laughs)
    with pytest.raises(SourceError, match=r"laughs\.xlsx.*refused: its XML declares entities"):
        read_tabular(bad, small_profile())


def test_external_entity_workbook_is_refused_and_leaks_nothing(tmp_path: Path) -> None:
    """Repro: an inline string cell ``&xxe;`` whose entity is ``SYSTEM "file:///..."``: it must never be read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    good = _workbook(tmp_path / "good.xlsx", LEDGER)
    bad = _rewrite_member(good, tmp_path / "xxe.xlsx", "xl/worksheets/sheet1.xml", _external_entity(secret))
    with pytest.raises(SourceError, match=r"xxe\.xlsx.*refused: its XML declares entities") as info:
        read_tabular(bad, small_profile())
    assert "TOP-SECRET-VALUE" not in str(info.value)


def test_entities_in_shared_strings_are_refused_when_the_workbook_opens(tmp_path: Path) -> None:
    """The shared-strings table is parsed when the workbook opens, before any sheet row."""
    good = _workbook(tmp_path / "good.xlsx", LEDGER)
    # give the workbook a sharedStrings part whose XML declares an entity
    sst = b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>&a;</t></si></sst>'  # noqa: E501
    bad = tmp_path / "sst.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                    b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
                )
            zout.writestr(info, data)
        zout.writestr("xl/sharedStrings.xml", sst)
    with pytest.raises(SourceError, match=r"sst\.xlsx.*refused: its XML declares entities"):
        read_tabular(bad, small_profile())


def test_zip_bomb_workbook_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    """Repro: an .xlsx member that inflates thousands of times (here 3 MiB of zeros in a few KiB)."""
    good = _workbook(tmp_path / "good.xlsx", LEDGER)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("xl/media/padding.bin", b"\0" * (3 << 20))
    with pytest.raises(SourceError, match=r"bomb\.xlsx: workbook member xl/media/padding.bin inflates .* times"):
        read_tabular(bomb, small_profile())
    with pytest.raises(SourceError, match=r"bomb\.xlsx: the workbook inflates to .* over the .* cap"):
        read_tabular(bomb, small_profile(), limits=InputLimits(max_xlsx_uncompressed_bytes=1 << 20))
    # the plain workbook still reads
    assert [r["invoice_id"] for r in rows(by_entity(read_tabular(good, small_profile()))["invoices"])] == ["F-1", "F-2"]


# ------------------------------------------------------------------------------------------------ size caps


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_file_over_the_size_cap_is_refused_naming_file_size_and_cap(tmp_path: Path, suffix: str) -> None:
    """Repro: no input had a size cap. A file over the cap is a SourceError before anything is read."""
    path = tmp_path / f"ledger{suffix}"
    if suffix == ".csv":
        write_ledger(path, ["F-1;C1;Alpha;2024-01-15;2024-02-14;10"])
    elif suffix == ".xlsx":
        _workbook(path, LEDGER)
    else:
        pq.write_table(pa.table({h: [str(v) for v in col] for h, *col in zip(*LEDGER, strict=True)}), path)
    size = path.stat().st_size
    with pytest.raises(SourceError, match=rf"ledger\{suffix}: file is .*{size:,} bytes.*over the 10 bytes cap"):
        read_tabular(path, small_profile(), limits=InputLimits(max_file_bytes=10))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_cell_over_the_cap_quarantines_its_row_and_counts_reconcile(tmp_path: Path, suffix: str) -> None:
    """Repro: a 500-character customer name (cap 50): the row is quarantined naming column and length, the other
    rows load, and rows read = loaded + unchanged + quarantined."""
    long_name = "N" * 500
    table = [LEDGER[0], LEDGER[1], ["F-3", "C3", long_name, "2024-01-17", "2024-02-16", 30], LEDGER[2]]
    path = tmp_path / f"ledger{suffix}"
    if suffix == ".csv":
        write_ledger(path, [";".join(str(c) for c in r) for r in table[1:]])
    elif suffix == ".xlsx":
        _workbook(path, table)
    else:
        pq.write_table(pa.table({h: [str(v) for v in col] for h, *col in zip(*table, strict=True)}), path)
    limits = InputLimits(max_cell_chars=50)
    con, report = _load(tmp_path, read_tabular(path, small_profile(), limits=limits))
    invoices = report.batch("invoices")
    assert (invoices.rows_read, invoices.rows_loaded, invoices.rows_quarantined) == (3, 2, 1)
    assert invoices.rows_read == invoices.rows_loaded + invoices.rows_unchanged + invoices.rows_quarantined
    assert sorted(r[0] for r in con.sql("SELECT invoice_id FROM raw.invoices").fetchall()) == ["F-1", "F-2"]
    reason, row_json = con.sql(
        "SELECT reason, row_json FROM ops.quarantine WHERE entity = 'invoices' AND expectation = 'parse'"
    ).fetchone()  # type: ignore[misc]
    assert "column nom: value of 500 characters, over the 50-character cap" in reason
    assert long_name not in row_json  # the quarantine keeps the row cut short, not the whole value
    customers = report.batch("customers")
    assert customers.rows_read == customers.rows_loaded + customers.rows_unchanged + customers.rows_quarantined


# ------------------------------------------------------------------------------------------------ least privilege


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("(SELECT count(*) FROM raw.invoices)", "it holds a subquery"),
        ("(SELECT content FROM read_text('/etc/passwd'))", "it holds a subquery"),
        ("montant IN (SELECT 1)", "it holds a subquery"),
        ("montant; SELECT * FROM read_csv('/etc/passwd')", "it holds more than one SQL statement"),
        ("montant FROM read_csv('/etc/passwd')", r"it reads a table \(FROM\)"),
    ],
)
def test_profile_expression_reading_outside_the_file_is_refused(tmp_path: Path, expression: str, why: str) -> None:
    """Repro: a profile expression ran in the loader on the warehouse connection, so it could read raw tables or
    any file. Now it is refused on its parse tree, naming profile, entity, column and reason."""
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;Alpha;2024-01-15;2024-02-14;10"])
    profile = small_profile()
    profile.entities["invoices"].columns["amount"] = expression
    with pytest.raises(SourceError, match=rf"profile 'small': invoices.amount: expression .* is refused: {why}"):
        read_tabular(path, profile)


def test_mapping_runs_on_a_sandbox_that_cannot_read_files_or_the_warehouse(tmp_path: Path) -> None:
    """Even a scalar expression that reaches for a file (DuckDB's read_blob is a table function; getenv, files and
    ATTACH are all behind external access) fails: the mapping runs on a locked in-memory connection."""
    from relance.sources.tabular.mapping_sql import sandbox

    with sandbox([]) as con:
        for sql in (
            "SELECT * FROM read_csv('/etc/passwd')",
            f"ATTACH '{tmp_path / 'w.duckdb'}'",
            "SET enable_external_access = true",
        ):
            with pytest.raises(Exception, match="disabled by configuration|configuration has been locked"):
                con.execute(sql)
    # a mapping with a plain scalar expression still works, and the extract is streamed, not SQL for the warehouse
    path = write_ledger(tmp_path / "ledger.csv", ["F-1;C1;Alpha;2024-01-15;2024-02-14;10"])
    profile = small_profile()
    profile.entities["invoices"].columns["amount"] = "CAST(montant AS INTEGER) * 2"
    invoices = by_entity(read_tabular(path, profile))["invoices"]
    assert isinstance(invoices.table, pa.RecordBatchReader)
    assert int(rows(invoices)[0]["amount"]) == 20


# ------------------------------------------------------------------------------------------------ FEC


def test_fec_is_streamed_and_split_exactly_like_the_whole_text() -> None:
    """Repro: an FEC was read whole (bytes, text and the list of records in memory). Split from chunks of any
    size, every line-end style gives the records (and line numbers) the whole-text split gives."""
    from relance.sources.fec.lines import iter_records, records

    text = "h1\r\n\r\nl2\rl3\r\r\nl4\n\nl5\r\r\r l6 \n\r\nlast"
    expected = records(text)
    assert expected[0] == (1, "h1") and expected[-1][1] == "last"
    for size in range(1, 9):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert list(iter_records(chunks)) == expected, size


def test_fec_file_over_the_cap_or_with_a_runaway_line_is_refused(tmp_path: Path) -> None:
    from relance.sources.fec import read_fec
    from tests.unit.test_fec_parse import basic_books, write

    path = write(tmp_path, basic_books())
    with pytest.raises(
        SourceError, match=rf"FEC\.txt: file is .*{path.stat().st_size:,} bytes.*over the 100 bytes cap"
    ):
        read_fec(path, limits=InputLimits(max_file_bytes=100))
    runaway = tmp_path / "runaway"
    runaway.mkdir()
    path = write(runaway, [*basic_books(), "x" * 5000])
    with pytest.raises(SourceError, match=r"FEC\.txt: line 8 is longer than 1,000 characters.*nothing was loaded"):
        read_fec(path, limits=InputLimits(max_line_chars=1000))


def test_fec_field_over_the_cell_cap_rejects_its_line(tmp_path: Path) -> None:
    from relance.sources.fec import read_fec
    from tests.unit.test_fec_parse import basic_books, fec_line, write

    long_label = fec_line("VE", "9", "20240301", piece="F9", debit="10,00", label="L" * 300)
    extracts = {
        e.entity: e
        for e in read_fec(write(tmp_path, [*basic_books(), long_label]), limits=InputLimits(max_cell_chars=100))
    }
    (reject,) = extracts["invoices"].rejects
    assert reject.row_number == 8 and reject.reason == oversized_reason_text("EcritureLib", 300, 100)
    assert "F9" not in [r["invoice_id"] for r in extracts["invoices"].table.to_pylist()]  # type: ignore[union-attr]


def oversized_reason_text(column: str, length: int, cap: int) -> str:
    return f"column {column}: value of {length:,} characters, over the {cap:,}-character cap for one cell"


def test_validation_frame_is_bounded(tmp_path: Path) -> None:
    """Repro: GX batches were read whole into pandas, however large. Over the cap: a clear error, nothing read."""
    from expectations.batch_frame import BatchTooLarge, read_batch

    path = write_ledger(
        tmp_path / "ledger.csv", ["F-1;C1;A;2024-01-15;2024-02-14;1", "F-2;C1;A;2024-01-15;2024-02-14;2"]
    )
    con, report = _load(tmp_path, read_tabular(path, small_profile()))
    info = report.batch("invoices")
    assert len(read_batch(con, info)) == 2
    with pytest.raises(BatchTooLarge, match=r"invoices from .*ledger\.csv\) holds 2 rows, over the 1-row cap"):
        read_batch(con, info, max_rows=1)
