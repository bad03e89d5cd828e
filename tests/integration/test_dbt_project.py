"""The dbt project end to end on a tiny hand-written raw warehouse.

Builds raw + ops with relance.warehouse.ensure_schemas, inserts a dozen hand-checked rows, runs
``dbt build --exclude tag:post_scoring`` in-process (models, unit tests, data tests), checks values
computed by hand, then fakes a scoring run in ops.predictions and builds ``--select tag:post_scoring``.
A leakage test appends facts dated after an earlier as-of date and proves earlier feature rows do not move.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import contract
from relance import dbt, ops
from relance.raw_schema import (
    CONTACT_ENTITIES,
    ENTITIES,
    LOAD_METADATA,
    NATURAL_KEYS,
    RISK_ENTITIES,
    VERSION_METADATA,
)
from relance.risk.events import EVENT_TYPES
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.conftest import DbtInvoke

pytestmark = pytest.mark.integration

PROJECT_DIR = Settings().dbt_project_dir
AS_OF = "2026-03-31"
# Grid: first invoice 2026-01-01 + 30 = 01-31, then every 28 days strictly before AS_OF, plus AS_OF.
GRID = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 28), date(2026, 3, 31)]

BATCHES = {
    "B1": datetime(2026, 3, 1, 6, 0),
    "B2": datetime(2026, 3, 2, 6, 0),
    "B3": datetime(2026, 3, 3, 6, 0),
    "B4": datetime(2026, 4, 20, 6, 0),
}

_C = ("customer_id", "customer_name", "customer_type", "siren", "sector_section", "size_band", "email")
CUSTOMERS = [
    {
        **dict(zip(_C, ("C1", "Bâti Sud", "B2B", "732829320", "F", "small", "ap@batisud.fr"), strict=True)),
        **{
            "address_line1": "12 rue des Lilas",
            "address_line2": "ZA des Portes",
            "postal_code": "09100",
            "city": "Pamiers",
            "credit_limit": 10000,
            "currency": "EUR",
            "payment_terms_days": 30,
            "created_date": date(2025, 1, 1),
        },
    },
    {
        **dict(zip(_C, ("C2", "Jean Martin", "B2C", None, None, None, "jean@example.fr"), strict=True)),
        **{
            "credit_limit": None,
            "currency": "EUR",
            "payment_terms_days": 0,
            "created_date": date(2025, 6, 1),
        },
    },
    {
        **dict(zip(_C, ("C3", "Acme Corp", "B2B", "552100554", "J", "large", "ap@acme.example"), strict=True)),
        **{
            "company_number": "09446231",  # and a UK subsidiary's Companies House number
            "credit_limit": 50000,
            "currency": "USD",
            "payment_terms_days": 60,
            "created_date": date(2025, 1, 1),
        },
    },
]
INVOICES = [
    # invoice_id, customer_id, type, credited, issue, due, amount, ccy, terms, eom
    ("I1", "C1", "invoice", None, date(2026, 1, 1), date(2026, 1, 31), 1000, "EUR", 30, False),
    ("I2", "C1", "invoice", None, date(2026, 1, 5), date(2026, 2, 4), 500, "EUR", 30, False),
    ("I3", "C1", "invoice", None, date(2026, 1, 10), date(2026, 2, 9), 300, "EUR", 30, False),
    ("I4", "C1", "invoice", None, date(2026, 2, 1), date(2026, 3, 3), 1200, "EUR", 30, False),
    ("CN1", "C1", "credit_note", "I4", date(2026, 2, 15), date(2026, 2, 15), -200, "EUR", 0, False),
    ("I5", "C2", "invoice", None, date(2026, 1, 15), date(2026, 1, 15), 80, "EUR", 0, False),
    ("I6", "C3", "invoice", None, date(2026, 3, 1), date(2026, 4, 30), 1500, "USD", 60, False),
]
PAYMENTS = [
    ("P1", "C1", date(2026, 1, 20), 300, "EUR", "transfer"),  # partial on I1
    ("P2", "C1", date(2026, 2, 10), 700, "EUR", "transfer"),  # settles I1, 10 days late
    ("P3", "C1", date(2026, 2, 1), 800, "EUR", "cheque"),  # one payment for I2 (500) + I3 (300)
    ("P4", "C1", date(2026, 4, 10), 1000, "EUR", "transfer"),  # after AS_OF: settles I4 (1200 - 200 credit)
]
ALLOCATIONS = [("P1", "I1", 300), ("P2", "I1", 700), ("P3", "I2", 500), ("P3", "I3", 300), ("P4", "I4", 1000)]
DISPUTES = [("D1", "I5", date(2026, 2, 1), None, "goods not received")]
_R = ("reminder_id", "invoice_id", "customer_id", "sent_at", "channel", "tone", "response")
REMINDERS = [
    {
        **dict(
            zip(
                _R,
                ("R1", "I4", "C1", datetime(2026, 3, 10, 10), "email", "cordial", "promise_to_pay"),
                strict=True,
            )
        ),
        **{"responded_at": datetime(2026, 3, 11, 9), "promised_date": date(2026, 3, 20)},
    },
    # sent on the AS_OF day itself: not known at AS_OF (sent_at < as_of_date midnight)
    dict(zip(_R, ("R2", "I4", "C1", datetime(2026, 3, 31, 8), "sms", "firm", "none"), strict=True)),
    # unanswered, on an invoice open on every grid date: the leakage tests answer it late
    dict(zip(_R, ("R3", "I5", "C2", datetime(2026, 1, 20, 10), "email", "cordial", "none"), strict=True)),
]
_E = ("event_id", "registry", "company_id", "event_type", "event_date", "published_date", "publisher", "detail")
COMPANY_EVENTS = [
    # C1's SIREN: judged 02-20, published 03-01 -> known from 03-01 on, not on 02-28
    dict(zip(_E, ("E1", "FR-SIREN", "732829320", "procedure_opened", date(2026, 2, 20), date(2026, 3, 1),
                  "bodacc", "Jugement d'ouverture d'une procédure de sauvegarde"), strict=True)),
    # same digits, another registry: not C1
    dict(zip(_E, ("E2", "GB-CRN", "732829320", "closure", date(2026, 1, 5), date(2026, 1, 5),
                  "companies_house", "Dissolved"), strict=True)),
    # C3's UK company number: a director change published 03-20, and accounts filed for the year ended 2024-06-30
    dict(zip(_E, ("E3", "GB-CRN", "09446231", "director_change", date(2026, 3, 16), date(2026, 3, 20),
                  "companies_house", "Director appointed"), strict=True)),
    dict(zip(_E, ("E4", "GB-CRN", "09446231", "accounts_filed", date(2024, 6, 30), date(2025, 2, 1),
                  "companies_house", "Full accounts"), strict=True)),
]  # fmt: skip
_P = ("profile_id", "registry", "company_id", "publisher", "observed_date", "headcount_band", "is_accounts_overdue")
COMPANY_PROFILES = [
    # C1's registry snapshot from 02-15 (10-19 employees); the one of 04-15 is after every grid date
    dict(zip(_P, ("recherche_entreprises:FR-SIREN:732829320:2026-02-15", "FR-SIREN", "732829320",
                  "recherche_entreprises", date(2026, 2, 15), "11", False), strict=True)),
    dict(zip(_P, ("recherche_entreprises:FR-SIREN:732829320:2026-04-15", "FR-SIREN", "732829320",
                  "recherche_entreprises", date(2026, 4, 15), "21", True), strict=True)),
]  # fmt: skip


def _insert(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    rows: list[tuple | dict],
    batch: str,
    loaded_at: datetime | None = None,
) -> None:
    """Append rows (full tuples in raw_schema column order, or dicts with missing columns null) to raw, loaded at
    ``loaded_at`` (default: the batch's time in BATCHES)."""
    columns = {**ENTITIES, **RISK_ENTITIES, **CONTACT_ENTITIES}[entity]
    cols = list(columns) + list(LOAD_METADATA)
    placeholders = ", ".join("?" for _ in cols)
    for i, supplied in enumerate(rows):
        if isinstance(supplied, dict):
            assert set(supplied) <= set(columns), (entity, supplied)
            row = tuple(supplied.get(c) for c in columns)
        else:
            row = supplied
        assert len(row) == len(columns), (entity, row)
        when = loaded_at or BATCHES[batch]
        meta = (batch, f"{entity}_{batch}.csv", f"hash-{batch}", f"row-{batch}-{i}", when, "flow-1")
        con.execute(f"INSERT INTO raw.{entity} ({', '.join(cols)}) VALUES ({placeholders})", [*row, *meta])


def _quarantine(con: duckdb.DuckDBPyConnection, batch: str, entity: str, natural_key: str) -> None:
    row = ops.QuarantineRow(
        batch_id=batch,
        entity=entity,
        row_number=1,
        natural_key=natural_key,
        expectation="expect_amount_sane",
        severity="warning",
        reason="test",
        row_json="{}",
        stage="contract",
        quarantined_at=BATCHES[batch],
        flow_run_id="f",
    )
    ops.quarantine(con, [row])


def _seed(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
        _insert(con, "customers", CUSTOMERS, "B1")
        _insert(con, "invoices", INVOICES, "B1")
        # I6 corrected in a later batch: staging keeps the latest version (amount 2000, batch B2)
        _insert(
            con,
            "invoices",
            [("I6", "C3", "invoice", None, date(2026, 3, 1), date(2026, 4, 30), 2000, "USD", 60, False)],
            "B2",
        )
        # I5 re-sent with a bad amount in B3 and quarantined: staging falls back to the B1 version (80)
        _insert(
            con,
            "invoices",
            [("I5", "C2", "invoice", None, date(2026, 1, 15), date(2026, 1, 15), 99999, "EUR", 0, False)],
            "B3",
        )
        _quarantine(con, "B3", "invoices", "I5")
        # I7 only ever arrived quarantined: it must not exist downstream
        _insert(
            con,
            "invoices",
            [("I7", "C1", "invoice", None, date(2026, 3, 5), date(2026, 4, 4), 999, "EUR", 30, False)],
            "B2",
        )
        _quarantine(con, "B2", "invoices", "I7")
        # a quarantined allocation (two-column natural key) must not settle I5
        _insert(con, "payments", PAYMENTS, "B1")
        _insert(con, "payments", [("P9", "C2", date(2026, 2, 2), 80, "EUR", "card")], "B2")
        _insert(con, "payment_allocations", ALLOCATIONS, "B1")
        _insert(con, "payment_allocations", [("P9", "I5", 80)], "B2")
        _quarantine(con, "B2", "payment_allocations", "P9|I5")
        _insert(con, "disputes", DISPUTES, "B1")
        _insert(con, "reminders", REMINDERS, "B1")
        _insert(con, "company_events", COMPANY_EVENTS, "B1")
        _insert(con, "company_profiles", COMPANY_PROFILES, "B1")


def _settings(tmp: Path) -> Settings:
    """A data directory of its own (warehouse, profile, dbt artefacts) with this module's grid and horizon."""
    return Settings(data_dir=tmp, history_start_days=30, snapshot_interval_days=28, horizon_days=30)


def _dbt(
    tmp: Path,
    invoke: DbtInvoke,
    command: str = "build",
    *,
    as_of: str = AS_OF,
    stage: dbt.Stage | None = "features",
    full_refresh: bool = False,
    extra: tuple[str, ...] = (),
) -> None:
    """dbt through its one owner, on the warehouse under ``tmp``, with the session's parsed manifest."""
    settings = _settings(tmp)
    args = dbt.dbt_args(
        settings, [command], as_of_date=date.fromisoformat(as_of), stage=stage, full_refresh=full_refresh, extra=extra
    )
    dbt.run_dbt(settings, args, invoke=invoke)


# Plain (read-write) connections: dbt-duckdb keeps its in-process connection to the file open after a run,
# and DuckDB refuses a second connection to the same file with a different configuration (read_only).
def _query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path)) as con:
        return con.execute(sql, params or []).fetchall()


