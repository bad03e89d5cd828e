"""The finance flash in the README demo: the daily run writes it in both languages under reports/<as_of>/flash/,
emails it once to the 'flash' group (the outbox JSON with its workbook attached), records it in ops.report_runs,
and the rerun of the same day sends it again to nobody. Reads the shared demo run only."""

from __future__ import annotations

import base64
import io
import json

import duckdb
import openpyxl
import pytest

from tests.e2e.conftest import AS_OF, DemoRun

pytestmark = pytest.mark.e2e


def test_the_daily_run_writes_and_emails_the_flash_once(demo_run: DemoRun) -> None:
    flash = demo_run.data / "reports" / AS_OF / "flash"
    assert sorted(p.name for p in flash.iterdir()) == [
        f"finance_flash_{AS_OF}_en.html",
        f"finance_flash_{AS_OF}_en.xlsx",
        f"finance_flash_{AS_OF}_fr.html",
        f"finance_flash_{AS_OF}_fr.xlsx",
    ]
    emails = sorted((demo_run.data / "outbox" / "finance" / "email").glob("finance-flash-*.json"))
    # the default recipient groups: 'finance' (French) receives the flash; the rerun added nothing
    assert [p.name for p in emails] == [f"finance-flash-{AS_OF}-finance.json"]
    body = json.loads(emails[0].read_text())
    assert body["subject"].startswith("relance : flash du poste clients au ")
    (xlsx,) = body["attachments"]
    workbook = openpyxl.load_workbook(io.BytesIO(base64.b64decode(xlsx["content"])))
    assert workbook.sheetnames == ["Synthèse", "Alertes", "Relances du jour"]
    summary = {r[0]: r[1:] for r in workbook["Synthèse"].iter_rows(values_only=True) if r[0]}
    with duckdb.connect(str(demo_run.data / "warehouse.duckdb"), read_only=True) as con:
        open_book = dict(
            con.execute("select currency, sum(open_amount) from marts.invoices where is_open group by 1").fetchall()
        )
        runs = con.execute("select count(*) from ops.report_runs where report_id like 'finance-flash-%'").fetchone()[0]
    currencies = list(summary["Indicateur"])
    assert sorted(currencies) == sorted(open_book)
    opens = dict(zip(currencies, summary["Encours"], strict=True))
    assert opens == pytest.approx({c: float(v) for c, v in open_book.items()})
    assert runs >= 1
