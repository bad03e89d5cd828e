"""Shared test set-up: no telemetry from any tool, where the read-only shared data lives, and the expensive worlds
built once per session (a demo export and its raw warehouse, a parsed dbt manifest, a PostgreSQL cluster; the
README demo run is in tests/e2e/conftest.py).

In CI (``CI`` set, as ``.ci/run`` does) a missing prerequisite (``../shared``, PostgreSQL, a spec file) fails the
test instead of skipping it: a guarantee that silently did not run is not a pass. Locally it skips, with the reason
(``pytest -rs`` prints them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

for _key, _value in {
    # the end-to-end demo runs in the background beside the other tests (below): two LightGBM trainings can meet
    # on the 2 cores, and OpenMP threads that spin while waiting then slow each other down several times over
    "OMP_WAIT_POLICY": "PASSIVE",
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


# --- order and the background end-to-end run ----------------------------------------------------------------

_LAYER_ORDER = {"e2e": 2, "integration": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests first, then integration, then end to end: fast feedback first, and the end-to-end checks last, by
    when the demo run they read has finished in the background."""
    items.sort(key=lambda item: max((o for m, o in _LAYER_ORDER.items() if item.get_closest_marker(m)), default=0))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the session's demo run (tests/e2e/conftest.py) now if a selected test reads it: it is all
    subprocesses, so it runs beside the unit and integration tests instead of after them."""
    if session.config.option.collectonly:
        return
    if any("demo_run" in getattr(item, "fixturenames", ()) for item in session.items):
        import tempfile

        from tests.e2e.conftest import start_demo_in_background

        start_demo_in_background(session.config, REPO_ROOT, Path(tempfile.mkdtemp(prefix="relance-e2e-")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.e2e.conftest import DEMO_KEY

    background = session.config.stash.get(DEMO_KEY, None)
    if background is not None:
        background.stop()
        if exitstatus == 0:
            shutil.rmtree(background.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require(SHARED.is_dir(), f"shared reference data not found at {SHARED}")
    return SHARED


# --- one small demo export and its raw warehouse for the session --------------------------------------------

DEMO_AS_OF = date(2026, 10, 31)


@pytest.fixture(scope="session")
def demo_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded demo export (200 customers, 3,000 invoices over the 12 months to 2026-10-31), generated once.

    Read-only: a test that changes files copies the directory first."""
    from relance.demo import generate_demo

    root = tmp_path_factory.mktemp("demo-landing")
    generate_demo(
        root / "landing", root / "truth", n_customers=200, n_invoices=3000, months=12, end_date=DEMO_AS_OF, seed=11
    )
    return root / "landing"


@pytest.fixture(scope="session")
def demo_raw_warehouse(demo_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`demo_landing` loaded once by the real loader into raw.* (no dbt yet). Never written to: tests take a
    copy with :func:`copy_warehouse`."""
    import duckdb

    from relance.importer import load_landing

    path = tmp_path_factory.mktemp("demo-raw") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        load_landing(con, demo_landing, flow_run_id="flow-seed")
    return path


def copy_warehouse(source: Path, data_dir: Path) -> Path:
    """A private copy of a warehouse as ``<data_dir>/warehouse.duckdb`` (the name the dbt manifest carries)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(source, data_dir / "warehouse.duckdb"))


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


# --- Prefect: one test API for the session --------------------------------------------------------------------


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """Prefect's test harness (a temporary API server and database) started once for the tests that read runs,
    tasks or artifacts back from the API: its start-up costs seconds. In-process only: subprocesses (the CLI, the
    end-to-end runs) never see it."""
    from prefect.testing.utilities import prefect_test_harness

    # a generous start-up timeout: the machine may be busy, and a slow start is no failure of the code under test
    with prefect_test_harness(server_startup_timeout=180):
        yield
