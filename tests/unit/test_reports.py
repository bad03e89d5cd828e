"""The finance report: files where promised, numbers as given, a real PNG inline, a rectangular summary."""

from __future__ import annotations

import base64
import json
import re
from datetime import date

import duckdb
import pandas as pd
import pytest

from relance.reports.finance import record_report_run, write_finance_report
from relance.warehouse import ensure_schemas

AS_OF = date(2026, 3, 31)


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    aged = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 5,
            "currency": ["EUR", "EUR", "EUR", "USD", "USD"],
            "aging_bucket": ["not_due", "1-30", "90+", "31-60", "61-90"],
            "invoice_count": [10, 4, 2, 1, 3],
            "open_amount": [12000.0, 3500.5, 800.0, 999.99, 250.0],
        }
    )
    dso = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 2,
            "currency": ["EUR", "USD"],
            "receivables": [16300.5, 1249.99],
            "sales_90d": [30000.0, 2000.0],
            "dso_days": [48.9, None],
        }
    )
    at_risk = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 3,
            "invoice_id": ["F-2", "F-1", "F-3"],
            "customer_id": ["C2", "C1", "C3"],
            "customer_name": ["Beta <SARL>", "Alpha SA", "Gamma"],
            "currency": ["EUR", "EUR", "USD"],
            "open_amount": [3000.0, 5000.0, 100.0],
            "days_overdue": [40, 95, 10],
            "p_late_30d": [0.5, 0.9, 0.2],
            "expected_at_risk": [1500.0, 4500.0, 20.0],
            "risk_rank": [2, 1, 3],
        }
    )
    return aged, dso, at_risk


def test_report_files_summary_and_inline_chart(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="7", flow_run_id="fr-1", top_n=2
    )

    day_dir = tmp_path / "2026-03-31"
    assert report.html_path == day_dir / "finance_report.html"
    assert set(report.csv_paths) == {"aged_balance", "dso", "at_risk"}
    assert all(p.parent == day_dir and p.exists() for p in report.csv_paths.values())
    assert len(pd.read_csv(report.csv_paths["at_risk"])) == 3  # CSV keeps every row given
    pd.testing.assert_series_equal(
        pd.read_csv(report.csv_paths["aged_balance"])["open_amount"], aged["open_amount"], check_names=False
    )

    assert report.summary_rows == [
        {
            "currency": "EUR",
            "not_due": 12000.0,
            "1-30": 3500.5,
            "31-60": 0.0,
            "61-90": 0.0,
            "90+": 800.0,
            "total_open": 16300.5,
            "invoices": 16,
            "dso_days": 48.9,
        },
        {
            "currency": "USD",
            "not_due": 0.0,
            "1-30": 0.0,
            "31-60": 999.99,
            "61-90": 250.0,
            "90+": 0.0,
            "total_open": 1249.99,
            "invoices": 4,
            "dso_days": None,
        },
    ]

    html = report.html_path.read_text(encoding="utf-8")
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert match, "the aged-balance chart must be inlined"
    assert base64.b64decode(match.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html  # self-contained
    assert "16\u202f300,50\u00a0€" in html and "48,9" in html and "n/d" in html
    assert "Beta &lt;SARL&gt;" in html  # escaped
    # top_n=2 by risk rank: F-1 then F-2, F-3 left out of the HTML
    assert html.index("F-1") < html.index("F-2") and "F-3" not in html
    assert "fr-1" in html and "7" in html
    assert not list(tmp_path.rglob("*.tmp"))


def test_empty_day_still_writes_a_report(tmp_path) -> None:
    aged, dso, at_risk = (f.iloc[0:0] for f in _frames())
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version=None, flow_run_id=None
    )
    html = report.html_path.read_text(encoding="utf-8")
    assert "Aucune facture ouverte" in html and "data:image/png" not in html
    assert report.summary_rows == []


def test_bad_input_is_rejected_clearly(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    with pytest.raises(ValueError, match="report_dso frame is missing columns \\['dso_days'\\]"):
        write_finance_report(
            aged,
            dso.drop(columns="dso_days"),
            at_risk,
            as_of_date=AS_OF,
            out_dir=tmp_path,
            model_version=None,
            flow_run_id=None,
        )
    with pytest.raises(ValueError, match="unknown aging buckets \\['120\\+'\\]"):
        write_finance_report(
            aged.assign(aging_bucket="120+"),
            dso,
            at_risk,
            as_of_date=AS_OF,
            out_dir=tmp_path,
            model_version=None,
            flow_run_id=None,
        )


def test_report_run_is_recorded_once_per_flow_run(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="7", flow_run_id="fr-1"
    )
    con = duckdb.connect()
    ensure_schemas(con)
    first = record_report_run(con, report, as_of_date=AS_OF, model_version="7", flow_run_id="fr-1")
    again = record_report_run(con, report, as_of_date=AS_OF, model_version="7", flow_run_id="fr-1")
    other = record_report_run(con, report, as_of_date=AS_OF, model_version="7", flow_run_id=None)
    assert first == again != other
    rows = con.sql("SELECT * FROM ops.report_runs ORDER BY report_id").df()
    assert len(rows) == 2
    assert json.loads(rows.loc[0, "csv_paths"])["dso"] == str(report.csv_paths["dso"])
    assert rows.loc[0, "html_path"] == str(report.html_path)
