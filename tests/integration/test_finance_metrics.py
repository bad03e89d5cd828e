"""The finance report's metrics reconcile with the ledger (issue 14: "the aged balance total equals open receivables;
DSO and CEI match hand-computed fixtures").

Two warehouses, each built through relance's one dbt owner (``relance.dbt``) with the session's parsed manifest,
selecting the report relations and everything upstream of them (``+report_...``: staging, the settlement
intermediates, the marts; not the ML features):

* a tiny ledger written by hand into raw through the project's loader (``relance.ingest.load_extracts``), whose
  aged balance, DSO (countback and simple), CEI and cost of late payment are computed by hand below, the
  arithmetic in the comments;
* the session's demo export (3,000 invoices over 12 months), on which an independent oracle written here in pandas
  from the staging ledger (invoices, payment allocations dated by their payment, credit notes) recomputes open
  receivables on every date of the trend grid, the countback DSO and the CEI, and the aged balance by customer must
  add up to it to the cent.

The singular dbt tests in dbt_project/tests/finance/ run in both builds and must pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from dateutil.relativedelta import relativedelta

from relance import dbt
from relance.ingest import load_extracts
from relance.settings import Settings
from relance.sources.base import EntityExtract, entity_schema
from relance.warehouse import ensure_schemas
from tests.conftest import DEMO_AS_OF, DbtInvoke, copy_warehouse

pytestmark = pytest.mark.integration

REPORTS = (
    "report_aged_balance",
    "report_dso",
    "report_aged_balance_by_customer",
    "report_receivables_by_week_end",
    "report_dso_trend",
    "report_cei",
    "report_late_payment_cost",
)
RECONCILIATION_TESTS = (
    "report_aged_balance_by_customer_reconciles",
    "report_receivables_by_week_end_reconciles",
    "report_dso_trend_reconciles",
    "report_cei_reconciles",
)
TOLERANCE = Decimal("0.005")  # macro settlement_tolerance

AS_OF = date(2026, 3, 31)  # a Tuesday: trend Sundays 03-29, 03-22, ... ; the last CEI week ends on 03-29

CUSTOMERS = [
    {"customer_id": "C1", "customer_name": "Bâti Sud", "customer_type": "B2B", "sector_section": "F",
     "size_band": "small", "country_code": "FR", "currency": "EUR", "payment_terms_days": 30,
     "created_date": date(2025, 1, 1)},
    {"customer_id": "C2", "customer_name": "Jean Martin", "customer_type": "B2C", "country_code": "FR",
     "currency": "EUR", "payment_terms_days": 0, "created_date": date(2025, 1, 1)},
    {"customer_id": "C3", "customer_name": "Acme Ltd", "customer_type": "B2B", "sector_section": "J",
     "size_band": "large", "country_code": "GB", "currency": "GBP", "payment_terms_days": 30,
     "created_date": date(2025, 1, 1)},
]  # fmt: skip
_I = ("invoice_id", "customer_id", "document_type", "credited_invoice_id", "issue_date", "due_date", "amount",
      "currency", "payment_terms_days")  # fmt: skip
INVOICES = [
    # I1: 400 paid 02-10 (6 days late), 600 paid 03-20 (44 days late)
    ("I1", "C1", "invoice", None, date(2026, 1, 5), date(2026, 2, 4), Decimal(1000), "EUR", 30),
    # I2: 500 credited 02-20, 1500 open on AS_OF, 27 days overdue
    ("I2", "C1", "invoice", None, date(2026, 2, 2), date(2026, 3, 4), Decimal(2000), "EUR", 30),
    ("CN1", "C1", "credit_note", "I2", date(2026, 2, 20), date(2026, 2, 20), Decimal(-500), "EUR", 0),
    # I3: unpaid, 29 days overdue on AS_OF
    ("I3", "C2", "invoice", None, date(2026, 3, 2), date(2026, 3, 2), Decimal(300), "EUR", 0),
    # I4: not yet due on AS_OF
    ("I4", "C1", "invoice", None, date(2026, 3, 16), date(2026, 4, 15), Decimal(1200), "EUR", 30),
    # I5: paid 2026-01-20, 41 days late
    ("I5", "C2", "invoice", None, date(2025, 12, 10), date(2025, 12, 10), Decimal(200), "EUR", 0),
    # I6: GBP, unpaid, 106 days overdue on AS_OF
    ("I6", "C3", "invoice", None, date(2025, 11, 15), date(2025, 12, 15), Decimal(800), "GBP", 30),
]
_P = ("payment_id", "customer_id", "payment_date", "amount", "currency", "payment_method")
PAYMENTS = [
    ("P1", "C1", date(2026, 2, 10), Decimal(400), "EUR", "transfer"),
    ("P2", "C1", date(2026, 3, 20), Decimal(600), "EUR", "transfer"),
    ("P3", "C2", date(2026, 1, 20), Decimal(200), "EUR", "card"),
]
ALLOCATIONS = [("P1", "I1", Decimal(400)), ("P2", "I1", Decimal(600)), ("P3", "I5", Decimal(200))]


def _rows(columns: tuple[str, ...] | list[str], rows: list[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _load(path: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    extracts = [
        EntityExtract(
            entity,
            pa.Table.from_pylist(rows, schema=entity_schema(entity)),
            source_file=f"{entity}.json",
            file_hash=f"hash-{entity}",
        )
        for entity, rows in tables.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
        report = load_extracts(con, extracts, source_name="test-finance", flow_run_id="flow-finance")
    assert not report.rejected, report.rejected


def _build(settings: Settings, as_of: date, invoke: DbtInvoke) -> dict[str, str]:
    """The report relations and everything upstream of them, with their data tests; status of every node run."""
    selection = [f"+{name}" for name in REPORTS]
    args = dbt.dbt_args(settings, ["build"], as_of_date=as_of, unit_tests=False, extra=("--select", *selection))
    run = dbt.run_dbt(settings, args, invoke=invoke)
    return {r.node.unique_id: str(r.status) for r in run.result_object.results}


def _dicts(path: Path, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts of Python values (DECIMAL stays Decimal: the reconciliation is to the cent)."""
    with duckdb.connect(str(path)) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass(frozen=True)
