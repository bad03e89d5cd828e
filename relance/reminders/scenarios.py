"""Reminder scenarios as data: YAML files validated with pydantic, chosen per customer segment.

A scenario says, for the customers it applies to (``when``), which message goes out at which day relative to the
due date of the customer's most advanced invoice (``steps``), what happens after the last step (``repeat``), when
to escalate (a broken promise, a bounce, high stakes to a human negotiator) and which share of its customers is
held out at random to measure what reminders are worth (``holdout_fraction``). Collections managers edit these
files, not Python: ``relance policy check FILE`` validates one and names the file, the line and the field of
every error.

The default set (``relance/reminders/scenarios/default.yaml``) ships with the package and the demo uses it;
``RELANCE_SCENARIOS`` points at another file. The first scenario (by ``priority``, highest first, then file order)
whose ``when`` matches a customer is that customer's scenario; a set must end with a catch-all (a scenario
without conditions) so that every customer has one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CHANNELS: tuple[str, ...] = ("email", "sms", "letter", "call")
TONES: tuple[str, ...] = ("preventive", "cordial", "firm", "formal_notice")
Channel = Literal["email", "sms", "letter", "call"]
Tone = Literal["preventive", "cordial", "firm", "formal_notice"]

DEFAULT_SCENARIOS = "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    """A closed interval; either end may be left open."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    def contains(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self.min is None and self.max is None
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Conditions(_Strict):
    """Who a scenario (or a step) applies to. Every condition given must hold; none given: everyone.

    ``total_due``: what the customer owes, in its currency; ``exposure``: total due x the highest probability of
    paying late among its invoices; ``p_late``: that probability; ``predicted_days_late``: the model's median days
    late of its most advanced invoice; ``risk_grade``: the customer's grade of the day (A..E)."""

    customer_type: list[Literal["B2B", "B2C"]] | None = None
    country: list[str] | None = None
    language: list[str] | None = None
    sector: list[str] | None = None
    risk_grade: list[str] | None = None
    total_due: Band | None = None
    exposure: Band | None = None
    p_late: Band | None = None
    predicted_days_late: Band | None = None

    @field_validator("country", "language", "sector", "risk_grade")
    @classmethod
    def _upper_or_lower(cls, values: list[str] | None, info: Any) -> list[str] | None:
        if values is None:
            return None
        if not values:
            raise ValueError("an empty list matches nobody; leave the condition out to match everyone")
        return [v.strip().lower() if info.field_name == "language" else v.strip().upper() for v in values]

    def matches(self, facts: Mapping[str, Any]) -> bool:
        """``facts``: customer_type, country_code, language, sector_section, risk_grade, total_due, exposure,
        p_late, predicted_days_late (missing values match only an unconstrained condition)."""

        def _in(values: list[str] | None, value: Any, lower: bool = False) -> bool:
            if values is None:
                return True
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return False
            text = str(value).strip()
            return (text.lower() if lower else text.upper()) in values

        return (
            _in(self.customer_type, facts.get("customer_type"))
            and _in(self.country, facts.get("country_code"))
            and _in(self.language, facts.get("language"), lower=True)
            and _in(self.sector, facts.get("sector_section"))
            and _in(self.risk_grade, facts.get("risk_grade"))
            and (self.total_due is None or self.total_due.contains(facts.get("total_due")))
            and (self.exposure is None or self.exposure.contains(facts.get("exposure")))
            and (self.p_late is None or self.p_late.contains(facts.get("p_late")))
            and (
                self.predicted_days_late is None or self.predicted_days_late.contains(facts.get("predicted_days_late"))
            )
        )


