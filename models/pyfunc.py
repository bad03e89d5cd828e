"""The serving wrapper: an MLflow ``PythonModel`` around the fitted LightGBM booster and its preprocessing.

Everything fitted on the training rows (the category levels of every categorical feature, the ordered feature
list, the booster) is stored as artifacts *inside* the logged model, so scoring never refits anything and a
model keeps working after the feature contract grows. The same ``FeatureSpec.transform`` turns a frame into
the booster's input on the training path and on the serving path; the lifecycle test checks both give the same
probabilities.

The model is logged as code ("models from code"): MLflow stores this file next to the artifacts and runs it
under its own module name when loading, so nothing is pickled and the logged model loads without the relance
package on the path (this file imports only mlflow, lightgbm, numpy and pandas; keep it that way). The booster
is saved in LightGBM's text format and the spec as JSON, both readable in the MLflow UI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

logger = logging.getLogger(__name__)

BOOSTER_ARTIFACT = "booster"
SPEC_ARTIFACT = "feature_spec"
BASELINE_ARTIFACT = "baseline_rule"
BOOSTER_FILE = "booster.txt"
SPEC_FILE = "feature_spec.json"
BASELINE_FILE = "baseline_rule.json"
BASELINE_KINDS: tuple[str, ...] = ("constant", "cust_late_share")


@dataclass(frozen=True)
class FeatureSpec:
    """The model's view of its input: ordered features and the category levels seen in training.

    Categorical values become the index of their level (as float); a level never seen in training, and a
    missing value, become NaN, which LightGBM routes as "missing". Numeric features are cast to float64.
    """

    numeric: tuple[str, ...]
    categorical_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    output_column: str = "p_late_30d"

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(self.categorical_levels)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        *,
        numeric: Iterable[str],
        categorical: Iterable[str],
        output_column: str = "p_late_30d",
    ) -> FeatureSpec:
        numeric, categorical = tuple(numeric), tuple(categorical)
        _require_columns(df, numeric + categorical)
        levels = {col: tuple(sorted({str(v) for v in df[col].dropna().unique()})) for col in categorical}
        return cls(numeric=numeric, categorical_levels=levels, output_column=output_column)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Frame -> float64 matrix in ``feature_columns`` order. Extra columns are ignored."""
        _require_columns(df, self.feature_columns)
        out = np.empty((len(df), len(self.feature_columns)), dtype=np.float64)
        for j, col in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(df[col], errors="raise").astype("float64").to_numpy(na_value=np.nan)
        offset = len(self.numeric)
        for j, (col, levels) in enumerate(self.categorical_levels.items()):
            codes = {level: float(i) for i, level in enumerate(levels)}
            values = df[col].astype(object)
            out[:, offset + j] = [np.nan if _is_missing(v) else codes.get(str(v), np.nan) for v in values.to_numpy()]
        return out

    def unseen_levels(self, df: pd.DataFrame) -> dict[str, list[str]]:
        """Categorical values in ``df`` that training never saw (scored as missing)."""
        unseen: dict[str, list[str]] = {}
        for col, levels in self.categorical_levels.items():
            known = set(levels)
            new = sorted({str(v) for v in df[col].dropna().unique()} - known)
            if new:
                unseen[col] = new
        return unseen

    def signature(self) -> ModelSignature:
        """Input: every feature, nullable. Output: one probability column."""
        inputs = Schema(
            [ColSpec("double", c, required=False) for c in self.numeric]
            + [ColSpec("string", c, required=False) for c in self.categorical]
        )
        outputs = Schema([ColSpec("double", self.output_column)])
        return ModelSignature(inputs=inputs, outputs=outputs)

    def to_dict(self) -> dict[str, Any]:
        # "categorical" keeps the column order: the booster's columns are positional, and the JSON file is
        # written with sorted keys, which would otherwise reorder the levels' mapping.
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "categorical_levels": {k: list(v) for k, v in self.categorical_levels.items()},
            "output_column": self.output_column,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        order = d.get("categorical", list(d["categorical_levels"]))
        return cls(
            numeric=tuple(d["numeric"]),
            categorical_levels={k: tuple(d["categorical_levels"][k]) for k in order},
            output_column=d["output_column"],
        )