class Built:
    path: Path
    nodes: dict[str, str]


def _assert_reconciliation_tests_passed(nodes: dict[str, str]) -> None:
    for name in RECONCILIATION_TESTS:
        assert nodes.get(f"test.relance.{name}") == "pass", name


# --------------------------------------------------------------------------------------- the hand-computed ledger
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Built:
    settings = Settings(data_dir=tmp_path_factory.mktemp("finance-tiny"), late_payment_cost_rate=0.1)
    _load(
        settings.warehouse,
        {
            "customers": CUSTOMERS,
            "invoices": _rows(_I, INVOICES),
            "payments": _rows(_P, PAYMENTS),
            "payment_allocations": _rows(("payment_id", "invoice_id", "allocated_amount"), ALLOCATIONS),
        },
    )
    return Built(settings.warehouse, _build(settings, AS_OF, dbt_invoke))


def test_tiny_ledger_reconciliation_tests_pass(tiny: Built) -> None:
    _assert_reconciliation_tests_passed(tiny.nodes)


def test_aged_balance_by_customer_by_hand(tiny: Built) -> None:
    """Open on 03-31: I2 1500 (27 days overdue) and I4 1200 (not due) for C1, I3 300 (29 days) for C2, I6 800
    (106 days, GBP) for C3; I1 and I5 are settled. EUR total 3000 = open receivables."""
    rows = _dicts(
        tiny.path,
        "select currency, customer_id, customer_type, size_band, sector_section, not_due, d1_30, d90_plus,"
        " total_open, overdue_amount, invoice_count from serving.report_aged_balance_by_customer order by 1, 2",
    )
    assert [(r["currency"], r["customer_id"]) for r in rows] == [("EUR", "C1"), ("EUR", "C2"), ("GBP", "C3")]
    c1, c2, c3 = rows
    assert (c1["customer_type"], c1["size_band"], c1["sector_section"]) == ("B2B", "small", "F")
    assert (c1["not_due"], c1["d1_30"], c1["total_open"], c1["overdue_amount"], c1["invoice_count"]) == (
        Decimal(1200),
        Decimal(1500),
        Decimal(2700),
        Decimal(1500),
        2,
    )
    assert (c2["customer_type"], c2["d1_30"], c2["total_open"]) == ("B2C", Decimal(300), Decimal(300))
    assert (c3["d90_plus"], c3["total_open"]) == (Decimal(800), Decimal(800))
    ledger = _dicts(tiny.path, "select currency, sum(open_amount) as s from marts.invoices where is_open group by 1")
    assert {r["currency"]: r["s"] for r in ledger} == {"EUR": Decimal(3000), "GBP": Decimal(800)}