def _dicts(path: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(path)) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _build_pre_scoring(tmp: Path, invoke: DbtInvoke, command: str = "build") -> Path:
    """Seed a warehouse under tmp and run the pre-scoring models: ``build`` (models, unit tests, data tests) for
    the module's warehouse, ``run`` (models only) where a test is about the values, not the tests."""
    path = _settings(tmp).warehouse
    _seed(path)
    _dbt(tmp, invoke, command)
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Path:
    """Seeded warehouse, built once for the module: pre-scoring build, fake scores, post_scoring build."""
    tmp = tmp_path_factory.mktemp("dbt")
    path = _build_pre_scoring(tmp, dbt_invoke)
    serving = "select count(*) from information_schema.tables where table_schema = 'serving'"
    assert _query(path, serving) == [(0,)]  # excluded from the pre-scoring build
    fake = pd.DataFrame(
        [
            ("I4", date(2026, 3, 31), 0.8, "payment_delay", "3", "run-3"),
            ("I5", date(2026, 3, 31), 0.5, "payment_delay", "3", "run-3"),
            ("I6", date(2026, 3, 28), 0.9, "payment_delay", "2", "run-2"),  # another date: must not be used
        ],
        columns=list(ops.PREDICTION_COLUMNS),
    )
    with duckdb.connect(str(path)) as con:
        ops.upsert_predictions(con, fake, dbt_invocation_id="inv", flow_run_id="flow-2", scored_at=datetime.now())
    _dbt(tmp, dbt_invoke, stage="serving")
    return path


