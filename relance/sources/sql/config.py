"""The SQL source's YAML config: its schema (pydantic), ``${VAR}`` placeholders filled from the environment (URL
percent-encoded, secrets never echoed), and loading it from a file with errors naming file and field.

What of the URL is secret (hidden by :attr:`SqlSourceConfig.safe_url`, the only form of the URL that reaches
messages, logs, raw rows' ``_source_file`` and ``ops.ingest_batches``): the password of its userinfo, every query
parameter whose name looks like a credential (``?password=``, ``sslpassword``, ``token``, ``api_key``, ...), the
``PWD=``/``Password=`` pairs of an ``odbc_connect`` string, and every value a placeholder filled from a variable
whose name looks like a credential (``${ERP_PASSWORD}``, ``${ERP_PWD}``, ``${ERP_TOKEN}``), wherever in the URL it
landed. Other placeholders (``${ERP_HOST}``) stay visible: an error naming the host is worth having."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from relance.raw_schema import ENTITIES
from relance.redaction import is_secret_name, redact_url, url_secrets
from relance.sources.sql.errors import SqlConfigError

DEFAULT_CHUNK_SIZE = 10_000
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EntityQuery(BaseModel):
    """How to read one canonical entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1, description="a SELECT returning the entity's canonical columns, aliased")
    watermark_column: str | None = Field(
        default=None, description="a column of the query's result that grows when a row is added or changed"
    )

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str) -> str:
        text = value.strip().rstrip(";").strip()
        if not re.match(r"(?is)^(\(|select\b|with\b)", text):
            first = text.split(None, 1)[0] if text else ""
            raise ValueError(f"query must be a SELECT (or WITH ... SELECT), not one starting with {first!r}")
        return text

    @field_validator("watermark_column")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", value):
            raise ValueError(f"watermark_column must be a plain column name of the query's result, not {value!r}")
        return value


class SqlSourceConfig(BaseModel):
    """A declared SQL source: where the database is and one query per canonical entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="source name (watermark key)")
    url: SecretStr = Field(description="SQLAlchemy URL, placeholders already substituted")
    entities: dict[str, EntityQuery] = Field(min_length=1)
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, gt=0, le=1_000_000)
    connect_timeout_s: int = Field(default=10, gt=0, description="connection timeout (PostgreSQL)")
    watermark_overlap: timedelta | None = Field(
        default=None,
        ge=timedelta(0),
        description="how far before the stored watermark an incremental read starts again (ISO 8601, e.g. PT1H, "
        "P1D): rows committed late with an older watermark value are still read; None = 1 day",
    )
    # values that credential-named ``${VAR}`` placeholders put into the URL (set by parse_sql_config)
    _placeholder_secrets: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except (ArgumentError, ValueError):
            raise ValueError(
                "url is not a SQLAlchemy URL (expected dialect+driver://user:password@host:port/database)"
            ) from None
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, EntityQuery]) -> dict[str, EntityQuery]:
        unknown = [name for name in value if name not in ENTITIES]
        if unknown:
            raise ValueError(f"unknown entity(ies) {', '.join(unknown)}; known: {', '.join(ENTITIES)}")
        return value

    @property
    def sqlalchemy_url(self) -> URL:
        """The URL, with its password (for connecting only)."""
        return make_url(self.url.get_secret_value())

    def secret_values(self) -> list[str]:
        """Every secret the URL holds, in clear (see the module docstring): what messages must never show."""
        return [*url_secrets(self.url.get_secret_value()), *self._placeholder_secrets]

    @property
    def safe_url(self) -> str:
        """The URL with every secret hidden (``***``), for messages, logs and ``source_file``."""
        return redact_url(self.url.get_secret_value(), self.secret_values())


def substitute_env(value: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` placeholders of a URL from ``environ``.

    A value substituted inside a longer URL is percent-encoded, so a password may contain any character; a URL
    that is exactly one placeholder is replaced verbatim. Raises :class:`SqlConfigError` naming every variable
    that is not set (never their values).
    """
    missing = sorted({m for m in _PLACEHOLDER.findall(value) if m not in environ})
    if missing:
        raise SqlConfigError(f"url: environment variable(s) not set: {', '.join(missing)}")
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return environ[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: urllib.parse.quote(environ[m.group(1)], safe=""), value)


def _format_validation_error(where: str, exc: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (input values left out: they may hold secrets)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return f"{where}: invalid SQL source config:\n" + "\n".join(lines)


def parse_sql_config(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, where: str = "config"
) -> SqlSourceConfig:
    """Validate a config mapping (as read from YAML), substituting ``${VAR}`` in ``url`` from ``environ``.

    Args:
        data: the mapping with ``name``, ``url``, ``entities`` and optional ``chunk_size``/``connect_timeout_s``.
        environ: where placeholders are looked up; ``os.environ`` when ``None``.
        where: what to call the config in error messages (the file path).

    Raises:
        SqlConfigError: with the file, field and what was expected.
    """
    if not isinstance(data, Mapping):
        raise SqlConfigError(f"{where}: expected a mapping with name, url and entities, got {type(data).__name__}")
    values = dict(data)
    url = values.get("url")
    env = os.environ if environ is None else environ
    secrets: tuple[str, ...] = ()
    if isinstance(url, str):
        try:
            values["url"] = substitute_env(url, env)
        except SqlConfigError as exc:
            raise SqlConfigError(f"{where}: {exc}") from None
        secrets = tuple(env[name] for name in _PLACEHOLDER.findall(url) if is_secret_name(name) and env[name])
    try:
        config = SqlSourceConfig.model_validate(values)
    except ValidationError as exc:
        raise SqlConfigError(_format_validation_error(where, exc)) from None
    config._placeholder_secrets = secrets
    return config


def load_sql_config(path: Path | str, *, environ: Mapping[str, str] | None = None) -> SqlSourceConfig:
    """Read and validate a SQL source YAML file (see the module docstring for its layout).

    Raises:
        SqlConfigError: missing file, invalid YAML, unset ``${VAR}``, unknown entity, bad field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SqlConfigError(f"{path}: cannot read SQL source config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SqlConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_sql_config(data, environ=environ, where=str(path))
