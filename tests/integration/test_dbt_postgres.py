"""The dbt project on its second target, PostgreSQL 15, gives the same tables as on DuckDB.

One small generated warehouse (demo generator + the real loader, plus a corrected and a quarantined version of a
few invoices so staging's latest-version and quarantine logic run), copied table by table (``raw`` and ``ops``)
into a throwaway PostgreSQL (the session's ``postgres_url`` cluster, ``tests/pg_copy.py``). dbt runs in process
through its one owner, ``relance.dbt``, with a ``Settings`` per target (own data dir, so own profile and target
path; the same grid vars): DuckDB with the session's parsed manifest, PostgreSQL with a manifest parsed once for
this module, the password set only around the PostgreSQL calls. On each target: ``dbt build --exclude
tag:post_scoring`` (models, unit tests, data tests), fake scores written to ``ops.predictions`` in DuckDB and
copied over, and ``dbt build --select tag:post_scoring``. Finally every relation of the dbt schemas is compared:
same relations, same columns and type families, same number of rows, same rows (floats to a relative 1e-9,
everything else exact; ``dbt_invocation_id`` differs by design and is left out). A test changes one value on
PostgreSQL and checks the comparison sees it. The last one is the leakage test on PostgreSQL: facts dated after a
grid date are appended to raw there, the features are rebuilt from scratch, and no row of that date or before
moves. Skipped, with the reason, only when no throwaway PostgreSQL can be started (fails in CI).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql

from relance import dbt, ops
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.conftest import DEMO_AS_OF, DbtInvoke, copy_warehouse
from tests.pg_copy import copy_schemas, copy_table, dbt_pg_settings, libpq_conninfo

pytestmark = pytest.mark.integration

AS_OF = DEMO_AS_OF  # the date the session demo export ends (tests/conftest.py)
# the grid of the daily run's vars, but 28-day instead of weekly: keeps the module short
GRID = {"snapshot_interval_days": 28, "history_start_days": 120, "horizon_days": 30}
DBT_SCHEMAS = ("staging", "intermediate", "marts", "ml", "serving")
MUST_HAVE_ROWS = (
    "marts.invoices",
    "marts.customers",
    "ml.ml_invoice_features",
    "ml.ml_invoice_labels",
    "serving.collection_worklist",
    "intermediate.int_reminder_sends_expanded_to_invoices",
    "serving.customer_contact_state",
    "serving.reminder_response_history",
)
IGNORED_COLUMNS = frozenset({"dbt_invocation_id"})  # the dbt run's own id: differs between any two builds
REL_TOL = 1e-9
ABS_TOL = 1e-12  # sums of doubles in another order can leave ~1e-17 instead of 0
DATABASE = "relance_dbt"  # own database on the session's server, next to other modules' databases
MAX_SHOWN = 5


# --------------------------------------------------------------------------------------- dbt on each target
@dataclass(frozen=True)
class Target:
    """One dbt target: its settings (own data dir: profile, target path, logs), the ``invoke`` of a runner holding
    a parsed manifest, and the password (PostgreSQL only) dbt reads from the environment while it runs."""

    name: dbt.Target
    settings: Settings
    invoke: DbtInvoke
    password: str | None = None

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as mp:
            if self.password is not None:
                mp.setenv(dbt.PG_PASSWORD_ENV, self.password)
            yield

    def run(
        self, command: str, *, stage: dbt.Stage | None = None, full_refresh: bool = False, extra: tuple[str, ...] = ()
    ) -> dbt.DbtRun:
        """``dbt <command>`` through relance.dbt; failures are returned (``check=False``) for the tests to report."""
        args = dbt.dbt_args(
            self.settings,
            [command],
            as_of_date=AS_OF,
            stage=stage,
            full_refresh=full_refresh,
            target=self.name,
            extra=extra,
        )
        with self.environment():
            return dbt.run_dbt(self.settings, args, invoke=self.invoke, check=False)


def _node_ids(run: dbt.DbtRun) -> list[str]:
    """unique_id of every node the run executed (models, seeds, data and unit tests), from dbt's results."""
    return [r.node.unique_id for r in getattr(run.result_object, "results", None) or []]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt_pg")


@pytest.fixture(scope="module")
def duckdb_target(module_dir: Path, dbt_invoke: DbtInvoke) -> Target:
    """DuckDB: ``<data_dir>/warehouse.duckdb``, the name the session's manifest was parsed for."""
    return Target("duckdb", Settings(data_dir=module_dir / "duckdb_run", **GRID), dbt_invoke)


@pytest.fixture(scope="module")
def postgres_target(postgres_url: str, module_dir: Path, duckdb_target: Target) -> Target:
    """PostgreSQL: this module's database on the session's server, the project parsed once for it."""
    from dbt.cli.main import dbtRunner

    fields, password = dbt_pg_settings(postgres_url, database=DATABASE)
    settings = Settings(
        data_dir=module_dir / "pg_run", warehouse_path=duckdb_target.settings.warehouse, **fields, **GRID
    )
    parsing = Target("postgres", settings, dbtRunner().invoke, password)
    parsed = parsing.run("parse")
    assert parsed.success and parsed.result_object is not None, parsed.describe()
    manifest: Any = parsed.result_object

    def invoke(args: list[str]) -> Any:
        return dbtRunner(manifest=manifest.deepcopy()).invoke(args)

    return Target("postgres", settings, invoke, password)