class Step(_Strict):
    """One message of a scenario: sent once the most advanced invoice is ``day`` days past its due date (negative:
    before it). ``channels``: the channels allowed, the first being the default; the next-best-action model picks
    among them when it has enough history."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    day: int = Field(ge=-30, le=365)
    channels: list[Channel] = Field(min_length=1)
    tone: Tone
    template: str | None = None  # defaults to the tone's template
    when: Conditions | None = None

    @field_validator("channels")
    @classmethod
    def _unique(cls, channels: list[str]) -> list[str]:
        if len(set(channels)) != len(channels):
            raise ValueError(f"channels listed twice: {channels}")
        return channels

    @property
    def template_name(self) -> str:
        return self.template or self.tone


class Repeat(_Strict):
    """After the last step: the same kind of message every ``every_days`` days, at most ``max_times`` times."""

    every_days: int = Field(ge=2, le=90)
    max_times: int = Field(ge=0, le=24)
    channels: list[Channel] = Field(min_length=1)
    tone: Tone


class Escalation(_Strict):
    """What changes the next step: a broken promise gets its own message (once per promise); a channel that
    bounced is replaced by the first of ``bounce_fallback`` still possible; B2B customers owing at least
    ``negotiator_min_due`` may be called by a negotiator at any overdue step."""

    broken_promise_channels: list[Channel] = Field(default_factory=lambda: ["call", "letter"], min_length=1)
    broken_promise_tone: Tone = "firm"
    bounce_fallback: list[Channel] = Field(default_factory=lambda: ["sms", "letter"])
    negotiator_min_due: float | None = Field(default=None, ge=0)


class Scenario(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    description: str = ""
    priority: int = 0
    when: Conditions = Field(default_factory=Conditions)
    grouping: Literal["customer", "invoice"] = "customer"
    steps: list[Step] = Field(min_length=1)
    repeat: Repeat | None = None
    escalation: Escalation = Field(default_factory=Escalation)
    min_days_between_messages: int = Field(default=5, ge=1, le=60)
    # an opened email or a partial payment since the last contact moves the next step this many days later
    cadence_shift_days: int = Field(default=5, ge=0, le=30)
    holdout_fraction: float = Field(default=0.0, ge=0.0, le=0.5)

    @field_validator("steps")
    @classmethod
    def _ordered_steps(cls, steps: list[Step]) -> list[Step]:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique, got {names}")
        days = [s.day for s in steps]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError(f"steps must be in strictly increasing day order, got days {days}")
        if sum(1 for s in steps if s.day <= 0) > 1:
            raise ValueError("at most one step before or on the due date (a preventive one)")
        return steps

    @property
    def is_catch_all(self) -> bool:
        return self.when == Conditions()

    @property
    def overdue_steps(self) -> list[Step]:
        return [s for s in self.steps if s.day > 0]

    @property
    def pre_due_step(self) -> Step | None:
        return next((s for s in self.steps if s.day <= 0), None)


class ScenarioFile(_Strict):
    version: Literal[1] = 1
    scenarios: list[Scenario] = Field(min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _names_and_catch_all(cls, scenarios: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario names must be unique, got {names}")
        if not any(s.is_catch_all for s in scenarios):
            raise ValueError("no catch-all scenario (one without 'when'): some customers would have none")
        return scenarios


@dataclass(frozen=True)
class ScenarioSet:
    """Validated scenarios in the order they are tried, and where they came from."""

    scenarios: tuple[Scenario, ...]
    source: str

    def select(self, facts: Mapping[str, Any]) -> Scenario:
        """The first scenario whose ``when`` matches (there is always one: the set has a catch-all)."""
        return next(s for s in self.scenarios if s.when.matches(facts))

    def __getitem__(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(f"no scenario {name!r} in {self.source}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` holds one ``file:line: field: message`` per error."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


def _line_index(node: yaml.Node, path: tuple[Any, ...] = (), index: dict | None = None) -> dict:
    """Path (keys and list positions) -> 1-based line of every node of a composed YAML document."""
    index = {} if index is None else index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), index)
            index[(*path, key)] = key_node.start_mark.line + 1  # the key's line, where a person looks
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _line_index(item, (*path, position), index)
    return index


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_scenarios(text: str, source: str) -> ScenarioSet:
    """Validate scenario YAML; raise :class:`ScenarioError` naming the line and field of every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "?"
        raise ScenarioError(source, [f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if node is None or data is None:
        raise ScenarioError(source, [f"{source}:1: the file is empty"])
    lines = _line_index(node)
    try:
        parsed = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
            known = next((loc[:n] for n in range(len(loc), -1, -1) if loc[:n] in lines), ())
            problems.append(f"{source}:{lines.get(known, 1)}: {_where(loc)}: {error['msg']}")
        raise ScenarioError(source, problems) from None
    ordered = sorted(enumerate(parsed.scenarios), key=lambda pair: (-pair[1].priority, pair[0]))
    return ScenarioSet(tuple(s for _, s in ordered), source)


def load_scenarios(path: Path | str) -> ScenarioSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), [f"{path}: cannot read: {exc}"]) from None
    return parse_scenarios(text, str(path))


def load_default_scenarios() -> ScenarioSet:
    """The set that ships with relance (the demo's)."""
    ref = resources.files("relance.reminders").joinpath("scenarios", DEFAULT_SCENARIOS)
    return parse_scenarios(ref.read_text(encoding="utf-8"), f"relance/reminders/scenarios/{DEFAULT_SCENARIOS}")


def load_configured(path: Path | str | None) -> ScenarioSet:
    """``RELANCE_SCENARIOS`` when set, else the default set."""
    return load_scenarios(path) if path else load_default_scenarios()
