"""Why an invoice is flagged, through real dbt on DuckDB: predictions with quantiles and reasons written by
``models.predict.write_predictions`` reach the worklist, the customer risk grades keep one row per customer and
day across runs (incremental by as_of_date), and the finance report lays out what SQL computed.

The warehouse is tests/integration/test_dbt_project.py's hand-written ledger. On 2026-03-31, open: I4 (C1, due
03-03, 1000 EUR), I5 (C2, due 01-15, 80 EUR, disputed), I6 (C3, due 04-30, 2000 USD). C1 settled I1 late and I2,
I3 on time before that day: late share 1/3; C2 and C3 have no history. On 04-30 I4 is settled (04-10).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from models.predict import PREDICTION_COLUMNS, write_predictions
from relance.reports.finance import write_finance_report
from relance.warehouse import read_for_date
from tests.conftest import DbtInvoke
from tests.integration.test_dbt_project import _build_pre_scoring, _dbt, _dicts

pytestmark = pytest.mark.integration

MARCH, APRIL = date(2026, 3, 31), date(2026, 4, 30)


def _score(path: Path, as_of: date, rows: list[tuple]) -> None:
    """Write predictions as the scoring flow does: (invoice, p_late, p10, p50, p90, reason_1, reason_2)."""
    frame = pd.DataFrame(
        [
            {
                "invoice_id": inv,
                "as_of_date": as_of,
                "p_late": p,
                "days_late_p10": p10,
                "days_late_p50": p50,
                "days_late_p90": p90,
                "reason_1": r1,
                "reason_2": r2,
                "reason_3": None,
                "target_name": "late_any",
                "model_name": "payment_delay",
                "model_version": "4",
                "model_run_id": "run-4",
            }
            for inv, p, p10, p50, p90, r1, r2 in rows
        ]
    )[list(PREDICTION_COLUMNS)]
    with duckdb.connect(str(path)) as con:
        write_predictions(con, frame, dbt_invocation_id="inv", flow_run_id="fr", scored_at=datetime(2026, 5, 1))


def _grades(path: Path) -> dict[tuple[str, date], dict]:
    return {(r["customer_id"], r["as_of_date"]): r for r in _dicts(path, "select * from serving.customer_risk_grades")}


def test_reasons_payment_dates_and_grades_with_their_history(tmp_path: Path, dbt_invoke: DbtInvoke) -> None:
    nan = np.nan
    path = _build_pre_scoring(tmp_path, dbt_invoke, "run")
    _score(
        path,
        MARCH,
        [
            ("I4", 0.8, 5.0, 20.4, 45.0, "Customer paid 33% of past invoices late", "Already 28 days overdue"),
            ("I5", 0.5, nan, nan, nan, None, None),  # a model without quantiles or reasons
            ("I6", 0.1, -3.0, 2.0, 10.0, "Not yet due", None),
        ],
    )
    _dbt(tmp_path, dbt_invoke, "build", as_of=MARCH.isoformat(), stage="serving")  # with its data tests

    wl = {r["invoice_id"]: r for r in _dicts(path, "select * from serving.collection_worklist")}
    i4, i5, i6 = wl["I4"], wl["I5"], wl["I6"]
    assert (i4["reason_1"], i4["reason_2"], i4["reason_3"]) == (
        "Customer paid 33% of past invoices late",
        "Already 28 days overdue",
        None,
    )
    assert i4["target_name"] == "late_any" and i4["days_late_p50"] == 20.4
    # due 03-03: + 5 / 20 / 45 days; the first two are past, so the day after the as-of date
    assert (i4["predicted_payment_date_p10"], i4["predicted_payment_date"], i4["predicted_payment_date_p90"]) == (
        date(2026, 4, 1),
        date(2026, 4, 1),
        date(2026, 4, 17),
    )
    assert (i6["predicted_payment_date_p10"], i6["predicted_payment_date"], i6["predicted_payment_date_p90"]) == (
        date(2026, 4, 27),
        date(2026, 5, 2),
        date(2026, 5, 10),
    )
    assert i5["predicted_payment_date"] is None and i5["reason_1"] is None
    assert (i4["risk_grade"], i5["risk_grade"], i6["risk_grade"]) == ("D", "D", "A")

    march = _grades(path)
    assert set(march) == {("C1", MARCH), ("C2", MARCH), ("C3", MARCH)}
    c1, c2, c3 = (march[(c, MARCH)] for c in ("C1", "C2", "C3"))
    # C1: 0.6 * 0.8 + 0.15 * 20.4 / 60 + 0.25 * 1/3
    assert c1["late_share"] == pytest.approx(1 / 3) and c1["settled_invoice_count"] == 3
    assert c1["risk_score"] == pytest.approx(0.6 * 0.8 + 0.15 * 0.34 + 0.25 / 3, abs=1e-6)
    # C2: no history, no quantiles: p alone; C3: no history: (0.6 p + 0.15 delay) / 0.75
    assert c2["risk_score"] == pytest.approx(0.5) and c2["late_share"] is None
    assert c3["risk_score"] == pytest.approx((0.6 * 0.1 + 0.15 * 2 / 60) / 0.75, abs=1e-6)

    # the finance report lays out the SQL's columns as they come from the warehouse
    with duckdb.connect(str(path)) as con:
        report = write_finance_report(
            read_for_date(con, "serving.report_aged_balance", MARCH, order_by="currency, bucket_order"),
            read_for_date(con, "serving.report_dso", MARCH, order_by="currency"),
            read_for_date(con, "serving.report_at_risk_exposure", MARCH, order_by="currency, risk_rank"),
            as_of_date=MARCH,
            out_dir=tmp_path / "reports",
            model_version="4",
            flow_run_id=None,
        )
    html = report.html_path.read_text(encoding="utf-8")
    assert "P(retard)" in html and "2026-04-01" in html and "Customer paid 33% of past invoices late" in html

    # a month later: I4 is settled, so C1 has no grade that day; March's grades stay as they were computed
    _dbt(tmp_path, dbt_invoke, "run", as_of=APRIL.isoformat())
    _score(path, APRIL, [("I5", 0.6, nan, nan, nan, None, None), ("I6", 0.3, 0.0, 4.0, 9.0, "Due today", None)])
    _dbt(tmp_path, dbt_invoke, "run", as_of=APRIL.isoformat(), stage="serving")
    april = _grades(path)
    assert set(april) == set(march) | {("C2", APRIL), ("C3", APRIL)}
    assert all(april[key] == row for key, row in march.items())
    assert april[("C2", APRIL)]["weighted_p_late"] == 0.6

    # rescoring the day replaces that day's grades, and only them
    _score(path, APRIL, [("I5", 0.95, nan, nan, nan, None, None), ("I6", 0.3, 0.0, 4.0, 9.0, "Due today", None)])
    _dbt(tmp_path, dbt_invoke, "run", as_of=APRIL.isoformat(), stage="serving")
    again = _grades(path)
    assert set(again) == set(april) and again[("C2", APRIL)]["risk_grade"] == "E"
    assert all(again[key] == row for key, row in march.items())
