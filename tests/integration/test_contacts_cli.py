"""`relance contacts`: a collections manager sets and lifts do-not-contact flags; the rows are what the contact state
view and the send gate read (ops.contact_suppressions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relance import ops
from relance.cli import app
from relance.warehouse import connection

pytestmark = pytest.mark.integration


def test_suppress_list_and_lift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def relance(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    assert relance("contacts", "suppress", "C1", "--reason", "asked by phone").exit_code == 0
    again = relance("contacts", "suppress", "C1", "--reason", "twice")
    assert "already suppressed" in again.output
    assert relance("contacts", "suppress", "C2", "--reason", "x", "--channel", "fax").exit_code == 2
    assert relance("contacts", "lift", "C3", "--channel", "email").exit_code == 0  # overrides a provider opt-out
    listing = relance("contacts", "list")
    assert "asked by phone" in listing.output and "C3" in listing.output
    assert "1 suppression(s) lifted" in relance("contacts", "lift", "C1").output

    with connection(tmp_path / "data" / "warehouse.duckdb") as con:
        rows = ops.read_suppressions(con)
    by_customer = {r["customer_id"]: r for r in rows.to_dict("records")}
    assert set(by_customer) == {"C1", "C3"}
    assert by_customer["C1"]["channel"] == "*" and by_customer["C1"]["lifted_at"] is not None
    assert by_customer["C3"]["lifted_at"] == by_customer["C3"]["created_at"], "a lifted marker for the opt-out"


def test_refused_while_a_daily_run_holds_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("RELANCE_DATA_DIR", str(data))
    holder = subprocess.Popen(  # another process: the lock is re-entrant within one
        [
            sys.executable,
            "-c",
            "import sys, time, datetime; from relance.runs import daily_run_lock\n"
            f"with daily_run_lock({str(data)!r}, as_of_date=datetime.date(2026, 10, 30)):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(app, ["contacts", "suppress", "C1", "--reason", "x"])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 3, result.output
    assert "refused" in result.output
