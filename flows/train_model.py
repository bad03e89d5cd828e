"""Train a payment-delay candidate on past as-of snapshots, log it to MLflow, promote it if it earns it."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows._lineage import flow_lineage
from models.contract import FEATURES_RELATION, LABELS_RELATION
from models.registry import client_for
from models.train import FALLBACK_BASELINE, TrainResult, train_and_maybe_promote
from relance import openlineage as ol
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="train-model")
def train_model(settings: Settings, as_of_date: date, lineage: dict[str, str]) -> TrainResult:
    logger = get_run_logger()
    features = (ol.table(settings, FEATURES_RELATION), ol.table(settings, LABELS_RELATION))
    with flow_lineage(settings, "train-model", as_of_date=as_of_date, inputs=features) as run_lineage:
        run_lineage.set_ids(
            dbt_invocation_id=lineage.get("dbt.invocation_id"),
            git_sha=lineage.get("git.sha"),
            raw_batch_ids=[b for b in lineage.get("raw.batch_ids", "").split(",") if b],
        )
        with connection(settings.warehouse) as con:  # read-write: in-process dbt keeps the file open
            result = train_and_maybe_promote(
                con,
                as_of_date,
                tracking_uri=settings.mlflow_uri,
                artifact_root=settings.mlflow_artifacts,
                experiment_name=settings.model_name,
                model_name=settings.model_name,
                horizon_days=settings.horizon_days,
                min_gain=settings.min_auc_gain,
                # the MLflow run names this lineage run (openlineage.run_id = this flow run) and the reverse
                lineage={**lineage, **run_lineage.mlflow_tags()},
            )
        record_lineage(run_lineage, settings, result)
    create_table_artifact(key="model-comparison", table=comparison_rows(result), description=describe(result))
    notice = fallback_markdown(result, as_of_date)
    if notice is not None:  # its own artifact, so "nothing was trained" is seen without opening the table
        create_markdown_artifact(key="model-not-trained", markdown=notice, description=describe(result))
    if result.trained:
        logger.info("model version %s: %s", result.model_version, result.reason)
    else:
        logger.warning("model version %s (%s): %s", result.model_version, result.fallback, result.reason)
    return result


def record_lineage(lineage: ol.LineageRun, settings: Settings, result: TrainResult) -> None:
    """The model version this run registered as its output (the champion it kept, as an input), with its MLflow
    run and version."""
    if result.model_version:
        model = ol.mlflow_model(settings, result.model_name, result.model_version)
        if _registered_by(settings, result, lineage.run_id):
            lineage.add_outputs(model)
        else:
            lineage.add_inputs(model)
    lineage.set_ids(mlflow_run_id=result.run_id, model_name=result.model_name, model_version=result.model_version)
    lineage.count(trained=int(result.trained), promoted=int(result.promoted))


def _registered_by(settings: Settings, result: TrainResult, run_id: str) -> bool:
    """Whether the MLflow run behind ``result`` was logged by lineage run ``run_id`` (its ``openlineage.run_id``
    tag), rather than kept from an earlier day."""
    if not result.run_id:
        return False
    try:
        tags = client_for(settings.mlflow_uri).get_run(result.run_id).data.tags
    except Exception:  # MLflow unreachable now: say what the result says
        return result.trained
    return tags.get("openlineage.run_id") == run_id


def fallback_markdown(result: TrainResult, as_of_date: date) -> str | None:
    """The ``model-not-trained`` artifact when the data could not train a model (None when it did): what scores
    instead, why, and what to do about it. Pure."""
    if result.trained:
        return None
    if result.fallback == FALLBACK_BASELINE:
        serving = (
            f"The best baseline was registered as version {result.model_version} and now holds `@champion`: "
            "today's probabilities come from it (no quantiles; one reason at most)."
        )
    else:
        serving = (
            f"The champion, version {result.model_version}, was kept: today's probabilities come from a model "
            "trained on earlier data."
        )
    return "\n".join(
        [
            f"## No model was trained on {as_of_date.isoformat()}",
            "",
            f"**Why:** {result.reason}",
            "",
            f"**What scores instead:** {serving}",
            "",
            "Reminders are still planned and the finance report opens with the same notice. A model is trained "
            "again on the first run whose labelled snapshots hold enough rows of both classes over at least two "
            "as-of dates.",
        ]
    )


def comparison_rows(result: TrainResult) -> list[dict[str, object]]:
    """The ``model-comparison`` table: candidate, baselines and champion on the same test rows; when nothing
    was trained, first a row saying which model scores instead and why."""
    rows: list[dict[str, object]] = []
    if result.trained:
        rows.append({"model": "candidate", **result.metrics})
    elif result.fallback == FALLBACK_BASELINE:
        rows.append({"model": f"baseline v{result.model_version} (now champion)", "note": result.reason})
    else:
        rows.append({"model": f"champion v{result.model_version} (kept)", "note": result.reason})
    rows += [{"model": name, **m} for name, m in result.baseline_metrics.items()]
    if result.champion_metrics:
        rows.append({"model": "previous champion", **result.champion_metrics})
    return rows


def describe(result: TrainResult) -> str:
    if result.trained:
        return f"Test-period metrics, version {result.model_version}: {result.reason}"
    return f"**Nothing trained**, version {result.model_version} scores: {result.reason}"