# --------------------------------------------------------------------------------------- project shape
def test_sources_match_raw_schema_contract() -> None:
    sources = yaml.safe_load((PROJECT_DIR / "models/staging/_sources.yml").read_text())["sources"]
    raw = next(s for s in sources if s["name"] == "raw")
    for table in raw["tables"]:
        declared = {c["name"]: c["data_type"] for c in table["columns"]}
        entity_columns = {**ENTITIES, **RISK_ENTITIES, **CONTACT_ENTITIES}[table["name"]]
        expected = {c: t.lower() for c, t in {**entity_columns, **LOAD_METADATA, **VERSION_METADATA}.items()}
        assert declared == expected, table["name"]
    assert {t["name"] for t in raw["tables"]} == {*ENTITIES, *RISK_ENTITIES, *CONTACT_ENTITIES}


def test_ops_sources_are_ops_tables() -> None:
    """Every ops source dbt reads is a table relance.ops creates, with the columns it declares."""
    sources = yaml.safe_load((PROJECT_DIR / "models/staging/_sources.yml").read_text())["sources"]
    declared = {
        t["name"]: [c["name"] for c in t["columns"]] for t in next(s for s in sources if s["name"] == "ops")["tables"]
    }
    with duckdb.connect() as con:
        ensure_schemas(con)
        for table, columns in declared.items():
            assert set(columns) <= set(ops.table_columns(con, table)), table
    assert {"reminder_sends", "reminders_planned", "contact_suppressions"} <= set(declared)


def test_staging_natural_keys_match_raw_schema() -> None:
    for entity, keys in NATURAL_KEYS.items():
        sql = (PROJECT_DIR / f"models/staging/stg_{entity}.sql").read_text()
        match = re.search(r"current_raw_rows\('(\w+)', \[([^\]]*)\]\)", sql)
        assert match, entity
        assert match.group(1) == entity
        assert tuple(re.findall(r"'(\w+)'", match.group(2))) == keys


def test_staging_event_types_are_the_risk_vocabulary() -> None:
    """stg_company_events accepts exactly relance.risk.events.EVENT_TYPES: a new type is added in both places."""
    spec = yaml.safe_load((PROJECT_DIR / "models/staging/_staging__models.yml").read_text())["models"]
    events = next(m for m in spec if m["name"] == "stg_company_events")
    column = next(c for c in events["columns"] if c["name"] == "event_type")
    accepted = next(t["accepted_values"] for t in column["data_tests"] if isinstance(t, dict))
    assert tuple(accepted["arguments"]["values"]) == EVENT_TYPES


def test_ml_yaml_contract_matches_python_contract() -> None:
    spec = yaml.safe_load((PROJECT_DIR / "models/ml/_ml__models.yml").read_text())["models"]
    by_name = {m["name"]: m for m in spec}
    feats = by_name["ml_invoice_features"]
    assert feats["config"]["contract"]["enforced"] is True
    assert [c["name"] for c in feats["columns"]] == [
        *contract.KEY_COLUMNS,
        *contract.CONTEXT_COLUMNS,
        *contract.NUMERIC_FEATURES,
        *contract.CATEGORICAL_FEATURES,
        *contract.LINEAGE_COLUMNS,
    ]
    types = {c["name"]: c["data_type"] for c in feats["columns"]}
    # float8 and varchar are spelled the same by DuckDB and PostgreSQL (the project builds on both)
    assert {types[c] for c in contract.NUMERIC_FEATURES} == {"float8"}
    docs = {c["name"]: c["description"] for c in feats["columns"]}
    assert {c: docs[c] for c in contract.NUMERIC_FEATURES} == contract.NUMERIC_FEATURE_DOCS
    assert {types[c] for c in contract.CATEGORICAL_FEATURES} == {"varchar"}
    assert [c["name"] for c in by_name["ml_invoice_labels"]["columns"]] == list(contract.LABEL_COLUMNS)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("as_of_date", "var 'as_of_date' is required"),
        ("snapshot_interval_days", "var 'snapshot_interval_days' is required"),
        ("horizon_days", "var 'horizon_days' is required"),
    ],
)
def test_a_missing_var_is_a_clear_error(tmp_path: Path, dbt_invoke: DbtInvoke, missing: str, message: str) -> None:
    """dbt_project.yml has no defaults: a run without a var (by hand, bypassing relance.dbt) fails and says so."""
    settings = _settings(tmp_path)
    args = dbt.dbt_args(settings, ["compile"], as_of_date=date(2026, 3, 31), extra=("--select", "+ml_invoice_labels"))
    i = args.index("--vars") + 1
    args[i] = json.dumps({k: v for k, v in json.loads(args[i]).items() if k != missing})
    run = dbt.run_dbt(settings, args, invoke=dbt_invoke, check=False)
    assert not run.success
    assert message in (run.error or "") + " ".join(f.message for f in run.failed)


