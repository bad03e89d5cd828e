"""Channel-response model: P(an invoice is paid within 14 days of a contact) for each channel and tone.

The next best action (``relance.reminders.nba``) needs, for every customer and every channel it may use today,
the probability that the contact is followed by payment: expected cash is the stakes times that probability. This
module learns it from ``serving.reminder_response_history`` (one row per past contact whose 14-day outcome is known
as of the run's date; nothing after ``sent_at`` but the label) with a small LightGBM classifier refit daily.

What the fit does, and why:

* **Pure**: it reads nothing but the frame it is given (no clock, no database), so the same history always gives
  the same model for a seed, and the daily flow decides which rows are known as of which date.
* **Too little history is not an error**: fewer than ``min_rows`` labelled contacts, a single outcome, or a
  holdout that cannot be measured -> ``None`` and one log line saying why; the engine then follows the scenario's
  default channel. A channel with fewer than ``min_per_channel`` contacts is *not offered* (its rows are left out
  and ``ResponseModel.channels`` does not list it): a handful of SMS cannot tell whether SMS works.
* **Honest evaluation, by time**: the last ``HOLDOUT_SHARE`` of contacts by ``sent_at`` is the holdout. Training
  rows are purged of contacts whose 14-day window reaches into the holdout (their label was not known yet on the
  cutoff date). AUC, log loss and Brier on the holdout are reported beside the baseline a collections team
  already has, each channel's mean payment rate in the training part (``baseline_*``). Only then is the model
  refit on every row, with the number of boosting rounds chosen on the training part.
* **Features** (``RESPONSE_FEATURES``): the action (channel, tone) and the situation at send time (days overdue,
  log amount, customer type, sector, size band, earlier contacts on the invoice), plus the channel crossed with the
  tone and with each segment column (``INTERACTIONS``) so that one split can say "a call, in construction": that
  is what lets a call win on a late construction invoice while an SMS wins with a consumer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

logger = logging.getLogger(__name__)

LABEL = "is_paid_within_14d"
SENT_AT = "sent_at"
#: Model inputs, as columns of ``serving.reminder_response_history`` (and of the candidates to score).
RESPONSE_FEATURES: tuple[str, ...] = (
    "channel",
    "tone",
    "days_overdue_at_send",
    "amount",
    "customer_type",
    "sector_section",
    "size_band",
    "prior_contacts",
)
CATEGORICAL: tuple[str, ...] = ("channel", "tone", "customer_type", "sector_section", "size_band")
#: Derived categoricals: the channel crossed with the tone and with each segment column. A tree that splits on
#: ``channel_customer_type`` learns "SMS for consumers" in one split, where splitting on the channel and then the
#: type needs two levels of a tree that may spend them elsewhere (tree ensembles tend to under-use the action).
INTERACTIONS: dict[str, tuple[str, str]] = {
    "channel_tone": ("channel", "tone"),
    "channel_customer_type": ("channel", "customer_type"),
    "channel_sector": ("channel", "sector_section"),
    "channel_size": ("channel", "size_band"),
}
NUMERIC: tuple[str, ...] = ("days_overdue_at_send", "log_amount", "prior_contacts")
MODEL_COLUMNS: tuple[str, ...] = (*NUMERIC, *CATEGORICAL, *INTERACTIONS)

HOLDOUT_SHARE = 0.2  # last share of contacts by sent_at: the reported metrics
LABEL_HORIZON = pd.Timedelta(days=14)  # a contact's label is known 14 days after sent_at
EPS = 1e-6

# Small trees, a moderate rate, early stopping on the training part's own last slice: a few hundred to a few
# hundred thousand contacts fit in seconds, every day. One thread: the daily refit shares the machine.
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "min_data_per_group": 20,  # LightGBM's default (100) hides the channel x segment cells of a young ledger
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 8,  # channel (4) and tone (4) split one level against the rest
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
MAX_ROUNDS = 400
MIN_ROUNDS = 20
DEFAULT_ROUNDS = 100  # when the training part cannot spare a slice for early stopping
EARLY_STOPPING_ROUNDS = 30


def _text(values: pd.Series) -> pd.Series:
    """Categorical values as stripped strings; missing and blank stay missing."""
    text = [str(v).strip() if pd.notna(v) else "" for v in values.astype(object)]
    return pd.Series([t or None for t in text], index=values.index, dtype=object)


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The model columns from raw history/candidate columns (the amount on a log scale, channel|tone)."""
    missing = [c for c in RESPONSE_FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(f"response model input lacks column(s) {missing}; needs {list(RESPONSE_FEATURES)}")
    out = pd.DataFrame(index=frame.index)
    out["days_overdue_at_send"] = pd.to_numeric(frame["days_overdue_at_send"], errors="coerce").astype("float64")
    amount = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    out["log_amount"] = np.log1p(amount.clip(lower=0.0))
    out["prior_contacts"] = pd.to_numeric(frame["prior_contacts"], errors="coerce").astype("float64")
    for col in CATEGORICAL:
        out[col] = _text(frame[col])
    out["channel"] = pd.Series(
        [None if v is None else v.lower() for v in out["channel"]], index=out.index, dtype=object
    )
    for name, (left, right) in INTERACTIONS.items():
        out[name] = pd.Series(
            [None if a is None else f"{a}|{b or ''}" for a, b in zip(out[left], out[right], strict=True)],
            index=out.index,
            dtype=object,
        )
    return out


def _levels(prepared: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    return {c: tuple(sorted({v for v in prepared[c] if v is not None})) for c in (*CATEGORICAL, *INTERACTIONS)}


def _matrix(prepared: pd.DataFrame, levels: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Float matrix in ``MODEL_COLUMNS`` order; an unseen or missing level is NaN (LightGBM's "missing")."""
    out = np.empty((len(prepared), len(MODEL_COLUMNS)), dtype=np.float64)
    for j, col in enumerate(MODEL_COLUMNS):
        if col in levels:
            codes = pd.Categorical(prepared[col], categories=list(levels[col])).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = prepared[col].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _dataset(x: np.ndarray, y: np.ndarray, levels: dict[str, tuple[str, ...]]) -> lgb.Dataset:
    return lgb.Dataset(
        x,
        label=y,
        feature_name=list(MODEL_COLUMNS),
        categorical_feature=[c for c in MODEL_COLUMNS if c in levels],
        params={"verbosity": -1, "min_data_per_group": PARAMS["min_data_per_group"]},
        free_raw_data=False,
    )


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
    }


def _time_cut(sent_at: pd.Series, share: float) -> pd.Timestamp:
    """The first ``sent_at`` of the last ``share`` of rows (whole timestamps: ties stay on one side)."""
    ordered = np.sort(sent_at.to_numpy())
    idx = min(len(ordered) - 1, max(1, int(math.floor(len(ordered) * (1.0 - share)))))
    return pd.Timestamp(ordered[idx])


def _split(sent_at: pd.Series, share: float) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """(train mask, holdout mask, cutoff): holdout = sent_at >= cutoff; train = contacts whose 14-day label was
    known on the cutoff (sent_at + 14 days <= cutoff), so nothing the holdout period revealed trains the model."""
    cutoff = _time_cut(sent_at, share)
    holdout = (sent_at >= cutoff).to_numpy()
    train = (sent_at + LABEL_HORIZON <= cutoff).to_numpy()
    return train, holdout, cutoff


def _both_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < int(y.sum()) < len(y)


def _choose_rounds(
    x: np.ndarray, y: np.ndarray, sent_at: pd.Series, levels: dict[str, tuple[str, ...]], params: dict[str, Any]
) -> int:
    """Boosting rounds by early stopping on the last slice (by time, purged) of the rows given."""
    early, late, _ = _split(sent_at, HOLDOUT_SHARE)
    if early.sum() < 50 or late.sum() < 20 or not _both_classes(y[early]) or not _both_classes(y[late]):
        return DEFAULT_ROUNDS
    booster = lgb.train(
        params,
        _dataset(x[early], y[early], levels),
        num_boost_round=MAX_ROUNDS,
        valid_sets=[_dataset(x[late], y[late], levels)],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    return max(MIN_ROUNDS, int(booster.best_iteration or MAX_ROUNDS))


@dataclass(frozen=True)
class ResponseModel:
    """A fitted channel-response model. ``predict`` gives P(paid within 14 days) for candidate contacts.

    ``metrics``: on the time holdout, ``auc``, ``log_loss``, ``brier`` of the model (trained on the earlier,
    purged rows) and ``baseline_auc``, ``baseline_log_loss``, ``baseline_brier`` of each channel's training-part
    payment rate, plus ``n_holdout``, ``n_train_eval`` and the holdout's ``base_rate``. ``n_train`` counts the
    rows of the served model (every usable row). ``channels``: the only channels it scores.
    """

    booster: lgb.Booster = field(repr=False, compare=False)
    levels: dict[str, tuple[str, ...]]
    n_train: int
    metrics: dict[str, float]
    channels: tuple[str, ...]
    n_rounds: int = 0
    seed: int = 0
    window: dict[str, str] = field(default_factory=dict)  # train_start, cutoff, holdout_end (sent_at, UTC)
    channel_rates: dict[str, float] = field(default_factory=dict)  # every row's mean rate by channel (for reports)
    dropped_channels: dict[str, int] = field(default_factory=dict)  # channel -> rows, below min_per_channel
    # holdout rows (index: position in ``history``): sent_at, label, model p, baseline p (audits, leakage tests)
    holdout: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def predict(self, candidates: pd.DataFrame) -> np.ndarray:
        """P(paid within 14 days) for each row of ``candidates`` (``RESPONSE_FEATURES`` columns; others ignored).

        Raises ValueError for a channel the model was not trained on (missing, or not in ``channels``): the caller
        must not read a made-up probability for an action the history cannot judge."""
        prepared = _prepare(candidates)
        channel = prepared["channel"]
        bad = sorted({str(v) for v in channel if v not in self.channels})
        if bad:
            raise ValueError(f"response model cannot score channel(s) {bad}: it was trained on {list(self.channels)}")
        if prepared.empty:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(_matrix(prepared, self.levels)), dtype=np.float64)

    @property
    def beats_baseline(self) -> bool:
        """True when the holdout log loss is below the per-channel-rate baseline's (the model adds information)."""
        return self.metrics.get("log_loss", math.inf) < self.metrics.get("baseline_log_loss", -math.inf)


def _usable_history(history: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in (*RESPONSE_FEATURES, SENT_AT, LABEL) if c not in history.columns]
    if missing:
        raise ValueError(f"response history lacks column(s) {missing}")
    frame = history.reset_index(drop=True)
    label = frame[LABEL].astype(object).where(frame[LABEL].notna(), None)
    sent_at = pd.to_datetime(frame[SENT_AT], utc=True, errors="coerce")
    channel = pd.Series([_lower(v) for v in _text(frame["channel"])], index=frame.index)
    keep = label.notna() & sent_at.notna() & channel.notna()
    frame = frame.loc[keep].copy()
    frame[SENT_AT] = sent_at[keep]
    frame["channel"] = channel[keep]
    frame[LABEL] = label[keep].map(bool).astype(np.int64)
    return frame


def fit_response_model(
    history: pd.DataFrame,
    *,
    min_rows: int = 500,
    min_per_channel: int = 30,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> ResponseModel | None:
    """Fit the channel-response model on ``history`` (columns of ``serving.reminder_response_history``).

    Returns None, with an INFO log line saying why, when the history is too thin to fit and honestly evaluate a
    model: fewer than ``min_rows`` labelled contacts on channels with at least ``min_per_channel`` contacts each,
    or a training part / holdout holding a single outcome. Deterministic for a given ``seed``.
    """
    frame = _usable_history(history)
    counts = frame["channel"].value_counts()
    offered = tuple(sorted(ch for ch, n in counts.items() if n >= min_per_channel))
    dropped = {str(ch): int(n) for ch, n in counts.items() if n < min_per_channel}
    if dropped:
        logger.info("response model: channel(s) %s not offered (fewer than %d contacts each)", dropped, min_per_channel)
    frame = frame.loc[frame["channel"].isin(offered)].sort_values(SENT_AT, kind="stable")
    if len(frame) < min_rows or not offered:
        logger.info(
            "response model not fitted: %d usable contacts (need %d on channels with >= %d contacts each); "
            "the scenarios' default channels apply",
            len(frame),
            min_rows,
            min_per_channel,
        )
        return None
    y = frame[LABEL].to_numpy(dtype=np.int64)
    if not _both_classes(y):
        logger.info("response model not fitted: every one of %d contacts has the same outcome", len(frame))
        return None

    lgb_params = {**PARAMS, **(params or {}), "seed": seed}
    sent_at = frame[SENT_AT]
    prepared = _prepare(frame)
    train, test, cutoff = _split(sent_at, HOLDOUT_SHARE)
    if not _both_classes(y[train]) or not _both_classes(y[test]) or train.sum() < 50:
        logger.info(
            "response model not fitted: the time split at %s leaves %d training contacts (%d paid) and %d holdout "
            "contacts (%d paid): cannot train and evaluate honestly",
            cutoff,
            int(train.sum()),
            int(y[train].sum()),
            int(test.sum()),
            int(y[test].sum()),
        )
        return None

    # evaluation: levels, rounds and booster from the training part only
    train_levels = _levels(prepared.loc[train])
    x_train = _matrix(prepared.loc[train], train_levels)
    rounds = _choose_rounds(x_train, y[train], sent_at[train], train_levels, lgb_params)
    booster = lgb.train(lgb_params, _dataset(x_train, y[train], train_levels), num_boost_round=rounds)
    p_test = booster.predict(_matrix(prepared.loc[test], train_levels))
    channel_rate = frame.loc[train].groupby("channel")[LABEL].mean()
    p_base = frame.loc[test, "channel"].map(channel_rate).fillna(float(y[train].mean())).to_numpy(dtype=np.float64)
    metrics = _metrics(y[test], p_test)
    metrics.update({f"baseline_{k}": v for k, v in _metrics(y[test], p_base).items()})
    metrics.update(
        {"n_holdout": float(test.sum()), "n_train_eval": float(train.sum()), "base_rate": float(y[test].mean())}
    )
    holdout = pd.DataFrame(
        {SENT_AT: sent_at[test].to_numpy(), LABEL: y[test], "p": p_test, "p_baseline": p_base},
        index=frame.index[test],
    )

    # served model: every row, the rounds chosen above
    levels = _levels(prepared)
    final = lgb.train(lgb_params, _dataset(_matrix(prepared, levels), y, levels), num_boost_round=rounds)
    model = ResponseModel(
        booster=final,
        levels=levels,
        n_train=len(frame),
        metrics=metrics,
        channels=offered,
        n_rounds=rounds,
        seed=seed,
        window={
            "train_start": str(sent_at.min()),
            "cutoff": str(cutoff),
            "holdout_end": str(sent_at.max()),
        },
        channel_rates={str(k): float(v) for k, v in frame.groupby("channel")[LABEL].mean().items()},
        dropped_channels=dropped,
        holdout=holdout,
    )
    logger.info(
        "response model fitted on %d contacts (channels %s, %d rounds): holdout auc %.3f vs channel-rate baseline "
        "%.3f, log loss %.4f vs %.4f",
        len(frame),
        list(offered),
        rounds,
        metrics["auc"],
        metrics["baseline_auc"],
        metrics["log_loss"],
        metrics["baseline_log_loss"],
    )
    return model


def channel_probabilities(
    model: ResponseModel, rows: pd.DataFrame, *, channels: Sequence[str] | None = None
) -> pd.DataFrame:
    """P(paid within 14 days) of each row of ``rows`` under each channel (columns ``p_<channel>``, same index):
    the row's own ``channel`` is replaced in turn, everything else (tone included) kept."""
    channels = tuple(channels or model.channels)
    out = pd.DataFrame(index=rows.index)
    for channel in channels:
        out[f"p_{channel}"] = model.predict(rows.assign(channel=channel))
    return out


def uplift_table(
    model: ResponseModel,
    frame: pd.DataFrame,
    *,
    by: Sequence[str] = ("customer_type", "sector_section"),
    tone: str | None = None,
) -> pd.DataFrame:
    """Per segment of ``frame`` (e.g. the response history, or today's candidates): the mean predicted P(paid
    within 14 days) for each channel the model scores, the best channel and its lift over e-mail (or over the
    worst channel when e-mail is not scored). ``tone`` overrides every row's tone (e.g. 'cordial')."""
    rows = frame if tone is None else frame.assign(tone=tone)
    probs = channel_probabilities(model, rows)
    keys = [rows[c].astype(object).where(rows[c].notna(), "(none)") for c in by]
    table = probs.groupby(keys, dropna=False).mean()
    table.insert(0, "n", probs.groupby(keys, dropna=False).size())
    p_cols = [f"p_{c}" for c in model.channels]
    table["best_channel"] = table[p_cols].idxmax(axis=1).str.removeprefix("p_")
    reference = table["p_email"] if "p_email" in table else table[p_cols].min(axis=1)
    table["lift_best"] = table[p_cols].max(axis=1) - reference
    return table.reset_index()
