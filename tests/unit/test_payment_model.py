"""The payment model's parts on a synthetic ledger whose truth is known: calibration, days-late quantiles with
conformal coverage, TreeSHAP reason codes in words, and the contract the self-contained pyfunc must keep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import models.contract as contract
import models.pyfunc as pyfunc
from models.contract import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, PREDICTION, QUANTILE_COLUMNS
from models.metrics import classification_metrics, regression_metrics
from models.pyfunc import Calibration, FeatureSpec, format_reason
from models.reasons import REASON_PHRASES
from models.train import _calibration_slice, fit_payment_model


def synthetic(n_dates: int = 40, per_date: int = 100, seed: int = 0) -> pd.DataFrame:
    """Rows whose lateness depends on the customer's late share and on days to due; days late on the same."""
    rng = np.random.default_rng(seed)
    n = n_dates * per_date
    dates = np.repeat(pd.date_range("2025-01-01", periods=n_dates, freq="7D").to_numpy(), per_date)
    df = pd.DataFrame({name: rng.random(n) for name in NUMERIC_FEATURES})
    for name in CATEGORICAL_FEATURES:
        df[name] = rng.choice(["a", "b", None], size=n)
    share = rng.beta(2, 3, size=n)
    df["cust_late_share"] = share
    df["days_to_due"] = rng.integers(-20, 40, size=n).astype(float)
    logit = -1.0 + 5.0 * (share - 0.4) - 0.05 * df["days_to_due"]
    p_true = 1 / (1 + np.exp(-logit))
    df[contract.TARGET] = (rng.random(n) < p_true).astype(int)
    days = np.round(20 * share + rng.normal(0, 4, size=n) - 0.2 * df["days_to_due"])
    df[contract.DAYS_LATE] = np.maximum(days, 1 - df["days_to_due"])  # open on its as-of date: paid after it
    df["invoice_id"] = [f"I{i}" for i in range(n)]
    df["customer_id"] = [f"C{c}" for c in rng.integers(0, 200, size=n)]
    df["as_of_date"] = dates
    df["label_observed_date"] = df["as_of_date"] + pd.Timedelta(days=7)
    df["p_true"] = p_true
    return df


@pytest.fixture(scope="module")
def fitted() -> tuple[pyfunc.PaymentDelayModel, pd.DataFrame, pd.DataFrame]:
    df = synthetic()
    cutoff = df["as_of_date"].quantile(0.75)
    train, test = df[df["as_of_date"] < cutoff], df[df["as_of_date"] >= cutoff]
    return fit_payment_model(train), train, test


def test_pyfunc_constants_equal_the_contract() -> None:
    # models/pyfunc.py imports nothing from relance (a logged model loads anywhere): its copies must agree
    assert pyfunc.QUANTILES == contract.QUANTILES
    assert pyfunc.QUANTILE_COLUMNS == contract.QUANTILE_COLUMNS
    assert pyfunc.REASON_COLUMNS == contract.REASON_COLUMNS
    assert (PREDICTION, *QUANTILE_COLUMNS, *contract.REASON_COLUMNS) == contract.OUTPUT_COLUMNS


def test_every_feature_has_a_phrase_in_plain_words() -> None:
    assert set(REASON_PHRASES) == set(FEATURE_COLUMNS)
    for feature, phrase in REASON_PHRASES.items():
        if "_" in feature:
            assert feature not in phrase["text"], f"{feature}: the phrase must not be the column name"
        assert phrase["format"] in {"pct", "days", "count", "amount", "month", "flag", "text"}


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("cust_late_share", 0.62, "Customer paid 62% of past invoices late"),
        ("cust_late_share", np.nan, "No payment history for this customer yet"),
        ("days_to_due", -12.0, "12 days overdue"),
        ("days_to_due", 5.0, "Due in 5 days"),
        ("cust_open_amount", 12345.6, "Customer owes 12,346 in total"),
        ("issue_month", 8.0, "Issued in August"),
        ("last_reminder_response", "dispute", "Last reminder response: dispute"),
        ("cust_days_late_trend", -3.0, "Customer is paying 3 days sooner than before"),
    ],
)
def test_reasons_read_as_words(feature: str, value: object, expected: str) -> None:
    assert format_reason(REASON_PHRASES[feature], feature, value) == expected


def test_a_feature_without_a_phrase_is_still_named() -> None:
    assert format_reason(None, "new_feature", 3) == "new_feature = 3"