# --------------------------------------------------------------------------------------- values
def test_relations_land_in_their_schemas(warehouse: Path) -> None:
    path = warehouse
    rows = set(_query(path, "select table_schema, table_name from information_schema.tables"))
    for rel in (
        ("staging", "stg_invoices"),
        ("staging", "stg_company_profiles"),
        ("staging", "stg_company_profile_versions"),
        ("intermediate", "int_feature_dates"),
        ("marts", "invoices"),
        ("marts", "customers"),
        ("ml", "ml_invoice_features"),
        ("ml", "ml_invoice_labels"),
        ("serving", "collection_worklist"),
        ("serving", "report_aged_balance"),
        ("serving", "report_dso"),
        ("serving", "report_at_risk_exposure"),
        ("staging", "stg_call_outcomes"),
        ("staging", "stg_message_event_versions"),
        ("staging", "stg_reminder_sends"),
        ("staging", "stg_contact_suppressions"),
        ("intermediate", "int_reminder_sends_expanded_to_invoices"),
        ("serving", "customer_contact_state"),
        ("serving", "reminder_response_history"),
    ):
        assert rel in rows, rel


def test_staging_latest_version_and_quarantine(warehouse: Path) -> None:
    path = warehouse
    inv = {r[0]: r[1:] for r in _query(path, "select invoice_id, amount, raw_batch_id from staging.stg_invoices")}
    assert "I7" not in inv  # only version quarantined
    assert inv["I5"] == (80, "B1")  # newer version quarantined -> previous version
    assert inv["I6"] == (2000, "B2")  # latest version wins
    allocs = _query(path, "select payment_id, invoice_id from staging.stg_payment_allocations")
    assert ("P9", "I5") not in allocs and len(allocs) == len(ALLOCATIONS)


def test_feature_grid(warehouse: Path) -> None:
    path = warehouse
    assert [r[0] for r in _query(path, "select as_of_date from intermediate.int_feature_dates order by 1")] == GRID
    rows = _query(
        path,
        "select as_of_date, list(invoice_id order by invoice_id) from ml.ml_invoice_features group by 1 order by 1",
    )
    assert rows == [
        (date(2026, 1, 31), ["I1", "I2", "I3", "I5"]),
        (date(2026, 2, 28), ["I4", "I5"]),
        (date(2026, 3, 28), ["I4", "I5", "I6"]),
        (date(2026, 3, 31), ["I4", "I5", "I6"]),
    ]


def test_invoice_mart_as_of(warehouse: Path) -> None:
    path = warehouse
    inv = {r["invoice_id"]: r for r in _dicts(path, "select * from marts.invoices")}
    assert set(inv) == {"I1", "I2", "I3", "I4", "I5", "I6"}  # credit notes net, they are not rows
    i4 = inv["I4"]  # P4 (04-10) is after the as-of date: not counted
    assert (i4["credited_amount"], i4["paid_amount"], i4["open_amount"]) == (200, 0, 1000)
    assert i4["is_open"] and i4["settled_date"] is None
    assert (i4["days_overdue"], i4["aging_bucket"]) == (28, "1-30")
    assert inv["I1"]["settled_date"] == date(2026, 2, 10) and not inv["I1"]["is_open"]
    assert inv["I1"]["aging_bucket"] is None
    assert (inv["I5"]["days_overdue"], inv["I5"]["aging_bucket"], inv["I5"]["is_disputed"]) == (
        75,
        "61-90",
        True,
    )
    assert (inv["I6"]["days_overdue"], inv["I6"]["aging_bucket"]) == (-30, "not_due")
    cust = {
        r[0]: r[1:] for r in _query(path, "select customer_id, open_amount, open_invoice_count from marts.customers")
    }
    assert cust == {"C1": (1000, 1), "C2": (80, 1), "C3": (2000, 1)}


def test_settlement_dates(warehouse: Path) -> None:
    path = warehouse
    rows = {
        r[0]: r[1:]
        for r in _query(
            path,
            "select invoice_id, settled_date, days_late, settling_payment_count"
            " from intermediate.int_invoice_settlement_dates",
        )
    }
    assert rows["I1"] == (date(2026, 2, 10), 10, 2)  # partial then balance
    assert rows["I2"] == (date(2026, 2, 1), -3, 1)  # one payment for two invoices
    assert rows["I3"] == (date(2026, 2, 1), -8, 1)
    assert rows["I4"] == (date(2026, 4, 10), 38, 1)  # 1000 paid + 200 credit note
    assert rows["I5"] == (None, None, 0)


