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
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

logger = logging.getLogger(__name__)

BOOSTER_ARTIFACT = "booster"
SPEC_ARTIFACT = "feature_spec"
BASELINE_ARTIFACT = "baseline_rule"
BOOSTER_FILE = "booster.txt"
SPEC_FILE = "feature_spec.json"
BASELINE_FILE = "baseline_rule.json"
BASELINE_KINDS: tuple[str, ...] = ("constant", "cust_late_share")
CALIBRATION_ARTIFACT = "calibration"
CALIBRATION_FILE = "calibration.json"
REASONS_ARTIFACT = "reasons"
REASONS_FILE = "reasons.json"
# Kept equal to models.contract (QUANTILES, QUANTILE_COLUMNS, REASON_COLUMNS) by a unit test: this file imports
# nothing from relance, so a logged model loads anywhere.
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
QUANTILE_COLUMNS: tuple[str, ...] = ("days_late_p10", "days_late_p50", "days_late_p90")
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")
FLAG_SLACK = 4  # extra candidates per row, for flags that are off and give no reason
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class FeatureSpec:
    """The model's view of its input: ordered features and the category levels seen in training.

    Categorical values become the index of their level (as float); a level never seen in training, and a
    missing value, become NaN, which LightGBM routes as "missing". Numeric features are cast to float64.
    """

    numeric: tuple[str, ...]
    categorical_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    output_column: str = "p_late"

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
        output_column: str = "p_late",
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
            values = df[col]
            text = values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
            codes = pd.Categorical(text, categories=list(levels)).codes.astype(np.float64)
            codes[codes < 0] = np.nan  # missing, or a level never seen in training
            out[:, offset + j] = codes
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
        """Input: every feature, nullable. Output: the probability, the days-late quantiles and the reason codes.
        Param ``reasons`` (default true): false skips the reason codes (TreeSHAP costs several predictions)."""
        inputs = Schema(
            [ColSpec("double", c, required=False) for c in self.numeric]
            + [ColSpec("string", c, required=False) for c in self.categorical]
        )
        outputs = Schema(
            [ColSpec("double", self.output_column)]
            + [ColSpec("double", c, required=False) for c in QUANTILE_COLUMNS]
            + [ColSpec("string", c, required=False) for c in REASON_COLUMNS]
        )
        params = ParamSchema([ParamSpec("reasons", "boolean", True)])
        return ModelSignature(inputs=inputs, outputs=outputs, params=params)

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


