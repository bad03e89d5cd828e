"""The freshness guard (issue 9, item 3). Reproduction: a backfill date, a future --as-of, or a landing directory
unchanged for weeks still planned and sent reminders for invoices that may have been paid since."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from relance import ops
from relance.freshness import FreshnessConfigError, send_verdict, today_in
from relance.warehouse import ensure_schemas

# 23:30 UTC on 30 November is already 1 December in Paris
NOW = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
PARIS_TODAY = date(2026, 12, 1)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    ensure_schemas(c)
    yield c
    c.close()


def _batch(con, source: str, *, hours_ago: float, status: str = "loaded") -> None:
    at = (NOW - timedelta(hours=hours_ago)).replace(tzinfo=None)
    ops.record_batch(
        con,
        ops.BatchRecord(
            f"{source}-{hours_ago}",
            "invoices",
            "f.csv",
            "h",
            1,
            1 if status == "loaded" else 0,
            0 if status == "loaded" else 1,
            0,
            status,
            source,
            at,
            None,
        ),  # fmt: skip
    )


def _verdict(con, as_of: date, sources=("erp",), **kw):
    return send_verdict(
        con, as_of=as_of, source_names=sources, timezone="Europe/Paris", max_source_age_hours=72, now=NOW, **kw
    )


def test_today_is_the_configured_time_zones_day() -> None:
    assert today_in("Europe/Paris", NOW) == PARIS_TODAY
    assert today_in("UTC", NOW) == date(2026, 11, 30)
    with pytest.raises(FreshnessConfigError, match="Mars/Olympus"):
        today_in("Mars/Olympus", NOW)


def test_a_fresh_run_for_today_may_send(con) -> None:
    _batch(con, "erp", hours_ago=2)
    verdict = _verdict(con, PARIS_TODAY)
    assert verdict.allowed and verdict.reasons == [] and verdict.overridden == []


@pytest.mark.parametrize("as_of, word", [(date(2026, 10, 31), "a backfill"), (date(2026, 12, 2), "in the future")])
def test_a_backfill_or_a_future_date_sends_nothing_unless_asked(con, as_of: date, word: str) -> None:
    _batch(con, "erp", hours_ago=2)
    held = _verdict(con, as_of)
    assert not held.allowed
    assert held.reasons == [
        f"as-of date {as_of} is not today (2026-12-01 in Europe/Paris): {word} (--send-backfill sends anyway)"
    ]
    asked = _verdict(con, as_of, send_backfill=True)
    assert asked.allowed and len(asked.overridden) == 1


def test_a_source_that_brought_nothing_new_for_weeks_is_stale(con) -> None:
    _batch(con, "erp", hours_ago=2)
    _batch(con, "landing", hours_ago=24 * 21)  # its last new file, three weeks ago...
    _batch(con, "landing", hours_ago=1, status="unchanged")  # ...read again today, unchanged
    held = _verdict(con, PARIS_TODAY, sources=["erp", "landing"])
    assert not held.allowed
    assert len(held.reasons) == 1 and held.reasons[0].startswith("source landing last brought new data 504 h ago")
    assert _verdict(con, PARIS_TODAY, sources=["erp", "landing"], allow_stale_sources=True).allowed


def test_a_source_never_loaded_is_stale_and_each_reason_is_listed(con) -> None:
    held = _verdict(con, date(2026, 11, 1), sources=["erp"])
    assert len(held.reasons) == 2
    assert "never" in held.reasons[1]


def test_the_cli_says_why_nothing_was_sent(tmp_path, capsys) -> None:
    import json
    from pathlib import Path

    from relance import cli
    from relance.runs import DailyResult

    held = (
        "as-of date 2026-10-31 is not today (2026-12-01 in Europe/Paris): a backfill (--send-backfill sends anyway)",
    )
    result = DailyResult(date(2026, 10, 31), None, 0, 0, "inv", None, False, "1", 10, 0, 0, 0, Path("r.html"), held)
    cli.console.width = 200
    cli._print_result(result, tmp_path / "result.json")
    out = capsys.readouterr().out
    assert "nothing was sent" in out and "--send-backfill sends anyway" in out
    assert json.loads((tmp_path / "result.json").read_text())["sending_held"] == list(held)


def test_the_cli_says_when_no_model_could_be_trained(tmp_path, capsys) -> None:
    from pathlib import Path

    from relance import cli
    from relance.runs import DailyResult

    note = "not trained: test rows hold a single is_late_30d class [0]; baseline cust_late_share serves as champion"
    result = DailyResult(
        date(2013, 12, 31), None, 4, 0, "inv", "1", True, "1", 13, 0, 0, 0, Path("r.html"), (), False, note
    )
    cli.console.width = 200
    cli._print_result(result, None)
    out = capsys.readouterr().out
    assert "no model was trained" in out and "baseline cust_late_share serves as champion" in out