def test_calibration_maps() -> None:
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(Calibration().apply(p), p)
    np.testing.assert_allclose(Calibration(method="platt", a=1.0, b=0.0).apply(p), p, atol=1e-9)
    iso = Calibration(method="isotonic", x=(0.0, 1.0), y=(0.2, 0.4))
    np.testing.assert_allclose(iso.apply(p), [0.22, 0.3, 0.38])
    assert Calibration.from_dict(iso.to_dict()) == iso


def test_calibration_slice_is_the_last_dates_and_purged() -> None:
    df = synthetic(n_dates=10, per_date=10)
    early, late, start = _calibration_slice(df, 0.2)
    assert start == df["as_of_date"].sort_values().unique()[8]
    assert late.sum() == 20
    # early rows keep only labels observed by the slice's first day (7 days after their as-of date here)
    assert (df.loc[early, "label_observed_date"] <= start).all()
    assert not (early & late).any()


def test_categorical_transform_is_vectorised_and_unseen_levels_are_missing() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["b", None, "zz", "a"]})
    spec = FeatureSpec.fit(df.iloc[:2].assign(c=["a", "b"]), numeric=["x"], categorical=["c"])
    out = spec.transform(df)
    np.testing.assert_array_equal(out[:, 0], [1.0, 2.0, np.nan, 4.0])
    np.testing.assert_array_equal(out[:, 1], [1.0, np.nan, np.nan, 0.0])


def test_model_is_calibrated_and_close_to_the_truth(fitted) -> None:
    model, _, test = fitted
    out = model.predict_frame(test, reasons=False)
    m = classification_metrics(test[contract.TARGET], out[PREDICTION])
    oracle = classification_metrics(test[contract.TARGET], test["p_true"])
    assert model.calibration.method in {"platt", "stacked"} and model.calibration.slice_rows > 0
    assert m["auc"] > oracle["auc"] - 0.03
    assert m["calibration_error"] < 0.05
    raw = classification_metrics(test[contract.TARGET], model.predict_raw(test))
    assert m["calibration_error"] <= raw["calibration_error"] + 0.01


def test_quantiles_cover_their_nominal_share(fitted) -> None:
    model, _, test = fitted
    out = model.predict_frame(test, reasons=False)
    q10, q50, q90 = (out[c].to_numpy() for c in QUANTILE_COLUMNS)
    assert (q10 <= q50).all() and (q50 <= q90).all()
    reg = regression_metrics(test[contract.DAYS_LATE], q10, q50, q90)
    assert 0.72 <= reg["coverage_p10_p90"] <= 0.9
    # an invoice open on its as-of date is paid after it: no quantile says otherwise
    assert (q10 >= 1 - test["days_to_due"].to_numpy()).all()


def test_reason_codes_name_the_drivers_towards_late(fitted) -> None:
    model, _, test = fitted
    rows = test.nlargest(50, "cust_late_share")
    out = model.predict_frame(rows)
    late_share = "of past invoices late"
    assert out["reason_1"].str.contains(late_share).mean() > 0.8
    # no reason is given for a feature that pushed towards on time
    early = model.predict_frame(test.nsmallest(50, "cust_late_share"))
    assert not early[["reason_1", "reason_2", "reason_3"]].stack().str.contains(late_share).any()
    # a flag that is off never reads as if it were on
    flags = model.predict_frame(test.assign(is_disputed=0.0))
    assert not flags[["reason_1", "reason_2", "reason_3"]].stack().str.contains("dispute is open").any()


def test_without_settled_rows_there_are_no_quantiles() -> None:
    df = synthetic(n_dates=12, per_date=40).assign(**{contract.DAYS_LATE: np.nan})
    model = fit_payment_model(df)
    out = model.predict_frame(df.head(10), reasons=False)
    assert out[list(QUANTILE_COLUMNS)].isna().all().all()
    assert out[PREDICTION].between(0, 1).all()


def test_the_served_refit_keeps_the_evaluated_rounds_and_calibration(fitted) -> None:
    model, train, test = fitted
    everything = pd.concat([train, test], ignore_index=True)
    served = fit_payment_model(everything, like=model)
    assert served.calibration == model.calibration  # fitted on rows the evaluated model never saw
    assert served.booster.current_iteration() == model.booster.current_iteration()
    for column, booster in model.quantile_boosters.items():
        assert served.quantile_boosters[column].current_iteration() == booster.current_iteration()
    # refitted, not copied: the served model learned from the later rows too
    assert not np.allclose(served.predict_raw(test), model.predict_raw(test))
