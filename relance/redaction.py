"""Secrets never leave the process in clear: one owner for what counts as a secret and how it is hidden.

Three tools, used wherever text may reach a log, a table, a file or a command line:

* :func:`redact_url` hides the credentials of a URL (SQLAlchemy, MLflow, HTTP): the password of its userinfo,
  every query parameter whose *name* looks like a credential (:func:`is_secret_name`: ``password``, ``pwd``,
  ``secret``, ``token``, ``api_key``, ``sslpassword``, ... case-insensitive) and the ``PWD=``/``Password=``
  pairs of an ODBC connection string passed as ``odbc_connect``;
* :func:`redact` hides known secret values (and their percent-encoded forms) and the shapes of secrets in free
  text: ``Bearer <token>``, SendGrid keys ``SG.<id>.<secret>``, ``scheme://user:password@``, ``password=...``;
* :func:`install_log_redaction` makes every log record pass through :func:`redact` before any handler (console,
  file, Prefect's API handler that stores flow-run logs) sees it.

What is a secret (the rule ``RELIABILITY.md`` states): every ``SecretStr`` setting, the password or credential
parameters inside a URL setting, and the value of every environment variable whose name looks like a credential
(``RELANCE_PG_PASSWORD``, or an ``ERP_PASSWORD`` that a SQL source's ``${ERP_PASSWORD}`` placeholder fills).
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

MASK = "***"
#: Shorter values are not redacted by value (a 3-character "secret" would mask half of every log line); the
#: patterns still hide them where they appear as a credential.
MIN_SECRET_LENGTH = 6

# A name (URL query parameter, ODBC key, environment variable) whose value is a credential. Broad on purpose:
# hiding a harmless value costs a less useful message, showing a secret cannot be undone.
_SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|pwd|secret|token|credential|auth|signature|(^|[-_.])sig$|(^|[-_.]|api|access|account|private|secret)key$"
    r"|apikey|api[-_]key|session)"
)

# ``name=value`` in free text, for the unambiguous credential names only (``reminder_key=...`` is not a secret).
_TEXT_NAMES = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key"
    r"|secret[-_]?key|credentials?)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    # a SendGrid API key, wherever it is
    (re.compile(r"\bSG\.[\w-]+\.[\w-]+"), f"SG.{MASK}"),
    # userinfo password of any URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/@:?#]*):[^\s@/?#]+@"), rf"\1:{MASK}@"),
    # name=value / name: value / "name": "value" for credential names (query strings, ODBC, JSON, reprs)
    (
        re.compile(
            rf"(?i)(\b{_TEXT_NAMES}['\"]?\s*[=:]\s*)(\{{(?:[^}}]|\}}\}})*\}}|'[^']*'|\"[^\"]*\"|[^\s&;,'\")}}]+)"
        ),
        rf"\1{MASK}",
    ),
)


# An environment variable holding a credential. Stricter than a URL parameter name: ``PWD`` is the shell's working
# directory and ``SSH_AUTH_SOCK`` a socket path, neither a secret.
_SECRET_ENV_NAME = re.compile(
    r"(?i)(^|_)(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY|AUTH_STRING"
    r"|CREDENTIALS?)$|_PWD$"
)


def is_secret_name(name: str) -> bool:
    """Whether a parameter or variable called ``name`` holds a credential (``password``, ``PWD``,
    ``sslpassword``, ``api_key``, ``access_token``, ``X-Amz-Signature``, ``RELANCE_PG_PASSWORD`` ...)."""
    return bool(_SECRET_NAME.search(name))


def redact_odbc(connection_string: str) -> str:
    """An ODBC connection string with the value of every credential key (``PWD``, ``Password``, ...) hidden;
    ``{...}``-quoted values (which may hold ``;``) included."""
    out = []
    for match in re.finditer(r"\s*([^=;]+?)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)\s*(;|$)", connection_string):
        key, value, end = match.group(1), match.group(2), match.group(3)
        out.append(f"{key}={MASK if is_secret_name(key) else redact(value)}{end}")
    return "".join(out) if out else redact(connection_string)


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """``url`` without its credentials (see the module docstring); ``secrets`` are values to hide wherever they
    appear in it (a value a ``${VAR}`` placeholder filled, say). Never raises: what cannot be parsed is hidden
    from the scheme on."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else netloc
        query = parts.query
        if query:
            pairs = []
            for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
                if is_secret_name(key):
                    value = MASK
                elif key.lower() == "odbc_connect":
                    value = redact_odbc(value)
                pairs.append((key, value))
            query = urllib.parse.urlencode(pairs, safe="*;={}:/,@", quote_via=urllib.parse.quote)
        # by hand, not urlunsplit: that drops the empty authority of sqlite:///path and mssql+pyodbc:///?...
        rebuilt = f"{parts.scheme}:" if parts.scheme else ""
        rebuilt += f"//{netloc}" if url[len(rebuilt) :].startswith("//") else netloc
        rebuilt += parts.path + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    except ValueError:
        scheme = url.split(":", 1)[0] if ":" in url else ""
        return f"{scheme}://{MASK}" if scheme.isidentifier() or "+" in scheme else MASK
    return redact(rebuilt, secrets)