def test_dso_countback_and_simple_by_hand(tiny: Built) -> None:
    """EUR on 03-31, R = 1500 + 300 + 1200 = 3000. Month 1 (02-28, 03-31], 31 days, sales I3 300 + I4 1200 = 1500:
    all 31 days, 1500 left; month 2 (01-31, 02-28], 28 days, sales I2 2000 > 1500: 1500 / 2000 * 28 = 21 -> 52.
    Simple: sales of (2025-12-31, 03-31] = 1000 + 2000 + 300 + 1200 = 4500, 3000 / 4500 * 90 = 60.
    EUR on Sunday 03-15, R = I1 600 + I2 1500 + I3 300 = 2400 (I4 not issued yet, I1's 600 paid later). Month 1
    (02-15, 03-15], 28 days, sales 300: 28 days, 2100 left; month 2 (01-15, 02-15], 31 days, sales 2000: 31 days, 100
    left; month 3 (12-15, 01-15], 31 days, sales I1 1000: 100 / 1000 * 31 = 3.1 -> 62.1. Simple: sales of
    (2025-12-15, 03-15] = 3300, 2400 / 3300 * 90 = 65.4545..."""
    by_date = {
        r["week_end_date"]: r
        for r in _dicts(tiny.path, "select * from serving.report_dso_trend where currency = 'EUR'")
    }
    assert sorted(by_date) == [date(2026, 3, 29) - timedelta(weeks=k) for k in range(12, -1, -1)] + [AS_OF]
    on_as_of = by_date[AS_OF]
    assert on_as_of["is_as_of_date"] is True
    assert on_as_of["receivables"] == Decimal(3000)
    assert on_as_of["dso_countback_days"] == pytest.approx(52.0, rel=1e-12)
    assert on_as_of["dso_simple_days"] == pytest.approx(60.0, rel=1e-12)
    sunday = by_date[date(2026, 3, 15)]
    assert sunday["receivables"] == Decimal(2400)
    assert sunday["dso_countback_days"] == pytest.approx(62.1, rel=1e-12)
    assert sunday["dso_simple_days"] == pytest.approx(2400 / 3300 * 90, rel=1e-12)


def test_cei_by_hand(tiny: Built) -> None:
    """Week 03-16..03-22: BR (03-15) 2400, sales I4 1200, ER (03-22) I2 1500 + I3 300 + I4 1200 = 3000 (I1 paid
    03-20), ending current I4 1200: (2400 + 1200 - 3000) / (2400 + 1200 - 1200) = 600 / 2400 = 25%.
    Week 03-09..03-15: nothing issued or collected, nothing current at its end: 0 / 2400 = 0%.
    13 weeks 2025-12-29..03-29: BR (12-28) I5 200, sales 1000 + 2000 + 300 + 1200 = 4500, ER 3000, ending current
    1200: (200 + 4500 - 3000) / (200 + 4500 - 1200) = 1700 / 3500 = 48.571...% (collections 1700 = payments 400 +
    600 + 200 and the 500 credit note)."""
    rows = _dicts(tiny.path, "select * from serving.report_cei where currency = 'EUR'")
    weeks = {r["period_end"]: r for r in rows if r["period"] == "week"}
    assert len(weeks) == 13
    week = weeks[date(2026, 3, 22)]
    assert (week["beginning_receivables"], week["sales"], week["ending_receivables"]) == (2400, 1200, 3000)
    assert week["ending_current_receivables"] == 1200
    assert week["cei_pct"] == pytest.approx(25.0, rel=1e-12)
    assert weeks[date(2026, 3, 15)]["cei_pct"] == 0
    (whole,) = [r for r in rows if r["period"] == "last_13_weeks"]
    assert (whole["period_start"], whole["period_end"]) == (date(2025, 12, 29), date(2026, 3, 29))
    assert (whole["beginning_receivables"], whole["sales"], whole["collections"]) == (200, 4500, 1700)
    assert whole["cei_pct"] == pytest.approx(1700 / 3500 * 100, rel=1e-12)