@dataclass(frozen=True)
class BaselineRule:
    """A baseline a collections team already has, as a model: ``constant`` gives everyone ``base_rate``;
    ``cust_late_share`` gives the customer's as-of share of late invoices (a feature column, known on the
    as-of date), ``base_rate`` when the customer has no history. Both clipped to [0, 1].

    ``models.evaluate.baseline_scores`` measures the baselines with this same rule, and the registry serves it
    when nothing can be trained (``models.train``), so what was measured is what scores.
    """

    kind: str
    base_rate: float
    column: str = "cust_late_share"

    def __post_init__(self) -> None:
        if self.kind not in BASELINE_KINDS:
            raise ValueError(f"unknown baseline {self.kind!r}; expected one of {BASELINE_KINDS}")
        if not 0.0 <= self.base_rate <= 1.0:
            raise ValueError(f"baseline base_rate must be in [0, 1], got {self.base_rate}")

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        if self.kind == "constant":
            return np.full(len(df), float(self.base_rate), dtype=np.float64)
        _require_columns(df, (self.column,))
        share = pd.to_numeric(df[self.column], errors="coerce").astype("float64")
        return share.fillna(float(self.base_rate)).clip(0.0, 1.0).to_numpy(dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_rate": float(self.base_rate), "column": self.column}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineRule:
        return cls(kind=d["kind"], base_rate=float(d["base_rate"]), column=d.get("column", "cust_late_share"))


class PaymentDelayModel(mlflow.pyfunc.PythonModel):
    """``predict`` returns a DataFrame with one column, the probability of the positive class.

    Build it in memory with ``from_fitted`` (training path) or ``from_baseline`` (the fallback when nothing can
    be trained: a ``BaselineRule`` in place of the booster); MLflow builds it from the logged artifacts via
    ``load_context`` (serving path). Both run the same ``predict_proba``.
    """

    def __init__(self) -> None:
        self._booster: lgb.Booster | None = None
        self._spec: FeatureSpec | None = None
        self._baseline: BaselineRule | None = None

    @classmethod
    def from_fitted(cls, booster: lgb.Booster, spec: FeatureSpec) -> PaymentDelayModel:
        model = cls()
        model._booster, model._spec = booster, spec
        return model

    @classmethod
    def from_baseline(cls, rule: BaselineRule, spec: FeatureSpec) -> PaymentDelayModel:
        """A served baseline: same input contract (``spec``, for the signature) and output column."""
        model = cls()
        model._baseline, model._spec = rule, spec
        return model

    @property
    def baseline(self) -> BaselineRule | None:
        """The rule this model applies when it is a fallback baseline; None for a trained booster."""
        return self._baseline

    @property
    def spec(self) -> FeatureSpec:
        if self._spec is None:
            raise RuntimeError("PaymentDelayModel is not loaded: use from_fitted() or mlflow.pyfunc.load_model()")
        return self._spec

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            raise RuntimeError("PaymentDelayModel is not loaded: use from_fitted() or mlflow.pyfunc.load_model()")
        return self._booster

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        spec_text = Path(context.artifacts[SPEC_ARTIFACT]).read_text(encoding="utf-8")
        self._spec = FeatureSpec.from_dict(json.loads(spec_text))
        if BASELINE_ARTIFACT in context.artifacts:
            rule_text = Path(context.artifacts[BASELINE_ARTIFACT]).read_text(encoding="utf-8")
            self._baseline = BaselineRule.from_dict(json.loads(rule_text))
        else:
            self._booster = lgb.Booster(model_file=context.artifacts[BOOSTER_ARTIFACT])

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        if self._baseline is not None:
            return self._baseline.predict_proba(df)
        unseen = self.spec.unseen_levels(df)
        if unseen:
            logger.info("categorical levels unseen in training, scored as missing: %s", unseen)
        if len(df) == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(self.spec.transform(df)), dtype=np.float64)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        return pd.DataFrame({self.spec.output_column: self.predict_proba(model_input)}, index=model_input.index)

    def save_artifacts(self, directory: Path | str) -> dict[str, str]:
        """Write booster and spec under ``directory``; returns the ``artifacts`` mapping for log_model."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        spec_path = directory / SPEC_FILE
        spec_path.write_text(json.dumps(self.spec.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        if self._baseline is not None:
            rule_path = directory / BASELINE_FILE
            rule_path.write_text(json.dumps(self._baseline.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
            return {BASELINE_ARTIFACT: str(rule_path), SPEC_ARTIFACT: str(spec_path)}
        booster_path = directory / BOOSTER_FILE
        self.booster.save_model(str(booster_path))
        return {BOOSTER_ARTIFACT: str(booster_path), SPEC_ARTIFACT: str(spec_path)}


def _is_missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _require_columns(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"input frame lacks feature column(s) {missing}; it has {list(df.columns)}")


# Models from code: when MLflow executes this file to load a logged model it runs under a generated module
# name and picks up the object given to set_model(). Imported normally (models.pyfunc) it registers nothing.
if __name__ != "models.pyfunc":
    mlflow.models.set_model(PaymentDelayModel())
