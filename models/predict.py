"""Batch scoring with the registered ``@champion``; idempotent storage of predictions with their lineage."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from models.contract import FEATURE_COLUMNS, PREDICTION
from models.registry import CHAMPION, load_model, resolve_alias
from relance import ops

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    PREDICTION,
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

    @classmethod
    def of(cls, preds: pd.DataFrame, model_name: str) -> ScoringRun:
        """From the frame :func:`score` returns (one model version per frame; empty: no version)."""
        if preds.empty:
            return cls(model_name, "", "", 0)
        return cls(model_name, str(preds["model_version"].iloc[0]), str(preds["model_run_id"].iloc[0]), len(preds))


def score(scoring_df: pd.DataFrame, *, tracking_uri: str, model_name: str, alias: str = CHAMPION) -> pd.DataFrame:
    """Probabilities for every row of ``scoring_df`` from ``model_name@alias``, with the model's identity.

    The alias is resolved once and the pinned version (``models:/<name>/<version>``) is loaded, so the
    version stored with each prediction is the one that produced it even if the alias moves meanwhile.
    Raises ``models.registry.NoModelForAliasError`` if no version holds the alias.
    """
    missing = [c for c in ("invoice_id", "as_of_date", *FEATURE_COLUMNS) if c not in scoring_df.columns]
    if missing:
        raise KeyError(f"scoring frame lacks column(s) {missing}; load it with models.features.load_scoring_frame")
    ref = resolve_alias(tracking_uri, model_name, alias)
    model = load_model(ref, tracking_uri)
    features = scoring_df[list(FEATURE_COLUMNS)].reset_index(drop=True)
    p = model.predict(features)[PREDICTION].to_numpy(dtype="float64") if len(features) else []
    out = pd.DataFrame(
        {
            "invoice_id": scoring_df["invoice_id"].to_numpy(),
            "as_of_date": pd.to_datetime(scoring_df["as_of_date"]).dt.date.to_numpy(),
            PREDICTION: p,
            "model_name": model_name,
            "model_version": ref.version,
            "model_run_id": ref.run_id,
        },
        columns=list(PREDICTION_COLUMNS),
    )
    logger.info("scored %d rows with %s v%s (%s)", len(out), model_name, ref.version, ref.alias_uri)
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
    if preds[PREDICTION].isna().any():
        raise ValueError(f"{int(preds[PREDICTION].isna().sum())} prediction(s) are missing")
    if scored_at.tzinfo is not None:
        scored_at = scored_at.astimezone(UTC).replace(tzinfo=None)

    ops.ensure_ops(con)
    rows = preds.rename(columns={PREDICTION: "p_late_30d"})
    written = ops.upsert_predictions(
        con, rows, dbt_invocation_id=dbt_invocation_id, flow_run_id=flow_run_id, scored_at=scored_at
    )
    logger.info("wrote %d predictions to ops.predictions", written)
    return written