@dataclass(frozen=True)
class Calibration:
    """What turns the booster's raw scores into calibrated outputs, fitted on a time-held-out slice.

    ``method``: ``platt`` (a logistic curve on the raw log-odds: ``a``, ``b``), ``stacked`` (Platt with the
    customer's as-of late share beside the booster: ``a`` x logit(raw) + ``c`` x logit(share) + ``d`` x
    no-history + ``b``; on small ledgers a few hundred rows cannot teach trees what a customer's own record says,
    and the held-out slice decides how much each is worth), ``isotonic`` (a monotone step function: ``x`` raw
    probabilities, ``y`` calibrated ones, interpolated) or ``none``. ``interval_adjust_days``: the split-conformal
    widening of the p10..p90 interval (conformalised quantile regression), so about 80 % of held-out invoices fell
    inside it.
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    prior_column: str = ""
    prior_fill: float = 0.5
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    interval_adjust_days: float = 0.0
    slice_rows: int = 0
    slice_start: str = ""

    def prior_terms(self, df: pd.DataFrame | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """logit(share) with missing shares filled by ``prior_fill``, and the no-history flag."""
        if df is None or not self.prior_column or self.prior_column not in df.columns:
            return np.full(n, logit(np.array([self.prior_fill]))[0]), np.ones(n)
        share = pd.to_numeric(df[self.prior_column], errors="coerce").to_numpy(dtype=np.float64)
        missing = np.isnan(share)
        filled = np.where(missing, self.prior_fill, share)
        return logit(np.clip(filled, 0.01, 0.99)), missing.astype(np.float64)

    def apply(self, p_raw: np.ndarray, df: pd.DataFrame | None = None) -> np.ndarray:
        p_raw = np.asarray(p_raw, dtype=np.float64)
        if self.method in ("platt", "stacked"):
            z = self.a * logit(p_raw) + self.b
            if self.method == "stacked":
                prior, no_history = self.prior_terms(df, len(p_raw))
                z = z + self.c * prior + self.d * no_history
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "isotonic":
            return np.interp(p_raw, np.asarray(self.x), np.asarray(self.y))
        return p_raw

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "d": self.d,
            "prior_column": self.prior_column,
            "prior_fill": self.prior_fill,
            "x": list(self.x),
            "y": list(self.y),
            "interval_adjust_days": self.interval_adjust_days,
            "slice_rows": self.slice_rows,
            "slice_start": self.slice_start,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(
            method=d.get("method", "none"),
            a=float(d.get("a", 1.0)),
            b=float(d.get("b", 0.0)),
            c=float(d.get("c", 0.0)),
            d=float(d.get("d", 0.0)),
            prior_column=str(d.get("prior_column", "")),
            prior_fill=float(d.get("prior_fill", 0.5)),
            x=tuple(float(v) for v in d.get("x", ())),
            y=tuple(float(v) for v in d.get("y", ())),
            interval_adjust_days=float(d.get("interval_adjust_days", 0.0)),
            slice_rows=int(d.get("slice_rows", 0)),
            slice_start=str(d.get("slice_start", "")),
        )


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [1e-6, 1 - 1e-6] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def format_reason(phrase: dict[str, Any] | None, feature: str, value: object) -> str:
    """One reason in plain words: the feature's phrase with its value (``models/reasons.py``)."""
    if phrase is None:
        return f"{feature} = {value}"
    if _is_missing(value):
        return str(phrase.get("missing") or phrase["text"].replace("{value}", "unknown").replace("{abs}", "unknown"))
    fmt = phrase.get("format", "text")
    template = phrase["text"]
    if fmt == "text":
        return template.format(value=value, abs=value)
    v = float(value)
    if v < 0 and "negative" in phrase:
        template = phrase["negative"]
    if fmt == "pct":
        text, absolute = f"{v:.0%}", f"{abs(v):.0%}"
    elif fmt == "amount":
        text, absolute = f"{v:,.0f}", f"{abs(v):,.0f}"
    elif fmt == "month" and 1 <= int(v) <= 12:
        text = absolute = MONTHS[int(v) - 1]
    else:  # days, count, flag
        text, absolute = f"{v:.0f}", f"{abs(v):.0f}"
    return template.format(value=text, abs=absolute)