# --------------------------------------------------------------------------------------- the warehouse
def _quarantined(invoice_id: str) -> ops.QuarantineRow:
    return ops.QuarantineRow(
        batch_id="B-rejected",
        entity="invoices",
        row_number=1,
        natural_key=invoice_id,
        expectation="expect_due_date_sane",
        severity="critical",
        reason="test",
        row_json="{}",
        stage="contract",
        quarantined_at=datetime(2026, 10, 30, 6, 0),
        flow_run_id="flow-seed",
    )


def _seed(path: Path, demo_raw_warehouse: Path) -> None:
    """The session's demo raw warehouse (tests/conftest.py), copied, plus corrections and quarantined versions."""
    copy_warehouse(demo_raw_warehouse, path.parent)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
        # a later, accepted correction of three invoices (staging keeps it) and a later, quarantined one of three
        # others (staging falls back to the version before): exercises the latest-version and quarantine logic
        ids = [r[0] for r in con.execute("select invoice_id from raw.invoices order by invoice_id limit 6").fetchall()]
        for batch, chosen in (("B-correction", ids[:3]), ("B-rejected", ids[3:])):
            con.execute(
                f"""insert into raw.invoices
                select * replace (due_date + 1 as due_date, '{batch}' as _batch_id, _loaded_at + interval 1 day
                    as _loaded_at, _row_hash || '-{batch}' as _row_hash)
                from raw.invoices where invoice_id in (select unnest(?::varchar[]))""",
                [chosen],
            )
        ops.quarantine(con, [_quarantined(invoice_id) for invoice_id in ids[3:]])
        _seed_late_payment(con)
        _seed_company_risk(con)
        _seed_contacts(con)


# A source of its own (batches not recorded in ops): its first load is history, its second a payment booked late.
LATE_SOURCE_LOADS = {"L-first": datetime(2026, 6, 1, 6, 0), "L-later": datetime(2026, 9, 15, 6, 0)}
LATE_PAYMENT_DATE = date(2026, 8, 1)


def _seed_late_payment(con: duckdb.DuckDBPyConnection) -> None:
    """Two small payments on an invoice open from before June to the as-of date: PL1 (05-20) in the source's first
    load, its history; PL2 dated 08-01 but loaded on 09-15, known from then (point in time, issue 10)."""
    (invoice_id, customer_id) = con.execute(
        """select invoice_id, customer_id from raw.invoices i
        where document_type = 'invoice' and issue_date < date '2026-05-01' and amount > 10
          and not exists (select 1 from raw.payment_allocations a where a.invoice_id = i.invoice_id)
          and not exists (select 1 from raw.invoices c where c.credited_invoice_id = i.invoice_id)
          and invoice_id not in (select invoice_id from raw.invoices where _batch_id like 'B-%')
        order by invoice_id limit 1"""
    ).fetchone()
    rows = (("PL1", date(2026, 5, 20), "L-first"), ("PL2", LATE_PAYMENT_DATE, "L-later"))
    for payment_id, paid_on, batch in rows:
        meta = [batch, f"{batch}.csv", f"hash-{batch}", f"row-{payment_id}", LATE_SOURCE_LOADS[batch], "flow-seed"]
        meta_cols = "_batch_id, _source_file, _file_hash, _row_hash, _loaded_at, _flow_run_id, _load_seq, _deleted"
        con.execute(
            f"insert into raw.payments (payment_id, customer_id, payment_date, amount, currency, payment_method, "
            f"{meta_cols}) values (?, ?, ?, 1.00, 'EUR', 'transfer', ?, ?, ?, ?, ?, ?, 0, false)",
            [payment_id, customer_id, paid_on, *meta],
        )
        con.execute(
            f"insert into raw.payment_allocations (payment_id, invoice_id, allocated_amount, {meta_cols}) "
            "values (?, ?, 1.00, ?, ?, ?, ?, ?, ?, 0, false)",
            [payment_id, invoice_id, *meta],
        )


# Company-risk data (issue 11) from a source of its own: a history import, then a daily load with a closing judgment.
RISK_LOADS = {"R-first": datetime(2026, 5, 1, 6, 0), "R-later": datetime(2026, 8, 20, 6, 0)}


