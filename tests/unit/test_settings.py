from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relance.settings import Settings, parse_as_of


def test_defaults_live_under_one_data_dir_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELANCE_DATA_DIR", raising=False)
    monkeypatch.delenv("RELANCE_PROJECT_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.data == tmp_path / "data"
    monkeypatch.chdir("/")  # resolved once, when the settings are built
    assert s.data == tmp_path / "data"
    for p in (
        s.warehouse,
        s.landing,
        s.outbox,
        s.reports_dir,
        s.gx_dir,
        s.mlflow_artifacts,
        s.prefect_dir,
        s.dbt_target_dir,
        s.dbt_profiles_dir,
        s.dbt_log_dir,
    ):
        assert s.data in p.parents
    assert s.mlflow_uri == f"sqlite:///{tmp_path / 'data' / 'mlflow' / 'mlflow.db'}"
    assert s.sendgrid_api_key is None  # embedded default: local outbox, never a real send


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("RELANCE_HORIZON_DAYS", "45")
    monkeypatch.setenv("RELANCE_SENDGRID_API_KEY", "SG.secret")
    s = Settings(project_root=tmp_path)
    assert s.warehouse == tmp_path / "elsewhere" / "warehouse.duckdb"
    assert s.horizon_days == 45
    assert "SG.secret" not in repr(s)  # secrets never end up in logs


def test_the_dbt_project_comes_with_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import relance

    monkeypatch.delenv("RELANCE_PROJECT_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    project = Settings().dbt_project_dir
    assert (project / "dbt_project.yml").is_file()
    assert Path(relance.__file__).resolve().parent.parent in project.parents or "site-packages" in str(project)
    # an override still wins: a checkout elsewhere
    assert Settings(project_root=tmp_path).dbt_project_dir == tmp_path / "dbt_project"


def test_tool_environment_points_prefect_at_the_data_dir_and_sets_nothing_for_dbt(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    env = s.tool_environment()
    assert env["PREFECT_HOME"] == str(tmp_path / "d" / "prefect")
    assert env["DO_NOT_TRACK"] == "1"
    assert not [k for k in env if k.startswith("DBT_") and k != "DBT_SEND_ANONYMOUS_USAGE_STATS"]
    assert "RELANCE_WAREHOUSE_PATH" not in env


def test_parse_as_of() -> None:
    assert parse_as_of(None, date(2026, 1, 2)) == date(2026, 1, 2)
    assert parse_as_of("2026-10-31", date.today()) == date(2026, 10, 31)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_as_of("31/10/2026", date.today())


def test_dbt_invocations_are_archived_by_id(tmp_path: Path) -> None:
    import json

    from relance.lineage import archive_dbt_invocation

    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text(json.dumps({"metadata": {"invocation_id": "abc-1"}, "results": []}))
    (target / "manifest.json").write_text("{}")
    assert archive_dbt_invocation(target, tmp_path / "runs") == "abc-1"
    assert (tmp_path / "runs" / "abc-1" / "manifest.json").exists()
    (target / "run_results.json").unlink()
    with pytest.raises(RuntimeError, match="invocation id"):
        archive_dbt_invocation(target, tmp_path / "runs")


def test_read_for_date_refuses_anything_but_names(tmp_path: Path) -> None:
    from relance.warehouse import connect, read_for_date

    con = connect(tmp_path / "w.duckdb")
    con.execute("create schema serving; create table serving.r (as_of_date date, x int)")
    con.execute("insert into serving.r values ('2026-01-01', 2), ('2026-01-01', 1), ('2026-01-02', 3)")
    assert read_for_date(con, "serving.r", date(2026, 1, 1), order_by="x")["x"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="relation"):
        read_for_date(con, "serving.r; drop table serving.r", date(2026, 1, 1))
    with pytest.raises(ValueError, match="order by"):
        read_for_date(con, "serving.r", date(2026, 1, 1), order_by="x; drop table serving.r")


def test_env_example_lists_every_setting(repo_root: Path) -> None:
    text = (repo_root / ".env.example").read_text()
    assert [name for name in Settings.model_fields if f"RELANCE_{name.upper()}=" not in text] == []
