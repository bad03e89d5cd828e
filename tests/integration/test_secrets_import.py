"""Marked test secrets on the import and send paths, then a search of every output for them.

* Import: a SQL source (a real SQLite database, read by the real adapter, loader, GX validation and data docs) whose
  URL carries a marked ``?password=``, a marked ODBC ``PWD=`` inside ``odbc_connect`` and a marked value from a
  credential-named ``${VAR}`` placeholder. SQLite ignores those query arguments (SQLAlchemy warns, naming them
  only), so the import works and every place the URL could be copied to is exercised: raw rows' ``_source_file``,
  ``ops.ingest_batches``, the quarantine, GX's data docs, logs (DEBUG), warnings, stdout and stderr.
* Send: the real SendGrid client with a marked key against the local stand-in, ``python_http_client`` at DEBUG
  (it logs every request's headers, ``Authorization: Bearer <key>`` included).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import duckdb
import pandas as pd
import pytest
import yaml

from relance.redaction import uninstall_log_redaction

pytestmark = pytest.mark.integration


def _marked(kind: str) -> str:
    return f"marked-{kind}-{uuid.uuid4().hex}"


def dump_duckdb(con: duckdb.DuckDBPyConnection) -> str:
    """Every row of every table and view of every schema, as text."""
    out = []
    for schema, table in con.sql(
        "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
    ).fetchall():
        out.append(f"== {schema}.{table}")
        out.append(con.sql(f'SELECT * FROM "{schema}"."{table}"').df().to_csv(index=False))
    return "\n".join(out)


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """``path: needle`` for every file under ``root`` whose bytes hold a needle."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.fixture
def erp_sqlite(tmp_path: Path, demo_landing: Path) -> Path:
    """A small ERP database: 20 customers of the demo export and their invoices, raw column names."""
    customers = pd.read_csv(demo_landing / "customers.csv", dtype=str).head(20)
    invoices = pd.read_csv(demo_landing / "invoices.csv", dtype=str)
    invoices = invoices[invoices["customer_id"].isin(customers["customer_id"])]
    path = tmp_path / "erp.sqlite"
    with sqlite3.connect(path) as db:
        customers.to_sql("customers", db, index=False)
        invoices.to_sql("invoices", db, index=False)
    return path


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in ("python_http_client", "python_http_client.client", "sqlalchemy.engine"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    uninstall_log_redaction()


def test_an_sql_import_with_marked_credentials_stores_and_logs_none_of_them(
    tmp_path: Path,
    erp_sqlite: Path,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # reproduction: safe_url masked only the userinfo password, so ?password= and odbc_connect's PWD= reached
    # raw._source_file, ops.ingest_batches.source_file and the ingest log lines
    from flows.import_receivables import import_source

    password, pwd, token = _marked("password"), _marked("pwd"), _marked("token")
    monkeypatch.setenv("RELANCE_TEST_ERP_TOKEN", token)
    odbc = quote_plus(f"DRIVER={{SQLite3}};Database={erp_sqlite};PWD={pwd};")
    config = tmp_path / "erp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "erp",
                "url": f"sqlite:///{erp_sqlite}?password={password}&odbc_connect={odbc}"
                "&application_name=${RELANCE_TEST_ERP_TOKEN}",
                "entities": {
                    "customers": {"query": "SELECT * FROM customers"},
                    "invoices": {"query": "SELECT * FROM invoices"},
                },
            }
        )
    )
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught, duckdb.connect(str(warehouse)) as con:
        warnings.simplefilter("always")
        report = import_source(con, config, profile="sql", gx_dir=tmp_path / "data" / "gx", flow_run_id="flow-s")
        assert report.reconciles()
        assert sum(b.rows_loaded for b in report.load.batches) > 20  # it did import
        dump = dump_duckdb(con)
    assert "sqlite:///" in dump and "password=***" in dump  # the source is named, its secrets hidden

    secrets = [password, pwd, token]
    outputs = {
        "warehouse tables": dump,
        "logs": debug_logs.text,
        "warnings": "\n".join(str(w.message) for w in caught),
        "stdout+stderr": "".join(capfd.readouterr()),
        "report": repr(report),
    }
    leaks = [f"{where}: {s}" for where, text in outputs.items() for s in secrets if s in text]
    leaks += files_containing(tmp_path / "data", secrets)  # warehouse bytes, GX suites, results, data docs
    assert not leaks, leaks


def test_the_sendgrid_client_at_debug_logs_no_api_key(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # reproduction: python_http_client logged 'HEADERS: {'Authorization': 'Bearer SG...', ...}' at DEBUG
    from datetime import date

    from relance.channels import build_mail, make_transport_for
    from tests.conftest import require
    from tests.standins.sendgrid import SPEC_PATH, SendGridStandIn

    require(SPEC_PATH.exists(), f"SendGrid Mail Send spec not found at {SPEC_PATH}")
    key = f"SG.{_marked('sgid')}.{_marked('sgkey')}"
    with SendGridStandIn(api_key=key) as sg:
        transport = make_transport_for(
            outbox_dir=tmp_path / "outbox",
            as_of_date=date(2026, 3, 31),
            sender_name="Service recouvrement",
            sendgrid_api_key=key,
            sendgrid_host=sg.url,
        )("email")
        row = {"reminder_key": "R-1", "invoice_id": "F-1", "recipient": "client@example.com", "tone": "cordial",
               "open_amount": 12.5, "currency": "EUR"}  # fmt: skip
        mail = build_mail(row, sender_email="relances@example.com", sender_name="S", lineage={})
        result = transport.send(mail, "R-1")
    assert len(sg.messages) == 1 and result.provider_message_id  # it went through, with the key
    assert "HEADERS" in debug_logs.text  # the client did log its headers at DEBUG
    everything = debug_logs.text + "".join(capfd.readouterr()) + repr(transport)
    assert key not in everything and key.split(".")[2] not in everything
