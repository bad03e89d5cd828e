"""Tabular profiles: the YAML schema that maps one export format onto the raw entities, and loading it.

A profile has ``name``, ``description``, ``reader`` options, optional ``ignore_columns`` (source columns left
out on purpose, e.g. outcome columns that would leak the label) and, per canonical entity, the source
``file`` pattern(s), an optional ``where`` filter, ``distinct`` and a ``columns`` mapping from canonical column
to a source column name or a DuckDB SQL expression over source columns (``"'PAY-' || invoiceNumber"``,
``"false"``). Several entities may come from the same file. ``full_snapshot: true`` says the export is complete:
for each entity, the files of one import hold every current row of that entity (a full export, not a delta), so
the loader retires (tombstones) the keys they no longer hold -- an invoice cancelled in the ERP stops being current.
Leave it false (the default) for exports that only carry what changed; an entity with no file in an import retires
nothing either way. An optional ``evaluation`` key lists ``exclude`` rules (``where``: a SQL filter over the source
columns of the invoices file, ``reason``): ``relance evaluate`` leaves the invoices they select out of its test rows
(``models.backtest``), e.g. invoices disputed after issue, an outcome the file gives no date for. Nothing is
imported or filtered at load because of them. Profiles ship in ``relance/sources/profiles/``;
any YAML file path works too. A profile that does not validate raises :class:`ProfileError` naming the
profile file, the key and what was expected.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relance.raw_schema import ENTITIES
from relance.sources.amounts import THOUSANDS_SEPARATORS
from relance.sources.base import SourceError
from relance.sources.encoding import normalize_encoding

PROFILES_PACKAGE = "relance.sources.profiles"
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

# Canonical columns a profile must map for each entity (natural keys plus what the loader and the critical
# expectations cannot do without). Unmapped optional columns are loaded as NULL.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "invoices": ("invoice_id", "customer_id", "issue_date", "due_date", "amount"),
    "payments": ("payment_id", "customer_id", "payment_date", "amount"),
    "payment_allocations": ("payment_id", "invoice_id", "allocated_amount"),
    "disputes": ("dispute_id", "invoice_id", "opened_date"),
    "reminders": ("reminder_id", "invoice_id", "sent_at", "channel"),
}


class ProfileError(SourceError):
    """A profile that cannot be used: unreadable YAML, unknown entity or column, missing mapping, bad option."""


class ReaderOptions(BaseModel):
    """How to read the source files (one set per profile: one export format)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["auto", "csv", "excel", "parquet"] = "auto"
    delimiter: str = "auto"
    encoding: str = "auto"
    decimal: Literal[".", ","] = "."
    thousands: str | None = None
    date_format: str | None = None  # strptime format of DATE columns, e.g. "%m/%d/%Y"
    timestamp_format: str | None = None  # strptime format of TIMESTAMP columns
    header_row: int = Field(default=1, ge=1)  # 1-based line (CSV) or sheet row (Excel) holding the column names
    sheet: str | int | None = None  # Excel sheet name, or 1-based position; default: the first sheet
    quote: str = '"'

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value == "\\t":
            value = "\t"
        if value != "auto" and value not in DELIMITERS:
            raise ValueError(f"expected auto or one of {', '.join(repr(d) for d in DELIMITERS)}, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return normalize_encoding(value)
        except SourceError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("thousands")
    @classmethod
    def _thousands(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in THOUSANDS_SEPARATORS:
            raise ValueError(f"expected one of {', '.join(repr(t) for t in THOUSANDS_SEPARATORS)}, got {value!r}")
        return value

    @field_validator("date_format", "timestamp_format")
    @classmethod
    def _strptime_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"expected a strptime format such as '%d/%m/%Y', got {value!r}")
        return value

    @field_validator("quote")
    @classmethod
    def _quote(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"expected a single character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _separators_differ(self) -> ReaderOptions:
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(f"thousands separator {self.thousands!r} cannot be the decimal separator too")
        return self


MappingValue = str | bool | int | float | None


class EntityMapping(BaseModel):
    """Where one canonical entity comes from and how its columns are computed."""

    model_config = ConfigDict(extra="forbid")

    file: str | list[str]  # glob pattern(s) matched against file names in the input directory
    where: str | None = None  # SQL filter over source columns
    distinct: bool = False  # one row per distinct mapped row (e.g. customers repeated on every invoice line)
    required: bool = False  # a directory without a matching file is an error
    columns: dict[str, MappingValue]

    @property
    def patterns(self) -> list[str]:
        """File patterns as a list."""
        return [self.file] if isinstance(self.file, str) else list(self.file)


class EvaluationExclusion(BaseModel):
    """Invoices a backtest leaves out of its test rows: the rows of the invoices file(s) ``where`` selects."""

    model_config = ConfigDict(extra="forbid")

    where: str = Field(min_length=1)  # SQL filter over source columns, like an entity's where
    reason: str = Field(min_length=1)  # said in the backtest's output with the number of rows removed


class EvaluationOptions(BaseModel):
    """How ``relance evaluate`` treats this source (nothing here changes what is imported)."""

    model_config = ConfigDict(extra="forbid")

    exclude: list[EvaluationExclusion] = Field(default_factory=list)


class Profile(BaseModel):
    """A declarative mapping of one tabular export format onto the raw entities."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    ignore_columns: list[str] = Field(default_factory=list)
    full_snapshot: bool = False  # each import holds the complete current state of every entity it has files for
    entities: dict[str, EntityMapping] = Field(min_length=1)
    evaluation: EvaluationOptions = Field(default_factory=EvaluationOptions)
    origin: str | None = Field(default=None, exclude=True)  # where it was loaded from, for messages

    @model_validator(mode="after")
    def _known_entities_and_columns(self) -> Profile:
        problems: list[str] = []
        for name, mapping in self.entities.items():
            if name not in ENTITIES:
                problems.append(f"entities.{name}: unknown entity (expected one of {', '.join(ENTITIES)})")
                continue
            unknown = [c for c in mapping.columns if c not in ENTITIES[name]]
            if unknown:
                problems.append(
                    f"entities.{name}.columns: unknown target column(s) {', '.join(unknown)} "
                    f"(expected columns of raw.{name}: {', '.join(ENTITIES[name])})"
                )
            missing = [c for c in REQUIRED_COLUMNS[name] if mapping.columns.get(c) is None]
            if missing:
                problems.append(
                    f"entities.{name}.columns: missing required mapping for {', '.join(missing)} "
                    f"(required for {name}: {', '.join(REQUIRED_COLUMNS[name])})"
                )
        if self.evaluation.exclude and "invoices" not in self.entities:
            problems.append("evaluation.exclude: needs an invoices entity (its rows are what is excluded)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _profile_error(origin: str, exc: ValidationError) -> ProfileError:
    """One readable message per problem: profile file, key path, what was expected."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{loc}: {msg}" if err["loc"] else msg)
    return ProfileError(f"profile {origin}: " + "; ".join(lines))


def parse_profile(text: str, origin: str) -> Profile:
    """Validate profile YAML ``text``; ``origin`` names it in errors (a file path or a packaged name)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ProfileError(f"profile {origin}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"profile {origin}: expected a mapping of keys (name, reader, entities), got {data!r}")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise _profile_error(origin, exc) from exc
    return profile.model_copy(update={"origin": origin})


def packaged_profiles() -> list[str]:
    """Names of the profiles shipped with relance."""
    root = resources.files(PROFILES_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by packaged name (``"ibm_ar"``) or by path to a YAML file.

    Raises:
        ProfileError: unknown name, unreadable file, or a profile that does not validate (the message names the
            profile file, the key and what was expected).
    """
    candidate = Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or candidate.suffix in (".yaml", ".yml") or "/" in str(candidate)
    if looks_like_path:
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return parse_profile(candidate.read_text(encoding="utf-8"), str(candidate))
    resource = resources.files(PROFILES_PACKAGE) / f"{name_or_path}.yaml"
    if not resource.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}: packaged profiles are {', '.join(packaged_profiles())}; "
            "or pass the path to a YAML file"
        )
    return parse_profile(resource.read_text(encoding="utf-8"), f"{name_or_path} ({resource})")
