"""dbt's one owner: the arguments, the profile and the runs, all derived from :class:`~relance.settings.Settings`.

Flows, tests, benchmarks and ``relance dbt`` go through this module; nothing else builds dbt arguments, writes a
profile or sets environment variables for dbt.

* :func:`dbt_args` is pure: settings + what to build -> the argument list. Every var the project reads is passed
  on every call (:func:`dbt_vars`); ``dbt_project.yml`` holds no defaults that could drift from the settings.
* :func:`write_profile` writes ``<data_dir>/dbt/profiles.yml`` from the settings (DuckDB warehouse and memory
  cap, the PostgreSQL target's host, port, user and database). The PostgreSQL password is the one thing the
  profile does not hold: dbt reads ``RELANCE_PG_PASSWORD`` from the environment when it connects.
* :func:`run_dbt` writes the profile, invokes dbt in process (plain ``dbtRunner``, or the ``invoke`` of a
  ``prefect_dbt.PrefectDbtRunner`` a flow hands in, so every node becomes a Prefect task) and returns the failed
  nodes; builds keep their artefacts under ``<data_dir>/dbt/runs/<invocation_id>/`` so ids stamped on
  predictions and reminders keep resolving.

By hand: ``relance dbt build --select marts`` runs dbt with the same profile and vars; ``relance dbt --show``
prints the equivalent plain ``dbt`` command.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import yaml

from relance.files import write_text_atomic
from relance.lineage import archive_dbt_invocation
from relance.runs import StopRun
from relance.settings import Settings

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

log = logging.getLogger(__name__)

PROFILE_NAME = "relance"  # dbt_project.yml: `profile: relance`
PROFILE_FILE = "profiles.yml"
PG_PASSWORD_ENV = "RELANCE_PG_PASSWORD"
POST_SCORING_TAG = "tag:post_scoring"

Target = Literal["duckdb", "postgres"]
#: ``features``: everything the models read (staging -> marts -> ml); ``serving``: the relations that join the
#: predictions (tag ``post_scoring``), built after scoring; ``all``: both, for a project check.
Stage = Literal["features", "serving", "all"]
TARGETS: tuple[Target, ...] = ("duckdb", "postgres")
#: dbt flags that come from the settings: a caller passing one of them would run against another project, profile
#: or set of vars than the one relance derives (``relance dbt`` refuses them).
OWNED_FLAGS: tuple[str, ...] = ("--project-dir", "--profiles-dir", "--target-path", "--log-path", "--target", "--vars")
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


def dbt_vars(settings: Settings, as_of_date: date) -> dict[str, Any]:
    """Every var the dbt project reads, from the settings: a run never relies on a default in the project."""
    return {
        "as_of_date": as_of_date.isoformat(),
        "snapshot_interval_days": settings.snapshot_interval_days,
        "history_start_days": settings.history_start_days,
        "horizon_days": settings.horizon_days,
        "target_kind": settings.target_kind,
        "target_days": settings.target_days,
        "claim_deadline_months": settings.claim_deadline_months,
        "risk_recent_days": settings.risk_recent_days,
        "degrading_min_days": settings.degrading_min_days,
        "risk_stale_after_hours": settings.risk_stale_after_hours,
        "promise_grace_days": settings.promise_grace_days,
        "late_payment_cost_rate": settings.late_payment_cost_rate,
    }


def _selection(stage: Stage | None) -> list[str]:
    if stage == "features":
        return ["--exclude", POST_SCORING_TAG]
    if stage == "serving":
        return ["--select", POST_SCORING_TAG]
    return []


def dbt_args(
    settings: Settings,
    command: Sequence[str],
    *,
    as_of_date: date,
    stage: Stage | None = None,
    full_refresh: bool = False,
    unit_tests: bool = True,
    target: Target = "duckdb",
    extra: Sequence[str] = (),
) -> list[str]:
    """The dbt argument list for ``command`` (``["build"]``, ``["docs", "generate"]``, ...). Pure.

    ``stage`` selects the pre- or post-scoring part of the project; ``unit_tests=False`` skips the dbt unit tests
    (they check the SQL on fixed inputs, so the test suite runs them, not every daily build); ``extra`` are
    further dbt arguments (``--select``, ``--fail-fast``, ...), passed last.
    """
    if not command:
        raise ValueError("a dbt command is required, e.g. ['build']")
    if target not in TARGETS:
        raise ValueError(f"unknown dbt target {target!r}; expected one of {', '.join(TARGETS)}")
    args = [
        *command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_profiles_dir),
        "--target-path",
        str(settings.dbt_target_dir),
        "--log-path",
        str(settings.dbt_log_dir),
        "--target",
        target,
    ]
    args += _selection(stage)
    if full_refresh:
        args.append("--full-refresh")
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    args += ["--vars", json.dumps(dbt_vars(settings, as_of_date), sort_keys=True)]
    args += list(extra)
    return args


# --- the builds the product runs --------------------------------------------------------------------------------


def daily_build_args(settings: Settings, as_of_date: date, *, full_refresh: bool = False) -> list[str]:
    """The daily pre-scoring build: new grid dates and the run's own date (``full_refresh``: every date)."""
    return dbt_args(
        settings, ["build"], as_of_date=as_of_date, stage="features", full_refresh=full_refresh, unit_tests=False
    )


