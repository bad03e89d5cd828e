"""`relance import` as a user runs it: a dry run shows what would load and writes nothing; a real run loads,
validates and reconciles; bad input gets a specific message and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.e2e


def _relance(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "relance"
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _relance_all(*runs: tuple[list[str], dict[str, str], Path]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at the same time (each is seconds of imports on one core): their results in order."""
    exe = Path(sys.executable).parent / "relance"
    procs = [
        (
            args,
            subprocess.Popen(
                [str(exe), *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )  # fmt: skip
        for args, env, cwd in runs
    ]
    done = []
    for args, proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's shell: no relance, Prefect or MLflow settings; data under the working directory (tmp_path)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return base | {"COLUMNS": "200"}


def _count(warehouse: Path, sql: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchone()[0]


def test_ibm_dry_run_then_import(env: dict[str, str], shared_dir: Path, tmp_path: Path) -> None:
    ibm = shared_dir / "data" / "ibm_accounts_receivable.csv"
    # the dry run in a directory of its own, alongside the real import: it must create nothing there
    dry_cwd = tmp_path / "dry"
    dry_cwd.mkdir()
    dry, real = _relance_all(
        (["import", str(ibm), "--profile", "ibm_ar", "--dry-run"], env, dry_cwd),
        (["import", str(ibm), "--profile", "ibm_ar"], env, tmp_path),
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would load" in dry.stdout and "dry run, nothing written" in dry.stdout
    assert "2,466" in dry.stdout and "validation:" in dry.stdout
    assert not (dry_cwd / "data" / "warehouse.duckdb").exists(), "a dry run creates no warehouse"

    warehouse = tmp_path / "data" / "warehouse.duckdb"
    assert real.returncode == 0, real.stdout + real.stderr
    assert _count(warehouse, "select count(*) from raw.invoices") == 2466
    assert _count(warehouse, "select count(distinct customer_id) from raw.customers") == 100
    assert (
        _count(
            warehouse,
            "select count(*) from ops.ingest_batches where rows_read <> rows_loaded + rows_unchanged "
            "+ rows_quarantined",
        )
        == 0
    )
    # importing the same file again changes nothing: tests/integration/test_ibm_import.py (through import_source)


def test_bad_input_is_a_specific_message_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "not_a_fec.txt"
    bad.write_text("JournalCode|Debit\nVE|12,00\n", encoding="utf-8")
    out = _relance(["import", str(bad), "--profile", "fec"], env, tmp_path)
    assert out.returncode == 2
    assert "cannot import" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "EcritureDate" in out.stdout  # names a missing mandatory column


def test_mistakes_on_the_command_line_are_messages_with_exit_code_2(env: dict[str, str], tmp_path: Path) -> None:
    """No traceback for a bad date, a bad setting, a flag relance owns, or an empty landing directory."""
    bad_date, bad_setting, owned, empty, version = _relance_all(
        (["run", "daily", "--as-of", "2026-13-01"], env, tmp_path),
        (["dbt", "--show", "build"], env | {"RELANCE_PG_PORT": "abc"}, tmp_path),
        (["dbt", "build", "--vars", "{}"], env, tmp_path),
        (["run", "daily"], env, tmp_path),  # no exports in ./data/landing yet
        (["--version"], env, tmp_path),
    )
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
    assert bad_setting.returncode == 2 and "RELANCE_PG_PORT" in bad_setting.stdout
    assert owned.returncode == 2 and "--vars come from the settings" in " ".join(owned.stdout.split())
    assert empty.returncode == 2 and "landing" in empty.stdout and "missing or empty" in empty.stdout
    assert version.returncode == 0 and version.stdout.startswith("relance 0.")
    for out in (bad_date, bad_setting, owned, empty):
        assert "Traceback" not in out.stdout + out.stderr


def test_a_failed_import_blocks_until_an_operator_quarantines_it(env: dict[str, str], tmp_path: Path) -> None:
    """Issue 9 item 1 from the command line: the failed batch is kept, listed, blocks, and is excluded by hand."""
    from tests.integration.test_validation import CUSTOMERS, INVOICES, write_landing

    landing = write_landing(tmp_path / "exports", CUSTOMERS, [*INVOICES, INVOICES[0]])  # invoice I1 twice
    imported = _relance(["import", str(landing)], env, tmp_path)
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert "blocks every daily run" in imported.stdout and "FAILED" in imported.stdout

    listed = _relance(["batches", "--state", "failed"], env, tmp_path)
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert "1 batch(es) block the daily run" in listed.stdout
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (bad,) = con.sql("select batch_id from ops.ingest_batches where validation_state = 'failed'").fetchone()
    assert bad in listed.stdout

    done = _relance(["batches", "quarantine", bad, "--reason", "duplicate export, ticket 42"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quarantined" in done.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        state, note = con.sql(
            "select validation_state, state_note from ops.ingest_batches where batch_id = ?", params=[bad]
        ).fetchone()
    assert state == "quarantined" and "ticket 42" in note


def test_a_reminder_in_doubt_is_listed_and_settled_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    """A run died between claiming a reminder and recording the outcome: the operator sees it and settles it."""
    from datetime import datetime

    from relance.send_ledger import SendLedger

    ledger_path = tmp_path / "data" / "ledger" / "sends.sqlite"
    with SendLedger(ledger_path) as ledger:
        ledger.claim("k-stuck", "email", invoice_id="F-1", customer_id="C-1", step="J+15")
        ledger.claim("k-done", "email", invoice_id="F-2", customer_id="C-2", step="J+15")
        ledger.sent("k-done", provider_message_id="sg-2", outbox_path=None, attempts=1, at=datetime(2026, 11, 30))

    listed = _relance(["sends"], env, tmp_path)
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert "k-stuck" in listed.stdout and "k-done" not in listed.stdout and "1 reminder(s) in doubt" in listed.stdout

    settled = _relance(
        ["sends", "reconcile", "k-stuck", "--status", "failed", "--note", "not in the feed"], env, tmp_path
    )
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "sending -> failed" in settled.stdout
    with SendLedger(ledger_path) as ledger:
        assert ledger.get("k-stuck").status == "failed"
        assert any("not in the feed" in (e.get("note") or "") for e in ledger.events("k-stuck"))
        assert ledger.get("k-done").status == "sent"
