"""models.metrics: hand-computed values on tiny arrays, equality with sklearn, edge cases, the bootstrap, segments,
figures and the pooled table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from models.metrics import (
    CLASSIFICATION_KEYS,
    REGRESSION_KEYS,
    amount_weights,
    calibration_figure,
    classification_metrics,
    customer_bootstrap_ci,
    due_status,
    equal_count_bins,
    frame_metrics,
    interval_figure,
    pooled_table,
    regression_metrics,
    segment_table,
    shap_summary_figure,
    snapshot_weights,
)

approx = pytest.approx

# --- classification -----------------------------------------------------------------------------------------------

Y4 = [0, 0, 1, 1]
P4 = [0.1, 0.4, 0.35, 0.8]


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(Y4, P4)
    assert set(m) == set(CLASSIFICATION_KEYS)
    # pairs (positive, negative): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both -> 3 of 4
    assert m["auc"] == approx(0.75)
    assert m["brier"] == approx((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    assert m["log_loss"] == approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    # 4 distinct p in 10 bins: one row per bin, gaps 0.1, 0.65, 0.4, 0.2
    assert m["calibration_error"] == approx((0.1 + 0.65 + 0.4 + 0.2) / 4)
    assert (m["base_rate"], m["n"]) == (0.5, 4)
    assert m["mean_p"] == approx(0.4125)


def test_classification_weights_by_hand_and_as_repeated_rows() -> None:
    m = classification_metrics(Y4, P4, weights=[1, 1, 2, 0])  # the last row counts nowhere, not even in n
    assert m["n"] == 3
    assert m["auc"] == approx(0.5)  # the positive (weight 2) beats 0.1 (weight 1), loses to 0.4 (weight 1)
    assert m["brier"] == approx((0.01 + 0.16 + 2 * 0.65**2) / 4)
    assert m["base_rate"] == approx(0.5)
    assert m["mean_p"] == approx((0.1 + 0.4 + 2 * 0.35) / 4)
    # equal-weight bins: cumulative midpoints 1/8, 2/4, 3.5/4 -> bins 1, 5, 8
    assert m["calibration_error"] == approx((0.1 + 2 * 0.65 + 0.4) / 4)
    repeated = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.35])
    assert {k: v for k, v in m.items() if k != "n"} == approx({k: v for k, v in repeated.items() if k != "n"})


def test_classification_equals_sklearn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(7)
    p = np.round(rng.random(3000), 2)  # many ties
    y = (rng.random(3000) < p).astype(int)
    w = rng.exponential(size=3000)
    for weights in (None, w):
        m = classification_metrics(y, p, weights)
        assert m["auc"] == approx(roc_auc_score(y, p, sample_weight=weights), abs=1e-12)
        assert m["brier"] == approx(brier_score_loss(y, p, sample_weight=weights), abs=1e-12)
        assert m["log_loss"] == approx(log_loss(y, p.clip(1e-6, 1 - 1e-6), sample_weight=weights), abs=1e-12)


def test_log_loss_clips_certain_wrong_predictions() -> None:
    assert classification_metrics([1, 0], [0.0, 0.0])["log_loss"] == approx(-math.log(1e-6) / 2)


def test_single_class_auc_is_nan_and_the_rest_computed() -> None:
    m = classification_metrics([1, 1], [0.2, 0.6])
    assert math.isnan(m["auc"])
    assert m["brier"] == approx((0.64 + 0.16) / 2)
    assert (m["base_rate"], m["n"]) == (1.0, 2)


def test_tied_scores_share_a_calibration_bin_whatever_the_row_order() -> None:
    y = np.array([0, 1, 1, 0, 1])
    assert classification_metrics(y, [0.3] * 5)["calibration_error"] == approx(0.3)  # |0.3 - 3/5| in one bin
    rng = np.random.default_rng(0)
    p = np.round(rng.random(200), 1)
    y = (rng.random(200) < p).astype(int)
    perm = rng.permutation(200)
    assert classification_metrics(y, p) == approx(classification_metrics(y[perm], p[perm]), abs=1e-12)


def test_equal_count_bins() -> None:
    assert equal_count_bins(np.arange(20)[::-1]).tolist() == (np.arange(20)[::-1] // 2).tolist()
    assert sorted(np.bincount(equal_count_bins(np.arange(25)))) == [2] * 5 + [3] * 5
    assert equal_count_bins(np.array([1, 1, 1, 1, 2, 3]), 2).tolist() == [0, 0, 0, 0, 1, 1]  # ties kept together
    assert equal_count_bins(np.array([1.0, 2.0, 3.0]), 2, weights=np.array([1, 0, 3])).tolist() == [0, 0, 1]


def test_unlabelled_rows_are_left_out_and_no_row_gives_nan() -> None:
    pd_y = pd.Series([0, 1, None], dtype="Int64")  # nullable labels from a frame
    m = classification_metrics(pd_y, [0.2, 0.7, np.nan])
    assert (m["n"], m["auc"]) == (2, 1.0)
    assert classification_metrics(pd.Series([True, False, pd.NA], dtype="boolean"), [0.7, 0.2, 0.5])["n"] == 2
    for empty in (classification_metrics([], []), classification_metrics([0, 1], [0.1, 0.9], weights=[0, 0])):
        assert empty["n"] == 0
        assert all(math.isnan(v) for k, v in empty.items() if k != "n")


@pytest.mark.parametrize(
    ("y", "p", "weights", "message"),
    [
        ([0, 2], [0.1, 0.2], None, "0 or 1"),
        ([0, 1], [0.1, 1.2], None, r"\[0, 1\]"),
        ([0, 1], [0.1, np.nan], None, "NaN probability"),
        ([0, 1], [0.1, 0.2], [1, -1], "negative"),
        ([0, 1], [0.1, 0.2], [1, np.nan], "NaN"),
        ([0, 1], [0.1], None, "different lengths"),
    ],
)
def test_classification_bad_input_is_a_clear_error(y, p, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p, weights)


# --- days late ----------------------------------------------------------------------------------------------------

DAYS = [-3, 0, 5, 12, np.nan]  # the last one is not settled
Q10 = [-5, -2, 0, 0, 0]
Q50 = [-1, 1, 2, 8, 0]
Q90 = [2, 4, 6, 10, 0]


def test_regression_metrics_by_hand() -> None:
    m = regression_metrics(DAYS, Q10, Q50, Q90)
    assert set(m) == set(REGRESSION_KEYS)
    assert m["n"] == 4
    # clipped at 0 on both sides: |0 - 0|, |1 - 0|, |2 - 5|, |8 - 12|
    assert m["mae_days_late"] == approx((0 + 1 + 3 + 4) / 4)
    # unclipped errors y - q: p10 (2, 2, 5, 12) * 0.1; p50 (-2, -1, 3, 4) halves; p90 (-5, -4, -1) * 0.1, 2 * 0.9
    assert m["pinball_p10"] == approx(2.1 / 4)
    assert m["pinball_p50"] == approx(5 / 4)
    assert m["pinball_p90"] == approx(2.8 / 4)
    assert m["pinball_mean"] == approx((2.1 + 5 + 2.8) / 12)
    assert m["coverage_p10_p90"] == approx(0.75)  # 12 is outside [0, 10]
    assert m["interval_width"] == approx((7 + 6 + 6 + 10) / 4)


def test_regression_weights_and_bounds_included() -> None:
    m = regression_metrics(DAYS, Q10, Q50, Q90, weights=[1, 0, 1, 2, 5])
    assert m["n"] == 3
    assert m["mae_days_late"] == approx((0 + 3 + 2 * 4) / 4)
    assert m["coverage_p10_p90"] == approx(2 / 4)
    assert regression_metrics([0, 10], [0, 0], [5, 5], [10, 10])["coverage_p10_p90"] == 1.0


def test_regression_all_unsettled_gives_nan_and_nan_quantile_of_a_settled_row_is_an_error() -> None:
    m = regression_metrics([np.nan, np.nan], [0, np.nan], [1, np.nan], [2, np.nan])
    assert m["n"] == 0
    assert all(math.isnan(v) for k, v in m.items() if k != "n")
    with pytest.raises(ValueError, match="NaN predicted quantile"):
        regression_metrics([1.0], [0.0], [np.nan], [2.0])


def test_crossed_quantiles_are_never_covered_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    m = regression_metrics([3.0], [5.0], [3.0], [1.0])
    assert (m["coverage_p10_p90"], m["interval_width"]) == (0.0, -4.0)
    assert "crossed" in caplog.text


# --- weights ------------------------------------------------------------------------------------------------------


def test_snapshot_weights_give_each_invoice_a_total_weight_of_one() -> None:
    w = snapshot_weights(["a", "a", "b", "c", "c", "c", "a"])
    assert w.tolist() == approx([1 / 3, 1 / 3, 1, 1 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert w.sum() == approx(3)
    with pytest.raises(ValueError, match="no invoice id"):
        snapshot_weights(["a", None])


def test_snapshot_weighted_metrics_count_an_invoice_once() -> None:
    # invoice x: 3 snapshots, late, scored 0.9; invoice y: 1 snapshot, on time, scored 0.9
    w = snapshot_weights(["x", "x", "x", "y"])
    m = classification_metrics([1, 1, 1, 0], [0.9] * 4, weights=w)
    assert m["base_rate"] == approx(0.5)
    assert m["brier"] == approx((0.01 + 0.81) / 2)


def test_amount_weights() -> None:
    w = amount_weights([100, -5, np.nan, 300, 0])
    assert w.tolist() == approx([1.25, 0, 0, 3.75, 0])
    assert w.mean() == approx(1)
    assert amount_weights(pd.Series([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert len(amount_weights([])) == 0
    with pytest.raises(ValueError, match="all 3 amounts are zero, negative or missing"):
        amount_weights([0, -1, np.nan])


# --- frames and the bootstrap -------------------------------------------------------------------------------------


def predictions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_id": ["i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"],
            "customer_id": ["c1", "c1", "c2", "c2", "c3", "c3", "c4", "c4"],
            "is_late": [0, 0, 1, 1, 0, 1, 0, 1],
            "p_late": [0.1, 0.2, 0.7, 0.9, 0.3, 0.6, 0.2, 0.4],
            "days_late": [-2, 0, 4, 9, np.nan, 3, -1, np.nan],
            "days_late_p10": [-4.0, -3, 0, 2, 0, 0, -3, 0],
            "days_late_p50": [-1.0, 0, 3, 6, 1, 2, 0, 2],
            "days_late_p90": [1.0, 2, 6, 10, 3, 5, 1, 6],
            "days_to_due": [10, 0, -1, -30, -31, -60, -61, -200],
            "amount": [10.0, 20, 30, 40, 50, 60, 70, 80],
            "customer_type": ["B2B", "B2B", "B2C", "B2C", "B2B", "B2B", "B2B", "B2B"],
            "sector_section": ["C", "C", None, None, "G", "G", "C", "C"],
        }
    )


def test_frame_metrics_names_both_counts() -> None:
    f = predictions_frame()
    m = frame_metrics(f)
    assert (m["n"], m["n_labelled"], m["n_days_late"]) == (8, 8, 6)
    assert m["auc"] == classification_metrics(f["is_late"], f["p_late"])["auc"]
    reg = regression_metrics(f["days_late"], f["days_late_p10"], f["days_late_p50"], f["days_late_p90"])
    assert m["mae_days_late"] == reg["mae_days_late"]
    assert set(frame_metrics(f[["is_late", "p_late"]])) == {"n_labelled", *CLASSIFICATION_KEYS}


def correlated_frame(n_customers: int = 40, rows_each: int = 50) -> pd.DataFrame:
    """Every row of a customer has the same label: the customer, not the row, is the unit of evidence."""
    customers = np.repeat(np.arange(n_customers), rows_each)
    return pd.DataFrame(
        {
            "customer_id": customers,
            "row_id": np.arange(len(customers)),
            "is_late": (customers % 2).astype(float),
            "p_late": 0.5,
        }
    )


def base_rate(frame: pd.DataFrame) -> dict[str, float]:
    return {"base_rate": float(frame["is_late"].mean())}


def test_bootstrap_is_deterministic_for_a_seed_and_ignores_row_order() -> None:
    f = predictions_frame()
    a = customer_bootstrap_ci(f, frame_metrics, n_boot=50, seed=3)
    assert a == customer_bootstrap_ci(f, frame_metrics, n_boot=50, seed=3)
    shuffled = customer_bootstrap_ci(f.sample(frac=1, random_state=1), frame_metrics, n_boot=50, seed=3)
    assert shuffled.keys() == a.keys()
    assert [x for k in a for x in shuffled[k]] == approx([x for k in a for x in a[k]], abs=1e-12)
    assert a != customer_bootstrap_ci(f, frame_metrics, n_boot=50, seed=4)
    lo, hi = a["brier"]
    assert lo <= frame_metrics(f)["brier"] <= hi


def test_bootstrap_resamples_whole_customers() -> None:
    f = predictions_frame()
    seen: list[pd.DataFrame] = []

    def record(frame: pd.DataFrame) -> dict[str, float]:
        seen.append(frame)
        return {"rows": float(len(frame))}

    customer_bootstrap_ci(f, record, n_boot=30, seed=0)
    by_customer = f.groupby("customer_id")["invoice_id"].apply(sorted).to_dict()
    rng = np.random.default_rng(0)  # the same draws, done the slow way
    for sample in seen:
        drawn = sorted(by_customer)  # customers in sorted order, as the bootstrap numbers them
        expected = sorted(i for k in rng.integers(0, 4, size=4) for i in by_customer[drawn[k]])
        assert sorted(sample["invoice_id"]) == expected
        assert sample.index.tolist() == list(range(len(sample)))


def test_one_customer_gives_a_point_interval() -> None:
    f = predictions_frame().assign(customer_id="c1")
    lo, hi = customer_bootstrap_ci(f, base_rate, n_boot=20)["base_rate"]
    assert lo == hi == approx(0.5)


def test_cluster_resampling_widens_the_interval_when_a_customers_rows_are_correlated() -> None:
    f = correlated_frame()
    by_customer = customer_bootstrap_ci(f, base_rate, n_boot=200)["base_rate"]
    by_row = customer_bootstrap_ci(f, base_rate, group_col="row_id", n_boot=200)["base_rate"]
    width_customer, width_row = by_customer[1] - by_customer[0], by_row[1] - by_row[0]
    # 40 independent customers, not 2,000 independent rows: about sqrt(50) ~ 7 times wider
    assert width_customer > 4 * width_row
    assert width_customer == approx(2 * 1.96 * math.sqrt(0.25 / 40), rel=0.3)


def test_bootstrap_skips_nan_resamples_and_keeps_all_nan_keys() -> None:
    f = correlated_frame(n_customers=6, rows_each=2)
    f.loc[f["customer_id"] == 5, "p_late"] = 0.9

    def metrics(frame: pd.DataFrame) -> dict[str, float]:
        return {"auc": classification_metrics(frame["is_late"], frame["p_late"])["auc"], "never": math.nan}

    ci = customer_bootstrap_ci(f, metrics, n_boot=100)
    assert 0.5 <= ci["auc"][0] <= ci["auc"][1] <= 1.0  # resamples with a single class left out
    assert all(math.isnan(v) for v in ci["never"])


def test_paired_difference_interval_excludes_zero_only_for_a_real_difference() -> None:
    rng = np.random.default_rng(1)
    f = correlated_frame(n_customers=200, rows_each=5)
    f["is_late"] = (rng.random(len(f)) < 0.4).astype(float)
    f["p_good"] = np.clip(0.4 + 0.3 * (f["is_late"] - 0.4) + rng.normal(0, 0.1, len(f)), 0, 1)
    f["p_noise"] = rng.random(len(f))
    f["p_noise2"] = rng.random(len(f))

    def auc_gain(challenger: str, champion: str):
        def fn(frame: pd.DataFrame) -> dict[str, float]:
            auc = {c: classification_metrics(frame["is_late"], frame[c])["auc"] for c in (challenger, champion)}
            return {"auc_gain": auc[challenger] - auc[champion]}

        return fn

    lo, _ = customer_bootstrap_ci(f, auc_gain("p_good", "p_noise"), n_boot=100)["auc_gain"]
    assert lo > 0
    lo, hi = customer_bootstrap_ci(f, auc_gain("p_noise2", "p_noise"), n_boot=100)["auc_gain"]
    assert lo < 0 < hi


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"customer_id": []}), {}, "empty"),
        (pd.DataFrame({"x": [1]}), {}, "no column 'customer_id'"),
        (pd.DataFrame({"customer_id": ["a", None]}), {}, "1 row"),
        (pd.DataFrame({"customer_id": ["a"]}), {"n_boot": 0}, "n_boot"),
        (pd.DataFrame({"customer_id": ["a"]}), {"alpha": 1.0}, "alpha"),
    ],
)
def test_bootstrap_bad_input(frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        customer_bootstrap_ci(frame, base_rate, **kwargs)


# --- segments -----------------------------------------------------------------------------------------------------


def rows_of(table: pd.DataFrame, segment: str) -> pd.DataFrame:
    return table[table["segment"] == segment].set_index("value")


def test_segment_table_default_segments() -> None:
    f = predictions_frame()
    t = segment_table(f)
    assert t.columns[:4].tolist() == ["segment", "value", "n", "n_customers"]
    assert t.iloc[0][["segment", "value", "n", "n_customers"]].tolist() == ["all", "all", 8, 4]
    assert rows_of(t, "due_status")["n"].to_dict() == {"not yet due": 2, "overdue": 6}
    # days overdue 0, 0 | 1, 30 | 31, 60 | 61 | 200
    assert rows_of(t, "aging_bucket")["n"].to_dict() == {"0": 2, "1-30": 2, "31-60": 2, "61-90": 1, ">90": 1}
    assert rows_of(t, "customer_type")["n"].to_dict() == {"B2B": 6, "B2C": 2}
    assert rows_of(t, "sector_section")["n"].to_dict() == {"C": 4, "G": 2, "unknown": 2}
    # quartiles of 10..80: 27.5, 45, 62.5
    bands = rows_of(t, "amount_band")
    assert bands["n"].to_dict() == {"[10, 27.5]": 2, "(27.5, 45]": 2, "(45, 62.5]": 2, "(62.5, 80]": 2}

    b2c = rows_of(t, "customer_type").loc["B2C"]
    sub = f[f["customer_type"] == "B2C"]
    assert b2c["n_customers"] == 1
    assert math.isnan(b2c["auc"])  # a single class in the segment: NaN, not an error
    assert b2c["brier"] == approx(classification_metrics(sub["is_late"], sub["p_late"])["brier"])
    assert b2c["mae_days_late"] == approx(abs(3 - 4) / 2 + abs(6 - 9) / 2)
    overdue = rows_of(t, "due_status").loc["overdue"]
    assert (overdue["n_labelled"], overdue["n_days_late"]) == (6, 4)


def test_empty_bucket_is_listed_with_nan_metrics() -> None:
    f = predictions_frame()
    f = f[f["days_to_due"] > -61]  # nothing 61 days or more overdue
    aging = rows_of(segment_table(f), "aging_bucket")
    assert aging.index.tolist() == ["0", "1-30", "31-60", "61-90", ">90"]
    assert aging.loc["61-90", "n"] == 0
    assert aging.loc["61-90", "n_customers"] == 0
    assert math.isnan(aging.loc[">90", "auc"]) and math.isnan(aging.loc[">90", "mae_days_late"])


def test_missing_columns_are_skipped_and_custom_segments() -> None:
    f = predictions_frame().drop(columns=["days_to_due", "amount", "sector_section", "days_late_p90"])
    t = segment_table(f)
    assert t["segment"].unique().tolist() == ["all", "customer_type"]
    assert "mae_days_late" not in t  # no p90: no regression metrics, no error
    t = segment_table(f, segments=["customer_type", "nowhere"])
    assert t["segment"].unique().tolist() == ["all", "customer_type"]
    t = segment_table(f, segments={"big": lambda fr: fr["invoice_id"].isin(["i1", "i2", "i3"]).map(str)})
    assert rows_of(t, "big")["n"].to_dict() == {"False": 5, "True": 3}


def test_segment_table_of_no_row_and_close_amounts() -> None:
    t = segment_table(predictions_frame().iloc[:0])
    assert t.iloc[0][["segment", "n", "n_customers"]].tolist() == ["all", 0, 0]
    assert (t["n"] == 0).all() and t["auc"].isna().all()
    f = predictions_frame().assign(amount=[1000.0, 1000.1, 1000.2, 1000.3, 1000.4, 1000.5, 1000.6, 1000.7])
    bands = rows_of(segment_table(f), "amount_band")["n"].to_dict()
    assert bands == {"[1000, 1000.175]": 2, "(1000.175, 1000.35]": 2, "(1000.35, 1000.525]": 2, "(1000.525, 1000.7]": 2}
    with pytest.raises(ValueError, match="gave 1 labels for 8 rows"):
        segment_table(f, segments={"bad": lambda fr: pd.Series(["x"])})


def test_segment_table_weighted() -> None:
    f = predictions_frame().assign(w=[1, 1, 1, 1, 1, 1, 0, 0])
    t = segment_table(f, weight="w", segments=[])
    assert t.iloc[0]["n_labelled"] == 6
    assert t.iloc[0]["base_rate"] == approx(3 / 6)
    with pytest.raises(ValueError, match="no weight column 'wt'"):
        segment_table(f, weight="wt")
    with pytest.raises(ValueError, match="negative"):
        frame_metrics(f.assign(w=-1.0), weight="w")


def test_segment_table_all_null_days_to_due() -> None:
    f = predictions_frame().assign(days_to_due=np.nan)
    due = rows_of(segment_table(f, segments={"due_status": due_status}), "due_status")
    assert due["n"].to_dict() == {"not yet due": 0, "overdue": 0, "unknown": 8}


# --- figures ------------------------------------------------------------------------------------------------------


def render(fig: Figure) -> None:
    FigureCanvasAgg(fig).draw()  # draws without pyplot: any plotting error shows here


def test_calibration_figure_points_are_the_bin_means() -> None:
    fig = calibration_figure([0, 0, 1, 1, 1, np.nan], {"model": [0.1, 0.1, 0.9, 0.9, 0.9, 0.5]}, bins=2)
    render(fig)
    ax_rel, ax_hist = fig.axes
    line = next(ln for ln in ax_rel.get_lines() if ln.get_label().startswith("model"))
    assert line.get_xdata().tolist() == approx([0.1, 0.9])
    assert line.get_ydata().tolist() == approx([0.0, 1.0])
    assert [t.get_text() for t in ax_rel.texts] == ["2", "3"]  # rows per bin
    render(calibration_figure([], {"model": []}))


def test_shap_summary_figure_bars_drop_the_bias_and_keep_the_top() -> None:
    rng = np.random.default_rng(0)
    n, k = 50, 20
    scale = np.arange(1, k + 1)  # feature j matters in proportion to j + 1
    contrib = np.column_stack([rng.normal(size=(n, k)) * scale, np.full(n, 99.0)])  # bias last
    features = rng.normal(size=(n, k)).astype(object)
    features[:, 0] = "text"  # not numeric: grey, not an error
    names = [f"f{j}" for j in range(k)]
    fig = shap_summary_figure(contrib, features, names)
    render(fig)
    ax_bar = fig.axes[0]
    widths = [bar.get_width() for bar in ax_bar.patches]
    assert len(widths) == 15
    expected = np.sort(np.abs(contrib[:, :k]).mean(axis=0))[::-1][:15]
    # bars drawn from the top (most important) down
    assert [widths[i] for i in range(15)] == approx(expected.tolist())
    labels = [t.get_text() for t in ax_bar.get_yticklabels()]
    assert labels[np.argmax([ax_bar.get_yticks()])] == names[int(np.argmax(np.abs(contrib[:, :k]).mean(axis=0)))]
    with pytest.raises(ValueError, match="expected"):
        shap_summary_figure(contrib[:, :5], features, names)


def test_interval_figure_coverage_per_band() -> None:
    days = [0, 1, 20, 30, np.nan]
    q10, q50, q90 = [0, 0, 5, 5, 0], [1, 1, 10, 10, 0], [2, 2, 25, 25, 0]
    fig = interval_figure(days, q10, q50, q90, bands=2)
    render(fig)
    ax_cov = fig.axes[0]
    assert [bar.get_height() for bar in ax_cov.patches] == approx([1.0, 0.5])  # 30 is outside [5, 25]
    assert "coverage 0.750" in fig._suptitle.get_text()
    render(interval_figure([np.nan], [0], [0], [0]))


# --- pooled table -------------------------------------------------------------------------------------------------


def test_pooled_table_relance_first_dash_where_not_applicable() -> None:
    text = pooled_table(
        {
            "always_on_time": {"auc": 0.5, "brier": 0.25},
            "relance": {"auc": 0.8912, "brier": 0.1, "mae_days_late": 2.1, "n": 1523},
            "single_class": {"auc": math.nan},
        }
    )
    assert text.splitlines() == [
        "method             auc   brier  mae_days_late      n",
        "--------------  ------  ------  -------------  -----",
        "relance         0.8912  0.1000           2.10  1,523",
        "always_on_time  0.5000  0.2500              –      –",
        "single_class       nan       –              –      –",
    ]
    assert pooled_table({"a": {"z": 1.0, "auc": 0.5}}, keys=["z"]).splitlines()[0] == "method       z"
