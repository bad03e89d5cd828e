"""Secrets never printed, stored or put on a command line: URLs, SQL source names, settings, Prefect parameters,
log records, the ``mlflow ui`` command line. Each test starts from a leak reproduced before the fix."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relance import servers
from relance.redaction import (
    MASK,
    environment_secrets,
    install_log_redaction,
    is_secret_name,
    redact,
    redact_url,
    uninstall_log_redaction,
    url_secrets,
)
from relance.settings import Settings
from relance.sources.sql.config import parse_sql_config


def _marked() -> str:
    return f"marked-secret-{uuid.uuid4().hex}"


def _sql(url: str, environ: dict[str, str] | None = None):
    return parse_sql_config(
        {"name": "erp", "url": url, "entities": {"invoices": {"query": "SELECT * FROM invoices"}}},
        environ=environ or {},
    )


# --- URLs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["password", "PWD", "Password", "sslpassword", "token", "access_token", "api_key",
                                   "apikey", "secret", "client_secret", "key", "X-Amz-Signature", "sig"])  # fmt: skip
def test_a_credential_query_parameter_is_hidden_from_the_sql_source_name(param: str) -> None:
    # reproduction: safe_url hid only the userinfo password; ?password=... reached _source_file, ops and logs
    secret = _marked()
    config = _sql(f"postgresql+psycopg://u@db.example:5432/erp?{param}={secret}&application_name=relance")
    assert secret not in config.safe_url
    assert f"{param}={MASK}" in config.safe_url
    assert "application_name=relance" in config.safe_url  # what is not secret stays useful


def test_an_odbc_connect_pwd_is_hidden_and_the_rest_of_the_string_kept() -> None:
    # reproduction: mssql+pyodbc:///?odbc_connect=...PWD=secret... was shown whole
    secret = _marked()
    odbc = f"DRIVER={{ODBC Driver 18 for SQL Server}};SERVER=erp.example;UID=relance;PWD={{{secret};x}}}}}};"
    from urllib.parse import quote_plus

    config = _sql(f"mssql+pyodbc:///?odbc_connect={quote_plus(odbc)}")
    assert secret not in config.safe_url
    assert "PWD=***" in config.safe_url and "SERVER=erp.example" in config.safe_url
    assert config.safe_url.startswith("mssql+pyodbc:///?")
    assert any(secret in v for v in config.secret_values())


def test_a_password_in_userinfo_is_hidden_and_never_percent_decoded_in_clear() -> None:
    secret = "p@ss;w/rd:" + _marked()
    config = _sql("postgresql+psycopg://relance:${ERP_PASSWORD}@db:5432/erp", {"ERP_PASSWORD": secret})
    assert config.safe_url == "postgresql+psycopg://relance:***@db:5432/erp"
    assert config.sqlalchemy_url.password == secret  # still connects with it


def test_a_value_from_a_credential_named_placeholder_is_hidden_wherever_it_lands() -> None:
    # the documented rule: ${VAR} whose name looks like a credential fills a secret, in any part of the URL
    token, host = _marked(), "erp.example"
    config = _sql(
        "postgresql://u@${ERP_HOST}/erp?application_name=${ERP_TOKEN}", {"ERP_HOST": host, "ERP_TOKEN": token}
    )
    assert token not in config.safe_url
    assert host in config.safe_url  # a host placeholder is not a secret: errors may name it
    assert "secret" not in repr(config) and token not in repr(config)


def test_redact_url_keeps_empty_authorities_and_never_raises() -> None:
    assert redact_url("sqlite:////tmp/x.db?password=abc123") == "sqlite:////tmp/x.db?password=***"
    assert redact_url("https://user:tok3n-value@mlflow.example/x?y=1") == "https://user:***@mlflow.example/x?y=1"
    assert redact_url("file:///a/b") == "file:///a/b"
    assert MASK in redact_url("http://[::1:bad/?password=abc123")


def test_secret_names() -> None:
    for name in ("password", "PWD", "sslpassword", "api_key", "access_token", "client_secret", "AccountKey"):
        assert is_secret_name(name), name
    for name in ("host", "application_name", "sslmode", "database", "charset", "driver"):
        assert not is_secret_name(name), name


def test_environment_secrets_are_credential_named_variables_only() -> None:
    env = {
        "RELANCE_PG_PASSWORD": "pg-secret-1",
        "ERP_PWD": "erp-secret-1",
        "PREFECT_API_KEY": "pnu_abcdef",
        "PWD": "/home/me/project",  # the shell's working directory, not a secret
        "OLDPWD": "/home/me",
        "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1",
        "HOME": "/home/me",
    }
    assert sorted(environment_secrets(env)) == ["erp-secret-1", "pg-secret-1", "pnu_abcdef"]


def test_redact_free_text() -> None:
    key = f"SG.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
    text = (
        f"HEADERS: {{'Authorization': 'Bearer {key}'}} postgresql://u:hunter2-pw@h/db?password=abc123&PWD=x1y2z3; "
        "sslpassword: 'q w e' reminder_key=R-1"
    )
    out = redact(text, ["hunter2-pw"])
    for leaked in (key, "hunter2-pw", "abc123", "x1y2z3", "q w e"):
        assert leaked not in out
    assert "reminder_key=R-1" in out  # ids are not secrets


# --- settings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["postgresql://mlflow:{s}@db.example/mlflow", "https://user:{s}@mlflow.example"])
def test_a_credential_in_the_mlflow_uri_reaches_neither_repr_nor_json(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reproduction: mlflow_tracking_uri was a plain str, shown by repr() and model_dump_json()
    secret = _marked()
    monkeypatch.setenv("RELANCE_MLFLOW_TRACKING_URI", uri.format(s=secret))
    s = Settings(data_dir=tmp_path)
    assert s.mlflow_uri == uri.format(s=secret)  # callers still get the plain str to connect with
    assert s.tool_environment()["MLFLOW_TRACKING_URI"] == uri.format(s=secret)  # process env, not argv
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json")), s.redacted_mlflow_uri):
        assert secret not in text
    assert secret in s.secret_values()


def test_the_companies_house_key_is_a_secret_the_log_redaction_knows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = _marked()
    monkeypatch.setenv("RELANCE_COMPANIES_HOUSE_API_KEY", secret)
    s = Settings(data_dir=tmp_path)
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json"))):
        assert secret not in text
    assert secret in s.secret_values()


def test_a_bad_setting_does_not_echo_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    secret = _marked()
    with pytest.raises(ValidationError) as info:
        Settings(sendgrid_api_key=secret, horizon_days=secret)  # type: ignore[arg-type]
    assert secret not in str(info.value)


def test_prefect_flow_run_parameters_hold_no_secret(tmp_path: Path) -> None:
    # reproduction: flows take `settings: Settings`; Prefect stores jsonable_encoder(settings) as the flow run's
    # parameters (prefect.db), where a plain-str MLflow URI with a password was kept in clear
    from flows.daily_collections import daily_collections

    secret, key = _marked(), f"SG.{_marked()}.x"
    s = Settings(
        data_dir=tmp_path,
        mlflow_tracking_uri=f"postgresql://mlflow:{secret}@db.example/mlflow",  # type: ignore[arg-type]
        sendgrid_api_key=key,  # type: ignore[arg-type]
    )
    s.mlflow_uri  # noqa: B018 - a cached value must not be serialised either
    stored = json.dumps(daily_collections.serialize_parameters({"settings": s}))
    assert secret not in stored and key not in stored
    assert '"mlflow_tracking_uri": "**********"' in stored


# --- log records ----------------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    uninstall_log_redaction()
    root.removeHandler(handler)
    root.setLevel(previous)


def test_the_sendgrid_client_debug_headers_are_redacted(log_stream: io.StringIO) -> None:
    # reproduction: python_http_client logs 'HEADERS: {... Authorization: Bearer SG...}' at DEBUG
    key = f"SG.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
    other = _marked()
    install_log_redaction([other])
    logging.getLogger("python_http_client.client").debug(
        "HEADERS: {headers}".format(headers={"Authorization": f"Bearer {key}", "User-Agent": "sendgrid/6.12.5"})
    )
    logging.getLogger("relance.x").info("connecting with %s", other)
    try:
        raise RuntimeError(f"failed with {other}")
    except RuntimeError:
        logging.getLogger("relance.y").exception("boom")
    out = log_stream.getvalue()
    assert "HEADERS" in out and "Bearer ***" in out and "boom" in out
    assert key not in out and other not in out


def test_install_log_redaction_takes_the_settings_secrets(
    log_stream: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = _marked()
    monkeypatch.setenv("RELANCE_PG_PASSWORD", pg)
    secret = _marked()
    s = Settings(data_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path}/m.db?password={secret}")  # type: ignore[arg-type]
    install_log_redaction(s)
    logging.getLogger("relance.z").warning("store %s, pg %s", s.mlflow_uri, pg)
    out = log_stream.getvalue()
    assert "store sqlite:///" in out
    assert secret not in out and pg not in out


def test_url_secrets() -> None:
    assert url_secrets("postgresql://u:p%40ss@h/db?sslpassword=k1&x=1") == ["p@ss", "k1"]
    assert url_secrets("sqlite:///x.db") == []


# --- command lines --------------------------------------------------------------------------------------------


def test_the_mlflow_store_uri_goes_by_environment_not_argv() -> None:
    # reproduction: `relance ui` ran `mlflow ui --backend-store-uri postgresql://u:pw@...`, visible in `ps`
    secret = _marked()
    uri = f"postgresql://mlflow:{secret}@db/mlflow"
    argv, env = servers.without_secret_arguments(
        ["/venv/bin/mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri=" + uri, "--port", "5000"],
        {"PATH": "/bin"},
    )
    assert secret not in " ".join(argv)
    assert argv == ["/venv/bin/mlflow", "ui", "--port", "5000"]
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri and env["MLFLOW_REGISTRY_STORE_URI"] == uri
    other = ["python", "-m", "http.server", "--backend-store-uri", "x"]
    assert servers.without_secret_arguments(other, {}) == (other, {})
    argv, env = servers.mlflow_ui_command("/venv/bin/mlflow", uri, 5000)
    assert secret not in " ".join(argv) and env == {"MLFLOW_BACKEND_STORE_URI": uri}


def test_a_started_mlflow_server_sees_its_uri_in_its_environment_only(tmp_path: Path) -> None:
    secret = _marked()
    uri = f"sqlite:///{tmp_path}/m.db?password={secret}"
    fake = tmp_path / "mlflow"  # stands for MLflow's CLI: records what it was given, then exits
    fake.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(tmp_path / 'seen.json')!r}, 'w').write(json.dumps("
        "{'argv': sys.argv, 'cmdline': open('/proc/self/cmdline').read(), "
        "'uri': os.environ.get('MLFLOW_BACKEND_STORE_URI')}))\n"
    )
    fake.chmod(0o755)
    with servers.running([[str(fake), "ui", "--backend-store-uri", uri, "--port", "1"]], {"PATH": "/bin"}) as procs:
        procs[0].wait(timeout=60)
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert secret not in seen["cmdline"] and secret not in " ".join(seen["argv"])
    assert seen["uri"] == uri
