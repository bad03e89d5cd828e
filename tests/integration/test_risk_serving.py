"""The consequences of insolvency in the serving models, on a small hand-written warehouse.

Customers, invoices, payments and BODACC-style company events go into raw through the project's loader
(``relance.ingest.load_extracts``, the path every source and the risk flow take). dbt runs through its one owner
(``relance.dbt``) with the session's parsed manifest: the pre-scoring build (models and data tests), then the
post-scoring build with its unit tests (``_serving__unit_tests.yml``: open-procedure logic, deadlines, the due /
not yet due split, degradation thresholds) and data tests. Then, by hand-computed figures: the worklist stops the
debtor in liquidation, its claim declaration holds the right amounts and deadline, and ``serving.customer_risk_status``,
a view, sees an opening judgment loaded into raw after the build without any rebuild (what the check just before a
send relies on). PostgreSQL: tests/integration/test_dbt_postgres.py builds the same models there, runs these unit
tests on it (month arithmetic of the deadline included) and compares every relation on a demo with open procedures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from relance import dbt
from relance.ingest import load_extracts
from relance.raw_schema import RISK_ENTITIES
from relance.risk.events import PROCEDURE_OPENED, REGISTRY_FR, RiskEvent
from relance.settings import Settings
from relance.sources.base import EntityExtract, entity_schema
from relance.warehouse import ensure_schemas
from tests.conftest import DbtInvoke

pytestmark = pytest.mark.integration

AS_OF = date(2026, 4, 15)
SIREN_LJ = "732829320"  # C1, in liquidation
SIREN_LATER = "552100554"  # C2, its opening judgment is loaded after the build
LJ_EVENT = "BODACC-A-2026-0331-1"

CUSTOMERS = [
    {"customer_id": "C1", "customer_name": "Bâti Sud", "customer_type": "B2B", "siren": SIREN_LJ,
     "sector_section": "F", "size_band": "small", "email": "ap@batisud.fr", "credit_limit": Decimal(20000),
     "currency": "EUR", "payment_terms_days": 30, "created_date": date(2025, 1, 1)},
    {"customer_id": "C2", "customer_name": "Agri Nord", "customer_type": "B2B", "siren": SIREN_LATER,
     "sector_section": "A", "size_band": "medium", "email": "compta@agrinord.fr", "credit_limit": Decimal(20000),
     "currency": "EUR", "payment_terms_days": 30, "created_date": date(2025, 1, 1)},
]  # fmt: skip
_I = ("invoice_id", "customer_id", "document_type", "credited_invoice_id", "issue_date", "due_date", "amount",
      "currency", "payment_terms_days")  # fmt: skip
INVOICES = [
    # C1: judged 2026-03-20. Declared: I1 (due at the judgment, 1000 - 300 paid = 700), I2 (not yet due,
    # 400 - 100 credited = 300), I5 (USD, not yet due, 250). Not declared: I3 issued after the judgment, I4 settled.
    ("I1", "C1", "invoice", None, date(2026, 2, 1), date(2026, 3, 3), Decimal(1000), "EUR", 30),
    ("I2", "C1", "invoice", None, date(2026, 3, 1), date(2026, 3, 31), Decimal(400), "EUR", 30),
    ("CN1", "C1", "credit_note", "I2", date(2026, 3, 15), date(2026, 3, 15), Decimal(-100), "EUR", 0),
    ("I3", "C1", "invoice", None, date(2026, 3, 25), date(2026, 4, 24), Decimal(600), "EUR", 30),
    ("I4", "C1", "invoice", None, date(2026, 1, 5), date(2026, 2, 4), Decimal(500), "EUR", 30),
    ("I5", "C1", "invoice", None, date(2026, 3, 10), date(2026, 4, 9), Decimal(250), "USD", 30),
    # C2: open, no procedure at build time
    ("I6", "C2", "invoice", None, date(2026, 3, 20), date(2026, 4, 19), Decimal(800), "EUR", 30),
]
PAYMENTS = [
    {"payment_id": "P1", "customer_id": "C1", "payment_date": date(2026, 2, 4), "amount": Decimal(500),
     "currency": "EUR", "payment_method": "transfer"},
    {"payment_id": "P2", "customer_id": "C1", "payment_date": date(2026, 3, 10), "amount": Decimal(300),
     "currency": "EUR", "payment_method": "transfer"},
]  # fmt: skip
ALLOCATIONS = [
    {"payment_id": "P1", "invoice_id": "I4", "allocated_amount": Decimal(500)},
    {"payment_id": "P2", "invoice_id": "I1", "allocated_amount": Decimal(300)},
]
EVENTS = [
    RiskEvent(LJ_EVENT, REGISTRY_FR, SIREN_LJ, PROCEDURE_OPENED, "liquidation", date(2026, 3, 20),
              date(2026, 3, 31), "bodacc", "Jugement d'ouverture de liquidation judiciaire",
              court="Tribunal de commerce de Lyon", source_url="https://www.bodacc.fr/annonce/A/2026/0331/1"),
    # same digits in another registry: not C1's
    RiskEvent("CH-1", "GB-CRN", SIREN_LJ, "closure", "dissolution", date(2026, 1, 5), date(2026, 1, 5),
              "companies_house"),
]  # fmt: skip
LATER_EVENT = RiskEvent(
    "BODACC-A-2026-0414-7", REGISTRY_FR, SIREN_LATER, PROCEDURE_OPENED, "redressement", date(2026, 4, 8),
    date(2026, 4, 14), "bodacc", "Jugement d'ouverture de redressement judiciaire",
    court="Tribunal de commerce de Lille",
)  # fmt: skip

RISK_RELATIONS = (
    "serving.customer_risk_status",
    "serving.claim_declarations",
    "serving.claim_declaration_invoices",
    "serving.payer_degradation",
)
_ARROW = {"VARCHAR": pa.string(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}


def _table(entity: str, rows: list[dict[str, Any]]) -> pa.Table:
    if entity in RISK_ENTITIES:
        schema = pa.schema([(c, _ARROW[t]) for c, t in RISK_ENTITIES[entity].items()])
    else:
        schema = entity_schema(entity)
    return pa.Table.from_pylist(rows, schema=schema)


def _load(path: Path, batch: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Rows into raw through the shared loader, one extract per entity."""
    extracts = [
        EntityExtract(entity, _table(entity, rows), source_file=f"{batch}-{entity}.json", file_hash=f"{batch}-{entity}")
        for entity, rows in tables.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
        report = load_extracts(con, extracts, source_name=f"test-{batch}", flow_run_id="flow-risk")
    assert not report.rejected, report.rejected


def _settings(data_dir: Path, **fields: Any) -> Settings:
    return Settings(data_dir=data_dir, history_start_days=30, snapshot_interval_days=28, horizon_days=30, **fields)


def _build(settings: Settings, invoke: DbtInvoke, target: dbt.Target = "duckdb") -> dict[str, str]:
    """Pre-scoring build (its own unit tests are the other layers' business), then the serving build with its unit
    tests: what the daily run does, nothing scored in between (grades stay empty, predictions null). Returns the
    status of every node the serving build ran, by unique_id."""
    runs = []
    for stage, unit_tests in (("features", False), ("serving", True)):
        args = dbt.dbt_args(settings, ["build"], as_of_date=AS_OF, stage=stage, unit_tests=unit_tests, target=target)
        runs.append(dbt.run_dbt(settings, args, invoke=invoke))
    return {r.node.unique_id: str(r.status) for r in runs[-1].result_object.results}


def _dicts(path: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(path)) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass(frozen=True)
class Built:
    path: Path
    serving_nodes: dict[str, str]  # unique_id -> status of what the serving build ran


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Built:
    settings = _settings(tmp_path_factory.mktemp("risk-serving"))
    _load(
        settings.warehouse,
        "B1",
        {
            "customers": CUSTOMERS,
            "invoices": [dict(zip(_I, row, strict=True)) for row in INVOICES],
            "payments": PAYMENTS,
            "payment_allocations": ALLOCATIONS,
            "company_events": [e.as_row() for e in EVENTS],
        },
    )
    return Built(settings.warehouse, _build(settings, dbt_invoke))


@pytest.fixture(scope="module")
def warehouse(built: Built) -> Path:
    return built.path


def test_serving_build_ran_the_risk_unit_and_data_tests(built: Built) -> None:
    """The serving unit tests (open procedure, deadlines, split at the judgment, thresholds, grade drop) ran in the
    post-scoring build and passed (a failure would have raised), as did the data tests of the new models."""
    ran = built.serving_nodes
    unit_tests = {uid.rsplit(".", 1)[-1] for uid in ran if uid.startswith("unit_test.")}
    assert {
        "test_customer_risk_status_open_procedure_logic",
        "test_claim_declaration_invoices_split_at_judgment",
        "test_claim_declarations_amounts_deadline_and_status",
        "test_payer_degradation_threshold_both_sides",
        "test_payer_degradation_grade_drop",
        "test_collection_worklist_explains_each_score",
    } <= unit_tests
    for model in ("customer_risk_status", "claim_declarations", "claim_declaration_invoices", "payer_degradation"):
        assert ran[f"model.relance.{model}"] == "success", model
        assert any(uid.startswith("test.relance.") and f"_{model}_" in uid for uid in ran), model
    assert {status for status in ran.values()} <= {"success", "pass"}


def test_worklist_stops_the_debtor_in_liquidation(warehouse: Path) -> None:
    rows = _dicts(
        warehouse,
        "select invoice_id, customer_id, has_open_procedure, procedure_published_date, is_degrading"
        " from serving.collection_worklist order by invoice_id",
    )
    by_invoice = {r["invoice_id"]: r for r in rows}
    assert set(by_invoice) == {"I1", "I2", "I3", "I5", "I6"}
    for invoice_id in ("I1", "I2", "I3", "I5"):  # every open invoice of C1, those after the judgment too
        assert by_invoice[invoice_id]["has_open_procedure"] is True
        assert by_invoice[invoice_id]["procedure_published_date"] == date(2026, 3, 31)
    assert by_invoice["I6"]["has_open_procedure"] is False
    assert by_invoice["I6"]["procedure_published_date"] is None
    assert {r["is_degrading"] for r in rows} == {False}  # no history, no grades: never null


def test_claim_declaration_amounts_and_deadline(warehouse: Path) -> None:
    claims = _dicts(warehouse, "select * from serving.claim_declarations order by claim_id")
    assert [(c["claim_id"], c["amount_due"], c["amount_not_yet_due"], c["invoice_count"]) for c in claims] == [
        (f"{LJ_EVENT}:EUR", Decimal("700.00"), Decimal("300.00"), 2),  # I1 1000 - 300 paid; I2 400 - 100 credited
        (f"{LJ_EVENT}:USD", Decimal("0.00"), Decimal("250.00"), 1),  # I5
    ]
    for claim in claims:
        assert claim["customer_id"] == "C1" and claim["customer_name"] == "Bâti Sud"
        assert claim["company_id"] == SIREN_LJ
        assert claim["court"] == "Tribunal de commerce de Lyon"
        assert claim["procedure_kind"] == "liquidation"
        assert (claim["judgment_date"], claim["published_date"]) == (date(2026, 3, 20), date(2026, 3, 31))
        assert claim["deadline_date"] == date(2026, 5, 31)  # two months after the BODACC publication
        assert claim["days_to_deadline"] == 46  # 2026-04-15 -> 2026-05-31
        assert claim["status"] == "to_declare"
        assert claim["as_of_date"] == AS_OF
    lines = _dicts(
        warehouse,
        "select claim_id, invoice_id, open_amount, is_due_at_judgment from serving.claim_declaration_invoices"
        " order by invoice_id",
    )
    assert [(r["invoice_id"], r["open_amount"], r["is_due_at_judgment"]) for r in lines] == [
        ("I1", Decimal("700.00"), True),
        ("I2", Decimal("300.00"), False),
        ("I5", Decimal("250.00"), False),
    ]  # I3 issued after the judgment (paid at maturity), I4 settled, CN1 already net in I2


def test_risk_status_view_sees_events_loaded_after_the_build(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        kind = con.execute(
            "select table_type from information_schema.tables"
            " where table_schema = 'serving' and table_name = 'customer_risk_status'"
        ).fetchall()
    assert kind == [("VIEW",)]
    before = _dicts(warehouse, "select customer_id, has_open_procedure from serving.customer_risk_status")
    assert before == [{"customer_id": "C1", "has_open_procedure": True}]

    _load(warehouse, "B2", {"company_events": [LATER_EVENT.as_row()]})  # no dbt run after this

    after = {r["customer_id"]: r for r in _dicts(warehouse, "select * from serving.customer_risk_status")}
    assert set(after) == {"C1", "C2"}
    c2 = after["C2"]
    assert c2["has_open_procedure"] is True
    assert c2["procedure_event_id"] == LATER_EVENT.event_id
    assert (c2["judgment_date"], c2["procedure_published_date"]) == (date(2026, 4, 8), date(2026, 4, 14))
    assert c2["claim_deadline_date"] == date(2026, 6, 14)
    assert c2["registry"] == REGISTRY_FR and c2["company_id"] == SIREN_LATER
    # the tables keep what they were built with until the next build
    stale = _dicts(warehouse, "select has_open_procedure from serving.collection_worklist where customer_id = 'C2'")
    assert stale == [{"has_open_procedure": False}]


def test_payer_degradation_covers_customers_with_open_invoices(warehouse: Path) -> None:
    rows = _dicts(warehouse, "select * from serving.payer_degradation order by customer_id")
    assert [r["customer_id"] for r in rows] == ["C1", "C2"]
    c1 = rows[0]
    # history = settled in [2025-01-15, 2026-01-15): nothing. Recent: I4 settled on its due date (02-04, 0 days)
    # and the invoices open and overdue on 04-15: I1 43 days, I2 15, I5 6 (I3 is not due yet)
    assert c1["hist_invoice_count"] == 0 and c1["hist_mean_days_late"] is None
    assert c1["recent_invoice_count"] == 4
    assert math.isclose(c1["recent_mean_days_late"], (0 + 43 + 15 + 6) / 4)
    assert c1["is_reliable_history"] is False and c1["is_degrading"] is False
    assert c1["degradation_reason"] is None