def serving_build_args(settings: Settings, as_of_date: date) -> list[str]:
    """The post-scoring build: worklist and report relations that join the day's predictions."""
    return dbt_args(settings, ["build"], as_of_date=as_of_date, stage="serving", unit_tests=False)


def backtest_build_args(settings: Settings, as_of_date: date) -> list[str]:
    """Features as of a past date, every grid date rebuilt from raw: what a backtest at that cut-off sees.

    Point ``settings`` at a warehouse of its own (``data_dir``): a full refresh drops scoring dates off the grid.
    """
    return dbt_args(settings, ["build"], as_of_date=as_of_date, stage="features", full_refresh=True, unit_tests=False)


def docs_args(settings: Settings, as_of_date: date) -> list[str]:
    """``dbt docs generate`` into the target directory (``relance ui`` serves it)."""
    return dbt_args(settings, ["docs", "generate"], as_of_date=as_of_date)


# --- the profile ------------------------------------------------------------------------------------------------


def profile(settings: Settings) -> dict[str, Any]:
    """The ``profiles.yml`` content for these settings. Pure."""
    return {
        PROFILE_NAME: {
            "target": "duckdb",
            "outputs": {
                "duckdb": {
                    "type": "duckdb",
                    "path": str(settings.warehouse),
                    "schema": "main",
                    "threads": settings.dbt_threads,
                    # DuckDB spills to <warehouse>.tmp past this (bench/bench_features.py)
                    "settings": {"memory_limit": settings.duckdb_memory_limit},
                },
                # dbt renders only the selected output: the duckdb target never needs the password variable
                "postgres": {
                    "type": "postgres",
                    "host": settings.pg_host,
                    "port": settings.pg_port,
                    "user": settings.pg_user,
                    "password": "{{ env_var('" + PG_PASSWORD_ENV + "') }}",
                    "dbname": settings.pg_dbname,
                    "schema": "main",
                    "threads": settings.dbt_threads,
                },
            },
        }
    }


PROFILE_HEADER = (
    "# Written by relance from its settings (RELANCE_* variables, .env) before every dbt run: edits here are\n"
    "# overwritten. The PostgreSQL password is read from the environment variable "
    f"{PG_PASSWORD_ENV}.\n"
)


def write_profile(settings: Settings) -> str:
    """Write ``<data_dir>/dbt/profiles.yml`` (atomically; unchanged files are not rewritten); return its path."""
    path = settings.dbt_profiles_dir / PROFILE_FILE
    text = PROFILE_HEADER + yaml.safe_dump(profile(settings), sort_keys=False)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
    return str(path)


