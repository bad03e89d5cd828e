"""No marked test secret appears in any output of the session's demo run (tests/e2e/conftest.py).

The runs carried a SendGrid key (the demo's ``.env``, the rerun's environment), a password in the MLflow tracking
URI and a PostgreSQL password (:class:`~tests.e2e.conftest.MarkedSecrets`). Searched: what every command printed,
every file the sequence wrote, bytes-wise (the DuckDB warehouse, MLflow's SQLite database and artifacts, Prefect's
``prefect.db`` with flow-run parameters, logs and artifacts, the outbox, reports, GX data docs, dbt artefacts, the
send ledger), every table of the DuckDB and SQLite databases dumped to text (compression cannot hide a value), and
the command lines of the servers ``relance ui`` started (what ``ps`` shows any user).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import DemoRun

pytestmark = pytest.mark.e2e


def _files(demo_run: DemoRun) -> list[Path]:
    """Every file the sequence wrote, but the wheel's venv and build, and the ``.env`` that holds the key."""
    skip = {demo_run.wheel_bin.parent, demo_run.tmp / "dist"}
    env_file = demo_run.workdir / ".env"
    return sorted(
        p
        for p in demo_run.tmp.rglob("*")
        if p.is_file() and p != env_file and not any(s == p or s in p.parents for s in skip)
    )


def _dump_duckdb(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.sql("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        return "\n".join(
            con.sql(f'SELECT * FROM "{schema}"."{table}"').df().to_csv(index=False) for schema, table in tables
        )


def _dump_sqlite(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def _dumps(files: list[Path]) -> dict[str, str]:
    """Each database among ``files`` as text: every row of every table."""
    dumps = {}
    for path in files:
        with path.open("rb") as f:
            head = f.read(16)
        if head.startswith(b"SQLite format 3"):
            dumps[f"{path} (tables)"] = _dump_sqlite(path)
        elif head[8:12] == b"DUCK":
            dumps[f"{path} (tables)"] = _dump_duckdb(path)
    return dumps


def test_no_marked_secret_in_any_output_of_the_demo_runs(demo_run: DemoRun) -> None:
    secrets = demo_run.secrets.values()
    files = _files(demo_run)
    assert any(p.name == "prefect.db" for p in files) and any(p.name == "mlflow.db" for p in files)
    printed = {
        "relance demo": demo_run.demo.output,
        "the concurrent run": demo_run.concurrent.output,
        "the rerun": demo_run.rerun.output,
        "the run on the corrupted ledger": demo_run.bad.output,
        **{f"ps of {pid}": cmdline for pid, cmdline in demo_run.ui.cmdlines.items()},
    }
    leaks = [f"{where}: {name}" for where, text in printed.items() for name, s in secrets.items() if s in text]
    for path in files:
        data = path.read_bytes()
        leaks += [f"{path}: {name}" for name, s in secrets.items() if s.encode() in data]
    for where, text in _dumps(files).items():
        leaks += [f"{where}: {name}" for name, s in secrets.items() if s in text]
    assert not leaks, "marked secrets found:\n" + "\n".join(leaks)


def test_the_secrets_were_there_to_leak(demo_run: DemoRun) -> None:
    """Not a vacuous search: the runs used the marked MLflow URI, passed settings holding the secrets to Prefect
    as flow-run parameters (masked there), and `relance ui` started an MLflow server on that URI."""
    data = demo_run.data
    assert (data / "mlflow" / "mlflow.db").stat().st_size > 0  # where the marked URI pointed
    prefect = "\n".join(_dump_sqlite(p) for p in data.glob("prefect/*.db"))
    assert re.search(r'"mlflow_tracking_uri"\s*:\s*"\*{10}"', prefect), "no masked MLflow URI in flow-run parameters"
    assert re.search(r'"sendgrid_api_key"\s*:\s*"\*{10}"', prefect), "the rerun's key is not a masked parameter"
    mlflow_servers = [c for c in demo_run.ui.cmdlines.values() if "mlflow" in c and " ui" in c]
    assert mlflow_servers, demo_run.ui.cmdlines
    assert all("--backend-store-uri" not in c for c in mlflow_servers), mlflow_servers
