"""The backtest's pure steps on tiny frames: month origins, what a month may train on and test, the baselines,
the metrics each method reports, the target names. The end-to-end runs are in tests/integration/test_evaluate.py."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from models import backtest as bt
from models.contract import DAYS_LATE, FEATURE_COLUMNS, PREDICTION, QUANTILE_COLUMNS, TARGET, target_name


def test_month_origins_cover_every_month_that_meets_the_range() -> None:
    assert bt.month_origins(date(2013, 1, 15), date(2013, 3, 1)) == [
        date(2013, 1, 1),
        date(2013, 2, 1),
        date(2013, 3, 1),
    ]
    assert bt.month_origins(date(2013, 12, 1), date(2014, 1, 31)) == [date(2013, 12, 1), date(2014, 1, 1)]
    with pytest.raises(bt.BacktestError, match="after"):
        bt.month_origins(date(2013, 2, 1), date(2013, 1, 1))


def test_month_window_is_clipped_to_the_range() -> None:
    assert bt.month_window(date(2013, 1, 1), date(2013, 1, 15), date(2013, 12, 31)) == (
        date(2013, 1, 15),
        date(2013, 1, 31),
    )
    assert bt.month_window(date(2012, 2, 1), date(2012, 1, 1), date(2012, 12, 31)) == (
        date(2012, 2, 1),
        date(2012, 2, 29),
    )
    assert bt.month_window(date(2013, 12, 1), date(2013, 1, 1), date(2013, 12, 10)) == (
        date(2013, 12, 1),
        date(2013, 12, 10),
    )


def test_build_date_is_after_the_range_and_the_ledger() -> None:
    assert bt.build_as_of_date(date(2013, 12, 31), date(2014, 1, 9)) == date(2014, 1, 10)
    assert bt.build_as_of_date(date(2013, 12, 31), date(2013, 6, 1)) == date(2014, 1, 1)
    assert bt.build_as_of_date(date(2013, 12, 31), None) == date(2014, 1, 1)


@pytest.mark.parametrize(
    ("text", "kind", "days"),
    [
        ("late_any", "late_over", 0),
        ("late_over_5d", "late_over", 5),
        ("unpaid_30d_after_due", "unpaid_after_due", 30),
        ("unpaid_15d_after_as_of", "unpaid_after", 15),
    ],
)
def test_parse_target_inverts_target_name(text: str, kind: str, days: int) -> None:
    assert bt.parse_target(text) == (kind, days)
    assert target_name(kind, days) == text


@pytest.mark.parametrize("text", ["late", "late_over_0d", "unpaid_30d", "late_over_-1d", ""])
def test_parse_target_refuses_other_names(text: str) -> None:
    with pytest.raises(bt.BacktestError):
        bt.parse_target(text)


def test_source_sha256_of_a_file_and_a_directory(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    first = bt.source_sha256(tmp_path)
    assert len(bt.source_sha256(tmp_path / "a.csv")) == 64
    (tmp_path / "b.csv").write_text("y\n")
    assert bt.source_sha256(tmp_path) != first


# --- a tiny frame shaped like load_backtest_frame's ---------------------------------------------------------------


def _row(invoice: str, customer: str, as_of: str, issue: str, due: str, settled: str | None, **extra) -> dict:
    days_late = None if settled is None else (pd.Timestamp(settled) - pd.Timestamp(due)).days
    is_late = 1.0 if days_late is None or days_late > 0 else 0.0
    observed = max(pd.Timestamp(due) + pd.Timedelta(days=1), pd.Timestamp(as_of))
    row = {c: np.nan for c in FEATURE_COLUMNS}
    row.update(
        invoice_id=invoice,
        customer_id=customer,
        as_of_date=pd.Timestamp(as_of),
        issue_date=pd.Timestamp(issue),
        due_date=pd.Timestamp(due),
        settled_date=pd.Timestamp(settled) if settled else pd.NaT,
        label_observed_date=observed,
        is_label_known=True,
        target_name="late_any",
        **{TARGET: is_late, DAYS_LATE: np.nan if days_late is None else float(days_late)},
        amount=100.0,
        customer_type="B2B",
        sector_section=None,
        cust_settled_invoice_count=0.0,
        hist_settled_count=0.0,
        hist_mean_days_late=np.nan,
        hist_median_days_late=np.nan,
    )
    row.update(extra)
    return row


def _history(settled: int, late_share: float, days_late: float) -> dict:
    """The customer's as-of history: settled invoices, late share, mean = median days late."""
    return {
        "cust_late_share": late_share,
        "cust_settled_invoice_count": float(settled),
        "hist_settled_count": float(settled),
        "hist_mean_days_late": days_late,
        "hist_median_days_late": days_late,
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = [
        # issued and due long before the origin, paid late before it: trains, with its days late
        _row("A", "c1", "2013-01-02", "2013-01-02", "2013-02-01", "2013-02-11"),
        # due before the March origin, paid after it: is_late known in March, days late only in April
        _row("B", "c1", "2013-01-20", "2013-01-20", "2013-02-19", "2013-03-10"),
        # issued before the origin, paid EARLY before it, but due after it: its label is not known at the origin
        _row("C", "c2", "2013-02-10", "2013-02-10", "2013-03-12", "2013-02-15"),
        # a later snapshot of A (only with train_rows="all")
        _row("A", "c1", "2013-01-20", "2013-01-02", "2013-02-01", "2013-02-11"),
        # test rows in March
        _row("D", "c1", "2013-03-04", "2013-03-04", "2013-04-03", "2013-04-10", **_history(2, 1.0, 10.0)),
        _row("E", "c2", "2013-03-05", "2013-03-05", "2013-04-04", "2013-04-01", **_history(1, 0.0, 0.0)),
        _row("F", "c2", "2013-03-06", "2013-03-06", "2013-04-05", None, is_label_known=False),
        # a snapshot of D after its issue date: never a test row
        _row("D", "c1", "2013-03-10", "2013-03-04", "2013-04-03", "2013-04-10"),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_training_rows_only_hold_labels_observed_before_the_origin(frame: pd.DataFrame) -> None:
    train = bt.training_rows(frame, date(2013, 3, 1))
    # A (due 02-01, observed 02-02) and B (due 02-19, observed 02-20) are known; C was paid on 02-15, before the
    # origin, but its label (due 03-12) is observed on 03-13 whatever the outcome: it must not train in March
    assert sorted(train["invoice_id"]) == ["A", "B"]
    assert (train["as_of_date"] == train["issue_date"]).all()
    by_id = train.set_index("invoice_id")
    assert by_id.loc["A", DAYS_LATE] == 10  # settled 02-11, before the origin
    assert np.isnan(by_id.loc["B", DAYS_LATE])  # settled 03-10, after the origin: is_late known, days late not
    assert by_id.loc["B", TARGET] == 1
    april = bt.training_rows(frame, date(2013, 4, 1))
    assert "C" in set(april["invoice_id"]) and april.set_index("invoice_id").loc["B", DAYS_LATE] == 19


def test_training_rows_all_snapshots_weigh_each_invoice_once(frame: pd.DataFrame) -> None:
    train = bt.training_rows(frame, date(2013, 3, 1), train_rows="all")
    assert sorted(train["invoice_id"]) == ["A", "A", "B"]
    assert train.groupby("invoice_id")[bt.WEIGHT].sum().to_dict() == {"A": 1.0, "B": 1.0}


def test_test_rows_at_issue_with_exclusions_and_unknown_labels(frame: pd.DataFrame) -> None:
    rule = bt.Exclusion(reason="disputed", where="Flag = 'x'", invoice_ids=frozenset({"E", "Z"}))
    rows = bt.test_rows(frame, (date(2013, 3, 1), date(2013, 3, 31)), [rule], issued_ids=["D", "E", "F", "G"])
    assert list(rows.rows["invoice_id"]) == ["D"]  # E excluded, F's label unknown, D's later snapshot not a test row
    assert rows.excluded == {"disputed": 1}
    assert rows.label_unknown == 1
    assert rows.issued == 4 and rows.not_open_at_issue == 1  # G: settled on its issue date, no row


def test_baselines_use_only_the_as_of_history_and_training_rows(frame: pd.DataFrame) -> None:
    train = bt.training_rows(frame, date(2013, 3, 1))
    test = bt.test_rows(frame, (date(2013, 3, 1), date(2013, 3, 31))).rows
    out = {name: predict(test) for name, predict in bt.fit_baselines(train).items()}
    assert set(out) == set(bt.BASELINES)
    assert (out["always_on_time"][PREDICTION] == 0).all()
    assert (out["always_on_time"][QUANTILE_COLUMNS[1]] == 0).all()
    assert list(out["customer_median"][QUANTILE_COLUMNS[1]]) == [10.0, 0.0]  # D, E: their own history
    assert out["customer_median"][PREDICTION].isna().all()  # days late only
    assert list(out["customer_late_rate"][PREDICTION]) == [1.0, 0.0]
    assert out["customer_late_rate"][list(QUANTILE_COLUMNS)].isna().all(axis=None)
    # no history: the training rows' base rate (A and B were both late) and mean days late (A's 10; B unsettled)
    no_history = test.assign(cust_late_share=np.nan, hist_mean_days_late=np.nan)
    assert list(bt.fit_baselines(train)["customer_late_rate"](no_history)[PREDICTION]) == [1.0, 1.0]
    assert list(bt.fit_baselines(train)["customer_mean"](no_history)[QUANTILE_COLUMNS[1]]) == [10.0, 10.0]
    lo, mid, hi = (out["customer_mean"][c].to_numpy() for c in QUANTILE_COLUMNS)
    assert (lo <= mid).all() and (mid <= hi).all()


def _predictions(method: str, p, q) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "method": method,
            "customer_id": ["c1", "c2", "c3", "c4"],
            TARGET: [1.0, 0.0, 1.0, 0.0],
            DAYS_LATE: [5.0, -2.0, np.nan, 0.0],
            bt.TEST_MONTH: "2013-03",
            PREDICTION: p,
        }
    )
    for column, values in zip(QUANTILE_COLUMNS, q, strict=True):
        df[column] = values
    return df