def _seed_company_risk(con: duckdb.DuckDBPyConnection) -> None:
    """Events and registry profiles for two French debtors and a UK one (when the demo has one), so the risk
    features (open procedure, recent changes, overdue accounts, headcount band) are compared on both targets."""
    from relance.raw_schema import RISK_ENTITIES
    from relance.risk.events import REGISTRY_FR, REGISTRY_GB, CompanyProfile, RiskEvent

    french = [r[0] for r in con.execute(
        "select siren from raw.customers where siren is not null order by customer_id limit 2"
    ).fetchall()]  # fmt: skip
    uk = [r[0] for r in con.execute(
        "select company_number from raw.customers where company_number is not null order by customer_id limit 1"
    ).fetchall()]  # fmt: skip
    assert len(french) == 2

    def event(n: int, registry: str, company: str, kind: str, judged: date, published: date) -> dict:
        return RiskEvent(f"RE{n}", registry, company, kind, None, judged, published, "bodacc", "notice").as_row()

    def profile(registry: str, company: str, observed: date, band: str | None, overdue: bool | None) -> dict:
        return CompanyProfile(registry, company, "recherche_entreprises", observed, headcount_band=band,
                              is_accounts_overdue=overdue).as_row()  # fmt: skip

    first, second = french
    loads: dict[str, dict[str, list[dict]]] = {
        "R-first": {
            "company_events": [
                event(1, REGISTRY_FR, first, "procedure_opened", date(2026, 3, 2), date(2026, 3, 12)),
                event(2, REGISTRY_FR, first, "plan_adopted", date(2026, 6, 2), date(2026, 6, 12)),
                event(3, REGISTRY_FR, second, "director_change", date(2026, 2, 1), date(2026, 2, 10)),
                event(4, REGISTRY_FR, second, "accounts_filed", date(2024, 6, 30), date(2025, 1, 15)),
                event(5, REGISTRY_FR, second, "head_office_move", date(2026, 4, 1), date(2026, 4, 20)),
            ],
            "company_profiles": [
                profile(REGISTRY_FR, first, date(2026, 1, 15), "12", False),
                profile(REGISTRY_FR, second, date(2026, 4, 1), "NN", None),
            ],
        },
        "R-later": {
            "company_events": [
                event(6, REGISTRY_FR, first, "procedure_closed", date(2026, 8, 1), date(2026, 8, 12)),
                event(7, REGISTRY_FR, second, "accounts_overdue", None, date(2026, 7, 1)),
            ],
            "company_profiles": [profile(REGISTRY_FR, first, date(2026, 8, 15), "21", True)],
        },
    }
    if uk:
        loads["R-first"]["company_events"].append(
            event(8, REGISTRY_GB, uk[0], "procedure_opened", date(2026, 4, 1), date(2026, 4, 8))
        )
        loads["R-later"]["company_profiles"].append(profile(REGISTRY_GB, uk[0], date(2026, 8, 18), None, True))
    for batch, tables in loads.items():
        meta = [batch, f"{batch}.json", f"hash-{batch}", RISK_LOADS[batch], "flow-seed"]
        for table, rows in tables.items():
            columns = list(RISK_ENTITIES[table])
            meta_cols = "_batch_id, _source_file, _file_hash, _loaded_at, _flow_run_id, _row_hash, _load_seq, _deleted"
            for i, row in enumerate(rows):
                con.execute(
                    f"insert into raw.{table} ({', '.join(columns)}, {meta_cols}) "
                    f"values ({', '.join('?' for _ in columns)}, ?, ?, ?, ?, ?, ?, ?, false)",
                    [*(row[c] for c in columns), *meta, f"row-{batch}-{i}", i],
                )


# What debtors answered and relance's own sends (issue 12): loaded in October, before the as-of date.
CONTACT_LOAD = datetime(2026, 10, 25, 6, 0)


