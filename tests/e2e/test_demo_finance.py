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


def test_the_demo_writes_the_weekly_report_and_prints_the_forecast_wape(demo_run: DemoRun) -> None:
    """The demo's run writes the weekly report although its date is a Saturday (``relance demo`` asks for it): both
    languages, the workbook with every section and values that reconcile with the ledger, one email to the 'weekly'
    group with its charts inline, and the cash-in forecast's WAPE on the last 13 weeks printed in the run's result,
    equal to the one recomputed from the workbook's forecast-against-actual sheet."""
    weekly = demo_run.data / "reports" / AS_OF / "weekly"
    names = sorted(p.name for p in weekly.iterdir() if p.is_file())
    assert names == [f"finance_weekly_{AS_OF}_{lang}.{ext}" for lang in ("en", "fr") for ext in ("html", "xlsx")]
    workbook = openpyxl.load_workbook(weekly / f"finance_weekly_{AS_OF}_en.xlsx")
    assert workbook.sheetnames == [
        "Summary", "Aged balance", "By customer", "By segment", "By sector", "DSO", "CEI", "Forecast", "Backtest",
        "At risk", "Alerts", "Reminders", "Holdout effect", "Late payment cost", "Notes",
    ]  # fmt: skip
    aged = list(workbook["Aged balance"].iter_rows(values_only=True))
    header = aged[0]
    totals = {r[0]: r[header.index("Total")] for r in aged[1:] if r[0]}
    with duckdb.connect(str(demo_run.data / "warehouse.duckdb"), read_only=True) as con:
        open_book = dict(
            con.execute("select currency, sum(open_amount) from marts.invoices where is_open group by 1").fetchall()
        )
    assert totals == pytest.approx({c: float(v) for c, v in open_book.items()})

    rows = list(workbook["Backtest"].iter_rows(values_only=True))
    cols = rows[0]
    eur = [r for r in rows[1:] if r[0] == "EUR"]
    assert len(eur) == 13, "13 past weeks forecast against what was paid"
    forecast, actual = cols.index("Forecast"), cols.index("Actual")
    wape = sum(abs(r[forecast] - r[actual]) for r in eur) / sum(r[actual] for r in eur)
    printed = demo_run.demo_result["forecast_wape"]
    assert printed.startswith("EUR ") and f"EUR {wape:.1%}" in printed, (printed, wape)

    emails = sorted((demo_run.data / "outbox" / "finance" / "email").glob("finance-weekly-*.json"))
    assert [p.name for p in emails] == [f"finance-weekly-{AS_OF}-finance.json"]
    body = json.loads(emails[0].read_text())
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    inline = {a["content_id"] for a in body["attachments"] if a.get("disposition") == "inline"}
    assert inline and all(f'src="cid:{cid}"' in html for cid in inline)
    assert any(a["filename"].endswith(".xlsx") for a in body["attachments"])
