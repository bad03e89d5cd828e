"""Read the dbt-built ML relations into frames: training rows (features + known label) and scoring rows.

Python computes no feature: it selects the contract columns of ``ml.ml_invoice_features`` as dbt built them.
The label join happens in DuckDB, on (invoice_id, as_of_date). From the label relation come the labels only:
``is_late`` (under the settings' target, named in ``target_name``), ``days_late`` (the regression label, null
unless the invoice was settled on or before the run's as-of date) and the dates the split purges on. They are
never features: the model reads ``FEATURE_COLUMNS`` only.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date

import duckdb
import pandas as pd

from models.contract import (
    CATEGORICAL_FEATURES,
    CONTEXT_COLUMNS,
    DAYS_LATE,
    FEATURE_COLUMNS,
    FEATURES_RELATION,
    KEY_COLUMNS,
    LABEL_COLUMNS,
    LABELS_RELATION,
    LINEAGE_COLUMNS,
    NUMERIC_FEATURES,
    TARGET,
)

logger = logging.getLogger(__name__)

DBT_HINT = "run `relance dbt build` (or `relance run daily`) for this as-of date first"


class FeatureDataError(RuntimeError):
    """The ML relations are missing, incomplete or hold no rows for the requested date."""


def _existing_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """The columns of ``relation`` in order; empty when it does not exist."""
    schema, name = relation.split(".", 1)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def _relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    columns = _existing_columns(con, relation)
    if not columns:
        raise FeatureDataError(f"relation {relation} does not exist in the warehouse; {DBT_HINT}")
    return columns


def check_contract(con: duckdb.DuckDBPyConnection, relation: str, required: tuple[str, ...]) -> None:
    present = set(_relation_columns(con, relation))
    missing = [c for c in required if c not in present]
    if missing:
        raise FeatureDataError(
            f"relation {relation} lacks contract column(s) {missing} (see models/contract.py); {DBT_HINT}"
        )


def feature_select(alias: str) -> str:
    """Keys, context and features, typed as the model expects (numbers DOUBLE, categories VARCHAR)."""
    cols = [f"{alias}.{c}" for c in KEY_COLUMNS]
    cols[KEY_COLUMNS.index("as_of_date")] = f"CAST({alias}.as_of_date AS DATE) AS as_of_date"
    cols += [f"{alias}.{c}" for c in CONTEXT_COLUMNS]
    cols += [f"CAST({alias}.{c} AS DOUBLE) AS {c}" for c in NUMERIC_FEATURES]
    cols += [f"CAST({alias}.{c} AS VARCHAR) AS {c}" for c in CATEGORICAL_FEATURES]
    return ",\n  ".join(cols)


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df["as_of_date"] = pd.to_datetime(df["as_of_date"])
    for column in ("settled_date", "label_observed_date"):
        if column in df.columns:
            df[column] = pd.to_datetime(df[column])
    return df


def load_training_frame(
    con: duckdb.DuckDBPyConnection, as_of_date: date, *, horizon_days: int | None = None
) -> pd.DataFrame:
    """Labelled rows strictly before ``as_of_date``: contract features + keys + context + ``is_late`` +
    ``days_late`` (null unless settled by ``as_of_date``) + ``target_name`` + ``label_observed_date`` and
    ``settled_date`` (not features: the split purges on them).

    Only rows whose label was observable by ``as_of_date`` are returned (``label_observed_date <= as_of_date``,
    checked here as well as through ``is_label_known``, so a labels table built for a later date cannot leak
    outcomes the run could not have observed). When ``horizon_days`` is given the minimal window
    ``as_of_date_row + horizon_days <= as_of_date`` is checked too.
    """
    check_contract(con, FEATURES_RELATION, KEY_COLUMNS + CONTEXT_COLUMNS + FEATURE_COLUMNS)
    check_contract(con, LABELS_RELATION, LABEL_COLUMNS)
    horizon_filter = ""
    params: list[object] = [as_of_date, as_of_date, as_of_date]
    if horizon_days is not None:
        horizon_filter = "\n  AND CAST(f.as_of_date AS DATE) + CAST(? AS INTEGER) <= CAST(? AS DATE)"
        params += [int(horizon_days), as_of_date]
    sql = f"""
