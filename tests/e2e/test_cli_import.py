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


@pytest.fixture
def env(tmp_path: Path, repo_root: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_"))}
    return base | {"RELANCE_DATA_DIR": str(tmp_path / "data"), "RELANCE_PROJECT_ROOT": str(repo_root), "COLUMNS": "200"}


def _count(warehouse: Path, sql: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchone()[0]


def test_ibm_dry_run_then_import(env: dict[str, str], repo_root: Path, shared_dir: Path, tmp_path: Path) -> None:
    ibm = shared_dir / "data" / "ibm_accounts_receivable.csv"
    dry = _relance(["import", str(ibm), "--profile", "ibm_ar", "--dry-run"], env, repo_root)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would load" in dry.stdout and "dry run, nothing written" in dry.stdout
    assert "2,466" in dry.stdout and "validation:" in dry.stdout
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    assert _count(warehouse, "select count(*) from raw.invoices") == 0

    real = _relance(["import", str(ibm), "--profile", "ibm_ar"], env, repo_root)
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


def test_bad_input_is_a_specific_message_not_a_traceback(env: dict[str, str], repo_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "not_a_fec.txt"
    bad.write_text("JournalCode|Debit\nVE|12,00\n", encoding="utf-8")
    out = _relance(["import", str(bad), "--profile", "fec"], env, repo_root)
    assert out.returncode == 2
    assert "cannot import" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "EcritureDate" in out.stdout  # names a missing mandatory column
