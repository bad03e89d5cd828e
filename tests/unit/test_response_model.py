"""The channel-response model learns who answers which channel, is evaluated honestly by time, and says no when
the history is too thin.

The synthetic history draws each contact's outcome from the demo generator's hidden response model
(``relance.demo.behaviour``: a call works far better on a late construction invoice, consumers answer SMS), with
channels assigned at random, so the truth per segment is known.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from relance.demo import behaviour as truth
from relance.reminders.response_model import (
    LABEL,
    RESPONSE_FEATURES,
    ResponseModel,
    channel_probabilities,
    fit_response_model,
    uplift_table,
)

CHANNELS = ("email", "sms", "letter", "call")  # the order of the behaviour module's arrays


def synthetic_history(n: int = 3000, seed: int = 1, days: int = 300) -> pd.DataFrame:
    """Contacts over ``days`` days with outcomes drawn from the demo's channel x segment logits."""
    rng = np.random.default_rng(seed)
    b2c = rng.random(n) < 0.35
    sector = np.where(b2c, None, rng.choice(["F", "G", "I", "M"], n, p=[0.3, 0.3, 0.2, 0.2]))
    size = np.where(b2c, None, rng.choice(["micro", "small", "medium", "large"], n))
    ch = rng.integers(0, 4, n)
    tone = rng.choice(["cordial", "firm"], n)
    overdue = rng.integers(0, 90, n)
    prior = rng.integers(0, 4, n)
    logit = (
        truth.RESP_BASE[ch]
        + np.where(b2c, truth.RESP_B2C[ch], 0.0)
        + np.where(sector == "F", truth.RESP_CONSTRUCTION[ch], 0.0)
        + np.where(sector == "I", truth.RESP_HOSPITALITY[ch], 0.0)
        + np.where(np.isin(size, ["medium", "large"]), truth.RESP_LARGE[ch], 0.0)
        + truth.RESP_OVERDUE_SLOPE[ch] * np.clip(overdue, 0, 60)
        + truth.RESP_FIRM_TONE * (tone == "firm")
        + 0.5  # 14 days rather than the generator's week
        - 0.3 * prior
        + truth.RESP_PROPENSITY * rng.normal(0.0, 1.0, n)
    )
    paid = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    sent_at = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.random(n)) * days, unit="D")
    return pd.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "source": "legacy",
            "customer_id": [f"k{i % 400}" for i in range(n)],
            "invoice_id": [f"i{i}" for i in range(n)],
            "sent_at": sent_at,
            "channel": np.array(CHANNELS)[ch],
            "tone": tone,
            "days_overdue_at_send": overdue,
            "amount": np.exp(rng.normal(7.0 - 1.5 * b2c, 1.0, n)).round(2),
            "customer_type": np.where(b2c, "B2C", "B2B"),
            "sector_section": sector,
            "size_band": size,
            "country_code": "FR",
            "prior_contacts": prior,
            LABEL: paid,
        }
    )


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history()


@pytest.fixture(scope="module")
def model(history: pd.DataFrame) -> ResponseModel:
    fitted = fit_response_model(history, seed=0)
    assert fitted is not None
    return fitted


def test_ranks_channels_per_segment_like_the_hidden_response_model(model: ResponseModel, history: pd.DataFrame):
    table = uplift_table(model, history.assign(days_overdue_at_send=10), tone="cordial")
    table = table.set_index(["customer_type", "sector_section"])
    assert model.channels == ("call", "email", "letter", "sms")
    # consumers answer SMS; on a late construction invoice a call wins
    assert table.loc[("B2C", "(none)"), "best_channel"] == "sms"
    assert table.loc[("B2C", "(none)"), "p_sms"] > table.loc[("B2C", "(none)"), "p_email"] + 0.08
    assert table.loc[("B2B", "F"), "best_channel"] == "call"
    # and the call's lift over e-mail is larger in construction than in any other sector
    lift = table["p_call"] - table["p_email"]
    assert lift.loc[("B2B", "F")] > lift.loc["B2B"].drop("F").max()
    # SMS is not what works for companies
    assert (table.loc["B2B", "p_sms"] < table.loc["B2B", "p_call"]).all()


def test_beats_the_channel_rate_baseline_on_the_time_holdout(model: ResponseModel, history: pd.DataFrame):
    m = model.metrics
    assert m["auc"] > m["baseline_auc"] + 0.02
    assert m["log_loss"] < m["baseline_log_loss"]
    assert m["brier"] < m["baseline_brier"]
    assert model.beats_baseline
    # the holdout is the last 20 % by sent_at; the served model is refit on every row
    assert m["n_holdout"] == pytest.approx(0.2 * len(history), abs=1)
    assert model.n_train == len(history)
    holdout = model.holdout
    assert holdout is not None and holdout["sent_at"].min() == pd.Timestamp(model.window["cutoff"])
    assert holdout["sent_at"].min() >= history["sent_at"].sort_values().iloc[int(0.8 * len(history)) - 1]