def test_feature_values_by_hand(warehouse: Path) -> None:
    path = warehouse
    rows = _dicts(path, "select * from ml.ml_invoice_features where invoice_id = 'I4' and as_of_date = '2026-03-28'")
    assert len(rows) == 1
    f = rows[0]
    # C1 history before 03-28: I1 (+10 days, 2 payments), I2 (-3), I3 (-8)
    expected = {
        "customer_id": "C1",
        "currency": "EUR",
        "amount": 1200.0,
        "open_amount": 1000.0,
        "open_share": pytest.approx(1000 / 1200),
        "days_to_due": -25.0,
        "invoice_age_days": 55.0,
        "issue_month": 2.0,
        "due_month": 3.0,
        "invoice_payment_count": 0.0,
        "is_disputed": 0.0,
        "dispute_count": 0.0,
        "is_end_of_month_terms": 0.0,
        "cust_settled_invoice_count": 3.0,
        "cust_late_invoice_count": 1.0,
        "cust_late_share": pytest.approx(1 / 3),
        "cust_mean_days_late": pytest.approx(-1 / 3),
        "cust_median_days_late_365d": -3.0,
        # weights 2^(settled_date / 90 days): I1 settled 9 days after I2 and I3
        "cust_ew_mean_days_late": pytest.approx((2**0.1 * 10 - 3 - 8) / (2**0.1 + 2)),
        "cust_recent_mean_days_late": pytest.approx(-1 / 3),  # all three settled within 90 days
        "cust_days_late_trend": None,  # nothing settled before that window
        "cust_partial_payment_share": pytest.approx(1 / 3),
        "cust_days_since_last_payment": 46.0,  # P2 on 02-10
        "cust_open_amount": 1000.0,
        "cust_open_invoice_count": 1.0,
        "cust_overdue_invoice_count": 1.0,
        "cust_credit_limit_usage": pytest.approx(0.1),
        "cust_tenure_days": 451.0,
        "reminder_count": 1.0,
        "reminder_email_count": 1.0,
        "reminder_sms_count": 0.0,
        "reminder_cordial_count": 1.0,
        "reminder_firm_count": 0.0,
        "days_since_last_reminder": 18.0,
        "last_reminder_response": "promise_to_pay",
        "promise_count": 1.0,
        "broken_promise_count": 1.0,  # promised 03-20, still open on 03-28
        # C1 is the only customer of sector F and size band small
        "sector_late_share": pytest.approx(1 / 3),
        "size_mean_days_late": pytest.approx(-1 / 3),
        # E1 published 03-01 (judged 02-20); E2 is another registry's company
        "risk_collective_procedure": 1.0,
        "risk_closure": 0.0,
        "risk_event_count_365d": 1.0,
        "risk_days_since_last_event": 27.0,
        "risk_open_procedure": 1.0,
        "risk_recent_director_change": 0.0,
        "risk_recent_head_office_move": 0.0,
        "risk_accounts_overdue": 0.0,
        "risk_headcount_band": 10.0,  # the profile of 02-15, band '11'
        "invoice_currency": "EUR",
        "document_type": "invoice",
        "customer_type": "B2B",
        "sector_section": "F",
        "size_band": "small",
    }
    assert {k: f[k] for k in expected} == expected
    assert f["open_amount_ccy"] == 1000
    assert f["dbt_invocation_id"]
    # R2 is sent on the as-of day itself: not counted at 03-31
    r = _query(
        path,
        "select reminder_count, days_since_last_reminder from ml.ml_invoice_features"
        " where invoice_id = 'I4' and as_of_date = '2026-03-31'",
    )
    assert r == [(1.0, 21.0)]
    # the risk notice is not known before its publication (02-28 < 03-01)
    risk = _query(
        path,
        "select risk_collective_procedure, risk_event_count_365d, risk_days_since_last_event"
        " from ml.ml_invoice_features where invoice_id = 'I4' and as_of_date = '2026-02-28'",
    )
    assert risk == [(0.0, 0.0, None)]
    # C3 (UK company number): E3 published 03-20 is a recent director change on 03-28; its last accounts (year
    # ended 2024-06-30) are more than 18 months old by then; E2 (GB-CRN, C1's SIREN digits) is nobody's
    c3 = _query(
        path,
        "select as_of_date, risk_recent_director_change, risk_accounts_overdue, risk_event_count_365d,"
        " risk_open_procedure, risk_closure, risk_headcount_band from ml.ml_invoice_features"
        " where invoice_id = 'I6' order by as_of_date",
    )
    assert c3 == [  # E4 (published 2025-02-01) is older than 365 days: one event in the window
        (date(2026, 3, 28), 1.0, 1.0, 1.0, 0.0, 0.0, None),
        (date(2026, 3, 31), 1.0, 1.0, 1.0, 0.0, 0.0, None),
    ]
    # no history yet on the first grid date: null ratios, zero counts
    h = _query(
        path,
        "select cust_settled_invoice_count, cust_late_share, cust_mean_days_late,"
        " cust_days_since_last_payment, open_amount from ml.ml_invoice_features"
        " where invoice_id = 'I1' and as_of_date = '2026-01-31'",
    )
    assert h == [(0.0, None, None, 11.0, 700.0)]
    b2c = _query(
        path,
        "select cust_credit_limit_usage, is_disputed, size_band, sector_late_share, last_reminder_response,"
        " risk_collective_procedure from ml.ml_invoice_features"
        " where invoice_id = 'I5' and as_of_date = '2026-03-31'",
    )
    # B2C: no credit limit, no sector; the '(none)' sector (C2 alone) has nothing settled yet; R3 unanswered
    assert b2c == [(None, 1.0, None, None, "none", 0.0)]


def test_features_contract_columns(warehouse: Path) -> None:
    path = warehouse
    cols = _query(
        path,
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'ml' and table_name = 'ml_invoice_features' order by ordinal_position",
    )
    names = [c[0] for c in cols]
    assert names == [
        *contract.KEY_COLUMNS,
        *contract.CONTEXT_COLUMNS,
        *contract.FEATURE_COLUMNS,
        *contract.LINEAGE_COLUMNS,
    ]
    types = dict(cols)
    assert types["open_amount_ccy"] == "DECIMAL(18,2)" and types["as_of_date"] == "DATE"
    assert all(types[c] == "DOUBLE" for c in contract.NUMERIC_FEATURES)


def test_labels(warehouse: Path) -> None:
    path = warehouse
    labels = {
        (r[0], r[1]): r[2:]
        for r in _query(path, f"select {', '.join(contract.LABEL_COLUMNS)} from ml.ml_invoice_labels")
    }
    # labels exist for the training (grid) rows only, not for the scoring date
    feats = set(_query(path, "select invoice_id, as_of_date from ml.ml_invoice_features where as_of_date < ?", [AS_OF]))
    assert set(labels) == feats
    # columns: target_name, is_late, days_late, settled_date, days_to_settle, is_paid_within_horizon,
    # amount_paid_within_horizon, open_amount_at_as_of, label_observed_date, is_label_known.
    # label_observed_date = greatest(due_date, as_of_date) + 30; known when it is on or before AS_OF (03-31)
    # I1 due 01-31, seen 01-31 with 700 open: observed 03-02, P2 (700) paid 02-10 -> on time, known
    assert {v[0] for v in labels.values()} == {"unpaid_30d_after_due"}  # the settings' default target
    labels = {k: v[1:] for k, v in labels.items()}
    assert labels[("I1", date(2026, 1, 31))] == (
        0, 10, date(2026, 2, 10), 10, 1, 700, 700, date(2026, 3, 2), True,
    )  # fmt: skip
    # I4 due 03-03, seen 02-28 (not yet due, 1000 open after CN1): observed 04-02, paid 04-10 -> late, not
    # known by 03-31; nothing paid within (02-28, 03-30]
    assert labels[("I4", date(2026, 2, 28))] == (
        1, 38, date(2026, 4, 10), 41, 0, 0, 1000, date(2026, 4, 2), False,
    )  # fmt: skip
    # I4 seen 03-28 (overdue): observed 04-27, paid 04-10 -> paid within 30 days of the as-of date
    assert labels[("I4", date(2026, 3, 28))] == (
        0, 38, date(2026, 4, 10), 13, 1, 1000, 1000, date(2026, 4, 27), False,
    )  # fmt: skip
    assert labels[("I5", date(2026, 3, 28))] == (1, None, None, None, 0, 0, 80, date(2026, 4, 27), False)