def test_each_method_reports_only_the_metrics_it_has() -> None:
    nan = [np.nan] * 4
    preds = pd.concat(
        [
            _predictions(bt.RELANCE, [0.9, 0.2, 0.8, 0.1], ([0, -3, 0, -1], [4, -1, 2, 0], [9, 1, 9, 2])),
            _predictions("customer_median", nan, ([0] * 4, [1] * 4, [3] * 4)),
            _predictions("logistic_late_rate", [0.6, 0.4, 0.6, 0.4], (nan, nan, nan)),
        ],
        ignore_index=True,
    )
    pooled = bt.pooled_metrics(preds)
    assert list(pooled) == [bt.RELANCE, "customer_median", "logistic_late_rate"]
    assert pooled[bt.RELANCE]["auc"] == 1.0 and pooled[bt.RELANCE]["n"] == 4
    assert pooled[bt.RELANCE]["n_days_late"] == 3  # the unsettled row has no days late
    assert pooled[bt.RELANCE]["mae_days_late"] == pytest.approx((1 + 0 + 0) / 3)
    assert "auc" not in pooled["customer_median"] and "mae_days_late" in pooled["customer_median"]
    assert "mae_days_late" not in pooled["logistic_late_rate"] and pooled["logistic_late_rate"]["auc"] == 1.0
    table = bt.BacktestResult(
        target="late_any", start=date(2013, 3, 1), end=date(2013, 3, 31), profile="p", source="f", file_sha256="0",
        train_rows="issue", build_as_of=date(2013, 4, 1), n_test=4, metrics=pooled.pop(bt.RELANCE),
        baselines=pooled, months=[], ci={}, exclusions=[], dropped={},
    ).table()  # fmt: skip
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["method", "auc", "brier"] and lines[2].startswith("relance")
    assert "–" in lines[3] and "–" in lines[4]