def test_is_deterministic_for_a_seed_and_ignores_row_order(model: ResponseModel, history: pd.DataFrame):
    again = fit_response_model(history.sample(frac=1.0, random_state=7), seed=0)
    assert again is not None
    assert again.metrics == model.metrics
    candidates = history.head(200).drop(columns=[LABEL])
    np.testing.assert_array_equal(again.predict(candidates), model.predict(candidates))


def test_holdout_and_purged_labels_never_reach_the_evaluated_model(model: ResponseModel, history: pd.DataFrame):
    """Flip every label the evaluated model must not have seen: the holdout's, and those of training-period
    contacts whose 14-day window reaches past the cutoff (not yet known on the cutoff date). Its holdout predictions
    and the baseline's must not move; only the metrics do."""
    cutoff = pd.Timestamp(model.window["cutoff"])
    unseen = history["sent_at"] > cutoff - pd.Timedelta(days=14)
    assert (unseen & (history["sent_at"] < cutoff)).sum() > 50  # the purge band is not empty
    flipped = history.assign(**{LABEL: np.where(unseen, ~history[LABEL], history[LABEL])})
    refit = fit_response_model(flipped, seed=0)
    assert refit is not None and refit.holdout is not None and model.holdout is not None
    assert refit.window["cutoff"] == model.window["cutoff"]
    np.testing.assert_array_equal(refit.holdout["p"].to_numpy(), model.holdout["p"].to_numpy())
    np.testing.assert_array_equal(refit.holdout["p_baseline"].to_numpy(), model.holdout["p_baseline"].to_numpy())
    assert refit.metrics["auc"] != model.metrics["auc"]  # the flips were seen by the evaluation, not the model


def test_predict_scores_candidates_without_a_label_and_tolerates_new_levels(model: ResponseModel):
    candidates = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "channel": ["call", "email", "SMS"],
            "tone": ["firm", "firm", "cordial"],
            "days_overdue_at_send": [40, 40, 5],
            "amount": [12_000.0, 12_000.0, None],
            "customer_type": ["B2B", "B2B", "B2C"],
            "sector_section": ["F", "F", "Z"],  # Z: a sector never seen in history, scored as missing
            "size_band": ["small", "small", None],
            "prior_contacts": [1, 1, 0],
        }
    )
    p = model.predict(candidates)
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    assert p[0] > p[1]  # a call beats an e-mail on a late construction invoice
    with pytest.raises(ValueError, match="lacks column"):
        model.predict(candidates.drop(columns=["prior_contacts"]))
    assert list(channel_probabilities(model, candidates).columns) == [f"p_{c}" for c in model.channels]


def test_too_thin_history_returns_none_and_says_why(history: pd.DataFrame, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="relance.reminders.response_model"):
        assert fit_response_model(history.head(400)) is None
    assert "not fitted: 400 usable contacts (need 500" in caplog.text
    single_class = history.assign(**{LABEL: False})
    assert fit_response_model(single_class) is None
    assert fit_response_model(history.iloc[0:0]) is None
    with pytest.raises(ValueError, match="lacks column"):
        fit_response_model(history.drop(columns=["sent_at"]))


def test_a_rare_channel_is_not_offered_and_cannot_be_scored(history: pd.DataFrame, caplog: pytest.LogCaptureFixture):
    is_sms = history["channel"].eq("sms")
    rare = pd.concat([history.loc[~is_sms], history.loc[is_sms].head(20)]).sort_values("sent_at")
    with caplog.at_level(logging.INFO, logger="relance.reminders.response_model"):
        fitted = fit_response_model(rare, min_per_channel=30)
    assert fitted is not None
    assert fitted.channels == ("call", "email", "letter")
    assert fitted.dropped_channels == {"sms": 20}
    assert "not offered" in caplog.text
    row = history.head(1)[list(RESPONSE_FEATURES)]
    assert fitted.predict(row.assign(channel="email")).shape == (1,)
    with pytest.raises(ValueError, match=r"cannot score channel\(s\) \['sms'\]"):
        fitted.predict(row.assign(channel="sms"))
    with pytest.raises(ValueError, match="cannot score"):
        fitted.predict(row.assign(channel=None))
