"""Batch scoring with the registered ``@champion``; idempotent storage of predictions with their lineage.

A prediction row holds what the model returns (``models.contract.OUTPUT_COLUMNS``: ``p_late``, the days-late
quantiles, the reason codes), the target ``p_late`` estimates (``target_name``) and the model that produced it.
Models registered before the output grew return one column, ``p_late_30d``: it is read as ``p_late``, and their
quantiles and reasons are null.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd

from models.contract import FEATURE_COLUMNS, OUTPUT_COLUMNS, PREDICTION, QUANTILE_COLUMNS, REASON_COLUMNS
from models.registry import CHAMPION, ModelRef, client_for, load_model, resolve_alias
from relance import ops

logger = logging.getLogger(__name__)

#: The output column of models registered before ``p_late`` (read as ``p_late``).
LEGACY_PREDICTION = "p_late_30d"
#: The model version tag that names the target a model estimates (set at registration).
TARGET_NAME_TAG = "relance.target_name"

PREDICTION_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    *OUTPUT_COLUMNS,
    "target_name",
    "model_name",
    "model_version",
    "model_run_id",
)


@dataclass(frozen=True)
class ScoringRun:
    """Which model scored how many invoices: the lineage of everything downstream of scoring."""

    model_name: str
    model_version: str
    model_run_id: str
    scored: int
    target_name: str | None = None

    @classmethod
    def of(cls, preds: pd.DataFrame, model_name: str) -> ScoringRun:
        """From the frame :func:`score` returns (one model version per frame; empty: no version)."""
        if preds.empty:
            return cls(model_name, "", "", 0)
        target = preds["target_name"].iloc[0] if "target_name" in preds.columns else None
        return cls(
            model_name,
            str(preds["model_version"].iloc[0]),
            str(preds["model_run_id"].iloc[0]),
            len(preds),
            None if target is None or pd.isna(target) else str(target),
        )


def model_outputs(raw: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """The model's output as :data:`~models.contract.OUTPUT_COLUMNS`, whatever its version returned. Pure.

    ``p_late`` (or the legacy ``p_late_30d``) is required; quantiles a model does not return are NaN, reasons
    None. Columns beyond the contract are dropped.

    Raises:
        ValueError: no probability column, or not one row per input row.
    """
    if len(raw) != n_rows:
        raise ValueError(f"the model returned {len(raw)} row(s) for {n_rows} input row(s)")
    if n_rows == 0 and raw.columns.empty:  # nothing was scored (the model is not called on an empty frame)
        raw = pd.DataFrame({PREDICTION: pd.Series(dtype="float64")})
    if PREDICTION in raw.columns:
        p = raw[PREDICTION]
    elif LEGACY_PREDICTION in raw.columns:
        p = raw[LEGACY_PREDICTION]
    else:
        raise ValueError(
            f"the model returned columns {list(raw.columns)}: none is {PREDICTION!r} (or the legacy "
            f"{LEGACY_PREDICTION!r}); is it a relance payment-delay model?"
        )
    out = pd.DataFrame({PREDICTION: pd.to_numeric(p, errors="raise").to_numpy(dtype="float64")})
    for column in QUANTILE_COLUMNS:
        values = raw[column] if column in raw.columns else None
        out[column] = np.nan if values is None else pd.to_numeric(values, errors="raise").to_numpy(dtype="float64")
    for column in REASON_COLUMNS:
        values = raw[column].to_numpy(dtype=object) if column in raw.columns else [None] * n_rows
        # object dtype: a missing reason stays None (a string column would make it NaN)
        out[column] = pd.Series([None if v is None or pd.isna(v) else str(v) for v in values], dtype=object)
    return out[list(OUTPUT_COLUMNS)]


def model_target_name(ref: ModelRef, tracking_uri: str) -> str | None:
    """The ``relance.target_name`` tag of the model version ``ref`` pins, if it has one."""
    version = client_for(tracking_uri).get_model_version(ref.name, ref.version)
    value = (version.tags or {}).get(TARGET_NAME_TAG)
    return value or None


def score(
    scoring_df: pd.DataFrame,
    *,
    tracking_uri: str,
    model_name: str,
    alias: str = CHAMPION,
    target_name: str | None = None,
) -> pd.DataFrame:
    """Every output of ``model_name@alias`` for every row of ``scoring_df`` (:data:`PREDICTION_COLUMNS`), with
    the target it estimates and the model's identity.

    The alias is resolved once and the pinned version (``models:/<name>/<version>``) is loaded, so the
    version stored with each prediction is the one that produced it even if the alias moves meanwhile.
    ``target_name`` is the model version's ``relance.target_name`` tag when it has one (a warning is logged if
    the caller's ``target_name`` differs: the model's is what its probabilities mean), else the caller's
    ``target_name`` (the settings' target, for a model registered before the tag), else null.
    Raises ``models.registry.NoModelForAliasError`` if no version holds the alias.
    """
    missing = [c for c in ("invoice_id", "as_of_date", *FEATURE_COLUMNS) if c not in scoring_df.columns]
    if missing:
        raise KeyError(f"scoring frame lacks column(s) {missing}; load it with models.features.load_scoring_frame")
    ref = resolve_alias(tracking_uri, model_name, alias)
    model = load_model(ref, tracking_uri)
    tagged = model_target_name(ref, tracking_uri)
    if tagged and target_name and tagged != target_name:
        logger.warning(
            "%s v%s estimates %s, the settings name %s: predictions are stored as %s",
            model_name,
            ref.version,
            tagged,
            target_name,
            tagged,
        )
    target = tagged or target_name
    if target is None:
        logger.warning(
            "%s v%s names no target (no %s tag): target_name is null", model_name, ref.version, TARGET_NAME_TAG
        )
    features = scoring_df[list(FEATURE_COLUMNS)].reset_index(drop=True)
    outputs = model_outputs(model.predict(features) if len(features) else pd.DataFrame(), len(features))
    out = pd.DataFrame(
        {
            "invoice_id": scoring_df["invoice_id"].to_numpy(),
            "as_of_date": pd.to_datetime(scoring_df["as_of_date"]).dt.date.to_numpy(),
            **{c: outputs[c].to_numpy() for c in (PREDICTION, *QUANTILE_COLUMNS)},
            **{c: pd.Series(outputs[c].to_numpy(), dtype=object) for c in REASON_COLUMNS},
            "target_name": target,
            "model_name": model_name,
            "model_version": ref.version,
            "model_run_id": ref.run_id,
        },
        columns=list(PREDICTION_COLUMNS),
    )
    logger.info("scored %d rows with %s v%s (%s), target %s", len(out), model_name, ref.version, ref.alias_uri, target)
    return out


def write_predictions(
    con: duckdb.DuckDBPyConnection,
    preds: pd.DataFrame,
    *,
    dbt_invocation_id: str | None,
    flow_run_id: str | None,
    scored_at: datetime,
) -> int:
    """Upsert ``preds`` into ``ops.predictions`` keyed by (invoice_id, as_of_date); returns rows written.

    Re-scoring a date replaces the earlier rows for the same invoices (never duplicates). ``scored_at`` is
    stored as naive UTC.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
    if missing:
        raise KeyError(f"predictions lack column(s) {missing}; produce them with models.predict.score")
    dupes = preds.duplicated(["invoice_id", "as_of_date"])
    if dupes.any():
        first = preds.loc[dupes, ["invoice_id", "as_of_date"]].head(3).to_dict("records")
        raise ValueError(f"{int(dupes.sum())} duplicate (invoice_id, as_of_date) key(s) in predictions, e.g. {first}")
    p = pd.to_numeric(preds[PREDICTION], errors="coerce")
    if p.isna().any():
        raise ValueError(f"{int(p.isna().sum())} prediction(s) are missing")
    outside = (p < 0) | (p > 1)
    if outside.any():
        first = preds.loc[outside, ["invoice_id", PREDICTION]].head(3).to_dict("records")
        raise ValueError(f"{int(outside.sum())} {PREDICTION} value(s) outside [0, 1], e.g. {first}")
    lo, mid, hi = (pd.to_numeric(preds[c], errors="coerce") for c in QUANTILE_COLUMNS)
    crossed = (lo > mid) | (mid > hi)  # comparisons with NaN are False: missing quantiles pass
    if crossed.any():
        first = preds.loc[crossed, ["invoice_id", *QUANTILE_COLUMNS]].head(3).to_dict("records")
        raise ValueError(f"{int(crossed.sum())} prediction(s) with days-late quantiles out of order, e.g. {first}")
    if scored_at.tzinfo is not None:
        scored_at = scored_at.astimezone(UTC).replace(tzinfo=None)

    ops.ensure_ops(con)
    written = ops.upsert_predictions(
        con, preds, dbt_invocation_id=dbt_invocation_id, flow_run_id=flow_run_id, scored_at=scored_at
    )
    logger.info("wrote %d predictions to ops.predictions", written)
    return written
