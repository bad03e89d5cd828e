"""relance.dbt, the one owner of dbt: the arguments and the profile derived from the settings, pinned."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from relance import dbt
from relance.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        project_root=tmp_path / "checkout",
        data_dir=tmp_path / "data",
        snapshot_interval_days=14,
        history_start_days=90,
        horizon_days=45,
        duckdb_memory_limit="6GB",
        pg_host="db.internal",
        pg_port=6543,
        pg_user="collector",
        pg_dbname="ar",
        dbt_threads=4,
    )


def _paths(tmp_path: Path) -> list[str]:
    return [
        "--project-dir",
        str(tmp_path / "checkout" / "dbt_project"),
        "--profiles-dir",
        str(tmp_path / "data" / "dbt"),
        "--target-path",
        str(tmp_path / "data" / "dbt" / "target"),
        "--log-path",
        str(tmp_path / "data" / "dbt" / "logs"),
    ]


VARS_2026_10_31 = (
    '{"as_of_date": "2026-10-31", "claim_deadline_months": 2, "degrading_min_days": 10, "history_start_days": 90, '
    '"horizon_days": 45, "late_payment_cost_rate": 0.08, "promise_grace_days": 3, "risk_recent_days": 365, '
    '"risk_stale_after_hours": 48, "snapshot_interval_days": 14, '
    '"target_days": 45, "target_kind": "unpaid_after_due"}'
)


def test_the_late_payment_cost_rate_comes_from_the_settings(settings: Settings) -> None:
    """report_late_payment_cost prices lateness at the configured rate, not at a default of the project."""
    assert dbt.dbt_vars(settings, date(2026, 10, 31))["late_payment_cost_rate"] == 0.08
    other = settings.model_copy(update={"late_payment_cost_rate": 0.125})
    args = dbt.serving_build_args(other, date(2026, 10, 31))
    assert json.loads(args[args.index("--vars") + 1])["late_payment_cost_rate"] == 0.125


def test_daily_build(settings: Settings, tmp_path: Path) -> None:
    assert dbt.daily_build_args(settings, date(2026, 10, 31)) == [
        "build",
        *_paths(tmp_path),
        "--target",
        "duckdb",
        "--exclude",
        "tag:post_scoring",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        VARS_2026_10_31,
    ]
    assert dbt.serving_build_args(settings, date(2026, 10, 31)) == [
        "build",
        *_paths(tmp_path),
        "--target",
        "duckdb",
        "--select",
        "tag:post_scoring",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        VARS_2026_10_31,
    ]


def test_backtest_build_rebuilds_every_date_as_of_the_past(settings: Settings, tmp_path: Path) -> None:
    assert dbt.backtest_build_args(settings, date(2025, 6, 30)) == [
        "build",
        *_paths(tmp_path),
        "--target",
        "duckdb",
        "--exclude",
        "tag:post_scoring",
        "--full-refresh",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        VARS_2026_10_31.replace("2026-10-31", "2025-06-30"),
    ]


def test_postgres_build_with_unit_tests(settings: Settings, tmp_path: Path) -> None:
    args = dbt.dbt_args(
        settings, ["build"], as_of_date=date(2026, 10, 31), stage="all", target="postgres", extra=["--fail-fast"]
    )
    assert args == ["build", *_paths(tmp_path), "--target", "postgres", "--vars", VARS_2026_10_31, "--fail-fast"]


def test_every_var_the_project_reads_is_passed_and_the_project_has_no_defaults(settings: Settings) -> None:
    project = yaml.safe_load((Settings().dbt_project_dir / "dbt_project.yml").read_text())
    assert "vars" not in project, "defaults in dbt_project.yml drift from the settings"
    sql = "\n".join(p.read_text() for p in Settings().dbt_project_dir.rglob("*.sql"))
    read = {
        *(m.split("'")[1] for m in sql.split("var(")[1:] if m.startswith("'")),
        *(m.split("'")[1] for m in sql.split("positive_int_var(")[1:] if m.startswith("'")),
        *(m.split("'")[1] for m in sql.split("non_negative_int_var(")[1:] if m.startswith("'")),
    }
    read.discard("name")  # positive_int_var's own parameter
    passed = json.loads(dbt.daily_build_args(settings, date(2026, 1, 1))[-1])
    assert (
        read
        == set(passed)
        == {
            "as_of_date",
            "snapshot_interval_days",
            "history_start_days",
            "horizon_days",
            "target_kind",
            "target_days",
            "claim_deadline_months",
            "risk_recent_days",
            "degrading_min_days",
            "risk_stale_after_hours",
            "promise_grace_days",
            "late_payment_cost_rate",
        }
    )


def test_bad_requests_are_clear_errors(settings: Settings) -> None:
    with pytest.raises(ValueError, match="dbt command is required"):
        dbt.dbt_args(settings, [], as_of_date=date(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown dbt target 'snowflake'"):
        dbt.dbt_args(settings, ["build"], as_of_date=date(2026, 1, 1), target="snowflake")  # type: ignore[arg-type]


def test_profile_is_written_from_settings_into_the_data_dir(settings: Settings, tmp_path: Path) -> None:
    path = Path(dbt.write_profile(settings))
    assert path == tmp_path / "data" / "dbt" / "profiles.yml"
    assert yaml.safe_load(path.read_text()) == {
        "relance": {
            "target": "duckdb",
            "outputs": {
                "duckdb": {
                    "type": "duckdb",
                    "path": str(tmp_path / "data" / "warehouse.duckdb"),
                    "schema": "main",
                    "threads": 4,
                    "settings": {"memory_limit": "6GB"},
                },
                "postgres": {
                    "type": "postgres",
                    "host": "db.internal",
                    "port": 6543,
                    "user": "collector",
                    "password": "{{ env_var('RELANCE_PG_PASSWORD') }}",
                    "dbname": "ar",
                    "schema": "main",
                    "threads": 4,
                },
            },
        }
    }
    before = path.stat().st_mtime_ns
    dbt.write_profile(settings)
    assert path.stat().st_mtime_ns == before, "an unchanged profile is not rewritten"


def test_the_secret_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCE_PG_PASSWORD", "s3cret-pw")
    path = Path(dbt.write_profile(Settings(data_dir=tmp_path)))
    assert "s3cret-pw" not in path.read_text()


def test_shell_command_quotes_the_vars() -> None:
    assert dbt.shell_command(["build", "--vars", '{"a": 1}']) == "dbt build --vars '{\"a\": 1}'"