def test_worklist_and_reports(warehouse: Path) -> None:
    path = warehouse
    wl = {r["invoice_id"]: r for r in _dicts(path, "select * from serving.collection_worklist")}
    assert set(wl) == {"I4", "I5", "I6"}
    assert wl["I4"]["p_late"] == 0.8 and wl["I4"]["model_version"] == "3"
    assert wl["I4"]["customer_name"] == "Bâti Sud" and wl["I4"]["email"] == "ap@batisud.fr"
    # the postal address a letter needs, through staging and the customers mart (C2 has none)
    address = ("address_line1", "address_line2", "postal_code", "city")
    assert [wl["I4"][c] for c in address] == ["12 rue des Lilas", "ZA des Portes", "09100", "Pamiers"]
    assert [wl["I5"][c] for c in address] == [None, None, None, None]
    assert wl["I6"]["p_late"] is None  # only scored for another date
    assert (wl["I6"]["days_overdue"], wl["I6"]["raw_batch_id"], wl["I6"]["open_amount"]) == (-30, "B2", 2000)
    assert all(r["as_of_date"] == date(2026, 3, 31) for r in wl.values())

    aged = _query(
        path,
        "select currency, aging_bucket, invoice_count, open_amount"
        " from serving.report_aged_balance order by currency, bucket_order",
    )
    assert aged == [
        ("EUR", "not_due", 0, 0),
        ("EUR", "1-30", 1, 1000),
        ("EUR", "31-60", 0, 0),
        ("EUR", "61-90", 1, 80),
        ("EUR", "90+", 0, 0),
        ("USD", "not_due", 1, 2000),
        ("USD", "1-30", 0, 0),
        ("USD", "31-60", 0, 0),
        ("USD", "61-90", 0, 0),
        ("USD", "90+", 0, 0),
    ]
    dso = {
        r[0]: r[1:] for r in _query(path, "select currency, receivables, sales_90d, dso_days from serving.report_dso")
    }
    assert dso["EUR"][:2] == (1080, 3080)
    assert dso["EUR"][2] == pytest.approx(1080 / 3080 * 90)
    assert dso["USD"][2] == pytest.approx(90.0)
    risk = _query(
        path,
        "select invoice_id, expected_at_risk, risk_rank from serving.report_at_risk_exposure"
        " order by currency, risk_rank",
    )
    assert risk == [("I4", 800, 1), ("I5", 40, 2)]


def test_contact_state_and_response_history(warehouse: Path) -> None:
    """The reaction models on the module's seed (their logic is pinned by their unit tests, which this build ran;
    tests/integration/test_contact_state.py checks call outcomes, provider events and relance's own sends)."""
    path = warehouse
    state = {r["customer_id"]: r for r in _dicts(path, "select * from serving.customer_contact_state")}
    assert set(state) == {"C1", "C2", "C3"}
    c1, c2 = state["C1"], state["C2"]
    # R2 is sent on the as-of day: not a contact yet; R1's promise (03-20 + 3 days) was not kept by 03-31
    assert (c1["last_contact_at"], c1["last_contact_channel"]) == (datetime(2026, 3, 10, 10), "email")
    assert (c1["promise_source"], c1["promise_status"], c1["broken_promise_count"]) == ("reminder", "broken", 1)
    assert (c1["has_open_dispute"], c1["is_paid_since_last_contact"]) == (False, False)
    # C2 paid P9 (02-02) after R3 (01-20) while I5, disputed, stays open
    assert (c2["has_open_dispute"], c2["is_partial_payment_since_last_contact"]) == (True, True)
    assert state["C3"]["last_contact_at"] is None and state["C3"]["promise_status"] is None
    history = _query(
        path,
        "select source, contact_id, invoice_id, days_overdue_at_send, amount, size_band, prior_contacts,"
        " is_paid_within_14d from serving.reminder_response_history order by contact_id",
    )
    # contacts of 03-17 (AS_OF - 14) or before: R1 (I4: 1200 - 200 credited, settled 04-10) and R3 (I5, unpaid)
    assert history == [
        ("legacy", "R1", "I4", 7, 1000, "small", 0, False),
        ("legacy", "R3", "I5", 5, 80, None, 0, False),
    ]


# --------------------------------------------------------------------------------------- leakage
FEATURE_SQL = ", ".join([*contract.KEY_COLUMNS, *contract.CONTEXT_COLUMNS, *contract.FEATURE_COLUMNS])


def _same_rows(before: list[tuple], after: list[tuple]) -> bool:
    """Same rows, floats to 1e-12 relative: a running float sum may round its last bit differently once rows
    are appended to its partition; a leaked fact moves a feature by far more."""

    def same(x: object, y: object) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
        return x == y

    return len(before) == len(after) and all(
        len(b) == len(a) and all(same(x, y) for x, y in zip(b, a, strict=True))
        for b, a in zip(before, after, strict=True)
    )


