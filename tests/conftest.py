"""Shared test set-up: no telemetry from any tool, where the read-only shared data lives, and the expensive worlds
built once per session (a parsed dbt manifest, a PostgreSQL cluster; the README demo run is in tests/e2e/).

In CI (``CI`` set, as ``.ci/run`` does) a missing prerequisite (``../shared``, PostgreSQL, a spec file) fails the
test instead of skipping it: a guarantee that silently did not run is not a pass. Locally it skips, with the reason
(``pytest -rs`` prints them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

for _key, _value in {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ[_key] = _value

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(condition: bool, reason: str) -> None:
    """Skip the test with ``reason`` when ``condition`` is false, or fail it in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI, missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require(SHARED.is_dir(), f"shared reference data not found at {SHARED}")
    return SHARED


# --- dbt: one parsed manifest for the session ------------------------------------------------------------------

DbtInvoke = Callable[[list[str]], Any]


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The project parsed once (DuckDB target). Every test warehouse is ``<data_dir>/warehouse.duckdb``, the name
    the manifest's relations carry, so the one manifest serves them all."""
    from relance import dbt
    from relance.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("dbt-parse"))
    run = dbt.run_dbt(settings, dbt.dbt_args(settings, ["parse"], as_of_date=date(2026, 1, 1)))
    manifest = run.result_object
    assert manifest is not None, "dbt parse returned no manifest"
    return manifest


@pytest.fixture(scope="session")
def dbt_invoke(dbt_manifest: Any) -> DbtInvoke:
    """``relance.dbt.run_dbt(..., invoke=dbt_invoke)`` without parsing the project again (a copy per call, so no
    state of one build leaks into the next)."""
    from dbt.cli.main import dbtRunner

    def invoke(args: list[str]) -> Any:
        return dbtRunner(manifest=dbt_manifest.deepcopy()).invoke(args)

    return invoke


# --- PostgreSQL: one throwaway cluster for the session ----------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://relance:<pw>@127.0.0.1:<port>/relance`` on a throwaway server for the session.

    The ``relance`` role may create databases, so each test makes its own isolated database on the same server.
    """
    from tests import pg

    try:
        pg.check_available()
    except pg.PostgresUnavailable as exc:
        require(False, f"no throwaway PostgreSQL: {exc}")
    with pg.running_postgres() as server:
        yield server.url()
