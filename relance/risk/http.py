"""Shared HTTP plumbing of the company-risk clients: one JSON GET with retries, a rate limit and a disk cache.

Every registry we read (BODACC on Opendatasoft, API Recherche d'entreprises, Companies House) is a public JSON API
with its own quota and its own ways of failing. What they share lives here, once:

* **retries** (tenacity) on 429, 5xx, 408, timeouts and connection errors, with exponential backoff and full jitter,
  honouring ``Retry-After`` (seconds or HTTP date) up to ``max_wait_seconds``, for a bounded number of attempts.
  400/401/403/404 are never retried: asking again cannot change the answer;
* **explicit UTF-8**: the body is decoded by us, strictly (one project saw accented BODACC fields mojibake'd when
  its HTTP library guessed Latin-1); a body that is not UTF-8 is a ``bad_payload`` naming the byte offset;
* a **minimum interval** between requests, thread-safe on the monotonic clock (Recherche d'entreprises allows 7
  requests per second per IP, Companies House 600 per 5 minutes per key);
* an optional **disk cache** with a TTL: a daily run that restarts does not query the registries again, and a caller
  can tell how old an answer is (``last_fetch``) to flag stale data instead of failing;
* **one error type**, :class:`RiskSourceError`, whose ``kind`` tells the caller what to do (go on with the last
  known data on ``unavailable``/``quota``/``bad_payload``, fix the query on ``bad_request``, fix the key on ``auth``).

Credentials (the Companies House key) travel only in the ``Authorization`` header through ``httpx.BasicAuth``: they
are never part of a log line, an error message or a cache key. No Prefect here: ``flows/`` wires these clients.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from relance import __version__

logger = logging.getLogger(__name__)

ErrorKind = Literal["unavailable", "quota", "bad_payload", "bad_request", "auth", "not_found"]
ERROR_KINDS: tuple[str, ...] = ("unavailable", "quota", "bad_payload", "bad_request", "auth", "not_found")
#: Kinds after which a caller should go on with the last known data (the source, not the query, is at fault).
TRANSIENT_KINDS: frozenset[str] = frozenset({"unavailable", "quota"})

USER_AGENT = f"relance/{__version__} (+https://github.com/relance)"
BODY_EXCERPT_CHARS = 200

ParamValue = str | int | float | Sequence[str]
Params = Mapping[str, ParamValue]


class SecretLike(Protocol):
    """pydantic's ``SecretStr`` (``Settings.companies_house_api_key``) without importing pydantic here."""

    def get_secret_value(self) -> str: ...