def _seed_contacts(con: duckdb.DuckDBPyConnection) -> None:
    """relance's own sends (a grouped e-mail whose plan lists two invoices as JSON, an SMS, a call task answered
    by a call, a failed send), call outcomes of every kind that changes the contact state, provider events (opens,
    bounces, opt-outs) and suppressions, lifted and not, for demo customers with overdue invoices: the contact
    state, the response history and the own-send features are compared on both targets (JSON parsing included)."""
    import json

    import pandas as pd

    from relance.raw_schema import CONTACT_ENTITIES

    rows = con.execute(
        """select customer_id, list(invoice_id order by invoice_id) from raw.invoices
        where document_type = 'invoice' and due_date between date '2026-08-01' and date '2026-09-30'
          and invoice_id not in (select invoice_id from raw.payment_allocations)
        group by customer_id having count(*) >= 2 order by customer_id limit 4"""
    ).fetchall()
    assert len(rows) == 4, rows
    (c1, (i1, i2, *_)), (c2, (i3, *_)), (c3, _), (c4, _) = rows
    plan = [  # reminder_key, customer, lead invoice, channel, tone, invoice_ids
        ("PG-S1", c1, i1, "email", "firm", json.dumps([i1, i2])),
        ("PG-S2", c2, i3, "sms", "cordial", json.dumps([i3])),
        ("PG-S3", c1, i2, "call", "formal_notice", json.dumps([i2, i1])),
        ("PG-S4", c2, i3, "email", "cordial", None),
    ]
    sends = [  # reminder_key, status, sent_at
        ("PG-S1", "sent", datetime(2026, 10, 5, 9)),
        ("PG-S2", "sent", datetime(2026, 10, 20, 9)),
        ("PG-S3", "sent", datetime(2026, 10, 6, 8)),
        ("PG-S4", "failed", None),
    ]
    by_key = {p[0]: p for p in plan}
    ops.record_planned(con, pd.DataFrame([
        {"reminder_key": key, "invoice_id": inv, "customer_id": cust, "as_of_date": date(2026, 10, 5), "step": "s1",
         "channel": ch, "tone": tone, "p_late": 0.5, "open_amount": 100, "currency": "EUR", "recipient": "x",
         "model_version": "1", "model_run_id": "run-1", "dbt_invocation_id": "inv-1",
         "planned_at": datetime(2026, 10, 5, 6), "flow_run_id": "flow-plan", "invoice_ids": ids}
        for key, cust, inv, ch, tone, ids in plan
    ]))  # fmt: skip
    ops.replace_reminder_sends(con, pd.DataFrame([
        {"reminder_key": key, "channel": by_key[key][3], "status": status, "attempts": 1, "sent_at": at,
         "invoice_id": by_key[key][2], "customer_id": by_key[key][1], "step": "s1",
         "updated_at": datetime(2026, 10, 20, 10), "origin": "delivery"}
        for key, status, at in sends
    ]))  # fmt: skip
    tables: dict[str, list[dict]] = {
        "call_outcomes": [
            {"call_id": "PG-K1", "reminder_key": "PG-S3", "customer_id": c1, "called_at": datetime(2026, 10, 7, 10),
             "outcome": "promise", "promised_date": date(2026, 10, 28), "promised_amount": Decimal("50.00")},
            {"call_id": "PG-K2", "reminder_key": None, "customer_id": c2, "called_at": datetime(2026, 10, 8, 11),
             "outcome": "promise", "promised_date": date(2026, 10, 12)},
            {"call_id": "PG-K3", "reminder_key": None, "customer_id": c3, "called_at": datetime(2026, 10, 9, 11),
             "outcome": "dispute"},
            {"call_id": "PG-K4", "reminder_key": None, "customer_id": c3, "called_at": datetime(2026, 10, 2, 11),
             "outcome": "wrong_contact"},
            {"call_id": "PG-K5", "reminder_key": None, "customer_id": c4, "called_at": datetime(2026, 10, 3, 11),
             "outcome": "do_not_contact"},
        ],
        "message_events": [
            {"event_id": "PG-E1", "reminder_key": "PG-S1", "customer_id": c1, "provider": "sendgrid",
             "channel": "email", "event": "open", "occurred_at": datetime(2026, 10, 30, 23, 59)},
            {"event_id": "PG-E2", "reminder_key": "PG-S2", "customer_id": c2, "provider": "twilio", "channel": "sms",
             "event": "undelivered", "occurred_at": datetime(2026, 10, 20, 9, 1)},
            {"event_id": "PG-E3", "reminder_key": "PG-S2", "customer_id": c2, "provider": "twilio", "channel": "sms",
             "event": "stop", "occurred_at": datetime(2026, 10, 21, 9)},
            {"event_id": "PG-E4", "reminder_key": None, "customer_id": c3, "provider": "sendgrid",
             "channel": "email", "event": "unsubscribe", "occurred_at": datetime(2026, 9, 1, 9)},
        ],
    }  # fmt: skip
    meta_cols = "_batch_id, _source_file, _file_hash, _loaded_at, _flow_run_id, _row_hash, _load_seq, _deleted"
    for table, table_rows in tables.items():
        columns = list(CONTACT_ENTITIES[table])
        for i, row in enumerate(table_rows):
            con.execute(
                f"insert into raw.{table} ({', '.join(columns)}, {meta_cols}) "
                f"values ({', '.join('?' for _ in columns)}, ?, ?, ?, ?, ?, ?, ?, false)",
                [*(row.get(c) for c in columns), "C-first", f"{table}.csv", "hash-contacts", CONTACT_LOAD,
                 "flow-seed", f"row-{table}-{i}", i],
            )  # fmt: skip
    con.executemany(
        "insert into ops.contact_suppressions values (?, ?, ?, ?, ?, ?)",
        [
            (c4, "letter", "returned mail", "manual", datetime(2026, 9, 1), None),
            (c3, "email", "asked to resume", "manual", datetime(2026, 9, 2), datetime(2026, 9, 3)),
        ],
    )


def _fake_scores(path: Path) -> int:
    """A deterministic score for every feature row of the as-of date, as the scoring flow would write it."""
    with duckdb.connect(str(path)) as con:
        has_features = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'ml' and table_name = 'ml_invoice_features'"
        ).fetchone()[0]
        if not has_features:
            return 0
        preds = con.execute(
            """select invoice_id, as_of_date, (row_number() over (order by invoice_id) % 97) / 97.0 as p_late,
                'payment_delay' as model_name, '1' as model_version, 'run-1' as model_run_id
            from ml.ml_invoice_features where as_of_date = ?""",
            [AS_OF],
        ).df()
        ops.upsert_predictions(
            con, preds, dbt_invocation_id="inv-1", flow_run_id="flow-score", scored_at=datetime(2026, 10, 31, 7)
        )
        return con.execute("select count(*) from ops.predictions").fetchone()[0]


@dataclass
class Built:
    duckdb_path: Path
    pg_conninfo: str
    copied: dict[str, int]
    runs: dict[str, list[dbt.DbtRun]]  # target name -> its invocations, in order
    predictions: int


