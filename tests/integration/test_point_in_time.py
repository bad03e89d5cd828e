"""Features see what a collector saw on their date (issue 10, item 1): one focused test per leak closed.

The seed of test_dbt_project (history import B1 loaded 03-01, corrections in B2 and B3) plus late facts, each in
a batch loaded after the business date it is about:

- R20, in the history import, sent to I4 on 02-20 and answered on 03-02: on 02-28 it looks exactly like an
  unanswered reminder ('none'); it used to read 'awaiting', which only the future can know and scoring never sees;
- R3 (I5, unanswered in B1) answered 'paid' on 02-10, the answer loaded on 03-05: 'none' on 02-28, 'paid' on 03-28;
- C1 moves from sector F / small / limit 10,000 to J / large / 20,000, loaded 03-05;
- I4 amended from 1,200 due 03-03 to 1,500 due 03-20, and I1 (settled 02-10) to 1,100, both loaded 03-05: I1 is
  open again from 03-05 and leaves C1's payment history;
- P20, I6's full payment dated 03-10 but booked on 03-30, and P21, 30 paid on I5 on 02-20 and booked on 03-05;
- company risk about C1: a director change published 02-10 and a registry profile observed 02-20 (250-499
  employees, accounts overdue), both loaded on 03-05; a head-office move published and loaded on 03-10.

Each test says what the old SQL gave (current versions, business dates only) and checks the new value on the
dates before and after the late fact was loaded. The last one loads a demo-like set of BODACC notices (issue 11)
and checks the debtor concerned gets non-zero risk features on the dates it could know them.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from relance import ops
from relance.risk.events import (
    DIRECTOR_CHANGE,
    HEAD_OFFICE_MOVE,
    PROCEDURE_CLOSED,
    PROCEDURE_CONVERTED,
    PROCEDURE_OPENED,
    REGISTRY_FR,
    CompanyProfile,
    RiskEvent,
)
from tests.conftest import DbtInvoke
from tests.integration.test_dbt_project import CUSTOMERS, INVOICES, _dbt, _dicts, _insert, _seed, _settings

pytestmark = pytest.mark.integration

FEB, MAR = date(2026, 2, 28), date(2026, 3, 28)
LATE = datetime(2026, 3, 5, 6)  # the load of the late facts (after the 02-28 grid date, before 03-28)
_R = ("reminder_id", "invoice_id", "customer_id", "sent_at", "channel", "tone", "response", "responded_at",
      "promised_date")  # fmt: skip


C1_SIREN = "732829320"


def _event(event_id: str, event_type: str, judged: date, published: date, subtype: str | None = None) -> dict:
    """A normalised BODACC event about C1's company, as the risk loader writes it."""
    return RiskEvent(
        event_id=event_id,
        registry=REGISTRY_FR,
        company_id=C1_SIREN,
        event_type=event_type,
        event_subtype=subtype,
        event_date=judged,
        published_date=published,
        publisher="bodacc",
        detail="notice",
        court="Tribunal de commerce de Toulouse" if subtype else None,
        source_url=f"https://www.bodacc.fr/annonce/detail/{event_id}",
    ).as_row()


def _invoice(invoice_id: str, **changes: object) -> tuple:
    columns = ("invoice_id", "customer_id", "document_type", "credited_invoice_id", "issue_date", "due_date", "amount")
    row = list(next(r for r in INVOICES if r[0] == invoice_id))
    for name, value in changes.items():
        row[columns.index(name)] = value
    return tuple(row)


