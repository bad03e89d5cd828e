"""MLflow model registry: resolve aliases, load models, and the champion promotion gate.

Promotion is by alias only (``@challenger`` for every new candidate, ``@champion`` for the model that scores);
registry stages are deprecated and never used. Every decision is recorded as tags on the model version and on
its training run, so "why is this the champion?" is answered in the MLflow UI.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


class NoModelForAliasError(LookupError):
    """The registered model, or the alias on it, does not exist."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str
    version: str
    run_id: str | None
    uri: str  # pinned to the version the alias pointed to when resolved: models:/<name>/<version>

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str


@contextlib.contextmanager
def mlflow_uris(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (runs, log_model, load_model) at ``tracking_uri``, then restore."""
    previous_tracking = mlflow.get_tracking_uri()
    previous_registry = mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)


def client_for(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def find_alias(tracking_uri: str, model_name: str, alias: str) -> ModelRef | None:
    """The version behind ``model_name@alias``, or None if the model or the alias does not exist."""
    client = client_for(tracking_uri)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if alias not in (registered.aliases or {}):
        return None
    mv = client.get_model_version_by_alias(model_name, alias)
    return ModelRef(
        name=model_name,
        alias=alias,
        version=str(mv.version),
        run_id=mv.run_id,
        uri=f"models:/{model_name}/{mv.version}",
    )


def resolve_alias(tracking_uri: str, model_name: str, alias: str) -> ModelRef:
    """Like ``find_alias`` but raises ``NoModelForAliasError`` with a clear message when nothing is there."""
    ref = find_alias(tracking_uri, model_name, alias)
    if ref is None:
        raise NoModelForAliasError(
            f"no model version has alias '{alias}' on registered model '{model_name}' at {tracking_uri}; "
            f"train one first (a candidate becomes '{CHAMPION}' only after it passes the promotion gate)"
        )
    return ref


def load_model(ref: ModelRef, tracking_uri: str) -> mlflow.pyfunc.PyFuncModel:
    with mlflow_uris(tracking_uri):
        return mlflow.pyfunc.load_model(ref.uri)


def promote_if_better(
    client: MlflowClient,
    model_name: str,
    candidate_version: str | int,
    candidate_auc: float,
    baseline_auc: float,
    champion_auc: float | None,
    min_gain: float,
) -> PromotionDecision:
    """Give ``candidate_version`` the ``champion`` alias if it earns it; record the decision either way.

    Gate: ``candidate_auc - baseline_auc > min_gain`` (beats the best baseline by more than ``min_gain``) and
    ``candidate_auc >= champion_auc`` when a champion exists (AUCs measured on the same test rows).
    """
    version = str(candidate_version)
    previous = client.get_registered_model(model_name).aliases.get(CHAMPION)
    gain = candidate_auc - baseline_auc
    if not math.isfinite(candidate_auc):
        decision = PromotionDecision(False, f"candidate AUC is not a number ({candidate_auc})")
    elif not gain > min_gain:
        decision = PromotionDecision(
            False,
            f"candidate AUC {candidate_auc:.4f} does not beat the best baseline {baseline_auc:.4f} "
            f"by more than {min_gain:.4f} (gain {gain:+.4f})",
        )
    elif champion_auc is not None and candidate_auc < champion_auc:
        decision = PromotionDecision(
            False,
            f"candidate AUC {candidate_auc:.4f} is worse than champion v{previous} AUC {champion_auc:.4f} "
            f"on the same test rows",
        )
    else:
        against = f"champion v{previous} AUC {champion_auc:.4f}" if champion_auc is not None else "no previous champion"
        client.set_registered_model_alias(model_name, CHAMPION, version)
        decision = PromotionDecision(
            True,
            f"candidate AUC {candidate_auc:.4f} beats the best baseline {baseline_auc:.4f} by {gain:+.4f} "
            f"(> {min_gain:.4f}); {against}",
        )

    tags = {
        "promotion.promoted": str(decision.promoted).lower(),
        "promotion.reason": decision.reason,
        "promotion.candidate_auc": f"{candidate_auc:.6f}",
        "promotion.baseline_auc": f"{baseline_auc:.6f}",
        "promotion.champion_auc": "" if champion_auc is None else f"{champion_auc:.6f}",
        "promotion.min_gain": str(min_gain),
        "promotion.previous_champion_version": "" if previous is None else str(previous),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    run_id = client.get_model_version(model_name, version).run_id
    if run_id:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    log = logger.info if decision.promoted else logger.warning
    log(
        "%s v%s %s: %s",
        model_name,
        version,
        "promoted to champion" if decision.promoted else "not promoted",
        decision.reason,
    )
    return decision
