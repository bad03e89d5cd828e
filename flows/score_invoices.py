"""Score every invoice open on the as-of date with the model that holds the champion alias."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import flow, get_run_logger

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from models.contract import FEATURES_RELATION
from models.features import load_scoring_frame
from models.predict import ScoringRun, score, write_predictions
from relance import openlineage as ol
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="score-invoices")
def score_invoices(settings: Settings, as_of_date: date, dbt_invocation_id: str) -> ScoringRun:
    """Returns the model reference used, for the lineage of everything downstream."""
    logger = get_run_logger()
    with flow_lineage(
        settings,
        "score-invoices",
        as_of_date=as_of_date,
        inputs=[ol.table(settings, FEATURES_RELATION)],
        ids={"dbt_invocation_id": dbt_invocation_id},
    ) as lineage:
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
        record_lineage(lineage, settings, run)
    logger.info(
        "scored %d open invoices with %s v%s (target %s)",
        run.scored,
        run.model_name,
        run.model_version,
        run.target_name,
    )
    return run


def record_lineage(lineage: ol.LineageRun, settings: Settings, run: ScoringRun) -> None:
    """The model version that scored -> ``ops.predictions`` (rows written), with the MLflow run and version."""
    if run.model_version:
        lineage.add_inputs(ol.mlflow_model(settings, run.model_name, run.model_version))
    lineage.add_outputs(ol.table(settings, "ops.predictions", rows=run.scored))
    lineage.set_ids(mlflow_run_id=run.model_run_id, model_name=run.model_name, model_version=run.model_version)
    lineage.count(invoices_scored=run.scored)