@pytest.fixture(scope="module")
def late_warehouse(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Path:
    tmp = tmp_path_factory.mktemp("pit")
    path = _settings(tmp).warehouse
    _seed(path)
    with duckdb.connect(str(path)) as con:
        r20 = (
            "R20", "I4", "C1", datetime(2026, 2, 20, 9), "email", "cordial", "promise_to_pay",
            datetime(2026, 3, 2, 9), date(2026, 3, 25),
        )  # fmt: skip
        _insert(con, "reminders", [dict(zip(_R, r20, strict=True))], "B1")
        r3 = ("R3", "I5", "C2", datetime(2026, 1, 20, 10), "email", "cordial", "paid", datetime(2026, 2, 10, 9), None)
        _insert(con, "reminders", [dict(zip(_R, r3, strict=True))], "L1", LATE)
        c1 = next(c for c in CUSTOMERS if c["customer_id"] == "C1")
        _insert(con, "customers", [{**c1, "sector_section": "J", "size_band": "large", "credit_limit": 20000}], "L1",
                LATE)  # fmt: skip
        amended = [_invoice("I4", amount=1500, due_date=date(2026, 3, 20)), _invoice("I1", amount=1100)]
        _insert(con, "invoices", amended, "L1", LATE)
        _insert(con, "payments", [("P21", "C2", date(2026, 2, 20), 30, "EUR", "card")], "L1", LATE)
        _insert(con, "payment_allocations", [("P21", "I5", 30)], "L1", LATE)
        # C1's company: facts of February that reach raw only on 03-05 (a later batch than the risk tables' first
        # load, B1 on 03-01), and a move published and loaded on 03-10
        _insert(con, "company_events", [_event("EL1", DIRECTOR_CHANGE, date(2026, 2, 6), date(2026, 2, 10))], "L1",
                LATE)  # fmt: skip
        profile = CompanyProfile(REGISTRY_FR, C1_SIREN, "recherche_entreprises", date(2026, 2, 20),
                                 headcount_band="32", is_accounts_overdue=True)  # fmt: skip
        _insert(con, "company_profiles", [profile.as_row()], "L1", LATE)
        _insert(con, "company_events", [_event("EL2", HEAD_OFFICE_MOVE, date(2026, 3, 2), date(2026, 3, 10))], "L3",
                datetime(2026, 3, 10, 6))  # fmt: skip
        booked = datetime(2026, 3, 30, 6)
        _insert(con, "payments", [("P20", "C3", date(2026, 3, 10), 2000, "USD", "transfer")], "L2", booked)
        _insert(con, "payment_allocations", [("P20", "I6", 2000)], "L2", booked)
    _dbt(tmp, dbt_invoke, "run", stage=None, extra=("--select", "+ml_invoice_features"))
    return path


def _row(path: Path, invoice_id: str, as_of: date) -> dict | None:
    rows = _dicts(
        path,
        f"select * from ml.ml_invoice_features where invoice_id = '{invoice_id}' and as_of_date = '{as_of}'",
    )
    assert len(rows) <= 1
    return rows[0] if rows else None


def test_a_reminder_answered_later_looks_unanswered(late_warehouse: Path) -> None:
    """Old SQL: 'awaiting' for R20 on 02-28 (answered 03-02), and R3's 'paid' (loaded 03-05) already on 02-28."""
    i4 = _row(late_warehouse, "I4", FEB)
    assert i4 is not None
    assert (i4["reminder_count"], i4["last_reminder_response"], i4["promise_count"]) == (1.0, "none", 0.0)
    i5 = _row(late_warehouse, "I5", FEB)
    assert i5 is not None
    assert (i5["reminder_count"], i5["last_reminder_response"]) == (1.0, "none")
    # once answered and loaded, the answers count: R1 (03-10) is I4's latest reminder, R20 a second promise
    i4_mar, i5_mar = _row(late_warehouse, "I4", MAR), _row(late_warehouse, "I5", MAR)
    assert i4_mar is not None and i5_mar is not None
    assert (i4_mar["last_reminder_response"], i4_mar["promise_count"]) == ("promise_to_pay", 2.0)
    assert i5_mar["last_reminder_response"] == "paid"


def test_customer_attributes_as_known_on_the_date(late_warehouse: Path) -> None:
    """Old SQL: C1's current attributes (J, large, 20,000) on every date."""
    i4 = _row(late_warehouse, "I4", FEB)
    assert i4 is not None
    assert (i4["customer_type"], i4["sector_section"], i4["size_band"]) == ("B2B", "F", "small")
    assert i4["cust_credit_limit_usage"] == pytest.approx(1000 / 10000)  # I4 open 1000 on 02-28
    # sector and size priors of the segment C1 was in: F's history is C1's three settled invoices
    assert i4["sector_late_share"] == pytest.approx(1 / 3)
    i4_mar = _row(late_warehouse, "I4", MAR)
    assert i4_mar is not None
    assert (i4_mar["sector_section"], i4_mar["size_band"]) == ("J", "large")
    # C1 open on 03-28: I4 (1500 - 200 credit) and I1 reopened (1100 - 1000 paid)
    assert i4_mar["cust_credit_limit_usage"] == pytest.approx((1300 + 100) / 20000)
    # C1's invoices were settled while it was in F: sector J has no history yet
    assert i4_mar["sector_late_share"] is None


def test_invoice_amendments_apply_from_their_load(late_warehouse: Path) -> None:
    """Old SQL: I4 at 1,500 due 03-20 on 02-28 too; I1 never reopened."""
    i4 = _row(late_warehouse, "I4", FEB)
    assert i4 is not None
    assert (i4["amount"], i4["open_amount"], i4["due_date"], i4["days_to_due"]) == (1200.0, 1000.0, date(2026, 3, 3),
                                                                                    3.0)  # fmt: skip
    i4_mar = _row(late_warehouse, "I4", MAR)
    assert i4_mar is not None
    assert (i4_mar["amount"], i4_mar["open_amount"], i4_mar["due_date"]) == (1500.0, 1300.0, date(2026, 3, 20))
    # I1, paid in full on 02-10, is open again once amended to 1,100: 100 left, no longer in C1's history
    assert _row(late_warehouse, "I1", FEB) is None
    i1_mar = _row(late_warehouse, "I1", MAR)
    assert i1_mar is not None
    assert (i1_mar["amount"], i1_mar["open_amount"], i1_mar["invoice_payment_count"]) == (1100.0, 100.0, 2.0)
    assert i4["cust_settled_invoice_count"] == 3.0  # 02-28: I1, I2, I3
    assert i4_mar["cust_settled_invoice_count"] == 2.0  # 03-28: I2, I3
    assert i4_mar["cust_mean_days_late"] == pytest.approx((-3 - 8) / 2)


def test_a_payment_booked_late_is_known_from_its_load(late_warehouse: Path) -> None:
    """Old SQL: I6 settled (P20, 03-10) and gone from 03-28; P21 and P9 (loaded 03-02) already known on 02-28."""
    i6 = _row(late_warehouse, "I6", MAR)
    assert i6 is not None  # P20 is dated 03-10 but was booked on 03-30
    assert (i6["open_amount"], i6["invoice_payment_count"], i6["cust_days_since_last_payment"]) == (2000.0, 0.0, None)
    assert _row(late_warehouse, "I6", date(2026, 3, 31)) is None  # settled, as known on 03-31
    i5 = _row(late_warehouse, "I5", FEB)
    assert i5 is not None
    assert (i5["open_amount"], i5["invoice_payment_count"], i5["cust_days_since_last_payment"]) == (80.0, 0.0, None)
    i5_mar = _row(late_warehouse, "I5", MAR)
    assert i5_mar is not None
    # P21 (02-20) reduces I5 from its load; C2's latest payment known on 03-28 is P21, P9 (02-02) being earlier
    assert (i5_mar["open_amount"], i5_mar["invoice_payment_count"]) == (50.0, 1.0)
    assert i5_mar["cust_days_since_last_payment"] == 36.0


RISK_FEATURES = (
    "risk_open_procedure", "risk_collective_procedure", "risk_closure", "risk_recent_director_change",
    "risk_recent_head_office_move", "risk_accounts_overdue", "risk_headcount_band", "risk_event_count_365d",
    "risk_days_since_last_event",
)  # fmt: skip


def _risk(row: dict | None) -> tuple:
    assert row is not None
    return tuple(row[c] for c in RISK_FEATURES)


def test_risk_facts_published_or_loaded_later_stay_invisible(late_warehouse: Path) -> None:
    """Old SQL: no registry profile, no director change, move or overdue accounts at all. The director change
    (published 02-10) and the profile (observed 02-20) were loaded on 03-05: on 02-28 C1's features are those of the
    first load alone (profile of 02-15: 10-19 employees, accounts up to date; no event published yet; E1 is
    published 03-01); the profile of 04-15 (first load) is observed after every date here."""
    assert _risk(_row(late_warehouse, "I4", FEB)) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, None)
    # 03-28: E1 opened a procedure (03-01); the late facts are known; 250 = the lower bound of band '32'
    assert _risk(_row(late_warehouse, "I4", MAR)) == (1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 250.0, 3.0, 18.0)