def test_future_facts_do_not_change_past_features(tmp_path: Path, dbt_invoke: DbtInvoke) -> None:
    tmp = tmp_path
    path = _build_pre_scoring(tmp, dbt_invoke, "run")
    sql = f"select {FEATURE_SQL} from ml.ml_invoice_features where as_of_date <= '2026-02-28' order by all"
    later = f"select {FEATURE_SQL} from ml.ml_invoice_features where as_of_date = '2026-03-28' order by invoice_id"
    before, before_later = _query(path, sql), _query(path, later)
    assert before
    late = datetime(2026, 3, 20, 6)  # loaded after every fact's date, before the 03-28 grid date
    with duckdb.connect(str(path)) as con:
        # all dated on/after 02-28 (a reminder sent during 02-28 is not known at its start): payments, a
        # customer payment, reminders with a promise, a dispute, a credit note and a risk notice
        payments = [
            ("P10", "C2", date(2026, 3, 5), 30, "EUR", "card"),
            ("P11", "C1", date(2026, 3, 15), 100, "EUR", "transfer"),
        ]
        _insert(con, "payments", payments, "B4", late)
        _insert(con, "payment_allocations", [("P10", "I5", 30), ("P11", "I4", 100)], "B4", late)
        _insert(con, "reminders", [
            ("R10", "I5", "C2", datetime(2026, 3, 1, 9), "letter", "firm", "promise_to_pay",
             datetime(2026, 3, 2, 9), date(2026, 3, 10)),
            ("R11", "I4", "C1", datetime(2026, 2, 28, 12), "call", "firm", "none", None, None),
        ], "B4", late)  # fmt: skip
        _insert(con, "disputes", [("D10", "I4", date(2026, 3, 1), None, "price")], "B4", late)
        credit_note = (
            "CN2",
            "C2",
            "credit_note",
            "I5",
            date(2026, 3, 10),
            date(2026, 3, 10),
            -10,
            "EUR",
            0,
            False,
        )
        _insert(con, "invoices", [credit_note], "B4", late)
        notice = ("E3", "FR-SIREN", "732829320", "closure", date(2026, 3, 2), date(2026, 3, 9), "bodacc", "Radiation")
        _insert(con, "company_events", [dict(zip(_E, notice, strict=True))], "B4", late)
    # a full refresh recomputes every date from raw: past dates must still not see the appended facts
    _dbt(tmp, dbt_invoke, "run", full_refresh=True)
    assert _same_rows(before, _query(path, sql))
    # the appended facts are really used for the later date (so the check above can fail)
    after_later = _query(path, later)
    assert after_later != before_later
    i5 = _query(
        path,
        "select open_amount, reminder_count, broken_promise_count from ml.ml_invoice_features"
        " where invoice_id = 'I5' and as_of_date = '2026-03-28'",
    )
    assert i5 == [(40.0, 2.0, 1.0)]  # 80 - 30 paid - 10 credited; R3 and R10, R10's promise broken
    i4 = _query(
        path,
        "select risk_closure, risk_event_count_365d, is_disputed from ml.ml_invoice_features"
        " where invoice_id = 'I4' and as_of_date = '2026-03-28'",
    )
    assert i4 == [(1.0, 2.0, 1.0)]


# --------------------------------------------------------------------------------------- incremental
def _rows_by_date(path: Path) -> dict[date, dict[str, tuple]]:
    out: dict[date, dict[str, tuple]] = {}
    for row in _query(path, f"select {FEATURE_SQL}, dbt_invocation_id from ml.ml_invoice_features"):
        out.setdefault(row[2], {})[row[0]] = row
    return out


def test_incremental_build_only_builds_new_dates(tmp_path: Path, dbt_invoke: DbtInvoke) -> None:
    """A later run appends its new grid date and its scoring date, keeps what earlier runs built (past scoring
    dates included), replaces its own scoring date when rerun, and equals a full rebuild on the grid."""
    tmp = tmp_path
    path = _build_pre_scoring(tmp, dbt_invoke, "run")
    first = _rows_by_date(path)
    assert sorted(first) == GRID
    may = "2026-04-30"
    _dbt(tmp, dbt_invoke, "run", as_of=may)
    second = _rows_by_date(path)
    # grid 01-31 + 28k: 04-25 is new; 04-30 is the scoring date; 03-31 (last run's scoring date) is kept
    assert sorted(second) == [*GRID, date(2026, 4, 25), date(2026, 4, 30)]
    for day in GRID:  # not rebuilt: same rows, same dbt invocation
        assert second[day] == first[day], day
    (new_invocation,) = {row[-1] for day in (date(2026, 4, 25), date(2026, 4, 30)) for row in second[day].values()}
    assert new_invocation != next(iter(first[GRID[0]].values()))[-1]
    # I4 was settled by P4 on 04-10: no longer open
    assert set(second[date(2026, 4, 30)]) == {"I5", "I6"}
    grid_dates = [r[0] for r in _query(path, "select as_of_date from intermediate.int_feature_dates order by 1")]
    assert grid_dates == [*GRID[:-1], date(2026, 4, 25), date(2026, 4, 30)]
    label_dates = _query(path, "select distinct as_of_date from ml.ml_invoice_labels order by 1")
    assert [r[0] for r in label_dates] == [*GRID[:-1], date(2026, 4, 25)]  # grid dates only

    # rerun of the same date after I6 is paid (04-29): the scoring date is rebuilt, its stale row goes
    with duckdb.connect(str(path)) as con:
        _insert(con, "payments", [("P12", "C3", date(2026, 4, 29), 2000, "USD", "transfer")], "B4")
        _insert(con, "payment_allocations", [("P12", "I6", 2000)], "B4")
    _dbt(tmp, dbt_invoke, "run", as_of=may)
    third = _rows_by_date(path)
    assert set(third[date(2026, 4, 30)]) == {"I5"}
    assert third[date(2026, 4, 25)] == second[date(2026, 4, 25)]  # the grid date is not rebuilt

    # a full refresh recomputes the grid and the scoring date from raw: same values as built incrementally
    _dbt(tmp, dbt_invoke, "run", as_of=may, full_refresh=True)
    full = _rows_by_date(path)
    assert sorted(full) == grid_dates  # past scoring dates (03-31) are not part of a rebuild
    for day in grid_dates:
        assert {k: v[:-1] for k, v in full[day].items()} == {k: v[:-1] for k, v in third[day].items()}, day


# --------------------------------------------------------------------------------------- leakage, property-based
INVOICE_CUSTOMER = {"I1": "C1", "I2": "C1", "I3": "C1", "I4": "C1", "I5": "C2", "I6": "C3"}
SIRENS = ["732829320", "552100554"]
# every example appends at least one fact of each kind (fact n is of kind n mod 11), so every as-of rule is
# exercised by every example; hypothesis varies the dates, targets, amounts, responses and attributes. The first
# seven are facts dated after the cutoff; the last four are late facts about the past, dated on or before the
# cutoff but loaded after it: a late answer to an earlier reminder (and a reminder sent before the cutoff but loaded
# after it), a customer update, an invoice amendment (amount and due date) and a backdated payment.
FACT_KINDS = (
    "payment", "reminder", "dispute", "resolve", "credit_note", "risk", "invoice",
    "late_answer", "customer_update", "amendment", "backdated_payment",
)  # fmt: skip
# the seed's last batch (B3) is loaded 03-03: a later batch must come after it (else it would be the first batch of
# its entity, the history import, known at its business dates)
FIRST_LATE_LOAD = datetime(2026, 3, 4)

