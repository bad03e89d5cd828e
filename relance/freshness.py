"""The freshness guard: reminders go out only on today's picture of a ledger that is still being delivered.

A run computes features, scores and reports for any as-of date, but it **sends** only when

* its as-of date is today in the configured time zone (``RELANCE_TIMEZONE``): a backfill, or an as-of date in the
  future, may remind a customer of an invoice paid since; ``--send-backfill`` sends anyway (the demo does: its
  data ends on a fixed date and its channels write to a local outbox);
* every source of the run brought new content (a batch with status ``loaded``: a changed file, new rows from a
  database) within ``RELANCE_MAX_SOURCE_AGE_HOURS``: a landing directory nobody has refreshed for weeks says
  nothing about what was paid since; ``--allow-stale-sources`` sends anyway.

:func:`send_verdict` says whether to send and, if not, every reason in words a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb


class FreshnessConfigError(ValueError):
    """The configured time zone is not an IANA name."""


@dataclass(frozen=True)
class SendVerdict:
    """Whether this run may send: ``reasons`` holds what stops it, ``overridden`` what a flag let through."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)


def today_in(timezone: str, now: datetime | None = None) -> date:
    """Today's date in ``timezone`` (``now`` is an aware datetime, default the current time)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FreshnessConfigError(f"RELANCE_TIMEZONE={timezone!r} is not an IANA time zone name") from exc
    return (now or datetime.now(UTC)).astimezone(zone).date()


def last_new_content(con: duckdb.DuckDBPyConnection, source_names: Iterable[str | None]) -> dict[str, datetime | None]:
    """When each source last brought new content (its latest ``loaded`` batch, UTC), ``None`` if never."""
    names = sorted({n or "" for n in source_names})
    rows = dict(
        con.execute(
            "SELECT coalesce(source_name, ''), max(loaded_at) FROM ops.ingest_batches "
            "WHERE status = 'loaded' AND list_contains(?, coalesce(source_name, '')) GROUP BY 1",
            [names],
        ).fetchall()
    )
    return {n: rows.get(n) for n in names}


def send_verdict(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    source_names: Iterable[str | None],
    timezone: str,
    max_source_age_hours: float,
    send_backfill: bool = False,
    allow_stale_sources: bool = False,
    now: datetime | None = None,
) -> SendVerdict:
    """Decide whether the run as of ``as_of`` may send reminders (see the module docstring)."""
    now = now or datetime.now(UTC)
    blocking: list[str] = []
    overridden: list[str] = []
    today = today_in(timezone, now)
    if as_of != today:
        what = "a backfill" if as_of < today else "in the future"
        reason = f"as-of date {as_of} is not today ({today} in {timezone}): {what}"
        (overridden if send_backfill else blocking).append(
            reason + ("" if send_backfill else " (--send-backfill sends anyway)")
        )
    limit = timedelta(hours=max_source_age_hours)
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    for name, last in last_new_content(con, source_names).items():
        if last is not None and naive_now - last <= limit:
            continue
        age = (
            "never"
            if last is None
            else f"{(naive_now - last).total_seconds() / 3600:.0f} h ago ({last:%Y-%m-%d %H:%M} UTC)"
        )
        reason = f"source {name or '(unnamed)'} last brought new data {age}, over {max_source_age_hours:g} h"
        (overridden if allow_stale_sources else blocking).append(
            reason + ("" if allow_stale_sources else " (--allow-stale-sources sends anyway)")
        )
    return SendVerdict(allowed=not blocking, reasons=blocking, overridden=overridden)
