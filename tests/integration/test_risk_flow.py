"""The company-risk refresh end to end below Prefect: notice files and live registries (local stand-ins on
127.0.0.1) into raw through the shared loader and the GX suites, watermarks, staleness, and failures that never
stop the day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import SecretStr

from flows.refresh_company_risk import refresh
from relance import ops
from relance.ingest import load_extracts
from relance.raw_schema import ENTITIES
from relance.risk.events import RiskEvent
from relance.risk.load import load_rows
from relance.settings import Settings
from relance.sources.base import EntityExtract
from relance.warehouse import connection, ensure_schemas
from tests.standins.risk_apis import BodaccStandIn, CompaniesHouseStandIn, RechercheStandIn, load_sample

AS_OF = date(2026, 10, 31)
DJ_BATIMENT = "833310592"  # the real BODACC clôture sample
DANONE = "552032534"  # the real Recherche d'entreprises sample (and the director-change modification)
UK = "00006402"  # the real Companies House profile (liquidation, overdue accounts)


def _customers(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        {"customer_id": "C1", "customer_name": "DJ BATIMENT", "customer_type": "B2B", "siren": DJ_BATIMENT},
        {"customer_id": "C2", "customer_name": "DANONE", "customer_type": "B2B", "siren": DANONE},
        {"customer_id": "C3", "customer_name": "RENABLE", "customer_type": "B2B", "company_number": UK},
        {"customer_id": "C4", "customer_name": "Mme X", "customer_type": "B2C"},
    ]
    cols = list(ENTITIES["customers"])
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})
    extract = EntityExtract(entity="customers", table=table, source_file="customers.csv", file_hash="h-customers")
    load_extracts(con, [extract], source_name="erp", flow_run_id=None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", risk_http_max_attempts=1, risk_http_timeout_seconds=5)
    s.ensure_dirs()
    with connection(s.warehouse) as con:
        ensure_schemas(con)
        _customers(con)
    return s


def _events(settings: Settings) -> list[tuple]:
    with connection(settings.warehouse) as con:
        return con.execute(
            "SELECT company_id, event_type, event_subtype, published_date, publisher FROM raw.company_events "
            "ORDER BY company_id, event_type, published_date"
        ).fetchall()


def test_files_mode_loads_notices_once_and_reports_a_bad_file_without_failing(
    settings: Settings, shared_dir: Path
) -> None:
    risk = settings.landing / "risk"
    risk.mkdir(parents=True)
    (risk / "bodacc.json").write_bytes((shared_dir / "data/risk_samples/bodacc_v21_records_examples.json").read_bytes())
    (risk / "broken.json").write_bytes('{"total_count": 1, "results": [{"commerçant": "é"}]}'.encode("latin-1"))

    first = refresh(settings, AS_OF, flow_run_id="run-1")
    loaded = _events(settings)
    assert (DJ_BATIMENT, "procedure_closed", "insufficient_assets", date(2020, 11, 30), "bodacc") in loaded
    assert any(c == DANONE and t == "director_change" for c, t, *_ in loaded)
    assert first.events_read >= 2 and first.batches
    assert "files:broken.json" in first.errors and "UTF-8" in first.errors["files:broken.json"]
    assert "files" in first.stale  # the broken file never gave a good answer

    second = refresh(settings, AS_OF, flow_run_id="run-2")
    assert second.batches == [] and _events(settings) == loaded  # the same file again: unchanged, nothing new
    with connection(settings.warehouse) as con:
        checks = {c.company_id: c for c in ops.risk_checks(con, "files")}
        assert checks["bodacc.json"].last_error is None and checks["broken.json"].last_error
        assert {b.entity for b in ops.blocking_batches(con)} == {"customers"}  # the fixture's, never validated


def test_a_risk_batch_that_fails_its_contract_is_excluded_and_never_blocks(settings: Settings) -> None:
    bad = RiskEvent(
        event_id="X1",
        registry="FR-SIREN",
        company_id=DANONE,
        event_type="closure",
        event_subtype=None,
        event_date=None,
        published_date=None,  # type: ignore[arg-type]  # what a broken provider could hand over
        publisher="acme",
    )
    with connection(settings.warehouse) as con:
        report = load_rows(con, [bad], [], source_name="risk:acme", source_file="acme:2026-10-31", flow_run_id=None)
        assert report is not None and report.loaded_batch_ids
    result = refresh(settings, AS_OF, flow_run_id="run-1")  # validates what a crash left pending, too
    assert any("not_be_null(published_date)" in e for e in result.errors.values())
    with connection(settings.warehouse) as con:
        states = {b.batch_id: b.state for b in ops.list_batches(con)}
        assert states[report.loaded_batch_ids[0]] == "failed"
        # the receivables gate sees only the fixture's unvalidated customers, never the failed risk batch
        assert {b.entity for b in ops.blocking_batches(con)} == {"customers"}


@pytest.fixture
def live(settings: Settings):
    with BodaccStandIn() as bodacc, RechercheStandIn(max_per_second=None) as recherche, CompaniesHouseStandIn() as ch:
        yield (
            settings.model_copy(
                update={
                    "risk_mode": "live",
                    "bodacc_url": bodacc.url,
                    "recherche_entreprises_url": recherche.url,
                    "companies_house_url": ch.url,
                    "companies_house_api_key": SecretStr(ch.api_key),
                }
            ),
            bodacc,
            recherche,
            ch,
        )


def test_live_mode_fetches_from_watermarks_and_goes_on_when_a_registry_is_down(live) -> None:
    settings, bodacc, recherche, ch = live
    first = refresh(settings, AS_OF, flow_run_id="run-1")
    assert first.errors == {}, first.errors
    events = _events(settings)
    assert (DJ_BATIMENT, "procedure_closed", "insufficient_assets", date(2020, 11, 30), "bodacc") in events
    assert any(c == UK and t == "accounts_overdue" for c, t, *_ in events)  # the real profile says overdue
    with connection(settings.warehouse) as con:
        profiles = con.execute(
            "SELECT publisher, company_id, status FROM raw.company_profiles ORDER BY 1, 2"
        ).fetchall()
        assert ("recherche_entreprises", DANONE, "active") in profiles
        assert any(p == "companies_house" and c == UK for p, c, _ in profiles)
        marks = {(c.publisher, c.company_id): c.watermark_date for c in ops.risk_checks(con)}
    assert marks[("bodacc", DANONE)] == AS_OF
    # never checked: the whole history was asked for; checked since: only what is new from the watermark
    assert "dateparution" not in (bodacc.requests_to(bodacc_path(bodacc))[0].param("where") or "")

    bodacc.fail_always(503)
    recherche.fail_always(503)
    asked_before = len(recherche.requests)
    # the next day (cached answers expired): both registries down
    second = refresh(settings.model_copy(update={"risk_cache_ttl_hours": 0}), date(2026, 11, 2), "run-2")
    # a source down is asked once, not once per company: the others are left for the next run
    assert len(recherche.requests) - asked_before == 1
    with connection(settings.warehouse) as con:
        errors = sorted(c.last_error.split(":")[0] for c in ops.risk_checks(con, "recherche_entreprises"))
    assert errors == ["not asked", "recherche_entreprises GET /search"]
    asked = bodacc.requests_to(bodacc_path(bodacc))[-1].param("where") or ""
    assert "dateparution>=date'2026-10-24'" in asked.replace(" ", "")  # watermark minus the 7-day overlap
    assert "bodacc" in second.errors and "503" in second.errors["bodacc"]
    with connection(settings.warehouse) as con:
        dan = next(c for c in ops.risk_checks(con, "bodacc") if c.company_id == DANONE)
    assert dan.watermark_date == AS_OF and dan.last_error and dan.last_success_at is not None
    assert _events(settings) == events  # the last known data stays

    stale = refresh(settings.model_copy(update={"risk_stale_after_hours": 1e-6}), date(2026, 11, 2), "run-3")
    assert "bodacc" in stale.stale and "recherche_entreprises" in stale.stale


def bodacc_path(stand_in: BodaccStandIn) -> str:
    return "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"


def test_the_uk_sample_is_a_company_in_liquidation() -> None:
    # guards the fixture the live test relies on: the real profile is in liquidation with overdue accounts
    profile = load_sample("companies_house_company_profile_00006402.json")
    assert profile["company_status"] == "liquidation" and profile["accounts"]["next_accounts"]["overdue"] is True
    assert json.dumps(profile)  # plain JSON


def test_a_procedure_loaded_between_plan_and_send_blocks_the_send_with_its_rule(settings: Settings) -> None:
    """The stop is read again right before each send: a notice loaded after the plan still stops the reminder."""
    import pandas as pd

    from relance.channels import make_transport_for
    from relance.delivery import deliver
    from relance.risk.stops import DunningStops
    from relance.send_ledger import SendLedger

    planned = pd.DataFrame(
        [
            {
                "reminder_key": f"k{i}", "invoice_id": f"I{i}", "customer_id": c, "as_of_date": AS_OF,
                "step": "overdue_7", "channel": "letter", "tone": "cordial", "p_late": 0.5, "open_amount": 100.0,
                "currency": "EUR", "recipient": name, "model_version": "1", "model_run_id": "r",
                "customer_name": name, "due_date": date(2026, 10, 20),
            }
            for i, (c, name) in enumerate([("C1", "DJ BATIMENT"), ("C2", "DANONE")])
        ]
    )  # fmt: skip
    with connection(settings.warehouse) as con, SendLedger(settings.send_ledger) as ledger:
        # the live state the dbt view serving.customer_risk_status gives, reduced to what the stop reads
        con.execute("CREATE TABLE main.procedures (customer_id VARCHAR, open BOOLEAN)")
        con.execute("CREATE SCHEMA serving")
        con.execute(
            "CREATE VIEW serving.customer_risk_status AS SELECT customer_id, 'liquidation' AS procedure_kind, "
            "DATE '2026-10-01' AS judgment_date, DATE '2026-10-12' AS procedure_published_date, 'TC Bordeaux' "
            "AS court, open AS has_open_procedure FROM main.procedures"
        )
        stops = DunningStops(con)
        con.execute("INSERT INTO main.procedures VALUES ('C1', true)")  # loaded after the plan was made
        report = deliver(
            con,
            planned,
            ledger=ledger,
            transport_for=make_transport_for(outbox_dir=settings.outbox, as_of_date=AS_OF, sender_name="R"),
            lineage={},
            flow_run_id="run-1",
            sender_email="r@example.com",
            sender_name="R",
            stop_check=stops.check,
        )
        assert report.sent == 1 and report.blocked == 1 and report.blocked_by_rule == {"insolvency_stop": 1}
        assert ledger.get("k0") is None and ledger.get("k1").status == "sent"  # nothing claimed for C1
        blocks = con.execute("SELECT reminder_key, customer_id, rule, detail FROM ops.reminder_blocks").fetchall()
        assert blocks == [("k0", "C1", "insolvency_stop", blocks[0][3])] and "TC Bordeaux" in blocks[0][3]
        assert stops.reads == 2  # asked before each of the two sends


# --- the CLI, as a user runs it ------------------------------------------------------------------------------------

RELANCE = Path(sys.executable).parent / "relance"


def _cli(cwd: Path, *commands: tuple[list[str], dict[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """Commands side by side (each is seconds of imports), each in a user's shell plus its own variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    procs = [
        (argv, subprocess.Popen([str(RELANCE), *argv], cwd=cwd, env=base | {"COLUMNS": "200"} | env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for argv, env in commands
    ]  # fmt: skip
    done = []
    for argv, proc in procs:
        out, err = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


def test_risk_import_and_check_from_the_command_line(tmp_path: Path, shared_dir: Path) -> None:
    good = shared_dir / "data/risk_samples/bodacc_v21_records_examples.json"
    bad = tmp_path / "notices.json"
    bad.write_bytes('{"total_count": 1, "results": [{"commerçant": "é"}]}'.encode("latin-1"))
    with BodaccStandIn() as bodacc, RechercheStandIn(max_per_second=None) as recherche:
        data = {"RELANCE_DATA_DIR": str(tmp_path / "data")}
        live = {"RELANCE_BODACC_URL": bodacc.url, "RELANCE_RECHERCHE_ENTREPRISES_URL": recherche.url}
        imported, checked, invalid = _cli(
            tmp_path,
            (["risk", "import", str(good), str(bad)], data),
            (["risk", "check", "552 032 534", "--json"], {"RELANCE_DATA_DIR": str(tmp_path / "other")} | live),
            (["risk", "check", "552032535"], live),
        )
        assert bodacc.requests and recherche.requests  # the check asked the registries (here: the stand-ins)
    assert imported.returncode == 2, imported.stdout + imported.stderr  # one file could not be read
    assert "bodacc_v21_records_examples.json" in imported.stdout and "loaded" in imported.stdout
    assert "notices.json: " in imported.stdout and "not UTF-8" in imported.stdout
    with connection(tmp_path / "data" / "warehouse.duckdb") as con:
        assert con.execute("SELECT count(*) FROM raw.company_events").fetchone()[0] >= 5
    assert invalid.returncode == 2 and "not a valid SIREN" in invalid.stdout + invalid.stderr
    assert checked.returncode == 0, checked.stdout + checked.stderr
    payload = json.loads(checked.stdout)
    assert payload["company"] == {"registry": "FR-SIREN", "company_id": DANONE}
    assert any(e["event_type"] == "director_change" for e in payload["events"])
    assert [p["company_name"] for p in payload["profiles"]] == ["DANONE"]