@pytest.fixture(scope="module")
def built(
    postgres_url: str, demo_raw_warehouse: Path, duckdb_target: Target, postgres_target: Target
) -> Iterator[Built]:
    with psycopg.connect(libpq_conninfo(postgres_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    conninfo = psycopg.conninfo.make_conninfo(libpq_conninfo(postgres_url), dbname=DATABASE)
    warehouse = duckdb_target.settings.warehouse
    _seed(warehouse, demo_raw_warehouse)
    with duckdb.connect(str(warehouse)) as duck, psycopg.connect(conninfo) as pgcon:
        copied = copy_schemas(duck, pgcon, ("raw", "ops"))

    # one target after the other: on a 2-CPU machine running them side by side was not faster
    targets = (duckdb_target, postgres_target)
    runs: dict[str, list[dbt.DbtRun]] = {t.name: [] for t in targets}
    for target in targets:
        runs[target.name].append(target.run("build", stage="features"))
    predictions = _fake_scores(warehouse)
    with duckdb.connect(str(warehouse)) as duck, psycopg.connect(conninfo) as pgcon:
        copy_table(duck, pgcon, "ops", "predictions")
    for target in targets:
        runs[target.name].append(target.run("build", stage="serving"))
    # unit tests read the columns of their input relations from the database: run them once everything is built
    runs["postgres"].append(postgres_target.run("test", extra=("--select", "test_type:unit")))
    yield Built(warehouse, conninfo, copied, runs, predictions)


# --------------------------------------------------------------------------------------- comparison
def _family(type_name: str) -> str:
    """Coarse type family of a DuckDB or PostgreSQL column type (integer widths and decimal scales merged)."""
    t = type_name.strip().lower()
    if t in ("varchar", "text", "character varying", "character", "bpchar"):
        return "string"
    if t.startswith(("decimal", "numeric")):
        return "decimal"
    if t in ("double", "double precision", "float8"):
        return "float8"
    if t in ("float", "real", "float4"):
        return "float4"
    if t in ("tinyint", "smallint", "integer", "bigint", "hugeint", "int2", "int4", "int8"):
        return "integer"
    if t in ("timestamp", "timestamp without time zone"):
        return "timestamp"
    if t in ("timestamp with time zone", "timestamptz"):
        return "timestamptz"
    return t  # boolean, date, and anything unexpected as itself


def _by_relation(rows: list[tuple]) -> dict[str, list[tuple[str, str]]]:
    """(relation, column, type) rows in column order -> relation: [(column, type), ...]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for rel, col, dtype in rows:
        out.setdefault(rel, []).append((col, dtype))
    return out


def _duck_relations(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    return _by_relation(
        con.execute(
            "select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() "
            "where list_contains(?, schema_name) order by 1, column_index",
            [list(DBT_SCHEMAS)],
        ).fetchall()
    )


def _pg_relations(con: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    return _by_relation(
        con.execute(
            "select table_schema || '.' || table_name, column_name, data_type from information_schema.columns "
            "where table_schema = any(%s) order by 1, ordinal_position",
            [list(DBT_SCHEMAS)],
        ).fetchall()
    )


def _sort_key(value: object) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, float):
        return (2, 0.0) if math.isnan(value) else (1, float(f"{value:.9g}"))
    if isinstance(value, int | Decimal):
        return (1, value)
    if isinstance(value, datetime):
        return (3, _utc(value).isoformat())
    if isinstance(value, date):
        return (3, value.isoformat())
    return (4, str(value))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _same(a: object, b: object, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str | date) or isinstance(b, str | date):
            return False
        fa, fb = float(a), float(b)  # type: ignore[arg-type]
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(a, datetime) and isinstance(b, datetime):
        return _utc(a) == _utc(b)
    return a == b


def _compare_rows(
    name: str, columns: list[str], float_columns: set[str], left: list[tuple], right: list[tuple]
) -> list[str]:
    """Differences between two row sets of one relation (left = DuckDB, right = PostgreSQL), as messages."""
    problems = []
    if len(left) != len(right):
        problems.append(f"{name}: {len(left)} rows on duckdb, {len(right)} on postgres")
    # exact columns first so that float noise cannot reorder rows
    order = [i for i, c in enumerate(columns) if c not in float_columns] + [
        i for i, c in enumerate(columns) if c in float_columns
    ]

    def key(row: tuple) -> tuple:
        return tuple(_sort_key(row[i]) for i in order)

    shown = 0
    for left_row, right_row in zip(sorted(left, key=key), sorted(right, key=key), strict=False):
        diffs = [
            f"{columns[i]}: {left_row[i]!r} != {right_row[i]!r}"
            for i in range(len(columns))
            if not _same(left_row[i], right_row[i])
        ]
        if diffs:
            shown += 1
            if shown <= MAX_SHOWN:
                where = {columns[i]: left_row[i] for i in order[:3]}  # the first exact columns, to find the row
                problems.append(f"{name}: {'; '.join(diffs)} (duckdb vs postgres, row {where})")
    if shown > MAX_SHOWN:
        problems.append(f"{name}: {shown - MAX_SHOWN} more rows differ")
    return problems


def _compare_relation(
    duck: duckdb.DuckDBPyConnection, pgcon: psycopg.Connection, rel: str, duck_cols: list[tuple[str, str]]
) -> tuple[list[str], int]:
    """(differences, number of rows on duckdb) of one relation present on both sides."""
    columns = [c for c, _ in duck_cols if c not in IGNORED_COLUMNS]
    float_columns = {c for c, t in duck_cols if _family(t) in ("float8", "float4")}
    schema, table = rel.split(".")
    select_list = ", ".join(f'"{c}"' for c in columns)
    left = duck.execute(f'select {select_list} from "{schema}"."{table}"').fetchall()
    right = pgcon.execute(
        sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(schema, table)
        )
    ).fetchall()
    return _compare_rows(rel, columns, float_columns, left, right), len(left)


@pytest.fixture(scope="module")
def connections(built: Built) -> Iterator[tuple[duckdb.DuckDBPyConnection, psycopg.Connection]]:
    # read-write: dbt-duckdb, run in this process, keeps its connection to the file open, and DuckDB refuses a
    # second one with another configuration (read_only)
    with duckdb.connect(str(built.duckdb_path)) as duck, psycopg.connect(built.pg_conninfo) as pgcon:
        yield duck, pgcon


# --------------------------------------------------------------------------------------- tests
def test_raw_and_ops_copied_exactly(built: Built, connections) -> None:
    duck, pgcon = connections
    assert built.copied["raw.invoices"] > 3000 and built.copied["raw.customers"] == 200, built.copied
    problems = []
    for rel in built.copied:
        schema, table = rel.split(".")
        cols = duck.execute(
            "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ? "
            "order by column_index",
            [schema, table],
        ).fetchall()
        problems += _compare_relation(duck, pgcon, rel, cols)[0]
    assert not problems, "\n".join(problems)
    seeded = "select stage, count(*) from ops.quarantine where batch_id = 'B-rejected' group by 1"
    assert pgcon.execute(seeded).fetchall() == [("contract", 3)]  # the seeded rejects, with their stage


def test_seeded_versions_reach_staging_on_both(built: Built, connections) -> None:
    """The corrected invoices are read from their correction batch and the quarantined one is ignored, on both."""
    duck, pgcon = connections
    query = "select raw_batch_id, count(*) from staging.stg_invoices where raw_batch_id like 'B-%' group by 1"
    try:
        on_pg = pgcon.execute(query).fetchall()
    except psycopg.Error as exc:
        pgcon.rollback()
        pytest.fail(f"staging.stg_invoices not readable on postgres: {exc}")
    assert duck.execute(query).fetchall() == on_pg == [("B-correction", 3)]


def test_a_payment_booked_late_is_known_from_its_load_on_both(built: Built, connections) -> None:
    """PL2, dated 08-01 and loaded 09-15, counts on the invoice from 09-15 only, on both targets; PL1, of the
    source's first load, from its payment date."""
    duck, pgcon = connections
    query = """select f.as_of_date, f.invoice_payment_count from ml.ml_invoice_features f
        join staging.stg_payment_allocations a on a.invoice_id = f.invoice_id and a.payment_id = 'PL2'
        where f.as_of_date >= date '2026-06-01' order by 1"""
    on_duck, on_pg = duck.execute(query).fetchall(), pgcon.execute(query).fetchall()
    assert on_duck == [tuple(r) for r in on_pg]
    loaded = LATE_SOURCE_LOADS["L-later"].date()
    assert any(LATE_PAYMENT_DATE <= d < loaded for d, _ in on_duck) and any(d >= loaded for d, _ in on_duck), on_duck
    assert all(n == (1 if d < loaded else 2) for d, n in on_duck), on_duck


def test_contact_data_is_exercised_on_both(built: Built, connections) -> None:
    """The seeded contact data reaches the reaction models with the same values on both targets: a grouped send
    covers both its invoices (the plan's JSON list, parsed by each target), and the contact state has promises,
    disputes, opt-outs and bounces."""
    duck, pgcon = connections
    queries = (
        "select reminder_key, count(*) from intermediate.int_reminder_sends_expanded_to_invoices group by 1 order by 1",
        """select count(promise_status), count(case when has_open_dispute then 1 end), count(suppressed_channels),
            count(bounced_channels), count(case when is_opened_since_last_contact then 1 end)
        from serving.customer_contact_state where last_call_at is not null or suppressed_channels is not null""",
        "select source, count(*) from serving.reminder_response_history group by 1 order by 1",
    )
    on_duck = [duck.execute(q).fetchall() for q in queries]
    assert on_duck == [[tuple(r) for r in pgcon.execute(q).fetchall()] for q in queries]
    assert on_duck[0] == [("PG-S1", 2), ("PG-S2", 1), ("PG-S3", 2)]
    assert all(n > 0 for n in on_duck[1][0]), on_duck[1]
    assert {source for source, _ in on_duck[2]} == {"legacy", "relance", "call"}, on_duck[2]


def test_risk_features_are_exercised_on_both(built: Built, connections) -> None:
    """The seeded company-risk data reaches the features, with the same counts on both targets: an open procedure
    (then closed by a later load), recent changes, overdue accounts and headcount bands."""
    duck, pgcon = connections
    query = """select sum(risk_open_procedure), sum(risk_recent_director_change), sum(risk_recent_head_office_move),
        sum(risk_accounts_overdue), count(risk_headcount_band), sum(risk_collective_procedure)
        from ml.ml_invoice_features"""
    on_duck, on_pg = duck.execute(query).fetchone(), pgcon.execute(query).fetchone()
    assert on_duck == tuple(on_pg)
    assert all(value and value > 0 for value in on_duck), on_duck


def test_duckdb_build_succeeds(built: Built) -> None:
    """The reference side: if this fails the project itself is broken, not its PostgreSQL port."""
    bad = [run.describe() for run in built.runs["duckdb"] if not run.success]
    assert not bad, "\n".join(bad)
    assert built.predictions > 0


def test_postgres_build_succeeds(built: Built) -> None:
    builds = [run for run in built.runs["postgres"] if run.args[0] == "build"]
    bad = [run.describe() for run in builds if not run.success]
    assert not bad, "\n".join(bad)
    assert sum(1 for run in builds for uid in _node_ids(run) if uid.startswith("unit_test.")) > 0


def test_postgres_unit_tests_pass(built: Built) -> None:
    run = next(run for run in built.runs["postgres"] if run.args[0] == "test")
    assert run.success, run.describe()
    ran = _node_ids(run)
    assert ran and all(uid.startswith("unit_test.") for uid in ran), sorted(ran)


def test_same_relations_and_column_types(connections) -> None:
    duck, pgcon = connections
    on_duck, on_pg = _duck_relations(duck), _pg_relations(pgcon)
    assert sorted(on_duck) == sorted(on_pg), {
        "only on duckdb": sorted(set(on_duck) - set(on_pg)),
        "only on postgres": sorted(set(on_pg) - set(on_duck)),
    }
    problems = []
    for rel in sorted(set(on_duck) & set(on_pg)):
        left = [(c, _family(t)) for c, t in on_duck[rel]]
        right = [(c, _family(t)) for c, t in on_pg[rel]]
        if left != right:
            problems.append(
                f"{rel}: "
                + "; ".join(f"{a} vs {b}" for a, b in zip(left, right, strict=False) if a != b)
                + ("" if len(left) == len(right) else f" ({len(left)} vs {len(right)} columns)")
            )
    assert not problems, "column names/types differ (duckdb vs postgres):\n" + "\n".join(problems)


def test_same_rows(connections) -> None:
    duck, pgcon = connections
    on_duck, on_pg = _duck_relations(duck), _pg_relations(pgcon)
    common = sorted(set(on_duck) & set(on_pg))
    assert set(MUST_HAVE_ROWS) <= set(common), sorted(set(MUST_HAVE_ROWS) - set(common))
    problems, counts = [], {}
    for rel in common:
        if [c for c, _ in on_duck[rel]] != [c for c, _ in on_pg[rel]]:
            problems.append(f"{rel}: different columns, rows not compared (see the column test)")
            continue
        found, counts[rel] = _compare_relation(duck, pgcon, rel, on_duck[rel])
        problems += found
    empty = [rel for rel in MUST_HAVE_ROWS if counts.get(rel, 0) == 0]
    assert not empty, f"nothing to compare in {empty}: {counts}"
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


def test_comparison_detects_a_changed_value(connections) -> None:
    """Guard against a comparison that cannot fail: one float nudged by 1e-6 and one row removed on PostgreSQL."""
    duck, pgcon = connections
    rel = "ml.ml_invoice_features"
    duck_cols = _duck_relations(duck)[rel]
    column = next(c for c, t in duck_cols if _family(t) == "float8" and c not in IGNORED_COLUMNS)
    target = sql.Identifier("ml", "ml_invoice_features")
    one_row = sql.SQL("ctid = (select ctid from {t} limit 1)").format(t=target)
    with pgcon.transaction():
        changed = pgcon.execute(
            sql.SQL("update {t} set {c} = coalesce({c}, 0) * (1 + 1e-6) + 1e-6 where {w}").format(
                t=target, c=sql.Identifier(column), w=one_row
            )
        ).rowcount
        assert changed == 1
        problems, _ = _compare_relation(duck, pgcon, rel, duck_cols)
        assert len(problems) == 1 and f"{column}: " in problems[0], problems
        pgcon.execute(sql.SQL("delete from {t} where {w}").format(t=target, w=one_row))
        problems, _ = _compare_relation(duck, pgcon, rel, duck_cols)
        assert any("rows on duckdb" in p for p in problems), problems
        raise psycopg.Rollback()
    assert not _compare_relation(duck, pgcon, rel, duck_cols)[0]


# --------------------------------------------------------------------------------------- leakage on PostgreSQL
def _insert_pg(pgcon: psycopg.Connection, table: str, rows: list[dict], loaded_at: datetime) -> None:
    from relance.raw_schema import LOAD_METADATA

    for i, row in enumerate(rows):
        meta = {
            "_batch_id": "B-future",
            "_source_file": "future.csv",
            "_file_hash": "hash-future",
            "_row_hash": f"future-{table}-{i}",
            "_loaded_at": loaded_at,
            "_flow_run_id": "flow-future",
        }
        assert set(meta) == set(LOAD_METADATA)
        full = {**row, **meta}
        pgcon.execute(
            sql.SQL("insert into {t} ({c}) values ({v})").format(
                t=sql.Identifier("raw", table),
                c=sql.SQL(", ").join(map(sql.Identifier, full)),
                v=sql.SQL(", ").join(sql.Placeholder() * len(full)),
            ),
            list(full.values()),
        )


def test_future_facts_do_not_change_past_features_on_postgres(
    built: Built, connections, postgres_target: Target
) -> None:
    """Run last (it changes raw on PostgreSQL): payments, reminders, disputes and risk notices dated after a grid
    date, appended to raw, then `dbt run --full-refresh` on PostgreSQL: rows of that date and before are unchanged,
    and the next date sees the new facts. Autocommit, so no open transaction holds a lock dbt must wait for."""
    connections[1].rollback()  # the shared connection's read transaction would block dbt's drop of the tables
    with psycopg.connect(built.pg_conninfo, autocommit=True) as pgcon:
        _check_leakage_on_postgres(pgcon, postgres_target)


def _check_leakage_on_postgres(pgcon: psycopg.Connection, postgres_target: Target) -> None:
    dates = [r[0] for r in pgcon.execute("select distinct as_of_date from ml.ml_invoice_features order by 1")]
    assert len(dates) >= 3
    cutoff, next_date = dates[-3], dates[-2]
    columns = [r[0] for r in pgcon.execute(
        "select column_name from information_schema.columns where table_schema = 'ml' "
        "and table_name = 'ml_invoice_features' and column_name <> 'dbt_invocation_id' order by ordinal_position"
    )]  # fmt: skip
    past, later = (
        sql.SQL("select {c} from ml.ml_invoice_features where as_of_date {op} %s order by 1, 3").format(
            c=sql.SQL(", ").join(map(sql.Identifier, columns)), op=sql.SQL(op)
        )
        for op in ("<=", "=")
    )
    before, before_next = pgcon.execute(past, [cutoff]).fetchall(), pgcon.execute(later, [next_date]).fetchall()
    # invoices open on the cutoff and still open on the next date, with a customer SIREN
    targets = pgcon.execute(
        """select f.invoice_id, f.customer_id, f.open_amount_ccy, c.siren
        from ml.ml_invoice_features f join staging.stg_customers c using (customer_id)
        join ml.ml_invoice_features n on n.invoice_id = f.invoice_id and n.as_of_date = %s
        where f.as_of_date = %s order by f.invoice_id limit 10""",
        [next_date, cutoff],
    ).fetchall()
    assert targets
    day_after = date.fromordinal(cutoff.toordinal() + 1)
    # loaded the day after the cutoff: a later batch of the payments' source (L-first is its history) is known from
    # its load, so the next date sees the payments; nothing of it may reach the cutoff
    loaded_at = datetime(day_after.year, day_after.month, day_after.day, 6)
    with pgcon.transaction():
        for n, (invoice_id, customer_id, open_amount, siren) in enumerate(targets):
            _insert_pg(pgcon, "payments", [{"payment_id": f"PF{n}", "customer_id": customer_id,
                       "payment_date": day_after, "amount": open_amount, "currency": "EUR",
                       "payment_method": "transfer"}], loaded_at)  # fmt: skip
            _insert_pg(pgcon, "payment_allocations", [{"payment_id": f"PF{n}", "invoice_id": invoice_id,
                       "allocated_amount": open_amount}], loaded_at)  # fmt: skip
            _insert_pg(pgcon, "reminders", [{"reminder_id": f"RF{n}", "invoice_id": invoice_id,
                       "customer_id": customer_id, "sent_at": datetime(cutoff.year, cutoff.month, cutoff.day, 8),
                       "channel": "sms", "tone": "firm", "response": "promise_to_pay",
                       "responded_at": datetime(cutoff.year, cutoff.month, cutoff.day, 9),
                       "promised_date": day_after}], loaded_at)  # fmt: skip
            _insert_pg(pgcon, "disputes", [{"dispute_id": f"DF{n}", "invoice_id": invoice_id,
                       "opened_date": day_after, "resolved_date": None, "reason": "price"}], loaded_at)  # fmt: skip
            if siren:
                _insert_pg(pgcon, "company_events", [{"event_id": f"EF{n}", "registry": "FR-SIREN",
                           "company_id": siren, "event_type": "procedure_opened",
                           "event_date": date.fromordinal(cutoff.toordinal() - 20), "published_date": day_after,
                           "publisher": "bodacc", "detail": "notice"}], loaded_at)  # fmt: skip
    run = postgres_target.run("run", full_refresh=True, extra=("--select", "+ml_invoice_features"))
    assert run.success, run.describe()
    after = pgcon.execute(past, [cutoff]).fetchall()
    moved = [
        (b[0], b[2], col, x, y)
        for b, a in zip(before, after, strict=False)
        for col, x, y in zip(columns, b, a, strict=True)
        # floats to 1e-12 relative: a running float sum may round its last bit differently once rows are
        # appended to its partition; a leaked fact moves a feature by far more
        if not _same(x, y, rel_tol=1e-12, abs_tol=1e-12)
    ]
    assert len(after) == len(before) and not moved, f"{len(before)} -> {len(after)} rows; moved: {moved[:10]}"
    after_next = pgcon.execute(later, [next_date]).fetchall()
    assert after_next != before_next  # the facts are used from the next date on: the check above can fail
    paid = {t[0] for t in targets}
    assert not paid & {row[0] for row in after_next}, "invoices paid after the cutoff are not open on the next date"