_future_fact = st.fixed_dictionaries(
    {
        "days_after": st.integers(min_value=0, max_value=60),
        "hour": st.integers(min_value=0, max_value=23),
        "invoice": st.sampled_from(sorted(INVOICE_CUSTOMER)),
        "amount": st.integers(min_value=1, max_value=2000),
        "response": st.sampled_from(["none", "promise_to_pay", "dispute", "paid"]),
        "siren": st.sampled_from(SIRENS),
        "event_type": st.sampled_from(EVENT_TYPES),
        "customer_type": st.sampled_from(["B2B", "B2C"]),
        "sector": st.sampled_from(["A", "F", "J", "M", None]),
        "size": st.sampled_from(["micro", "small", "medium", "large", None]),
    }
)


def _current_invoice(invoice_id: str) -> tuple:
    """The seed's current version of an invoice (I6 as corrected in B2)."""
    if invoice_id == "I6":
        return ("I6", "C3", "invoice", None, date(2026, 3, 1), date(2026, 4, 30), 2000, "USD", 60, False)
    return next(row for row in INVOICES if row[0] == invoice_id)


def _append_future_facts(con: duckdb.DuckDBPyConnection, cutoff: date, facts: list[dict]) -> None:
    """Append facts that become known only after `cutoff` starts, each in a batch of its own loaded after it:
    date-stamped facts dated after it, reminders sent from its midnight on (which the as-of rule
    `sent_at < as_of_date` excludes), and late facts about earlier dates (see FACT_KINDS)."""
    midnight = datetime.combine(cutoff, datetime.min.time())
    for n, fact in enumerate(facts):
        later = cutoff + timedelta(days=fact["days_after"] + 1)  # strictly after the cutoff
        earlier = cutoff - timedelta(days=fact["days_after"] % 20)  # on or before the cutoff
        inv, cust = fact["invoice"], INVOICE_CUSTOMER[fact["invoice"]]
        kind = FACT_KINDS[n % len(FACT_KINDS)]
        batch = f"L{n}"
        loaded = max(datetime.combine(later, datetime.min.time()), FIRST_LATE_LOAD) + timedelta(hours=fact["hour"])

        def insert(entity: str, rows: list, batch: str = batch, loaded: datetime = loaded) -> None:
            _insert(con, entity, rows, batch, loaded)

        if kind == "payment":
            insert("payments", [(f"PF{n}", cust, later, fact["amount"], "EUR", "transfer")])
            insert("payment_allocations", [(f"PF{n}", inv, fact["amount"])])
        elif kind == "reminder":
            sent = midnight + timedelta(days=fact["days_after"], hours=fact["hour"])
            answered = fact["response"] != "none"
            row = (f"RF{n}", inv, cust, sent, "email", "firm", fact["response"],
                   sent + timedelta(hours=2) if answered else None,
                   later + timedelta(days=5) if fact["response"] == "promise_to_pay" else None)  # fmt: skip
            insert("reminders", [row])
        elif kind == "dispute":
            insert("disputes", [(f"DF{n}", inv, later, None, "price")])
        elif kind == "resolve":  # a new version of D1 resolving it after the cutoff
            insert("disputes", [("D1", "I5", date(2026, 2, 1), later, "goods not received")])
        elif kind == "credit_note":
            insert("invoices", [(f"CF{n}", cust, "credit_note", inv, later, later, -fact["amount"], "EUR", 0, False)])
        elif kind == "risk":  # judged before the cutoff, published after it: known only from publication
            event = (f"EF{n}", "FR-SIREN", fact["siren"], fact["event_type"], cutoff - timedelta(days=10), later,
                     "bodacc", "notice")  # fmt: skip
            insert("company_events", [dict(zip(_E, event, strict=True))])
        elif kind == "invoice":
            insert("invoices", [(f"IF{n}", cust, "invoice", None, later, later + timedelta(days=30), fact["amount"],
                                 "EUR", 30, False)])  # fmt: skip
        elif kind == "late_answer":
            # R3 (I5, sent 01-20, unanswered) answered on or after the cutoff day; and a reminder sent and answered
            # before the cutoff that reaches raw only after it
            response = "promise_to_pay" if fact["response"] == "none" else fact["response"]
            promised = later + timedelta(days=5) if response == "promise_to_pay" else None
            answer = midnight + timedelta(days=fact["days_after"], hours=fact["hour"])
            r3 = ("R3", "I5", "C2", datetime(2026, 1, 20, 10), "email", "cordial", response, answer, promised)
            sent = midnight - timedelta(days=3)
            old = (f"RL{n}", inv, cust, sent, "call", "firm", response, sent + timedelta(hours=1), promised)
            insert("reminders", [r3, old])
        elif kind == "customer_update":
            base = next(c for c in CUSTOMERS if c["customer_id"] == cust)
            update = {**base, "customer_type": fact["customer_type"], "sector_section": fact["sector"],
                      "size_band": fact["size"], "credit_limit": fact["amount"], "siren": fact["siren"],
                      "created_date": date(2024, 1, 1)}  # fmt: skip
            insert("customers", [update])
        elif kind == "amendment":
            row = list(_current_invoice(inv))
            row[5] = row[5] + timedelta(days=fact["days_after"] - 30)  # due date
            row[6] = fact["amount"]  # amount
            insert("invoices", [tuple(row)])
        else:  # backdated_payment: paid on or before the cutoff, booked after it
            insert("payments", [(f"PB{n}", cust, earlier, fact["amount"], "EUR", "transfer")])
            insert("payment_allocations", [(f"PB{n}", inv, fact["amount"])])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cutoff=st.sampled_from(GRID[:-1]),
    facts=st.lists(_future_fact, min_size=len(FACT_KINDS), max_size=2 * len(FACT_KINDS)),
)
def test_property_future_facts_never_reach_earlier_as_of_dates(
    warehouse: Path, dbt_invoke: DbtInvoke, cutoff: date, facts: list
) -> None:
    """For any grid date and any facts that become known after it (facts dated later, and late facts about earlier
    dates: late answers, customer updates, invoice amendments, backdated payments), appending them to raw and
    rebuilding from scratch changes no feature row dated on or before it."""
    select = f"select {FEATURE_SQL} from ml.ml_invoice_features where as_of_date <= ? order by all"
    expected = _query(warehouse, select, [cutoff])
    assert expected
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        path = _settings(tmp).warehouse
        _seed(path)
        with duckdb.connect(str(path)) as con:
            _append_future_facts(con, cutoff, facts)
        _dbt(tmp, dbt_invoke, "run", stage=None, extra=("--select", "+ml_invoice_features"))
        assert _same_rows(expected, _query(path, select, [cutoff]))