def test_late_payment_cost_at_the_configured_rate(tiny: Built) -> None:
    """Settings.late_payment_cost_rate = 0.1 reaches the model through relance.dbt. EUR open overdue: I2 1500 * 27 +
    I3 300 * 29 = 49200 amount-days, * 0.1 / 365 = 13.479 -> 13.48. Paid late in (2025-12-30, 03-31]: I1 400 * 6 +
    600 * 44, I5 200 * 41 = 37000, * 0.1 / 365 = 10.137 -> 10.14. GBP: I6 800 * 106 = 84800 -> 23.23."""
    rows = {r["currency"]: r for r in _dicts(tiny.path, "select * from serving.report_late_payment_cost")}
    eur, gbp = rows["EUR"], rows["GBP"]
    assert eur["annual_rate"] == pytest.approx(0.1)
    assert (eur["overdue_amount"], eur["amount_days_overdue"], eur["cost_to_date"]) == (1800, 49200, Decimal("13.48"))
    assert (eur["paid_late_amount"], eur["paid_late_amount_days"], eur["cost_last_13_weeks"]) == (
        1200,
        37000,
        Decimal("10.14"),
    )
    assert (gbp["amount_days_overdue"], gbp["cost_to_date"], gbp["cost_last_13_weeks"]) == (84800, Decimal("23.23"), 0)


# --------------------------------------------------------------------------------------- the demo against an oracle
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_raw_warehouse: Path, dbt_invoke: DbtInvoke) -> Built:
    settings = Settings(data_dir=tmp_path_factory.mktemp("finance-demo"))
    copy_warehouse(demo_raw_warehouse, settings.data_dir)
    return Built(settings.warehouse, _build(settings, DEMO_AS_OF, dbt_invoke))


@dataclass(frozen=True)
class Ledger:
    """The staging ledger in plain Python: invoices, and settlement events (allocations on their payment date,
    credit notes on their issue date) by invoice — an oracle written apart from the dbt models."""

    invoices: list[dict[str, Any]]
    events: dict[str, list[tuple[date, Decimal]]]

    def open_on(self, day: date, currency: str, *, not_due_only: bool = False) -> Decimal:
        """Open receivables at the end of ``day``: invoices issued by then, amount - events dated by then, when
        above the tolerance (``not_due_only``: due on or after ``day``)."""
        total = Decimal(0)
        for invoice in self.invoices:
            if invoice["currency"] != currency or invoice["issue_date"] > day:
                continue
            if not_due_only and invoice["due_date"] < day:
                continue
            settled = sum((a for d, a in self.events.get(invoice["invoice_id"], []) if d <= day), Decimal(0))
            if invoice["amount"] - settled > TOLERANCE:
                total += invoice["amount"] - settled
        return total

    def sales(self, currency: str, after: date, until: date) -> Decimal:
        return sum(
            (i["amount"] for i in self.invoices if i["currency"] == currency and after < i["issue_date"] <= until),
            Decimal(0),
        )


def _ledger(path: Path) -> Ledger:
    invoices = _dicts(
        path,
        "select invoice_id, customer_id, currency, issue_date, due_date, amount from staging.stg_invoices"
        " where document_type = 'invoice'",
    )
    events: dict[str, list[tuple[date, Decimal]]] = {}
    for row in _dicts(
        path,
        "select allocations.invoice_id, payments.payment_date as event_date, allocations.allocated_amount as amount"
        " from staging.stg_payment_allocations as allocations"
        " inner join staging.stg_payments as payments on allocations.payment_id = payments.payment_id"
        " union all"
        " select credited_invoice_id, issue_date, -amount from staging.stg_invoices"
        " where document_type = 'credit_note' and credited_invoice_id is not null",
    ):
        events.setdefault(row["invoice_id"], []).append((row["event_date"], row["amount"]))
    return Ledger(invoices, events)


def _countback(ledger: Ledger, currency: str, day: date, receivables: Decimal) -> float:
    """DSO by countback over calendar months back from ``day`` (dateutil clamps to the month's end too)."""
    left, days = float(receivables), 0.0
    for k in range(1, 25):
        start, end = day - relativedelta(months=k), day - relativedelta(months=k - 1)
        sales = float(ledger.sales(currency, start, end))
        if left <= 0:
            break
        if left >= sales:
            days, left = days + (end - start).days, left - sales
        else:
            days, left = days + left / sales * (end - start).days, 0.0
    return days