def test_run_months_fits_each_month_on_its_own_training_rows(frame: pd.DataFrame) -> None:
    seen: dict[str, list[str]] = {}

    def fit(train: pd.DataFrame):
        origin = str(pd.Timestamp(train["label_observed_date"].max()).date())
        seen[origin] = sorted(train["invoice_id"])

        def predict(test: pd.DataFrame) -> pd.DataFrame:
            out = pd.DataFrame(index=test.index)
            out[PREDICTION] = 0.5
            for c in QUANTILE_COLUMNS:
                out[c] = 0.0
            return out

        return predict

    bigger = pd.concat([frame] + [frame.iloc[[0]].assign(invoice_id=f"A{i}") for i in range(40)], ignore_index=True)
    bigger.loc[bigger["invoice_id"].str.startswith("A") & (bigger.index % 2 == 0), TARGET] = 0.0
    preds, logs = bt.run_months(bigger, date(2013, 2, 1), date(2013, 3, 31), fit=fit)
    assert [m.origin for m in logs] == [date(2013, 2, 1), date(2013, 3, 1)]
    assert "too little to fit" in logs[0].skipped and logs[1].skipped is None  # nothing known on 2013-02-01
    assert set(preds["method"]) == {bt.RELANCE, *bt.BASELINES}
    assert set(preds["invoice_id"]) == {"D", "E"}
    assert all("C" not in ids for ids in seen.values())


