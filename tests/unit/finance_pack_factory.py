"""A tiny finance pack, built by hand with the columns of the serving relations (DESIGN of issue 14): two EUR
customers and one GBP customer, a two-week DSO trend, CEI, a three-week forecast with its backtest, reminders and
the late-payment cost. Numbers are chosen so that totals are easy to check by eye. Shared by the finance tests."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pandas as pd

from relance.reports.finance_pack import FinancePack

AS_OF = date(2026, 10, 26)  # a Monday
EVIL = '=HYPERLINK("http://evil.example","click")'


def aged_by_customer() -> pd.DataFrame:
    rows = [
        # currency, id, name, type, size, sector, not_due, 1-30, 31-60, 61-90, 90+, invoices
        ("EUR", "C1", "Dupont SA", "B2B", "small", "F", 1000.00, 500.00, 0.0, 0.0, 234.56, 4),
        ("EUR", "C2", EVIL, "B2B", "small", "F", 200.00, 0.0, 100.00, 0.0, 0.0, 2),
        ("EUR", "C3", "+33 Martin", "B2C", None, None, 50.00, 0.0, 0.0, 25.00, 0.0, 2),
        ("GBP", "C4", "@Smith Ltd", "B2B", "large", "G", 3000.00, 1234.50, 0.0, 0.0, 0.0, 3),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "currency",
            "customer_id",
            "customer_name",
            "customer_type",
            "size_band",
            "sector_section",
            "not_due",
            "d1_30",
            "d31_60",
            "d61_90",
            "d90_plus",
            "invoice_count",
        ],
    )
    buckets = ["not_due", "d1_30", "d31_60", "d61_90", "d90_plus"]
    frame["total_open"] = frame[buckets].sum(axis=1)
    frame["overdue_amount"] = frame["total_open"] - frame["not_due"]
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def aged_balance() -> pd.DataFrame:
    """serving.report_aged_balance for the same ledger (currency x bucket)."""
    rows = [
        ("EUR", "not_due", 1, 5, 1250.00),
        ("EUR", "1-30", 2, 1, 500.00),
        ("EUR", "31-60", 3, 1, 100.00),
        ("EUR", "61-90", 4, 1, 25.00),
        ("EUR", "90+", 5, 1, 234.56),
        ("GBP", "not_due", 1, 2, 3000.00),
        ("GBP", "1-30", 2, 1, 1234.50),
    ]
    frame = pd.DataFrame(rows, columns=["currency", "aging_bucket", "bucket_order", "invoice_count", "open_amount"])
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def dso_trend() -> pd.DataFrame:
    rows = []
    for currency, values in (("EUR", (52.0, 50.5, 48.25)), ("GBP", (30.0, 31.0, 33.5))):
        for i, v in enumerate(values):
            week_end = AS_OF - timedelta(days=7 * (len(values) - 1 - i) + 1)  # Sundays before the Monday
            rows.append((AS_OF, currency, week_end, 1000.0 * (i + 1), v, v + 5))
    return pd.DataFrame(
        rows,
        columns=["as_of_date", "currency", "week_end_date", "receivables", "dso_countback_days", "dso_simple_days"],
    )


def cei() -> pd.DataFrame:
    rows = [
        ("EUR", "last_13_weeks", date(2026, 7, 27), date(2026, 10, 25), 1000.0, 500.0, 800.0, 600.0, 78.57),
        ("EUR", "week", date(2026, 10, 19), date(2026, 10, 25), 900.0, 100.0, 800.0, 600.0, 50.0),
        ("GBP", "last_13_weeks", date(2026, 7, 27), date(2026, 10, 25), 400.0, 100.0, 300.0, 250.0, 80.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "currency",
            "period",
            "period_start",
            "period_end",
            "beginning_receivables",
            "sales",
            "ending_receivables",
            "ending_current_receivables",
            "cei_pct",
        ],
    )
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def forecast_weeks() -> pd.DataFrame:
    rows = []
    for currency, base in (("EUR", 1000.0), ("GBP", 300.0)):
        for i in range(3):
            start = AS_OF + timedelta(days=7 * i)
            rows.append(
                (currency, start, start + timedelta(days=6), base * (i + 1), base * 0.5, base * (i + 1), base * 3, 2)
            )
    return pd.DataFrame(
        rows, columns=["currency", "week_start", "week_end", "expected", "p10", "p50", "p90", "invoice_count"]
    )


def forecast_backtest() -> pd.DataFrame:
    rows = []
    for currency, pairs in (("EUR", ((100.0, 110.0), (200.0, 180.0))), ("GBP", ((50.0, 50.0), (60.0, 40.0)))):
        for i, (f, a) in enumerate(pairs):
            start = AS_OF - timedelta(days=7 * (len(pairs) - i))
            rows.append((currency, start, start + timedelta(days=6), f, a, abs(f - a)))
    frame = pd.DataFrame(rows, columns=["currency", "week_start", "week_end", "forecast", "actual", "abs_error"])
    return frame.assign(forecast_due_date=frame["actual"] * 1.25, forecast_customer_mean=frame["actual"] * 0.8)


def reminder_performance() -> pd.DataFrame:
    rows = [
        ("EUR", "b2b_standard", "email", "cordial", 10, 8, 5000.0, 6, 3500.0, 0.6, 9.0),
        ("EUR", "b2b_standard", "letter", "formal_notice", 2, 2, 1500.0, 1, 700.0, 0.5, math.nan),
        ("GBP", "=cmd|' /C calc'!A0", "email", "firm", 3, 3, 900.0, 1, 300.0, 1 / 3, 12.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "currency",
            "scenario",
            "channel",
            "tone",
            "messages",
            "customers",
            "amount_covered",
            "paid_14d_messages",
            "paid_14d_amount",
            "paid_14d_rate",
            "median_days_to_pay",
        ],
    )
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def late_payment_cost() -> pd.DataFrame:
    # EUR: 859.56 overdue; amount x days 36500 -> 36500 * 0.08 / 365 = 8.00
    rows = [("EUR", 859.56, 36500.0, 0.08, 8.00, 12.5), ("GBP", 1234.50, 3650.0, 0.08, 0.80, 0.0)]
    frame = pd.DataFrame(
        rows,
        columns=[
            "currency",
            "overdue_amount",
            "amount_days_overdue",
            "annual_rate",
            "cost_to_date",
            "cost_last_13_weeks",
        ],
    )
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def at_risk() -> pd.DataFrame:
    rows = [
        ("I1", "C1", "Dupont SA", "EUR", 734.56, 95, 0.8, "late_any", "D", date(2026, 11, 20), "Paid late", 587.65, 1),
        ("I2", "C2", EVIL, "EUR", 100.0, 40, 0.5, "late_any", "C", date(2026, 11, 10), "-1 risk", 50.0, 2),
        ("I3", "C4", "@Smith Ltd", "GBP", 1234.5, 10, 0.2, "late_any", "B", None, None, 246.9, 1),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "invoice_id",
            "customer_id",
            "customer_name",
            "currency",
            "open_amount",
            "days_overdue",
            "p_late",
            "target_name",
            "risk_grade",
            "predicted_payment_date",
            "reason_1",
            "expected_at_risk",
            "risk_rank",
        ],
    )
    frame["has_open_procedure"] = [False, True, False]
    frame["latest_risk_event_type"] = ["director_change", None, None]
    frame["latest_risk_event_date"] = [date(2026, 5, 1), None, None]
    frame.insert(0, "as_of_date", AS_OF)
    return frame


def alerts() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("director_change:E1:C1", "director_change", "C1", "Changement de dirigeant : Dupont SA", "Publié", AS_OF),
            ("payer_degrading:C2:2026-10", "payer_degrading", "C2", f"Bon payeur : {EVIL}", "+5 j", AS_OF - timedelta(3)),  # noqa: E501
        ],
        columns=["alert_key", "alert_type", "customer_id", "title", "detail", "as_of_date"],
    )  # fmt: skip


def reminders_today() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("k1", "b2b_standard", "email", "cordial", "EUR", 100.0, '["I1", "I4"]'),
            ("k2", "b2b_standard", "email", "cordial", "EUR", 50.0, '["I2"]'),
            ("k3", "consumers", "sms", "firm", "GBP", 20.0, None),
        ],
        columns=["reminder_key", "scenario", "channel", "tone", "currency", "open_amount", "invoice_ids"],
    )


def experiment_outcomes() -> pd.DataFrame:
    rows = [("b2b_standard", "holdout", None, p) for p in [True] * 2 + [False] * 8]
    rows += [("b2b_standard", "treatment", "email", p) for p in [True] * 7 + [False] * 3]
    return pd.DataFrame(rows, columns=["scenario", "arm", "first_channel", "is_paid"])


def tiny_pack(**overrides: Any) -> FinancePack:
    fields: dict[str, Any] = {
        "as_of_date": AS_OF,
        "aged_by_customer": aged_by_customer(),
        "aged_balance": aged_balance(),
        "dso": pd.DataFrame(
            [("EUR", 2010.0, 3000.0, 60.3), ("GBP", 4234.5, 9000.0, 42.3)],
            columns=["currency", "receivables", "sales_90d", "dso_days"],
        ),
        "dso_trend": dso_trend(),
        "cei": cei(),
        "reminder_performance": reminder_performance(),
        "late_payment_cost": late_payment_cost(),
        "at_risk": at_risk(),
        "experiment_outcomes": experiment_outcomes(),
        "alerts": alerts(),
        "reminders_today": reminders_today(),
        "forecast_weeks": forecast_weeks(),
        "forecast_backtest": forecast_backtest(),
        "wape": {"EUR": 40 / 290, "GBP": 20 / 90},
        "baselines": {"due_date": {"EUR": 0.25, "GBP": 0.5}, "customer_mean": {"EUR": 0.2, "GBP": math.nan}},
        "forecast_notes": ("Covers open invoices only.",),
        "model_version": "7",
        "flow_run_id": "run-1",
        "late_payment_cost_rate": 0.08,
        "top_n": 2,
        "forecast_weeks_count": 3,
    }
    return FinancePack(**(fields | overrides))