def test_demo_reconciliation_tests_pass(demo: Built) -> None:
    _assert_reconciliation_tests_passed(demo.nodes)


def test_demo_aged_balance_by_customer_totals_equal_open_receivables(demo: Built) -> None:
    """To the cent, per currency: the aged balance by customer = the ledger's open invoices on the as-of date =
    report_aged_balance; each customer's buckets add up to its total."""
    ledger = _ledger(demo.path)
    currencies = {i["currency"] for i in ledger.invoices}
    expected = {c: ledger.open_on(DEMO_AS_OF, c) for c in currencies}
    assert expected["EUR"] > 0
    by_customer = _dicts(demo.path, "select * from serving.report_aged_balance_by_customer")
    assert len(by_customer) > 50
    totals = {c: sum((r["total_open"] for r in by_customer if r["currency"] == c), Decimal(0)) for c in currencies}
    assert totals == expected
    aged = _dicts(demo.path, "select currency, sum(open_amount) as s from serving.report_aged_balance group by 1")
    assert {r["currency"]: r["s"] for r in aged} == expected
    for r in by_customer:
        assert r["not_due"] + r["d1_30"] + r["d31_60"] + r["d61_90"] + r["d90_plus"] == r["total_open"], r


def test_demo_receivables_and_dso_on_every_trend_date(demo: Built) -> None:
    """On the as-of date (Saturday 2026-10-31) and the 13 Sundays before it: receivables (and their part not yet due)
    as the oracle recomputes them from the ledger, countback DSO to 1e-9, simple DSO as its definition."""
    ledger = _ledger(demo.path)
    trend = _dicts(demo.path, "select * from serving.report_dso_trend")
    dates = sorted({r["week_end_date"] for r in trend})
    assert dates == [date(2026, 10, 25) - timedelta(weeks=k) for k in range(12, -1, -1)] + [DEMO_AS_OF]
    assert {r["currency"] for r in trend} == {i["currency"] for i in ledger.invoices}
    for row in trend:
        day, currency = row["week_end_date"], row["currency"]
        assert row["receivables"] == ledger.open_on(day, currency), (currency, day)
        assert row["current_receivables"] == ledger.open_on(day, currency, not_due_only=True), (currency, day)
        expected = _countback(ledger, currency, day, row["receivables"])
        assert row["dso_countback_days"] == pytest.approx(expected, rel=1e-9, abs=1e-9), (currency, day)
        sales_90d = ledger.sales(currency, day - timedelta(days=90), day)
        assert row["sales_90d"] == sales_90d
        if sales_90d:
            assert row["dso_simple_days"] == pytest.approx(float(row["receivables"] / sales_90d * 90), rel=1e-9)
    (eur,) = [r for r in trend if r["currency"] == "EUR" and r["is_as_of_date"]]
    assert 0 < eur["dso_countback_days"] < 365 and not eur["is_dso_countback_capped"]


def test_demo_cei_matches_the_oracle(demo: Built) -> None:
    """Every week and the 13-week period: CEI from the oracle's balances and sales."""
    ledger = _ledger(demo.path)
    cei = _dicts(demo.path, "select * from serving.report_cei")
    assert {r["period"] for r in cei} == {"week", "last_13_weeks"}
    (whole,) = [r for r in cei if r["period"] == "last_13_weeks" and r["currency"] == "EUR"]
    assert (whole["period_start"], whole["period_end"]) == (date(2026, 7, 27), date(2026, 10, 25))
    for row in cei:
        currency, start, end = row["currency"], row["period_start"], row["period_end"]
        br = ledger.open_on(start - timedelta(days=1), currency)
        er = ledger.open_on(end, currency)
        ecr = ledger.open_on(end, currency, not_due_only=True)
        sales = ledger.sales(currency, start - timedelta(days=1), end)
        assert (row["beginning_receivables"], row["sales"], row["ending_receivables"]) == (br, sales, er), row
        assert row["ending_current_receivables"] == ecr, row
        if br + sales - ecr:
            assert row["cei_pct"] == pytest.approx(float(br + sales - er) / float(br + sales - ecr) * 100, rel=1e-9)
    assert 0 < whole["cei_pct"] <= 100
