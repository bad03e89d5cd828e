"""infra/docker-compose.yml without Docker: every image pinned to what requirements.lock runs, every service there,
and the wiring between them consistent with relance's settings (a misspelt RELANCE_* name is silently ignored by
the settings, so it is caught here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from relance.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LOCK = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "requirements.lock").read_text(), flags=re.MULTILINE))
SETTINGS_ENV = {f"RELANCE_{name.upper()}" for name in Settings.model_fields}


def _pinned(image: str) -> bool:
    """``name:tag`` with a version in the tag (or a digest); never ``latest`` or no tag at all."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and bool(re.search(r"\d", tag))


def _from_images(dockerfile: Path) -> list[str]:
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, flags=re.MULTILINE))
    images = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE) + re.findall(r"COPY --from=(\S+/\S+)", text)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image) for image in images if image != "build"]


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _option(command: list[str], name: str) -> str:
    for i, arg in enumerate(command):
        if arg == name:
            return command[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def test_every_service_is_there() -> None:
    assert {"postgres", "prefect-server", "worker", "mlflow", "webhooks", "deploy"} <= set(SERVICES)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_image_is_pinned(service: str) -> None:
    spec = SERVICES[service]
    assert "image" in spec or "build" in spec
    if "image" in spec:
        assert _pinned(spec["image"]), spec["image"]
    if "build" in spec:
        dockerfile = (INFRA / spec["build"]["context"] / spec["build"]["dockerfile"]).resolve()
        for image in _from_images(dockerfile):
            assert _pinned(image), f"{dockerfile.name}: {image}"


def test_the_images_run_the_locked_versions() -> None:
    assert SERVICES["prefect-server"]["image"] == f"prefecthq/prefect:{LOCK['prefect']}-python3.11"
    mlflow = (INFRA / "mlflow.Dockerfile").read_text()
    assert f"FROM ghcr.io/mlflow/mlflow:v{LOCK['mlflow']}\n" in mlflow
    assert f"psycopg2-binary=={LOCK['psycopg2-binary']}" in mlflow
    assert SERVICES["mlflow"]["image"].endswith(f":{LOCK['mlflow']}")
    relance = (INFRA / "Dockerfile").read_text()
    assert "-c /tmp/requirements.lock" in relance  # the wheel's dependencies pinned by the lock


def test_relance_settings_in_the_environment_are_settings() -> None:
    for service in ("worker", "webhooks", "deploy"):
        names = {k for k in _env(service) if k.startswith("RELANCE_")}
        assert names and names <= SETTINGS_ENV, sorted(names - SETTINGS_ENV)
    example = (INFRA / "env.example").read_text()
    named = set(re.findall(r"^#?\s*(RELANCE_[A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert named and named <= SETTINGS_ENV, sorted(named - SETTINGS_ENV)


def test_the_services_find_each_other() -> None:
    prefect_port = _option(_command("prefect-server"), "--port")
    mlflow_command = _command("mlflow")
    for service in ("worker", "webhooks", "deploy"):
        env = _env(service)
        api = urlparse(env["PREFECT_API_URL"])
        assert (api.hostname, str(api.port), api.path) == ("prefect-server", prefect_port, "/api")
        tracking = urlparse(env["RELANCE_MLFLOW_TRACKING_URI"])
        assert (tracking.hostname, str(tracking.port)) == ("mlflow", _option(mlflow_command, "--port"))
        assert env["RELANCE_DATA_DIR"] == "/data"
    # both backends on the postgres service, in the databases and roles its init script creates
    init = (INFRA / "postgres-init.sh").read_text()
    prefect_db = urlparse(_env("prefect-server")["PREFECT_API_DATABASE_CONNECTION_URL"])
    mlflow_db = urlparse(_option(mlflow_command, "--backend-store-uri"))
    assert prefect_db.scheme == "postgresql+asyncpg" and mlflow_db.scheme == "postgresql"
    for url in (prefect_db, mlflow_db):
        assert url.hostname == "postgres" and url.port == 5432
        assert f"CREATE DATABASE {url.path.lstrip('/')} OWNER {url.username};" in init
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in init  # the Prefect server needs it
    postgres_env = _env("postgres")
    for variable in re.findall(r'"\$(\w+)"', init):
        assert variable in postgres_env or variable in ("POSTGRES_USER", "POSTGRES_DB"), variable
    assert any(v.endswith("/docker-entrypoint-initdb.d/10-relance.sh:ro") for v in SERVICES["postgres"]["volumes"])


def test_mlflow_artifacts_are_one_volume_at_one_path() -> None:
    root = _env("worker")["RELANCE_MLFLOW_ARTIFACT_ROOT"]
    assert _option(_command("mlflow"), "--default-artifact-root") == root
    for service in ("worker", "mlflow"):
        assert f"mlflow-artifacts:{root}" in SERVICES[service]["volumes"], service
    assert "mlflow-artifacts" in COMPOSE["volumes"]


def test_the_worker_serves_the_pool_the_deployments_name_and_runs_from_the_image_checkout() -> None:
    worker = _command("worker")
    assert worker[:3] == ["prefect", "worker", "start"]
    pools = {d["work_pool"]["name"] for d in yaml.safe_load((INFRA / "prefect.yaml").read_text())["deployments"]}
    assert pools == {_option(worker, "--pool")} and _option(worker, "--type") == "process"
    root = _env("worker")["RELANCE_PROJECT_ROOT"]
    dockerfile = (INFRA / "Dockerfile").read_text()
    for path in ("flows", "dbt_project", "infra/prefect.yaml"):
        assert f" {path} {root}/{path}" in dockerfile, path  # the files the deployments' pull step needs
    assert "deploy --all --prefect-file infra/prefect.yaml" in " ".join(_command("deploy"))


def test_the_webhook_service_and_the_ports() -> None:
    command = _command("webhooks")
    assert command[:3] == ["relance", "webhooks", "serve"] and _option(command, "--host") == "0.0.0.0"
    assert _env("webhooks")["RELANCE_WEBHOOK_PORT"] == _option(command, "--port")
    for service in SERVICES.values():  # published on the host's loopback only: a proxy in front decides the rest
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
