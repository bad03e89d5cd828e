"""Score every invoice open on the as-of date with the model that holds the champion alias."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import flow, get_run_logger

from flows._common import current_flow_run_id
from models.features import load_scoring_frame
from models.predict import ScoringRun, score, write_predictions
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="score-invoices")
def score_invoices(settings: Settings, as_of_date: date, dbt_invocation_id: str) -> ScoringRun:
    """Returns the model reference used, for the lineage of everything downstream."""
    logger = get_run_logger()
    with connection(settings.warehouse) as con:
        frame = load_scoring_frame(con, as_of_date)
        preds = score(
            frame,
            tracking_uri=settings.mlflow_uri,
            model_name=settings.model_name,
            target_name=settings.target_name,  # for a model registered before it carried its target tag
        )
        write_predictions(
            con,
            preds,
            dbt_invocation_id=dbt_invocation_id,
            flow_run_id=current_flow_run_id(),
            scored_at=datetime.now(UTC).replace(tzinfo=None),
        )
    run = ScoringRun.of(preds, settings.model_name)
    logger.info(
        "scored %d open invoices with %s v%s (target %s)",
        run.scored,
        run.model_name,
        run.model_version,
        run.target_name,
    )
    return run