EXCLUDING_PROFILE = """
name: excluding
reader: {format: csv, delimiter: ",", encoding: utf-8, date_format: "%Y-%m-%d"}
ignore_columns: [Flag]
evaluation:
  exclude:
    - {where: "Flag = 'disputed'", reason: disputed after issue}
    - {where: "CAST(Amount AS DOUBLE) > 1000", reason: large}
entities:
  invoices:
    file: "*.csv"
    where: "Kind = 'invoice'"
    columns: {invoice_id: Invoice, customer_id: Customer, issue_date: Issued, due_date: Due, amount: Amount}
"""


def test_evaluation_exclusions_map_rows_to_invoice_ids_through_the_profile(tmp_path) -> None:
    (tmp_path / "ledger.csv").write_text(
        "Kind,Invoice,Customer,Issued,Due,Amount,Flag\n"
        "invoice, F-1 ,C1,2023-01-01,2023-01-31,10.00,disputed\n"  # id trimmed as the loader trims it
        "invoice,F-2,C1,2023-01-02,2023-02-01,2000.00,\n"
        "credit,F-3,C1,2023-01-03,2023-02-02,5.00,disputed\n"  # not an invoice row for the profile: never excluded
        "invoice,F-4,C2,2023-01-04,2023-02-03,20.00,\n",
        encoding="utf-8",
    )
    profile = tmp_path / "excluding.yaml"
    profile.write_text(EXCLUDING_PROFILE, encoding="utf-8")
    disputed, large = bt.evaluation_exclusions(tmp_path / "ledger.csv", str(profile))
    assert (disputed.reason, disputed.invoice_ids) == ("disputed after issue", frozenset({"F-1"}))
    assert large.invoice_ids == frozenset({"F-2"})
    assert bt.evaluation_exclusions(tmp_path / "ledger.csv", "fec") == []


def test_profiles_without_the_key_exclude_nothing() -> None:
    from relance.sources.tabular import load_profile

    assert load_profile("ibm_ar").evaluation.exclude[0].where == "Disputed = 'Yes'"
    assert load_profile("demo").evaluation.exclude == []
