"""Batch scoring with the registered ``@champion``; idempotent storage of predictions with their lineage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import duckdb
import pandas as pd

from models.contract import FEATURE_COLUMNS, PREDICTION
from models.registry import CHAMPION, load_model, resolve_alias
from relance.warehouse import OPS_DDL

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    PREDICTION,
    "model_name",
    "model_version",
    "model_run_id",
)
_PREDICTIONS_DDL = next(s for s in OPS_DDL if "ops.predictions" in s)


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

    rows = preds[list(PREDICTION_COLUMNS)].copy()
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date
    rows["model_version"] = rows["model_version"].astype(str)
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(_PREDICTIONS_DDL)
    con.register("_relance_preds", rows)
    try:  # one statement, so atomic on its own; also composes with a transaction the caller holds
        con.execute(
            f"""
INSERT INTO ops.predictions (invoice_id, as_of_date, {PREDICTION}, model_name, model_version, model_run_id,
                             dbt_invocation_id, scored_at, flow_run_id)
SELECT invoice_id, CAST(as_of_date AS DATE), {PREDICTION}, model_name, model_version, model_run_id,
       ?, CAST(? AS TIMESTAMP), ?
FROM _relance_preds
ON CONFLICT (invoice_id, as_of_date) DO UPDATE SET
  {PREDICTION} = excluded.{PREDICTION},
  model_name = excluded.model_name,
  model_version = excluded.model_version,
  model_run_id = excluded.model_run_id,
  dbt_invocation_id = excluded.dbt_invocation_id,
  scored_at = excluded.scored_at,
  flow_run_id = excluded.flow_run_id
""",
            [dbt_invocation_id, scored_at, flow_run_id],
        )
    finally:
        con.unregister("_relance_preds")
    logger.info("wrote %d predictions to ops.predictions", len(rows))
    return len(rows)
