"""MLflow model registry: resolve aliases, load models, and the champion promotion gate.

Promotion is by alias only (``@challenger`` for every new candidate, ``@champion`` for the model that scores);
registry stages are deprecated and never used. The gate compares predictions, not two numbers: the candidate, the
best baseline and the champion are scored on the same test rows and compared by a paired bootstrap over customers
(``models.gate``), so a candidate replaces the champion only when it is better beyond noise. Every decision is
recorded as tags on the model version and on its training run (and its numbers as ``gate_*`` metrics on the run),
so "why is this the champion?" is answered in the MLflow UI. ``rollback`` gives ``@champion`` back to the version
that held it before (the chain of ``promotion.previous_champion_version`` tags) and records who did it and why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.gate import PairedComparison, decide, paired_bootstrap

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_N_BOOT = 1000
PREVIOUS_CHAMPION_TAG = "promotion.previous_champion_version"


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
    vs_baseline: PairedComparison | None = None  # candidate - best baseline, paired bootstrap on the test rows
    vs_champion: PairedComparison | None = None  # candidate - champion, same rows, same resamples
    champion_version: str | None = None  # the champion the candidate was compared with (None: there was none)


class RollbackRefused(ValueError):
    """``rollback`` cannot move ``@champion``: the message says why and what to do."""


@dataclass(frozen=True)
class RollbackResult:
    model_name: str
    from_version: str
    to_version: str
    at: str  # ISO 8601, UTC
    user: str
    reason: str


@dataclass(frozen=True)
class VersionSummary:
    """One registered model version as a data scientist wants to see it in a list."""

    version: str
    aliases: tuple[str, ...]
    kind: str  # tag relance.kind (``baseline`` for a fallback), ``-`` when the version does not say
    target: str  # tag relance.target_name, ``-`` when absent
    test_auc: float | None  # run metric test_auc
    promoted: bool | None  # tag promotion.promoted; None when no decision was recorded
    reason: str  # promotion.reason in full, numbers included
    decision: str  # its verdict without the numbers ("promoted: better than the champion beyond noise")
    rollback: str | None  # the latest rollback that moved @champion from or to this version
    created_at: datetime
    run_id: str | None


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


def _fmt(x: float) -> str:
    return f"{x:.6f}"


def _gate_numbers(name: str, c: PairedComparison) -> tuple[dict[str, str], dict[str, float]]:
    """Tags (``promotion.<metric>_diff_vs_<name>``...) and run metrics (``gate_<metric>_diff_vs_<name>``...)."""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for d in (c.auc, c.log_loss, c.brier):
        key = f"{d.metric}_diff_vs_{name}"
        tags[f"promotion.{key}"] = _fmt(d.diff)
        tags[f"promotion.{key}_interval"] = f"[{_fmt(d.lo)}, {_fmt(d.hi)}]"
        tags[f"promotion.{d.metric}_win_share_vs_{name}"] = f"{d.win_share:.4f}"
        metrics.update(
            {
                f"gate_{key}": d.diff,
                f"gate_{key}_lo": d.lo,
                f"gate_{key}_hi": d.hi,
                f"gate_{d.metric}_win_share_vs_{name}": d.win_share,
            }
        )
    return tags, metrics


def promote_if_better(
    client: MlflowClient,
    model_name: str,
    candidate_version: str | int,
    *,
    y: Any,
    p_candidate: Any,
    p_best_baseline: Any,
    p_champion: Any | None,
    groups: Any,
    min_gain: float,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    baseline_name: str = "",
) -> PromotionDecision:
    """Give ``candidate_version`` the ``champion`` alias if it earns it; record the decision either way.

    All probabilities are for the same test rows ``y``; ``groups`` holds each row's customer id (the bootstrap
    resamples customers, keeping their rows together); ``p_champion`` is None exactly when no version holds
    ``@champion``. Promotion needs both:

    (a) the candidate beats the best baseline: AUC gain ``> min_gain`` and the lower bound of the gain's
        bootstrap interval ``> 0``;
    (b) when a champion exists, the lower bound of the candidate - champion AUC difference ``> 0`` (better
        beyond noise: a tie or a copy of the champion is not promoted).

    The reason in words and the numbers (differences, intervals, win shares, n_boot, seed) become ``promotion.*``
    tags on the version and its run, and ``gate_*`` metrics on the run. Candidate probabilities that are not
    finite are refused (recorded, not raised); inputs of different lengths, or ``p_champion`` that does not match
    the registry's ``@champion``, are errors of the caller and raise ``ValueError``.
    """
    version = str(candidate_version)
    held = client.get_registered_model(model_name).aliases.get(CHAMPION)
    previous = None if held is None else str(held)
    if (p_champion is None) != (previous is None):
        raise ValueError(
            f"{model_name}@{CHAMPION} is "
            + (
                f"v{previous} but no champion predictions were given"
                if previous
                else "unset but champion predictions were given"
            )
            + ": the gate compares the candidate with the current champion on the same rows"
        )
    if previous == version:
        raise ValueError(f"{model_name} v{version} already holds @{CHAMPION}: nothing to decide")
    p_cand = np.asarray(p_candidate, dtype=np.float64)
    vs_baseline = vs_champion = None
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    bad = int((~np.isfinite(p_cand)).sum())
    if bad:
        promoted, reason = (
            False,
            f"{bad} candidate probabilit(ies) are NaN or infinite: the candidate cannot be compared",
        )
    else:
        vs_baseline = paired_bootstrap(y, p_cand, p_best_baseline, groups, n_boot=n_boot, seed=seed)
        if p_champion is not None:
            vs_champion = paired_bootstrap(y, p_cand, p_champion, groups, n_boot=n_boot, seed=seed)
        promoted, reason = decide(
            vs_baseline, vs_champion, champion_version=previous, baseline_name=baseline_name, min_gain=min_gain
        )
        for name, comparison in (("baseline", vs_baseline), ("champion", vs_champion)):
            if comparison is not None:
                t, m = _gate_numbers(name, comparison)
                tags.update(t)
                metrics.update(m)
        metrics.update({"gate_n_boot": float(n_boot), "gate_n_customers": float(vs_baseline.n_groups)})
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    decision = PromotionDecision(
        promoted=promoted,
        reason=("promoted: " if promoted else "not promoted: ") + reason,
        vs_baseline=vs_baseline,
        vs_champion=vs_champion,
        champion_version=previous,
    )
    metrics["gate_promoted"] = float(promoted)

    base = vs_baseline.auc if vs_baseline else None
    champ = vs_champion.auc if vs_champion else None
    tags = {
        "promotion.promoted": str(promoted).lower(),
        "promotion.reason": decision.reason,
        "promotion.decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion.candidate_auc": "" if base is None else _fmt(base.candidate),
        "promotion.baseline": baseline_name,
        "promotion.baseline_auc": "" if base is None else _fmt(base.reference),
        "promotion.champion_auc": "" if champ is None else _fmt(champ.reference),
        "promotion.min_gain": str(min_gain),
        PREVIOUS_CHAMPION_TAG: previous or "",
        "promotion.n_boot": str(n_boot),
        "promotion.seed": str(seed),
        "promotion.n_customers": "" if vs_baseline is None else str(vs_baseline.n_groups),
        "promotion.n_rows": "" if vs_baseline is None else str(vs_baseline.n_rows),
        **tags,
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    run_id = client.get_model_version(model_name, version).run_id
    if run_id:  # one write for the run's tags and metrics
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now_ms, 0) for key, value in metrics.items()],
            tags=[RunTag(key, value) for key, value in tags.items()],
        )
    log = logger.info if promoted else logger.warning
    log("%s v%s %s", model_name, version, decision.reason)
    return decision


def _existing_version(client: MlflowClient, model_name: str, version: str, what: str) -> ModelVersion:
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RollbackRefused(
                f"{what} v{version} of {model_name!r} no longer exists in the registry (deleted): "
                f"pass --to VERSION of another former champion (`relance model list`)"
            ) from None
        raise


def rollback(
    tracking_uri: str,
    model_name: str,
    to_version: str | int | None = None,
    *,
    reason: str = "",
    user: str = "unknown",
) -> RollbackResult:
    """Give ``@champion`` back to the version that held it before the current one, or to ``to_version``.

    Without ``to_version`` the target is the current champion's ``promotion.previous_champion_version`` (written
    at promotion), so rolling back twice walks the chain back. ``to_version`` must be a version that once held
    ``@champion`` (``promotion.promoted=true``): a rollback never promotes a model the gate refused. Raises
    ``RollbackRefused`` when there is no champion, nothing before it, or the target is missing or deleted.
    Records ``rollback.*`` tags (from, to, at, user, reason, role) on both versions.
    """
    client = client_for(tracking_uri)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RollbackRefused(f"no registered model {model_name!r}: nothing to roll back") from None
        raise
    current = (registered.aliases or {}).get(CHAMPION)
    if current is None:
        raise RollbackRefused(f"no version of {model_name!r} holds @{CHAMPION}: nothing to roll back")
    current = str(current)
    current_mv = client.get_model_version(model_name, current)
    if to_version is None:
        target = current_mv.tags.get(PREVIOUS_CHAMPION_TAG, "")
        if not target:
            how = current_mv.tags.get("promotion.reason", "")
            raise RollbackRefused(
                f"champion v{current} of {model_name!r} has no previous champion to roll back to (it was the first)"
                + (f"; it became champion because: {how}" if how else "")
            )
        target_mv = _existing_version(client, model_name, target, f"the previous champion of v{current},")
    else:
        target = str(to_version)
        target_mv = _existing_version(client, model_name, target, "the requested")
        if target_mv.tags.get("promotion.promoted") != "true":
            why = target_mv.tags.get("promotion.reason", "no promotion decision recorded")
            raise RollbackRefused(
                f"v{target} of {model_name!r} never held @{CHAMPION} ({why}): a rollback only restores a former "
                "champion"
            )
    if target == current:
        raise RollbackRefused(f"v{target} of {model_name!r} already holds @{CHAMPION}")

    result = RollbackResult(
        model_name=model_name,
        from_version=current,
        to_version=str(target_mv.version),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        user=user,
        reason=reason.strip() or "(no reason given)",
    )
    client.set_registered_model_alias(model_name, CHAMPION, result.to_version)
    tags = {
        "rollback.from_version": result.from_version,
        "rollback.to_version": result.to_version,
        "rollback.at": result.at,
        "rollback.user": result.user,
        "rollback.reason": result.reason,
    }
    for version, role in ((result.from_version, "rolled back"), (result.to_version, "restored")):
        for key, value in {**tags, "rollback.role": role}.items():
            client.set_model_version_tag(model_name, version, key, value)
    logger.warning(
        "%s @%s rolled back from v%s to v%s by %s: %s",
        model_name,
        CHAMPION,
        result.from_version,
        result.to_version,
        result.user,
        result.reason,
    )
    return result


def verdict(reason: str, limit: int = 100) -> str:
    """A decision's words without its numbers: "promoted: <why>: <numbers>" -> "promoted: <why>"."""
    if reason.startswith(("promoted: ", "not promoted: ")):
        reason = ": ".join(reason.split(": ")[:2])
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def list_versions(tracking_uri: str, model_name: str) -> list[VersionSummary]:
    """Every version of ``model_name``, newest first, with its aliases, kind, target, test AUC and why it was (not)
    promoted. Empty when the model does not exist."""
    client = client_for(tracking_uri)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    summaries = []
    for mv in client.search_model_versions(f"name = '{model_name}'"):
        run = None
        if mv.run_id:
            with contextlib.suppress(MlflowException):
                run = client.get_run(mv.run_id)
        tags = {**(run.data.tags if run else {}), **(mv.tags or {})}
        reason = tags.get("promotion.reason", "")
        rolled = None
        if "rollback.role" in tags:
            rolled = (
                f"{tags['rollback.role']} (v{tags.get('rollback.from_version')} -> v{tags.get('rollback.to_version')}) "
                f"by {tags.get('rollback.user')} at {tags.get('rollback.at')}: {tags.get('rollback.reason')}"
            )
        promoted = tags.get("promotion.promoted")
        summaries.append(
            VersionSummary(
                version=str(mv.version),
                aliases=tuple(sorted(aliases.get(str(mv.version), []))),
                kind=tags.get("relance.kind") or "-",
                target=tags.get("relance.target_name") or "-",
                test_auc=run.data.metrics.get("test_auc") if run else None,
                promoted=None if promoted is None else promoted == "true",
                reason=reason,
                decision=verdict(reason),
                rollback=rolled,
                created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
                run_id=mv.run_id,
            )
        )
    return sorted(summaries, key=lambda s: int(s.version), reverse=True)