SELECT
  {feature_select("f")},
  CAST(l.{TARGET} AS INTEGER) AS {TARGET},
  CAST(CASE WHEN CAST(l.settled_date AS DATE) <= CAST(? AS DATE) THEN l.{DAYS_LATE} END AS DOUBLE) AS {DAYS_LATE},
  CAST(l.target_name AS VARCHAR) AS target_name,
  CAST(l.label_observed_date AS DATE) AS label_observed_date,
  CAST(l.settled_date AS DATE) AS settled_date
FROM {FEATURES_RELATION} AS f
JOIN {LABELS_RELATION} AS l
  ON l.invoice_id = f.invoice_id AND CAST(l.as_of_date AS DATE) = CAST(f.as_of_date AS DATE)
WHERE l.is_label_known
  AND l.{TARGET} IS NOT NULL
  AND CAST(l.label_observed_date AS DATE) <= CAST(? AS DATE)
  AND CAST(f.as_of_date AS DATE) < CAST(? AS DATE){horizon_filter}
ORDER BY f.as_of_date, f.invoice_id
"""
    df = con.execute(sql, params).df()
    if df.empty:
        raise FeatureDataError(
            f"no labelled rows in {FEATURES_RELATION} x {LABELS_RELATION} before {as_of_date} "
            f"(is_label_known and as_of_date < {as_of_date}); {DBT_HINT} with enough history"
        )
    df = _normalise(df)
    logger.info(
        "training frame: %d rows, %d snapshots (%s .. %s), positive share %.3f",
        len(df),
        df["as_of_date"].nunique(),
        df["as_of_date"].min().date(),
        df["as_of_date"].max().date(),
        df[TARGET].mean(),
    )
    return df


def features_rebuild_reason(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why ``ml_invoice_features`` must be rebuilt from scratch (``dbt --full-refresh``), or None.

    The relation is incremental: dates built earlier are kept. When its columns are not the contract's (a
    release added, removed or renamed a feature), old dates would lack the new columns, so dbt refuses the
    incremental run (``on_schema_change='fail'``) and the build flow rebuilds every date instead.
    """
    present = _existing_columns(con, FEATURES_RELATION)
    if not present:
        return None  # first build: dbt builds every date anyway
    expected = [*KEY_COLUMNS, *CONTEXT_COLUMNS, *FEATURE_COLUMNS, *LINEAGE_COLUMNS]
    if present != expected:
        added = [c for c in expected if c not in present]
        removed = [c for c in present if c not in expected]
        return (
            f"{FEATURES_RELATION} columns differ from models/contract.py (added {added or 'none'}, "
            f"removed {removed or 'none'}{', reordered' if not added and not removed else ''})"
        )
    return None


def load_scoring_frame(con: duckdb.DuckDBPyConnection, as_of_date: date) -> pd.DataFrame:
    """Feature rows of the snapshot ``as_of_date`` (keys + context + features; no label column)."""
    check_contract(con, FEATURES_RELATION, KEY_COLUMNS + CONTEXT_COLUMNS + FEATURE_COLUMNS)
    sql = f"""
SELECT
  {feature_select("f")}
FROM {FEATURES_RELATION} AS f
WHERE CAST(f.as_of_date AS DATE) = CAST(? AS DATE)
ORDER BY f.invoice_id
"""
    df = con.execute(sql, [as_of_date]).df()
    if df.empty:
        raise FeatureDataError(f"{FEATURES_RELATION} has no rows for as_of_date {as_of_date}; {DBT_HINT}")
    logger.info("scoring frame for %s: %d invoices", as_of_date, len(df))
    return _normalise(df)


def dataset_hash(df: pd.DataFrame) -> str:
    """sha256 over column names, dtypes and values (row order matters; loaders sort deterministically)."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()