def url_secrets(url: str) -> list[str]:
    """The secret values a URL carries, in clear (decoded): its userinfo password, its credential query
    parameters, the credential pairs of an ``odbc_connect`` string. What :func:`redact` is then told to hide."""
    try:
        parts = urllib.parse.urlsplit(url)
        found = []
        if "@" in parts.netloc and ":" in parts.netloc.rsplit("@", 1)[0]:
            found.append(urllib.parse.unquote(parts.netloc.rsplit("@", 1)[0].split(":", 1)[1]))
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if is_secret_name(key):
                found.append(value)
            elif key.lower() == "odbc_connect":
                for match in re.finditer(r"\s*([^=;]+?)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)", value):
                    if is_secret_name(match.group(1)):
                        raw = match.group(2)
                        found += [raw, raw[1:-1].replace("}}", "}")] if raw.startswith("{") else [raw]
    except ValueError:
        return []
    return [v for v in found if v]


def _variants(secret: str) -> set[str]:
    """A secret as it may be written: itself, percent-encoded (in a URL), form-encoded."""
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every secret-shaped substring replaced by ``***``."""
    for secret in sorted({v for s in secrets if s and len(s) >= MIN_SECRET_LENGTH for v in _variants(s)}, key=len)[
        ::-1
    ]:
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment variables whose names look like credentials (``RELANCE_PG_PASSWORD``,
    ``ERP_PASSWORD``, ``RELANCE_SENDGRID_API_KEY``): secrets by definition, whatever reads them."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if is_secret_env_name(k) and len(v) >= MIN_SECRET_LENGTH]


def is_secret_env_name(name: str) -> bool:
    """Whether the environment variable ``name`` holds a credential (``RELANCE_PG_PASSWORD``, ``ERP_PWD``,
    ``PREFECT_API_KEY``); ``PWD``, ``OLDPWD`` and ``SSH_AUTH_SOCK`` do not."""
    return bool(_SECRET_ENV_NAME.search(name))


class _HasSecrets(Protocol):
    def secret_values(self) -> list[str]: ...


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its traceback text) through :func:`redact`; never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.secrets)
        return True


def redact_record(record: logging.LogRecord, secrets: Iterable[str]) -> logging.LogRecord:
    if getattr(record, "_relance_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging's own error report, but hide secrets
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redact(message, secrets), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    record._relance_redacted = True
    return record


#: Loggers that may see credentials: the SendGrid HTTP client logs every request's headers at DEBUG
#: (``Authorization: Bearer SG...``), SQLAlchemy may echo URLs, Prefect ships run logs to its database.
LIBRARY_LOGGERS = (
    "python_http_client",
    "python_http_client.client",
    "sendgrid",
    "urllib3",
    "httpx",
    "sqlalchemy.engine",
    "mlflow",
    "prefect",
    "prefect.flow_runs",
    "prefect.task_runs",
)

_installed: RedactingFilter | None = None
_previous_factory: Any = None


def install_log_redaction(secrets: Iterable[str] | _HasSecrets = ()) -> RedactingFilter:
    """Hide ``secrets`` (or a :class:`~relance.settings.Settings`' :meth:`secret_values`), the credential-named
    environment variables' values and every secret-shaped string from all logging, from now on.

    Three layers, because handlers are replaced behind our back (Prefect configures its own on import): a filter
    on the root logger's handlers and on :data:`LIBRARY_LOGGERS` (and their handlers), and a log-record factory
    that redacts every record when it is made, whichever logger and handler it later meets. Idempotent: a
    second call adds its secrets to the same filter.
    """
    global _installed, _previous_factory
    values = list(secrets.secret_values() if hasattr(secrets, "secret_values") else secrets)
    values += environment_secrets()
    if _installed is None:
        _installed = RedactingFilter(values)
        previous = logging.getLogRecordFactory()
        _previous_factory = previous
        active = _installed

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs), active.secrets)

        logging.setLogRecordFactory(factory)
    else:
        _installed.secrets.update(v for v in values if v)
    for logger in (logging.getLogger(), *(logging.getLogger(name) for name in LIBRARY_LOGGERS)):
        if _installed not in logger.filters:
            logger.addFilter(_installed)
        for handler in logger.handlers:
            if _installed not in handler.filters:
                handler.addFilter(_installed)
    return _installed


def uninstall_log_redaction() -> None:
    """Undo :func:`install_log_redaction` (tests)."""
    global _installed, _previous_factory
    if _installed is None:
        return
    logging.setLogRecordFactory(_previous_factory)
    for logger in (logging.getLogger(), *(logging.getLogger(name) for name in LIBRARY_LOGGERS)):
        logger.removeFilter(_installed)
        for handler in logger.handlers:
            handler.removeFilter(_installed)
    _installed, _previous_factory = None, None
