"""Weekly retraining: every training snapshot rebuilt from raw, a candidate trained, promoted only if it earns it.

The daily run builds only the new feature dates and trains on them; once a week this flow rebuilds every snapshot
of ``ml.ml_invoice_features`` from the raw tables (so corrections of past data reach the training set) and trains a
challenger that takes ``@champion`` only through the same metric gate (``models.train.train_and_maybe_promote``).
Scores and sends are the daily run's: this flow changes which model the next daily run uses, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows._common import current_flow_run_id
from flows._notify_failure import notify_failure
from flows.build_features import build_features
from flows.train_model import train_model
from flows.validate_receivables import validate_receivables
from relance.freshness import today_in
from relance.lineage import git_sha, package_version
from relance.runs import daily_run_lock
from relance.settings import Settings, parse_as_of


@dataclass(frozen=True)
class RetrainResult:
    as_of_date: date
    dbt_invocation_id: str
    trained: bool
    model_version: str
    promoted: bool
    champion_version: str | None
    reason: str


@flow(name="retrain-model", on_failure=[notify_failure], on_crashed=[notify_failure])
def retrain_model(as_of_date: date | None = None, full_refresh_features: bool = True) -> RetrainResult:
    """Validate what is pending, rebuild the features (every snapshot with ``full_refresh_features``), train a
    challenger as of ``as_of_date`` (default: today in the configured time zone) and promote it if it beats the
    champion. Holds the data directory's lock: it never runs beside a daily run."""
    logger = get_run_logger()
    settings = Settings()
    settings.ensure_dirs()
    as_of = parse_as_of(as_of_date, today_in(settings.timezone))
    with daily_run_lock(settings.data, as_of_date=as_of, what="retrain-model flow"):
        validate_receivables(settings)  # the gate: nothing trains on a batch that failed its contract
        dbt_invocation = build_features(settings, as_of, stage="features", full_refresh=full_refresh_features)
        lineage = {
            "prefect.flow_run_id": current_flow_run_id() or "",
            "dbt.invocation_id": dbt_invocation,
            "git.sha": git_sha(),
            "relance.version": package_version(),
            "as_of_date": as_of.isoformat(),
            "retraining": "weekly" if full_refresh_features else "incremental",
        }
        trained = train_model(settings, as_of, lineage)
    # who holds @champion now: the candidate if promoted, the previous champion if it won, else the version that
    # scores (kept on an unchanged dataset, or the fallback when nothing could be trained)
    lost = trained.trained and not trained.promoted and trained.champion_version
    champion = trained.champion_version if lost else trained.model_version
    create_markdown_artifact(
        key="retraining",
        markdown=f"## Retraining as of {as_of}\n\n"
        + (
            f"Candidate **v{trained.model_version}** "
            + ("**promoted** to `@champion`" if trained.promoted else f"not promoted; `@champion` is v{champion}")
            if trained.trained
            else f"**Nothing trained**; v{trained.model_version} scores"
        )
        + f".\n\n{trained.reason}\n\nFeatures: dbt invocation `{dbt_invocation}`"
        + (" (every snapshot rebuilt from raw)." if full_refresh_features else "."),
    )
    logger.info(
        "retraining as of %s: v%s, promoted: %s (%s)", as_of, trained.model_version, trained.promoted, trained.reason
    )
    return RetrainResult(
        as_of_date=as_of,
        dbt_invocation_id=dbt_invocation,
        trained=trained.trained,
        model_version=trained.model_version,
        promoted=trained.promoted,
        champion_version=champion,
        reason=trained.reason,
    )