@pytest.fixture(scope="module")
def demo_notices_warehouse(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Path:
    """The seed plus the notices the demo writes for an insolvent debtor (relance.demo.bodacc: an opening, a
    conversion to liquidation, then a closing judgment), loaded by the risk flow from source 'bodacc': its first
    load on 03-25 is the history import (known from publication), the closing notice arrives with the next day's
    load on 03-30."""
    tmp = tmp_path_factory.mktemp("pit_demo")
    path = _settings(tmp).warehouse
    _seed(path)
    history = [
        _event("B-OPEN", PROCEDURE_OPENED, date(2026, 1, 20), date(2026, 1, 30), "redressement"),
        _event("B-DIR", DIRECTOR_CHANGE, date(2026, 2, 1), date(2026, 2, 5)),
        _event("B-CONV", PROCEDURE_CONVERTED, date(2026, 3, 10), date(2026, 3, 20), "liquidation"),
    ]
    closing = [_event("B-CLOSE", PROCEDURE_CLOSED, date(2026, 3, 24), date(2026, 3, 29), "insufficient_assets")]
    with duckdb.connect(str(path)) as con:
        for batch, loaded, rows in (("RB1", datetime(2026, 3, 25, 6), history),
                                    ("RB2", datetime(2026, 3, 30, 6), closing)):  # fmt: skip
            ops.record_batch(con, ops.BatchRecord(
                batch_id=batch, entity="company_events", source_file=f"bodacc/{batch}.json", file_hash=batch,
                rows_read=len(rows), rows_loaded=len(rows), rows_unchanged=0, rows_quarantined=0, status="loaded",
                source_name="bodacc", loaded_at=loaded, flow_run_id="flow-risk",
            ))  # fmt: skip
            _insert(con, "company_events", rows, batch, loaded)
    _dbt(tmp, dbt_invoke, "run", stage=None, extra=("--select", "+ml_invoice_features"))
    return path


def test_demo_notices_give_the_debtor_non_zero_risk_features(demo_notices_warehouse: Path) -> None:
    """Old SQL: every risk feature 0 or null (the demo's notices were never read, and their event types unknown)."""
    path = demo_notices_warehouse
    # 01-31: the opening (published 01-30) is known from the history import: C1's open invoice I1 sees it
    assert _risk(_row(path, "I1", date(2026, 1, 31)))[:2] == (1.0, 1.0)
    # 02-28: still open; the director change of 02-05 is recent
    feb = _risk(_row(path, "I4", FEB))
    assert feb[:4] == (1.0, 1.0, 0.0, 1.0) and feb[-2:] == (2.0, 23.0)
    # 03-28: converted to liquidation, still open; the closing judgment (published 03-29) is not known yet
    assert _risk(_row(path, "I4", MAR))[:4] == (1.0, 1.0, 0.0, 1.0)
    # 03-31: closed for insufficient assets, loaded 03-30: no longer open (a closing judgment is not a closure of
    # the company); the procedure stays in the history
    assert _risk(_row(path, "I4", date(2026, 3, 31)))[:4] == (0.0, 1.0, 0.0, 1.0)
    # the other debtors are untouched: C2 (B2C, no SIREN)
    assert _risk(_row(path, "I5", MAR)) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, 0.0, None)