class PaymentDelayModel(mlflow.pyfunc.PythonModel):
    """``predict`` returns one row per input row: ``p_late`` (calibrated), ``days_late_p10/p50/p90`` (days late =
    settled - due, conformal interval), ``reason_1..3`` (the three features pushing hardest towards late, TreeSHAP).

    Built in memory with ``from_fitted`` (training path) or ``from_baseline`` (the fallback when nothing can be
    trained: a ``BaselineRule`` in place of the booster, no quantiles); MLflow builds it from the logged artifacts
    via ``load_context`` (serving path). Both run the same code.
    """

    def __init__(self) -> None:
        self._booster: lgb.Booster | None = None
        self._spec: FeatureSpec | None = None
        self._baseline: BaselineRule | None = None
        self._quantiles: dict[str, lgb.Booster] = {}
        self._calibration = Calibration()
        self._phrases: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_fitted(
        cls,
        booster: lgb.Booster,
        spec: FeatureSpec,
        *,
        quantile_boosters: dict[str, lgb.Booster] | None = None,
        calibration: Calibration | None = None,
        phrases: dict[str, dict[str, Any]] | None = None,
    ) -> PaymentDelayModel:
        model = cls()
        model._booster, model._spec = booster, spec
        model._quantiles = dict(quantile_boosters or {})
        model._calibration = calibration or Calibration()
        model._phrases = dict(phrases or {})
        return model

    @classmethod
    def from_baseline(
        cls, rule: BaselineRule, spec: FeatureSpec, *, phrases: dict[str, dict[str, Any]] | None = None
    ) -> PaymentDelayModel:
        model = cls()
        model._baseline, model._spec = rule, spec
        model._phrases = dict(phrases or {})
        return model

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            raise RuntimeError("model has no booster (a baseline model, or not loaded)")
        return self._booster

    @property
    def spec(self) -> FeatureSpec:
        if self._spec is None:
            raise RuntimeError("model has no feature spec (not loaded)")
        return self._spec

    @property
    def baseline(self) -> BaselineRule | None:
        return self._baseline

    @property
    def calibration(self) -> Calibration:
        return self._calibration

    @property
    def quantile_boosters(self) -> dict[str, lgb.Booster]:
        return dict(self._quantiles)

    def load_context(self, context: Any) -> None:
        artifacts = context.artifacts
        self._spec = FeatureSpec.from_dict(json.loads(Path(artifacts[SPEC_ARTIFACT]).read_text(encoding="utf-8")))
        if REASONS_ARTIFACT in artifacts:
            self._phrases = json.loads(Path(artifacts[REASONS_ARTIFACT]).read_text(encoding="utf-8"))
        if BASELINE_ARTIFACT in artifacts:
            rule_text = Path(artifacts[BASELINE_ARTIFACT]).read_text(encoding="utf-8")
            self._baseline = BaselineRule.from_dict(json.loads(rule_text))
            return
        self._booster = lgb.Booster(model_file=artifacts[BOOSTER_ARTIFACT])
        if CALIBRATION_ARTIFACT in artifacts:
            text = Path(artifacts[CALIBRATION_ARTIFACT]).read_text(encoding="utf-8")
            self._calibration = Calibration.from_dict(json.loads(text))
        self._quantiles = {
            column: lgb.Booster(model_file=artifacts[column]) for column in QUANTILE_COLUMNS if column in artifacts
        }

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:
        """The booster's uncalibrated probability (what the calibration is fitted on)."""
        if len(df) == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(self.spec.transform(df)), dtype=np.float64)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the target's positive class (late)."""
        if self._baseline is not None:
            return self._baseline.predict_proba(df)
        unseen = self.spec.unseen_levels(df)
        if unseen:
            logger.info("categorical levels unseen in training, scored as missing: %s", unseen)
        return self._calibration.apply(self.predict_raw(df), df)

    def predict_frame(self, df: pd.DataFrame, *, reasons: bool = True) -> pd.DataFrame:
        """Every output column for ``df`` (index kept): probability, quantiles, reason codes."""
        out = pd.DataFrame(index=df.index)
        if self._baseline is not None:
            out[self.spec.output_column] = self._baseline.predict_proba(df)
            for column in QUANTILE_COLUMNS:
                out[column] = np.nan
            reason = None
            if self._baseline.kind == "cust_late_share" and len(df):
                values = pd.to_numeric(df[self._baseline.column], errors="coerce")
                phrase = self._phrases.get(self._baseline.column)
                reason = [format_reason(phrase, self._baseline.column, v) if reasons else None for v in values]
            out[REASON_COLUMNS[0]] = reason
            for column in REASON_COLUMNS[1:]:
                out[column] = None
            return out
        x = self.spec.transform(df) if len(df) else np.empty((0, len(self.spec.feature_columns)))
        raw = np.asarray(self.booster.predict(x), dtype=np.float64) if len(df) else np.empty(0)
        out[self.spec.output_column] = self._calibration.apply(raw, df)
        quantiles = self._predict_quantiles(df, x)
        for column in QUANTILE_COLUMNS:
            out[column] = quantiles.get(column, np.full(len(df), np.nan))
        codes = self.reason_codes(df, x) if reasons and len(df) else [[None] * len(df)] * len(REASON_COLUMNS)
        for column, values in zip(REASON_COLUMNS, codes, strict=True):
            out[column] = values
        return out

    def _predict_quantiles(self, df: pd.DataFrame, x: np.ndarray) -> dict[str, np.ndarray]:
        """p10/p50/p90 of days late: the quantile boosters, widened by the conformal adjustment, kept in order
        and never below what is already certain (an invoice open on its as-of date is paid after it)."""
        if not self._quantiles or len(df) == 0:
            return {}
        q = {column: np.asarray(b.predict(x), dtype=np.float64) for column, b in self._quantiles.items()}
        lo, mid, hi = (q[c] for c in QUANTILE_COLUMNS)
        adjust = self._calibration.interval_adjust_days
        lo, hi = lo - adjust, hi + adjust
        stacked = np.sort(np.vstack([lo, mid, hi]), axis=0)
        if "days_to_due" in df.columns:
            floor = 1.0 - pd.to_numeric(df["days_to_due"], errors="coerce").to_numpy(dtype=np.float64)
            floor = np.where(np.isnan(floor), -np.inf, floor)
            stacked = np.maximum(stacked, floor)
        return dict(zip(QUANTILE_COLUMNS, stacked, strict=True))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions of each feature to the raw log-odds (n x n_features; the bias column dropped)."""
        contrib = np.asarray(self.booster.predict(x, pred_contrib=True), dtype=np.float64)
        return contrib[:, : len(self.spec.feature_columns)]

    def reason_codes(self, df: pd.DataFrame, x: np.ndarray | None = None) -> list[list[str | None]]:
        """For each row, the three features with the largest positive contribution (towards late), in words.
        Fewer than three features push towards late: the rest are None. Returns one list per reason column."""
        if x is None:
            x = self.spec.transform(df)
        contrib = self.contributions(x)
        k = len(REASON_COLUMNS)
        order = np.argsort(-contrib, axis=1)[:, : k + FLAG_SLACK]
        features = self.spec.feature_columns
        raw_values = {c: df[c].to_numpy() for c in features}
        out: list[list[str | None]] = [[None] * len(df) for _ in range(k)]
        for i in range(len(df)):
            rank = 0
            for j in order[i]:
                if rank == k or contrib[i, j] <= 0:
                    break
                feature = features[int(j)]
                phrase = self._phrases.get(feature)
                value = raw_values[feature][i]
                if phrase is not None and phrase.get("format") == "flag" and not _flag_on(value):
                    continue  # "no dispute" is no reason to be late, whatever the trees say
                out[rank][i] = format_reason(phrase, feature, value)
                rank += 1
        return out

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        reasons = True if not params or params.get("reasons") is None else bool(params["reasons"])
        return self.predict_frame(model_input, reasons=reasons)

    def save_artifacts(self, directory: Path | str) -> dict[str, str]:
        """Write every fitted part under ``directory``; returns the ``artifacts`` mapping for log_model."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)

        def write_json(name: str, payload: Any) -> str:
            path = directory / name
            path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
            return str(path)

        artifacts = {SPEC_ARTIFACT: write_json(SPEC_FILE, self.spec.to_dict())}
        artifacts[REASONS_ARTIFACT] = write_json(REASONS_FILE, self._phrases)
        if self._baseline is not None:
            artifacts[BASELINE_ARTIFACT] = write_json(BASELINE_FILE, self._baseline.to_dict())
            return artifacts
        booster_path = directory / BOOSTER_FILE
        self.booster.save_model(str(booster_path))
        artifacts[BOOSTER_ARTIFACT] = str(booster_path)
        artifacts[CALIBRATION_ARTIFACT] = write_json(CALIBRATION_FILE, self._calibration.to_dict())
        for column, booster in self._quantiles.items():
            path = directory / f"{column}.txt"
            booster.save_model(str(path))
            artifacts[column] = str(path)
        return artifacts


def _flag_on(v: object) -> bool:
    return not _is_missing(v) and float(v) > 0  # type: ignore[arg-type]


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