# --- running ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedNode:
    """A model, seed, snapshot or test that did not succeed."""

    unique_id: str
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.unique_id}: {self.status}" + (f" ({self.message})" if self.message else "")


@dataclass(frozen=True)
class DbtRun:
    """What one dbt invocation did: its arguments, whether it succeeded, its failed nodes, its invocation id
    (builds only: ``None`` for commands that write no run results)."""

    args: list[str]
    success: bool
    invocation_id: str | None = None
    failed: list[FailedNode] = field(default_factory=list)
    error: str | None = None
    #: what dbt returned (the ``Manifest`` of ``parse``, the results of ``build``), for callers that need it
    result_object: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        what = " ".join(a for a in self.args[:2] if not a.startswith("-"))
        if self.success:
            return f"dbt {what} succeeded (invocation {self.invocation_id})"
        lines = [str(f) for f in self.failed] or [self.error or "no details"]
        return f"dbt {what} failed:\n  - " + "\n  - ".join(lines)


class DbtError(StopRun):
    """A dbt invocation failed; ``run`` holds the failed nodes."""

    def __init__(self, run: DbtRun) -> None:
        self.run = run
        super().__init__(run.describe())


Invoke = Callable[[list[str]], "dbtRunnerResult"]


@dataclass(frozen=True)
class NodeTiming:
    unique_id: str
    status: str
    seconds: float


def _node_results(result_object: Any) -> list[tuple[str, str, float, str]]:
    """(unique id, status, seconds, message) of every node dbt reports in a run's result (none for ``parse``)."""
    return [
        (
            r.node.unique_id,
            str(getattr(r.status, "value", r.status)),
            float(r.execution_time or 0.0),
            (r.message or "").strip(),
        )
        for r in getattr(result_object, "results", None) or []
    ]


def failed_nodes(result: Any) -> list[FailedNode]:
    """The nodes of a ``dbtRunnerResult`` whose status is an error or a failed test."""
    return [
        FailedNode(uid, status, message)
        for uid, status, _, message in _node_results(getattr(result, "result", None))
        if status in FAILED_STATUSES
    ]


def slowest_nodes(run: DbtRun, n: int) -> list[NodeTiming]:
    """The ``n`` nodes of a run that took longest, from what dbt returned."""
    timings = [NodeTiming(uid, status, seconds) for uid, status, seconds, _ in _node_results(run.result_object)]
    return sorted(timings, key=lambda t: -t.seconds)[:n]


def run_dbt(settings: Settings, args: list[str], *, invoke: Invoke | None = None, check: bool = True) -> DbtRun:
    """Write the profile, run dbt in process with ``args`` (from :func:`dbt_args`), return what it did.

    ``invoke`` runs the arguments (default: a new ``dbtRunner().invoke``; flows pass a ``PrefectDbtRunner``'s, and
    tests a ``dbtRunner(manifest=...)``'s to skip parsing). The artefacts of a ``build`` are archived by invocation
    id. With ``check`` (the default) a failure raises :class:`DbtError` listing the failed nodes.
    """
    write_profile(settings)
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    if invoke is None:
        from dbt.cli.main import dbtRunner

        invoke = dbtRunner().invoke
    result = invoke(list(args))
    exception = getattr(result, "exception", None)
    invocation_id = None
    if args and args[0] == "build" and getattr(result, "result", None) is not None:
        invocation_id = archive_dbt_invocation(settings.dbt_target_dir, settings.dbt_runs_dir)
    run = DbtRun(
        args=list(args),
        success=bool(result.success),
        invocation_id=invocation_id,
        failed=failed_nodes(result),
        error=None if exception is None else str(exception),
        result_object=getattr(result, "result", None),
    )
    if check and not run.success:
        raise DbtError(run)
    log.info(run.describe())
    return run


def shell_command(args: Sequence[str]) -> str:
    """The plain ``dbt`` command line for ``args``, quoted for a POSIX shell (for people running dbt by hand)."""
    return shlex.join(["dbt", *args])