class RiskSourceError(Exception):
    """A registry could not give a usable answer. ``kind`` says why, so the caller can choose what to do:

    ``unavailable`` connection error, timeout or 5xx after the retries; ``quota`` 429 after the retries;
    ``bad_payload`` malformed JSON, non-UTF-8 bytes or an unexpected envelope; ``bad_request`` a 4xx other than
    401/403/404 (``detail`` holds the API's own error text); ``auth`` 401/403 or no key; ``not_found`` 404.

    The message names the publisher, the URL path (never the query string's secrets nor a key), the status and the
    first 200 characters of the body.
    """

    def __init__(
        self,
        publisher: str,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        path: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.publisher = publisher
        self.kind: ErrorKind = kind
        self.status = status
        self.path = path
        self.detail = detail
        self.retry_after = retry_after

    @property
    def is_transient(self) -> bool:
        """True when trying again later may succeed (outage, quota): the run goes on with the last known data."""
        return self.kind in TRANSIENT_KINDS


@dataclass(frozen=True)
class HttpOptions:
    """How a client talks HTTP: one value the flow builds from ``Settings`` and tests build with tiny waits.

    Clients take it as ``options=`` and/or as keyword overrides (``BodaccClient(url, timeout=5, cache_dir=...)``).
    ``min_interval_seconds=None`` means the publisher's own default (Recherche d'entreprises 0.15 s, Companies
    House 0.5 s, BODACC none). ``cache_dir`` may be shared: entries are keyed by endpoint, path and params.
    ``clock`` dates cache entries (wall clock: entries outlive the process); ``sleep`` is what the retries wait
    with (a test injects a recorder instead of waiting). ``serve_stale_on_error`` returns an expired cache entry,
    flagged ``stale``, when the source is unavailable or over quota.
    """

    timeout: float = 20.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_wait_seconds: float = 60.0
    min_interval_seconds: float | None = None
    cache_dir: Path | None = None
    ttl_seconds: float = 20 * 3600.0
    serve_stale_on_error: bool = False
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.ttl_seconds < 0 or self.max_wait_seconds < 0 or self.backoff_base < 0:
            raise ValueError("ttl_seconds, max_wait_seconds and backoff_base must not be negative")


def resolve_options(options: HttpOptions | None, overrides: Mapping[str, Any]) -> HttpOptions:
    """``options`` (or the defaults) with keyword ``overrides`` applied; TypeError naming an unknown option."""
    base = options or HttpOptions()
    if not overrides:
        return base
    known = {f.name for f in fields(HttpOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown HTTP option(s) {unknown}; known: {', '.join(sorted(known))}")
    return replace(base, **overrides)


@dataclass(frozen=True)
class FetchInfo:
    """Where the last answer came from: ``fetched_at`` is when the registry produced it (UTC), ``from_cache``
    whether it was read from disk, ``stale`` whether it was an expired entry served because the source failed."""

    fetched_at: datetime
    from_cache: bool
    stale: bool = False


@dataclass(frozen=True)
class _CacheEntry:
    fetched_at_epoch: float
    body: Any


class MinIntervalLimiter:
    """At most one request every ``min_interval`` seconds, across threads.

    A caller holds the lock while it waits for its turn, and the next turn is counted from when it actually woke:
    a thread the OS wakes late pushes the following ones back instead of letting them catch up in a burst (the
    registry counts arrivals, not our schedule). Monotonic clock: a wall-clock jump cannot open a burst either.
    """

    def __init__(
        self,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must not be negative, got {min_interval}")
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = float("-inf")

    def wait(self) -> None:
        if self.min_interval <= 0:
            return
        with self._lock:
            delay = self._next_free - self._clock()
            if delay > 0:
                self._sleep(delay)
            self._next_free = self._clock() + self.min_interval


class _Retryable(Exception):
    """One failed attempt that another attempt may fix; turned into a RiskSourceError when attempts run out."""

    def __init__(self, kind: ErrorKind, status: int | None, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind: ErrorKind = kind
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    None when absent or unreadable (the backoff then decides); never negative.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _api_error_text(text: str) -> str | None:
    """The API's own words from an error body: BODACC ``{"error_code", "message"}``, Recherche d'entreprises
    ``{"erreur"}``, Companies House ``{"error"}`` / ``{"errors": [{"error"}]}``."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    if isinstance(body.get("error_code"), str):
        parts.append(body["error_code"])
    for key in ("message", "erreur", "error"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
    errors = body.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict):
                parts.extend(str(item[k]) for k in ("error", "message") if isinstance(item.get(k), str))
            elif isinstance(item, str):
                parts.append(item)
    return ": ".join(parts) if parts else None


class JsonHttpSource:
    """One registry's HTTP endpoint: ``get_json(path, params)`` with retries, rate limit, cache and typed errors.

    ``base_url`` is injectable so tests point it at a stand-in on 127.0.0.1. ``api_key`` (Companies House) is sent
    as HTTP Basic username with an empty password. ``last_fetch`` describes the last answer this thread received.
    """

    def __init__(
        self,
        publisher: str,
        base_url: str,
        *,
        options: HttpOptions | None = None,
        api_key: str | SecretLike | None = None,
        default_min_interval_seconds: float = 0.0,
        **overrides: Any,
    ) -> None:
        self.publisher = publisher
        self.options = resolve_options(options, overrides)
        key = api_key.get_secret_value() if api_key is not None and not isinstance(api_key, str) else api_key
        self._secrets = self._secret_forms(key)
        self.has_credentials = bool(key)
        interval = self.options.min_interval_seconds
        self.limiter = MinIntervalLimiter(default_min_interval_seconds if interval is None else interval)
        self._client = httpx.Client(
            base_url=base_url,
            timeout=self.options.timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            auth=httpx.BasicAuth(key, "") if key else None,
            transport=self.options.transport,
            follow_redirects=True,
        )
        url = self._client.base_url
        # the cache key names the endpoint (two sources sharing a cache directory must not collide) but never
        # carries userinfo a base URL might hold
        port = f":{url.port}" if url.port else ""
        self._endpoint = f"{url.scheme}://{url.host}{port}{url.path}"
        self.cache_dir = None if self.options.cache_dir is None else Path(self.options.cache_dir)
        self._local = threading.local()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JsonHttpSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the key
        return f"JsonHttpSource({self.publisher!r}, {self._endpoint!r}, credentials={self.has_credentials})"

    # --- what the last call returned ------------------------------------------------------------------------
    @property
    def last_fetch(self) -> FetchInfo | None:
        """Provenance of the last answer ``get_json`` returned in this thread (None before the first)."""
        return getattr(self._local, "last_fetch", None)

    @property
    def last_fetched_at(self) -> datetime | None:
        info = self.last_fetch
        return None if info is None else info.fetched_at

    @property
    def last_from_cache(self) -> bool:
        info = self.last_fetch
        return bool(info and info.from_cache)

    def _record(self, epoch: float, from_cache: bool, stale: bool = False) -> None:
        self._local.last_fetch = FetchInfo(datetime.fromtimestamp(epoch, UTC), from_cache, stale)

    # --- the request ------------------------------------------------------------------------------------------
    def get_json(self, path: str, params: Params | None = None, *, none_on_404: bool = False) -> Any:
        """GET ``path`` and return the decoded JSON body.

        A fresh cache entry is returned without a request. ``none_on_404``: a 404 is an answer ("no such
        resource", e.g. no insolvency case), returned as None and cached like any other; otherwise it raises
        ``not_found``. Raises :class:`RiskSourceError` for everything else that is not a usable 2xx JSON body.
        """
        query = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in (params or {}).items()}
        key = self._cache_key("GET", path, query)
        entry = self._cache_read(key)
        now = self.options.clock()
        if entry is not None and now - entry.fetched_at_epoch < self.options.ttl_seconds:
            self._record(entry.fetched_at_epoch, from_cache=True)
            age = now - entry.fetched_at_epoch
            logger.debug("%s GET %s: served from cache (%.0f s old)", self.publisher, path, age)
            return entry.body
        try:
            body = self._fetch(path, query, none_on_404)
        except RiskSourceError as exc:
            if self.options.serve_stale_on_error and entry is not None and exc.is_transient:
                logger.warning(
                    "%s GET %s: %s; serving the cached answer from %s instead (stale)",
                    self.publisher,
                    path,
                    exc.kind,
                    datetime.fromtimestamp(entry.fetched_at_epoch, UTC).isoformat(),
                )
                self._record(entry.fetched_at_epoch, from_cache=True, stale=True)
                return entry.body
            raise
        fetched_at = self.options.clock()
        self._cache_write(key, path, query, body, fetched_at)
        self._record(fetched_at, from_cache=False)
        return body

    def _fetch(self, path: str, params: dict[str, Any], none_on_404: bool) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.options.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self.options.sleep,
            before_sleep=lambda state: self._log_retry(path, state),
            reraise=True,
        )
        try:
            return retrying(self._attempt, path, params, none_on_404)
        except _Retryable as exc:
            attempts = self.options.max_attempts
            raise self._error(
                exc.kind,
                path,
                exc.status,
                f"{exc.reason} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})",
                retry_after=exc.retry_after,
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        """``Retry-After`` when the server gave one, else exponential backoff with full jitter; both capped."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.options.max_wait_seconds)
        backoff = wait_random_exponential(multiplier=self.options.backoff_base, max=self.options.backoff_max)
        return min(backoff(state), self.options.max_wait_seconds)

    def _log_retry(self, path: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "%s GET %s: %s (attempt %d of %d); retrying in %.2f s",
            self.publisher,
            path,
            self._redact(str(exc)),
            state.attempt_number,
            self.options.max_attempts,
            wait,
        )

    def _attempt(self, path: str, params: dict[str, Any], none_on_404: bool) -> Any:
        self.limiter.wait()
        try:
            resp = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise _Retryable(
                "unavailable", None, f"timed out after {self.options.timeout:g} s ({type(exc).__name__})"
            ) from None
        except httpx.DecodingError as exc:  # a compressed body that does not decompress
            raise self._error("bad_payload", path, None, f"undecodable content encoding: {exc}") from None
        except httpx.TransportError as exc:
            raise _Retryable("unavailable", None, f"connection failed ({type(exc).__name__}: {exc})") from None
        except httpx.HTTPError as exc:  # too many redirects, ...
            raise self._error("unavailable", path, None, f"{type(exc).__name__}: {exc}") from None

        status = resp.status_code
        if 200 <= status < 300:
            return self._decode(resp.content, path, status)
        excerpt = self._excerpt(resp.content)
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise _Retryable("quota", status, f"HTTP 429 too many requests; body: {excerpt!r}", retry_after)
        if status >= 500 or status == 408:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise _Retryable("unavailable", status, f"HTTP {status}; body: {excerpt!r}", retry_after)
        if status == 404 and none_on_404:
            return None
        text = resp.content.decode("utf-8", errors="replace")
        detail = _api_error_text(text)
        detail = self._redact(detail) if detail else None
        kind: ErrorKind
        if status == 404:
            kind = "not_found"
        elif status in (401, 403):
            kind = "auth"
        elif 400 <= status < 500:
            kind = "bad_request"
        else:  # an unfollowed 3xx or an informational status: not an answer we can use
            kind = "unavailable"
        what = f"HTTP {status}" + (f": {detail}" if detail else "")
        raise self._error(kind, path, status, f"{what}; body: {excerpt!r}", detail=detail)

    def _decode(self, content: bytes, path: str, status: int) -> Any:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = content[exc.start : exc.start + 4]
            raise self._error(
                "bad_payload",
                path,
                status,
                f"body is not UTF-8: byte {bad[:1]!r} at offset {exc.start} ({exc.reason}); "
                f"body: {self._excerpt(content)!r}",
            ) from None
        if text.startswith("\ufeff"):
            text = text[1:]
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(
                "bad_payload",
                path,
                status,
                f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); body: {self._excerpt(content)!r}",
            ) from None

    # --- errors and secrets -------------------------------------------------------------------------------------
    def payload_error(self, path: str, message: str) -> RiskSourceError:
        """A ``bad_payload`` error for a body that is JSON but not the envelope a client expects."""
        return self._error("bad_payload", path, None, message)

    def _error(
        self,
        kind: ErrorKind,
        path: str,
        status: int | None,
        message: str,
        *,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> RiskSourceError:
        text = self._redact(f"{self.publisher} GET {path}: {kind}: {message}")
        return RiskSourceError(
            self.publisher, kind, text, status=status, path=path, detail=detail, retry_after=retry_after
        )

    @staticmethod
    def _secret_forms(key: str | None) -> tuple[str, ...]:
        if not key:
            return ()
        basic = base64.b64encode(f"{key}:".encode()).decode()
        return (key, basic)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _excerpt(self, content: bytes) -> str:
        return self._redact(content[: BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS])

    # --- disk cache -----------------------------------------------------------------------------------------
    def _cache_key(self, method: str, path: str, params: Mapping[str, Any]) -> str:
        """sha256 of method, endpoint, path and sorted params. Credentials travel in a header, never here."""
        material = json.dumps(
            [method.upper(), self._endpoint, path, sorted((k, _canonical(v)) for k, v in params.items())],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def _cache_file(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def _cache_read(self, key: str) -> _CacheEntry | None:
        file = self._cache_file(key)
        if file is None or not file.exists():
            return None
        try:
            stored = json.loads(file.read_text(encoding="utf-8"))
            return _CacheEntry(float(stored["fetched_at_epoch"]), stored["body"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: ignoring unreadable cache entry %s (%s)", self.publisher, file.name, exc)
            return None

    def _cache_write(self, key: str, path: str, params: Mapping[str, Any], body: Any, fetched_at: float) -> None:
        """Atomically (temporary file + ``os.replace``): a reader never sees half an entry, even across processes."""
        file = self._cache_file(key)
        if file is None:
            return
        entry = {
            "publisher": self.publisher,
            "method": "GET",
            "path": path,
            "params": {k: _canonical(v) for k, v in params.items()},
            "fetched_at": datetime.fromtimestamp(fetched_at, UTC).isoformat(),
            "fetched_at_epoch": fetched_at,
            "body": body,
        }
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{key[:16]}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(entry, out, ensure_ascii=False)
                os.replace(tmp, file)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a full or read-only disk costs us the cache, not the answer
            logger.warning("%s: could not write cache entry %s (%s)", self.publisher, file.name, exc)


def _canonical(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)
