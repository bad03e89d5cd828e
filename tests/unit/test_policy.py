"""The reminder policy: step windows, channels, exclusions, cap and key determinism."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from relance.reminders.policy import (
    EXPLANATION_COLUMNS,
    PLANNED_COLUMNS,
    PolicyConfig,
    plan_reminders,
    reminder_key,
)

AS_OF = date(2026, 3, 31)


def _row(invoice_id: str, days_overdue: int, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "invoice_id": invoice_id,
        "customer_id": f"C-{invoice_id}",
        "customer_name": f"Client {invoice_id}",
        "customer_type": "B2C",
        "sector_section": "G",
        "email": f"{invoice_id.lower()}@example.org",
        "phone": "+33100000000",
        "currency": "EUR",
        "amount": 1000.0,
        "open_amount": 1000.0,
        "issue_date": pd.Timestamp(AS_OF - timedelta(days=days_overdue + 30)),
        "due_date": pd.Timestamp(AS_OF - timedelta(days=days_overdue)),
        "days_overdue": days_overdue,
        "aging_bucket": "x",
        "is_disputed": False,
        "p_late": 0.2,
        "model_version": "3",
        "model_run_id": "run-abc",
        "as_of_date": pd.Timestamp(AS_OF),
        "raw_batch_id": "b1",
        "reason_1": "Customer paid 62% of past invoices late",
        "reason_2": None,
        "reason_3": None,
        "predicted_payment_date": pd.Timestamp(AS_OF + timedelta(days=12)),
        "predicted_payment_date_p10": pd.Timestamp(AS_OF + timedelta(days=3)),
        "predicted_payment_date_p90": pd.Timestamp(AS_OF + timedelta(days=40)),
        "risk_grade": "C",
    }
    row.update(kw)
    return row


def _plan(rows: list[dict[str, object]], **kw: object) -> pd.DataFrame:
    kw.setdefault("max_reminders", 100)
    return plan_reminders(pd.DataFrame(rows), as_of_date=AS_OF, **kw)


def _step_of(days: int, config: PolicyConfig | None = None, **kw: object) -> tuple[str, str, str] | None:
    plan = _plan([_row("F1", days, **kw)], config=config)
    if plan.empty:
        return None
    r = plan.iloc[0]
    return (r["step"], r["channel"], r["tone"])


@pytest.mark.parametrize(
    ("days", "p", "expected"),
    [
        (-6, 0.9, None),  # too early even for a risky invoice
        (-5, 0.9, ("pre_due", "email", "preventive")),
        (0, 0.9, ("pre_due", "email", "preventive")),
        (0, 0.5, ("pre_due", "email", "preventive")),  # p == high_risk counts as high
        (0, 0.49, None),  # low risk: no preventive nudge
        (1, 0.9, None),  # grace period
        (6, 0.9, None),
        (7, 0.1, ("overdue_7", "email", "cordial")),
        (20, 0.1, ("overdue_7", "email", "cordial")),
        (21, 0.1, ("overdue_21", "email", "firm")),
        (44, 0.1, ("overdue_21", "email", "firm")),
        (45, 0.1, ("overdue_45", "letter", "firm")),
        (400, 0.1, ("overdue_45", "letter", "firm")),
    ],
)
def test_step_boundaries_b2c(days: int, p: float, expected: tuple[str, str, str] | None) -> None:
    assert _step_of(days, p_late=p) == expected


@pytest.mark.parametrize(
    ("days", "p", "expected"),
    [
        (21, 0.5, ("overdue_21", "call", "firm")),
        (44, 0.8, ("overdue_21", "call", "firm")),
        (30, 0.49, ("overdue_21", "email", "firm")),
        (45, 0.01, ("overdue_45", "call", "firm")),
        (10, 0.99, ("overdue_7", "email", "cordial")),
    ],
)
def test_b2b_escalates_to_a_call(days: int, p: float, expected: tuple[str, str, str]) -> None:
    assert _step_of(days, p_late=p, customer_type="B2B") == expected


def test_recipient_follows_channel() -> None:
    plan = _plan(
        [
            _row("E", 8, email=" e@example.org "),
            _row("C", 50, customer_type="B2B", phone="+33 1 23"),
            _row("L", 50, customer_name="Mme Dupont"),
        ]
    ).set_index("invoice_id")
    assert plan.loc["E", "recipient"] == "e@example.org"
    assert plan.loc["C", "recipient"] == "+33 1 23"
    assert plan.loc["L", "recipient"] == "Mme Dupont"


def test_disputed_invoices_get_nothing() -> None:
    plan = _plan([_row("D", 50, is_disputed=True), _row("OK", 50)])
    assert plan["invoice_id"].tolist() == ["OK"]
    assert plan.attrs["skipped"]["disputed"] == 1


def test_debtor_in_collective_procedure_gets_nothing_on_any_invoice() -> None:
    plan = _plan(
        [
            _row("INS-1", 50, customer_id="CI", customer_type="B2B", has_open_procedure=True),
            _row("INS-2", 8, customer_id="CI", customer_type="B2B", has_open_procedure=True, is_disputed=True),
            _row("OK", 50, has_open_procedure=False),
            _row("UNKNOWN", 8, has_open_procedure=None),  # no risk data: not stopped
        ]
    )
    assert sorted(plan["invoice_id"]) == ["OK", "UNKNOWN"]
    assert plan.attrs["skipped"]["insolvency"] == 2
    assert plan.attrs["skipped"]["disputed"] == 0  # counted once, under the stronger rule


def test_missing_recipient_is_skipped_and_counted() -> None:
    plan = _plan(
        [
            _row("NOMAIL", 8, email=None),
            _row("BADMAIL", 8, email="not an email"),
            _row("NOPHONE", 50, customer_type="B2B", phone=""),
            _row("OK", 8),
        ]
    )
    assert plan["invoice_id"].tolist() == ["OK"]
    assert plan.attrs["skipped"]["no_recipient"] == 3


def test_non_positive_open_amount_is_not_reminded() -> None:
    plan = _plan([_row("CREDIT", 30, open_amount=0.0), _row("OK", 30)])
    assert plan["invoice_id"].tolist() == ["OK"]
    assert plan.attrs["skipped"]["nothing_due"] == 1


def test_cap_keeps_highest_expected_exposure() -> None:
    rows = [
        _row("SMALL", 30, open_amount=10_000.0, p_late=0.01),  # exposure 100
        _row("BIG", 30, open_amount=1_000.0, p_late=0.9),  # 900
        _row("MID", 30, open_amount=2_000.0, p_late=0.2),  # 400
        _row("NOSCORE", 30, open_amount=99_999.0, p_late=None),  # 0: unscored ranks last
    ]
    plan = _plan(rows, max_reminders=2)
    assert plan["invoice_id"].tolist() == ["BIG", "MID"]
    assert plan["expected_exposure"].tolist() == [900.0, 400.0]
    assert plan.attrs["skipped"]["capped"] == 2
    assert _plan(rows, max_reminders=0).empty


def test_excluded_keys_do_not_use_the_budget() -> None:
    rows = [_row("BIG", 30, p_late=0.9), _row("MID", 30, p_late=0.5)]
    plan = _plan(rows, max_reminders=1, exclude_keys={reminder_key("BIG", "overdue_21")})
    assert plan["invoice_id"].tolist() == ["MID"]


def test_the_key_of_a_reminder_never_changes_across_releases() -> None:
    """Pinned: a new key function would make every reminder still in its window look unsent after an upgrade,
    and the ledger would send it again. Changing this value needs a migration of ops.reminder_sends."""
    assert reminder_key("F-2026-000123", "overdue_7") == (
        "64e9cb79b24c1fc50cf4c4a0e301a0896dae9f45a591dfbb6bfb20b5e9ac253c"
    )


def test_key_is_deterministic_and_independent_of_date_and_order() -> None:
    assert reminder_key("F1", "overdue_7") == reminder_key("F1", "overdue_7")
    assert len(reminder_key("F1", "overdue_7")) == 64
    assert reminder_key("F1", "overdue_7") != reminder_key("F1", "overdue_21")
    # no separator collision between ("a|b", "c") and ("a", "b|c")
    assert reminder_key("a|b", "c") != reminder_key("a", "b|c")

    rows = [_row(f"F{i}", 8 + i, p_late=0.3) for i in range(5)]
    day1 = _plan(rows)
    day2 = plan_reminders(
        pd.DataFrame([{**r, "days_overdue": r["days_overdue"] + 1, "as_of_date": None} for r in rows[::-1]]),
        as_of_date=AS_OF + timedelta(days=1),
        max_reminders=100,
    )
    assert day1["reminder_key"].tolist() == day2["reminder_key"].tolist()
    assert day1.loc[0, "reminder_key"] == reminder_key("F0", "overdue_7")


def test_one_row_per_invoice_and_step_and_contract_columns() -> None:
    plan = _plan([_row("F1", 8), _row("F1", 8), _row("F2", 50)])
    assert sorted(plan["invoice_id"]) == ["F1", "F2"]
    assert plan["reminder_key"].is_unique
    assert list(plan.columns[: len(PLANNED_COLUMNS)]) == list(PLANNED_COLUMNS)
    assert set(plan["as_of_date"]) == {AS_OF}
    assert plan.loc[plan["invoice_id"] == "F1", "due_date"].iloc[0] == AS_OF - timedelta(days=8)


def test_config_thresholds_apply() -> None:
    cfg = PolicyConfig(high_risk=0.9, pre_due_days=2, overdue_first=3, overdue_second=10, overdue_third=20)
    assert _step_of(-3, config=cfg, p_late=0.95) is None
    assert _step_of(-2, config=cfg, p_late=0.95) == ("pre_due", "email", "preventive")
    plan = _plan([_row("A", 3), _row("B", 10, customer_type="B2B", p_late=0.8)], config=cfg)
    got = dict(zip(plan["invoice_id"], zip(plan["step"], plan["channel"], strict=True), strict=True))
    assert got == {"A": ("overdue_7", "email"), "B": ("overdue_21", "email")}
    with pytest.raises(ValueError, match="increasing"):
        PolicyConfig(overdue_first=10, overdue_second=5)


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        plan_reminders(pd.DataFrame({"invoice_id": ["x"]}), as_of_date=AS_OF, max_reminders=1)
    with pytest.raises(ValueError, match="as_of_date"):
        _plan([_row("F1", 8, as_of_date=pd.Timestamp("2020-01-01"))])
    empty = plan_reminders(pd.DataFrame(columns=list(_row("x", 1))), as_of_date=AS_OF, max_reminders=5)
    assert empty.empty and list(empty.columns[: len(PLANNED_COLUMNS)]) == list(PLANNED_COLUMNS)


def test_the_plan_carries_why_each_invoice_is_flagged() -> None:
    plan = _plan(
        [
            _row("WHY", 30, customer_type="B2B", p_late=0.8, reason_2="Already 30 days overdue"),
            _row("BARE", 10, reason_1=float("nan"), predicted_payment_date=pd.NaT, risk_grade=None),
        ]
    )
    assert tuple(plan.columns[-len(EXPLANATION_COLUMNS) :]) == EXPLANATION_COLUMNS
    why, bare = (plan.set_index("invoice_id").loc[i] for i in ("WHY", "BARE"))
    assert why["channel"] == "call" and why["risk_grade"] == "C"
    assert (why["reason_1"], why["reason_2"], why["reason_3"]) == (
        "Customer paid 62% of past invoices late",
        "Already 30 days overdue",
        None,
    )
    assert why["predicted_payment_date"] == AS_OF + timedelta(days=12)  # a date, whatever the worklist held
    assert (why["predicted_payment_date_p10"], why["predicted_payment_date_p90"]) == (
        AS_OF + timedelta(days=3),
        AS_OF + timedelta(days=40),
    )
    # what the model did not give stays missing (None), never the text "nan"
    assert bare["reason_1"] is None and bare["predicted_payment_date"] is None and bare["risk_grade"] is None
    with pytest.raises(ValueError, match="risk_grade"):
        _plan([{k: v for k, v in _row("X", 10).items() if k != "risk_grade"}])
