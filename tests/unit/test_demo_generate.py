"""The demo generator writes a coherent export as of end_date, matching the raw schema, plus ground truth."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from stdnum.fr import siren as stdnum_siren

from relance.demo import LANDING_ENTITIES, DemoSummary, arrow_schema, generate_demo
from relance.demo import generate as generate_module
from relance.demo.customers import (
    Customers,
    draw_contacts,
    draw_habits,
    draw_latent,
    draw_segments,
    make_customers,
)
from relance.demo.days import EPOCH, NEVER, SECONDS_PER_DAY, day_number, last_run_day, next_run_day, next_weekday
from relance.demo.dunning import dunning_step
from relance.demo.generate import block_bounds
from relance.demo.reference import REGION_TOWNS, RESPONSES
from relance.demo.safety import is_fictional_phone, is_reserved_email
from relance.demo.simulate import (
    BaseDelay,
    CreditNotes,
    Disputes,
    Outcome,
    base_settle_day,
    draw_disputes,
    draw_payment_lines,
    reconcile,
    simulate_invoices,
)
from relance.raw_schema import ENTITIES
from relance.risk.classify import bodacc_events

END = date(2025, 6, 30)
SMALL = {"n_customers": 200, "n_invoices": 5000, "months": 18, "end_date": END, "seed": 7}


def _generate(root: Path, **kwargs: object) -> DemoSummary:
    return generate_demo(root / "landing", root / "truth", **{**SMALL, **kwargs})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    root = tmp_path_factory.mktemp("demo")
    return root, _generate(root)


@pytest.fixture(scope="module")
def con(demo: tuple[Path, DemoSummary]) -> duckdb.DuckDBPyConnection:
    """The landing CSVs read with the raw schema's types, plus the ground truth, in an in-memory DuckDB."""
    root, _ = demo
    c = duckdb.connect()
    for name in LANDING_ENTITIES:
        types = ", ".join(f"'{col}': '{typ}'" for col, typ in ENTITIES[name].items())
        path = root / "landing" / f"{name}.csv"
        c.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header=true, columns={{{types}}})")
    c.execute(f"CREATE TABLE invoice_truth AS SELECT * FROM '{root / 'truth' / 'invoice_truth.parquet'}'")
    c.execute(f"CREATE TABLE customer_truth AS SELECT * FROM '{root / 'truth' / 'customer_truth.parquet'}'")
    return c


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_files_have_exactly_the_raw_schema_columns_and_parse_with_its_types(demo):
    root, summary = demo
    for name in LANDING_ENTITIES:
        path = root / "landing" / f"{name}.csv"
        assert summary.files[name] == path
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header.replace('"', "").split(",") == list(ENTITIES[name])
        schema = arrow_schema(name)
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=schema))
        assert table.schema.names == list(ENTITIES[name])
        assert table.num_rows > 0, name
    assert summary.customers == 200 and summary.invoices == 5000


def test_csv_format_iso_dates_two_decimals_and_lowercase_booleans(demo):
    root, _ = demo
    lines = (root / "landing" / "invoices.csv").read_text(encoding="utf-8").splitlines()[1:50]
    for line in lines:
        fields = line.split(",")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields[4]) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields[5])
        assert re.fullmatch(r"-?\d+\.\d{2}", fields[6])
        assert fields[9] in ("true", "false")
        assert fields[3] == ""  # invoices have no credited_invoice_id (null -> empty)


def test_counts_in_summary_match_files(con, demo):
    _, summary = demo
    assert _one(con, "SELECT count(*) FROM invoices WHERE document_type = 'invoice'") == summary.invoices
    assert _one(con, "SELECT count(*) FROM invoices WHERE document_type = 'credit_note'") == summary.credit_notes
    assert _one(con, "SELECT count(*) FROM payments") == summary.payments
    assert _one(con, "SELECT count(*) FROM payment_allocations") == summary.allocations
    assert _one(con, "SELECT count(*) FROM reminders") == summary.reminders
    assert _one(con, "SELECT count(*) FROM disputes") == summary.disputes
    assert _one(con, "SELECT count(*) FROM invoice_truth") == summary.invoices


def test_natural_keys_are_unique(con):
    for name, key in {
        "customers": "customer_id",
        "invoices": "invoice_id",
        "payments": "payment_id",
        "payment_allocations": "payment_id, invoice_id",
        "disputes": "dispute_id",
        "reminders": "reminder_id",
    }.items():
        dupes = _one(con, f"SELECT count(*) FROM (SELECT {key} FROM {name} GROUP BY ALL HAVING count(*) > 1)")
        assert dupes == 0, name


def test_allocations_reconcile_with_payments_and_invoices(con):
    payment_mismatch = _one(
        con,
        """SELECT count(*) FROM payments p JOIN (SELECT payment_id, sum(allocated_amount) s
           FROM payment_allocations GROUP BY 1) a USING (payment_id) WHERE a.s <> p.amount""",
    )
    assert payment_mismatch == 0
    assert (
        _one(
            con,
            "SELECT count(*) FROM payments WHERE payment_id NOT IN (SELECT payment_id FROM payment_allocations)",
        )
        == 0
    )
    over_allocated = _one(
        con,
        """WITH cn AS (SELECT credited_invoice_id AS invoice_id, sum(amount) c FROM invoices
                       WHERE document_type = 'credit_note' GROUP BY 1),
                al AS (SELECT invoice_id, sum(allocated_amount) a FROM payment_allocations GROUP BY 1)
           SELECT count(*) FROM invoices i JOIN al USING (invoice_id) LEFT JOIN cn USING (invoice_id)
           WHERE i.document_type = 'invoice' AND al.a > i.amount + coalesce(cn.c, 0)""",
    )
    assert over_allocated == 0
    # allocations only to invoices (never credit notes) of the paying customer
    foreign = _one(
        con,
        """SELECT count(*) FROM payment_allocations a JOIN payments p USING (payment_id)
           JOIN invoices i USING (invoice_id)
           WHERE i.customer_id <> p.customer_id OR i.document_type <> 'invoice'""",
    )
    assert foreign == 0


def test_payments_and_allocations_are_many_to_many(con):
    batch_payments = _one(
        con,
        "SELECT count(*) FROM (SELECT payment_id FROM payment_allocations GROUP BY 1 HAVING count(*) > 1)",
    )
    instalments = _one(
        con,
        "SELECT count(*) FROM (SELECT invoice_id FROM payment_allocations GROUP BY 1 HAVING count(*) > 1)",
    )
    assert batch_payments > 10 and instalments > 10


def test_nothing_is_dated_after_end_date(con):
    end = f"DATE '{END.isoformat()}'"
    assert _one(con, "SELECT max(issue_date) FROM invoices") <= END
    assert _one(con, "SELECT max(payment_date) FROM payments") <= END
    assert _one(con, "SELECT max(greatest(opened_date, coalesce(resolved_date, opened_date))) FROM disputes") <= END
    assert _one(con, f"SELECT count(*) FROM reminders WHERE sent_at >= {end} + 1 OR responded_at >= {end} + 1") == 0
    assert _one(con, "SELECT max(created_date) FROM customers") <= END
    # the ground truth does know the future: some invoices settle after end_date
    assert _one(con, f"SELECT count(*) FROM invoice_truth WHERE settle_date > {end}") > 0


def test_reminder_responses_are_consistent(con):
    assert _one(con, "SELECT count(*) FROM reminders WHERE (response = 'none') <> (responded_at IS NULL)") == 0
    assert (
        _one(
            con,
            "SELECT count(*) FROM reminders WHERE promised_date IS NOT NULL AND response <> 'promise_to_pay'",
        )
        == 0
    )
    assert _one(con, "SELECT count(*) FROM reminders WHERE responded_at < sent_at") == 0
    responses = {r[0] for r in con.execute("SELECT DISTINCT response FROM reminders").fetchall()}
    assert {"none", "promise_to_pay", "paid"} <= responses <= {"none", "promise_to_pay", "dispute", "paid"}
    channels = {r[0] for r in con.execute("SELECT DISTINCT channel FROM reminders").fetchall()}
    assert channels == {"email", "sms", "letter", "call"}


def test_reminders_are_sent_only_while_the_invoice_is_unpaid(con):
    """No reminder on or after the day of the payment that completed the invoice."""
    late = _one(
        con,
        """WITH cn AS (SELECT credited_invoice_id AS invoice_id, sum(amount) c, max(issue_date) d
                       FROM invoices WHERE document_type = 'credit_note' GROUP BY 1),
                paid AS (SELECT a.invoice_id, sum(a.allocated_amount) s, max(p.payment_date) d
                         FROM payment_allocations a JOIN payments p USING (payment_id) GROUP BY 1),
                settled AS (SELECT i.invoice_id, greatest(paid.d, coalesce(cn.d, paid.d)) AS d FROM invoices i
                            JOIN paid USING (invoice_id) LEFT JOIN cn USING (invoice_id)
                            WHERE paid.s = i.amount + coalesce(cn.c, 0))
           SELECT count(*) FROM reminders r JOIN settled USING (invoice_id)
           WHERE CAST(r.sent_at AS DATE) >= settled.d""",
    )
    assert late == 0


def test_sirens_naf_and_contact_details(con):
    rows = con.execute(
        "SELECT customer_type, country_code, siren, naf_code, sector_section, size_band, phone, email FROM customers"
    ).fetchall()
    sirens = [r[2] for r in rows if r[2] is not None]
    assert len(sirens) > 100 and len(set(sirens)) == len(sirens)
    assert all(stdnum_siren.is_valid(s) for s in sirens)
    for ctype, country, siren, naf, section, size, phone, email in rows:
        assert re.fullmatch(r"\+[1-9]\d{9,13}", phone), phone
        assert is_reserved_email(email) and is_fictional_phone(phone), (email, phone)
        if ctype == "B2C":
            assert siren is None and naf is None and section is None and size is None
            assert phone.startswith("+3363998")  # ARCEP's mobile fiction block
        else:
            assert re.fullmatch(r"\d{2}\.\d{2}[A-Z]", naf) and section and size in ("micro", "small", "medium", "large")
            if country == "FR":
                assert siren is not None and re.fullmatch(r"\+33[1-5]\d{8}", phone)
    share_b2c = sum(r[0] == "B2C" for r in rows) / len(rows)
    assert 0.1 < share_b2c < 0.3


def test_every_customer_has_a_postal_address_of_its_country_and_region(con):
    rows = con.execute(
        "SELECT customer_type, country_code, region, address_line1, address_line2, postal_code, city FROM customers"
    ).fetchall()
    towns = {region: set(t) for region, t in REGION_TOWNS.items()}
    for ctype, country, region, line1, _line2, postal_code, city in rows:
        assert re.fullmatch(r"\d{1,3} \S.+", line1), line1
        if country == "FR":
            assert (city, postal_code) in towns[region], (region, city, postal_code)
        else:
            assert country == "GB" and ctype == "B2B"
            assert re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}", postal_code), postal_code
    assert all(re.fullmatch(r"\d{5}", r[5]) for r in rows if r[1] == "FR")
    with_line2 = sum(r[4] is not None for r in rows) / len(rows)
    assert 0.15 < with_line2 < 0.5
    assert len({r[3] for r in rows}) > len(rows) * 0.8  # streets vary


def test_addresses_come_from_their_own_stream_so_every_other_draw_stays_the_same() -> None:
    """make_customers draws the addresses from a spawned generator: the customers' stream is where it was without
    them, so the invoices, payments and reminders drawn after (and the demo's numbers) do not move."""
    with_addresses = _rng(11)
    make_customers(50, START, STOP, with_addresses)
    without = _rng(11)
    seg = draw_segments(50, without)
    habits = draw_habits(seg, START, STOP, without)
    draw_latent(seg, habits.created, START, STOP, without)
    draw_contacts(seg, without)
    assert with_addresses.bit_generator.state == without.bit_generator.state
    a, b = make_customers(50, START, STOP, _rng(11)), make_customers(50, START, STOP, _rng(12))
    assert list(a.address.line1) == list(make_customers(50, START, STOP, _rng(11)).address.line1)
    assert list(a.address.line1) != list(b.address.line1)


def test_the_language_is_data_english_for_uk_customers_and_some_french_firms(con):
    rows = con.execute("SELECT customer_type, country_code, language FROM customers").fetchall()
    assert {lang for _, country, lang in rows if country == "GB"} <= {"en"}
    assert {lang for ctype, _, lang in rows if ctype == "B2C"} == {"fr"}
    french_b2b = [lang for ctype, country, lang in rows if ctype == "B2B" and country == "FR"]
    assert 0.02 < french_b2b.count("en") / len(french_b2b) < 0.2, "a few French firms correspond in English"
    # its own stream, spawned after the addresses': the addresses and every other draw stay the same
    a = make_customers(50, START, STOP, _rng(11))
    assert list(a.address.line1) == list(make_customers(50, START, STOP, _rng(11)).address.line1)


def test_due_dates_follow_payment_terms(con):
    assert _one(con, "SELECT count(*) FROM invoices WHERE due_date < issue_date") == 0
    wrong = _one(
        con,
        """SELECT count(*) FROM invoices i JOIN customers c USING (customer_id)
           WHERE i.document_type = 'invoice' AND (
             i.payment_terms_days <> c.payment_terms_days
             OR i.is_end_of_month_terms <> c.is_end_of_month_terms
             OR i.due_date <> CASE WHEN i.is_end_of_month_terms THEN last_day(i.issue_date)
                                   ELSE i.issue_date END + i.payment_terms_days)""",
    )
    assert wrong == 0
    assert _one(con, "SELECT count(DISTINCT is_end_of_month_terms) FROM invoices") == 2


def test_credit_notes_are_negative_and_reference_an_earlier_invoice_of_the_customer(con):
    n_cn = _one(con, "SELECT count(*) FROM invoices WHERE document_type = 'credit_note'")
    assert 0.01 * 5000 < n_cn < 0.06 * 5000
    bad = _one(
        con,
        """SELECT count(*) FROM invoices cn LEFT JOIN invoices i ON i.invoice_id = cn.credited_invoice_id
           WHERE cn.document_type = 'credit_note' AND (cn.amount >= 0 OR i.invoice_id IS NULL
             OR i.customer_id <> cn.customer_id OR cn.issue_date <= i.issue_date OR -cn.amount > i.amount
             OR NOT starts_with(cn.invoice_id, 'CN-'))""",
    )
    assert bad == 0
    assert _one(con, "SELECT count(*) FROM disputes WHERE resolved_date IS NULL") > 0


def test_open_book_spans_several_aging_buckets(con):
    buckets = con.execute(
        f"""WITH cn AS (SELECT credited_invoice_id AS invoice_id, sum(amount) c FROM invoices
                       WHERE document_type = 'credit_note' GROUP BY 1),
                al AS (SELECT invoice_id, sum(allocated_amount) a FROM payment_allocations GROUP BY 1)
           SELECT CASE WHEN due_date >= DATE '{END}' THEN 'not_due'
                       WHEN DATE '{END}' - due_date <= 30 THEN '1-30'
                       WHEN DATE '{END}' - due_date <= 60 THEN '31-60'
                       WHEN DATE '{END}' - due_date <= 90 THEN '61-90' ELSE '90+' END AS bucket, count(*)
           FROM invoices i LEFT JOIN al USING (invoice_id) LEFT JOIN cn USING (invoice_id)
           WHERE i.document_type = 'invoice' AND i.amount + coalesce(cn.c, 0) - coalesce(al.a, 0) > 0
           GROUP BY 1"""
    ).fetchall()
    counts = dict(buckets)
    assert set(counts) == {"not_due", "1-30", "31-60", "61-90", "90+"}, counts
    assert counts["not_due"] > counts["90+"] > 0


def test_construction_pays_later_than_commerce(con):
    rows = dict(
        con.execute(
            """WITH last_pay AS (SELECT a.invoice_id, max(p.payment_date) d FROM payment_allocations a
                                 JOIN payments p USING (payment_id) GROUP BY 1)
               SELECT c.sector_section, avg(l.d - i.due_date)
               FROM invoices i JOIN last_pay l USING (invoice_id)
               JOIN customers c USING (customer_id) WHERE c.sector_section IN ('F', 'G') GROUP BY 1"""
        ).fetchall()
    )
    assert rows["F"] > rows["G"] + 2


def test_ground_truth_call_beats_email_for_overdue_construction(con):
    call, email = con.execute(
        """SELECT avg(effect_call), avg(effect_email)
           FROM invoice_truth t JOIN customers c USING (customer_id)
           WHERE c.sector_section = 'F'"""
    ).fetchone()
    assert call > 2 * email
    # ... while B2C answers SMS better than calls
    sms, b2c_call = con.execute(
        """SELECT avg(effect_sms), avg(effect_call) FROM invoice_truth t JOIN customers c USING (customer_id)
           WHERE c.customer_type = 'B2C'"""
    ).fetchone()
    assert sms > b2c_call


def test_ground_truth_probability_is_calibrated_against_simulated_outcomes(con):
    """The closed-form P(unpaid 30 days after due) matches what the simulation then did."""
    predicted, observed, n = con.execute(
        """SELECT avg(t.p_unpaid_30d_after_due),
                  avg(CASE WHEN t.settle_date IS NULL OR t.settle_date > i.due_date + 30 THEN 1 ELSE 0 END),
                  count(*)
           FROM invoice_truth t JOIN invoices i USING (invoice_id)"""
    ).fetchone()
    assert n == 5000
    assert 0.03 < observed < 0.4
    assert abs(predicted - observed) < 0.025
    assert _one(con, "SELECT count(*) FROM invoice_truth WHERE p_unpaid_30d_after_due NOT BETWEEN 0 AND 1") == 0


def test_customer_truth_has_drift_and_propensities(con):
    drifted, deteriorated = con.execute(
        """SELECT count(*), avg(CASE WHEN propensity_end > propensity_start THEN 1 ELSE 0 END)
           FROM customer_truth WHERE drift_date IS NOT NULL AND drift_date < DATE '2025-03-01'"""
    ).fetchone()
    assert drifted > 5 and deteriorated == 1


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(demo, tmp_path):
    root, first = demo
    again = _generate(tmp_path / "same")
    other = _generate(tmp_path / "other", seed=8)
    for key, path in first.files.items():
        assert path.read_bytes() == again.files[key].read_bytes(), key
    assert first.files["invoices"].read_bytes() != other.files["invoices"].read_bytes()
    assert first.files["bodacc_notices"].read_bytes() != other.files["bodacc_notices"].read_bytes()


@pytest.fixture(scope="module")
def big_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    """Enough French firms (3,000 customers) for every kind of notice to appear."""
    root = tmp_path_factory.mktemp("big-demo")
    summary = generate_demo(
        root / "landing", root / "truth", n_customers=3000, n_invoices=3000, months=24, end_date=END, seed=3
    )
    return root, summary


def _notices(root: Path) -> list[dict]:
    payload = json.loads((root / "landing" / "risk" / "bodacc_notices.json").read_text(encoding="utf-8"))
    assert payload["total_count"] == len(payload["results"])
    return payload["results"]


def test_bodacc_notices_reference_insolvent_customers(big_demo):
    root, summary = big_demo
    collective = [r for r in _notices(root) if r["familleavis"] == "collective"]
    assert summary.insolvencies > 0 and collective
    truth = pq.read_table(root / "truth" / "customer_truth.parquet").to_pandas()
    customers = pacsv.read_csv(root / "landing" / "customers.csv").to_pandas()
    insolvent_ids = set(truth.loc[truth["insolvency_date"].notna(), "customer_id"])
    insolvent_sirens = {f"{int(s):09d}" for s in customers.loc[customers["customer_id"].isin(insolvent_ids), "siren"]}
    noticed = set()
    for rec in collective:
        assert rec["publicationavis"] == "A"
        assert rec["dateparution"] <= END.isoformat()
        plain = {re.sub(r"\D", "", r) for r in rec["registre"]}
        assert len(plain) == 1 and len(rec["registre"]) == 2
        siren = plain.pop()
        assert siren in insolvent_sirens
        noticed.add(siren)
        jugement = json.loads(rec["jugement"])
        assert set(jugement) >= {"date", "famille", "nature", "type"}
        assert jugement["date"] <= rec["dateparution"]
        assert json.loads(rec["listepersonnes"])["personne"]["typePersonne"] == "pm"
    # every judgment at least three weeks before end_date has been published
    early = truth["insolvency_date"].notna() & (truth["insolvency_date"] <= date(2025, 6, 9))
    early_sirens = {
        f"{int(s):09d}"
        for s in customers.loc[customers["customer_id"].isin(set(truth.loc[early, "customer_id"])), "siren"]
    }
    assert early_sirens and early_sirens <= noticed


def test_registry_notices_are_real_format_records_of_french_customers_in_their_lifetime(big_demo):
    """Modifications, transfers, accounts and strike-offs: same v2.1 fields as the collective notices, ids unique,
    newest first, about French B2B customers, published after the customer existed and before any judgment."""
    root, _ = big_demo
    records = _notices(root)
    keys = [list(r) for r in records if r["familleavis"] == "collective"][0]
    assert all(list(r) == keys for r in records)
    assert len({r["id"] for r in records}) == len(records)
    order = [(r["dateparution"], r["id"]) for r in records]
    assert order == sorted(order, reverse=True)
    families = {r["familleavis"] for r in records}
    assert families == {"collective", "modification", "dpc", "radiation", "immatriculation"}
    customers = pacsv.read_csv(root / "landing" / "customers.csv").to_pandas()
    truth = pq.read_table(root / "truth" / "customer_truth.parquet").to_pandas().set_index("customer_id")
    fr = customers[customers["siren"].notna()].assign(siren=lambda d: d["siren"].map(lambda s: f"{int(s):09d}"))
    by_siren = fr.set_index("siren")
    letters = {"modification": "B", "radiation": "B", "dpc": "C", "immatriculation": "A"}
    for rec in records:
        if rec["familleavis"] == "collective":
            continue
        assert rec["publicationavis"] == letters[rec["familleavis"]] and rec["id"].startswith(rec["publicationavis"])
        assert rec["id"] == f"{rec['publicationavis']}{rec['parution']}{rec['numeroannonce']}"
        plain = {re.sub(r"\D", "", r) for r in rec["registre"]}
        assert len(plain) == 1 and len(rec["registre"]) == 2
        customer = by_siren.loc[plain.pop()]
        published = date.fromisoformat(rec["dateparution"])
        assert customer["created_date"] < published <= END
        judgment = truth.loc[customer["customer_id"], "insolvency_date"]
        assert pd.isna(judgment) or published < pd.Timestamp(judgment).date()
        for name in ("listepersonnes", "modificationsgenerales", "depot", "radiationaurcs", "acte"):
            assert rec[name] is None or isinstance(json.loads(rec[name]), dict)


def test_every_kind_of_notice_appears_and_classifies(big_demo):
    root, _ = big_demo
    events = bodacc_events(_notices(root))
    kinds = {(e.event_type, e.event_subtype if e.event_type == "closure" else None) for e in events}
    assert kinds >= {
        ("procedure_opened", None),
        ("director_change", None),
        ("head_office_move", None),
        ("accounts_filed", None),
        ("closure", "strike_off"),
        ("closure", "dissolution"),
    }
    confidential = {e.is_confidential for e in events if e.event_type == "accounts_filed"}
    assert confidential == {True, False}
    # a transfer out of a greffe's area is a move: its radiation in the old greffe is no closure
    transfers = [r for r in _notices(root) if r["familleavis"] == "immatriculation"]
    moved = {e.company_id: e.published_date for e in bodacc_events(transfers)}
    assert moved and all(e.event_type == "head_office_move" for e in bodacc_events(transfers))
    for e in events:
        if e.event_type == "closure" and e.company_id in moved:
            assert abs((e.published_date - moved[e.company_id]).days) > 180, e


# ---------------------------------------------------------------------------------------------------------
# the demo at its end-to-end test size (tests/e2e/conftest.py): what the risk features must be able to show
# ---------------------------------------------------------------------------------------------------------
E2E_END = date(2026, 10, 31)


@pytest.fixture(scope="module")
def e2e_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], set[str]]:
    """``relance demo --customers 200 --invoices 5000``: its notices, SIREN -> customer, customers owing money."""
    root = tmp_path_factory.mktemp("e2e-size")
    generate_demo(root / "landing", root / "truth", n_customers=200, n_invoices=5000, months=24, end_date=E2E_END,
                  seed=42)  # fmt: skip
    land = root / "landing"
    c = duckdb.connect()
    owing = {
        r[0]
        for r in c.execute(
            f"""WITH cn AS (SELECT credited_invoice_id AS invoice_id, sum(amount) c
                            FROM read_csv('{land / "invoices.csv"}') WHERE document_type = 'credit_note' GROUP BY 1),
                     al AS (SELECT invoice_id, sum(allocated_amount) a
                            FROM read_csv('{land / "payment_allocations.csv"}') GROUP BY 1)
                SELECT DISTINCT i.customer_id FROM read_csv('{land / "invoices.csv"}') i
                LEFT JOIN cn USING (invoice_id) LEFT JOIN al USING (invoice_id)
                WHERE i.document_type = 'invoice' AND i.amount + coalesce(cn.c, 0) - coalesce(al.a, 0) > 0"""
        ).fetchall()
    }
    sirens = dict(
        c.execute(
            f"SELECT lpad(CAST(siren AS VARCHAR), 9, '0'), customer_id FROM read_csv('{land / 'customers.csv'}') "
            "WHERE siren IS NOT NULL"
        ).fetchall()
    )
    return root, sirens, owing


def test_collective_notices_are_those_the_demo_always_had(e2e_demo):
    """The registry notices come from their own random stream: the insolvency notices did not change."""
    root, _, _ = e2e_demo
    collective = [(r["id"], r["dateparution"]) for r in _notices(root) if r["familleavis"] == "collective"]
    assert collective == [
        ("A202601912214", "2026-10-06"),
        ("A202601662876", "2026-08-30"),
        ("A202502353688", "2025-12-10"),
    ]


def test_demo_shows_a_recent_director_change_and_an_open_procedure_of_customers_that_owe_money(e2e_demo):
    root, sirens, owing = e2e_demo
    events = bodacc_events(_notices(root))
    recent_changes = {
        sirens[e.company_id]
        for e in events
        if e.event_type == "director_change" and e.published_date >= E2E_END - timedelta(days=60)
    }
    opened = {sirens[e.company_id] for e in events if e.event_type == "procedure_opened"}
    assert recent_changes & owing, (recent_changes, "none owes money")
    assert opened & owing, (opened, "none owes money")
    assert {"C000077", "C000144", "C000173"} <= opened & owing
    assert any(e.event_type == "head_office_move" for e in events)
    assert all(e.published_date <= E2E_END for e in events)


def test_parquet_output_has_the_same_columns(tmp_path):
    summary = _generate(tmp_path, n_customers=50, n_invoices=800, file_format="parquet")
    for name in LANDING_ENTITIES:
        schema = pq.read_schema(summary.files[name])
        assert schema.names == list(ENTITIES[name])
        assert schema.equals(arrow_schema(name, "parquet"))
    assert pq.read_metadata(summary.files["invoices"]).num_rows == summary.invoices + summary.credit_notes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_invoices": -5}, "n_invoices"),
        ({"months": 0}, "months"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_rejected_with_a_clear_message(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _generate(tmp_path, **kwargs)


def test_several_blocks_are_deterministic_and_number_ids_across_blocks(tmp_path, monkeypatch):
    """Blocks of whole customers (here ~700 invoices each) carry id counters over; the same seed repeats."""
    monkeypatch.setattr(generate_module, "BLOCK_INVOICES", 700)
    first = _generate(tmp_path / "a", n_customers=60, n_invoices=2000)
    again = _generate(tmp_path / "b", n_customers=60, n_invoices=2000)
    for key, path in first.files.items():
        assert path.read_bytes() == again.files[key].read_bytes(), key
    invoices = pacsv.read_csv(first.files["invoices"]).to_pylist()
    numbers = sorted(int(r["invoice_id"][4:]) for r in invoices if r["document_type"] == "invoice")
    assert numbers == list(range(1, 2001))
    payments = pacsv.read_csv(first.files["payments"]).column("payment_id").to_pylist()
    assert len(set(payments)) == len(payments) == first.payments


# ---------------------------------------------------------------------------------------------------------
# the simulation steps, each on a handful of invoices
# ---------------------------------------------------------------------------------------------------------
START, STOP = day_number(date(2024, 1, 1)), day_number(date(2025, 6, 30))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def few_customers() -> Customers:
    return make_customers(8, START, STOP, _rng(1))


def test_calendar_helpers_on_known_days() -> None:
    days = np.array([day_number(date(2025, 3, d)) for d in (1, 10, 11, 25, 26)])  # 1 March 2025 is a Saturday
    assert [EPOCH + timedelta(days=int(d)) for d in next_run_day(days)] == [
        date(2025, 3, 10), date(2025, 3, 10), date(2025, 3, 25), date(2025, 3, 25), date(2025, 4, 10),
    ]  # fmt: skip
    assert [EPOCH + timedelta(days=int(d)) for d in last_run_day(days)] == [
        date(2025, 2, 25), date(2025, 3, 10), date(2025, 3, 10), date(2025, 3, 25), date(2025, 3, 25),
    ]  # fmt: skip
    assert EPOCH + timedelta(days=int(next_weekday(days[:1])[0])) == date(2025, 3, 3)


def test_disputes_hold_payment_until_after_resolution() -> None:
    issue = np.full(2000, START)
    d = draw_disputes(issue, _rng())
    assert 0 < d.disputed.sum() < 100
    assert (d.opened >= issue + 5).all() and (d.resolved >= d.opened + 7).all()
    assert (d.release[~d.disputed] == -NEVER).all()
    assert (d.release[d.disputed] > d.resolved[d.disputed]).all()


def test_base_settle_day_never_for_write_offs_and_run_days_for_batch_payers(few_customers: Customers) -> None:
    c = replace(few_customers, batch=np.array([True] * 4 + [False] * 4), insolvency_day=np.full(8, NEVER))
    cust, n = np.arange(8), 8
    due = np.full(n, day_number(date(2025, 1, 15)))
    delay = BaseDelay(*(np.zeros(n),) * 3, days_late=np.full(n, 3), p_writeoff=np.zeros(n),
                      written_off=np.array([False, True] * 4))  # fmt: skip
    no_dispute = Disputes(np.zeros(n, bool), due, due, np.full(n, -NEVER), np.zeros(n, int))
    no_note = CreditNotes(*(np.zeros(n, bool),) * 2, day=due, full=np.zeros(n, bool), cents=np.zeros(n, int))
    settle = base_settle_day(c, cust, due, delay, no_dispute, no_note, _rng())
    assert [s == NEVER for s in settle] == [False, True] * 4
    days = [EPOCH + timedelta(days=int(settle[i])) for i in (0, 2, 4, 6)]
    assert days == [date(2025, 1, 25)] * 2 + [date(2025, 1, 18)] * 2  # due + 3 = the 18th; batch: next run day


def test_a_dunning_step_reminds_only_unpaid_undisputed_invoices(few_customers: Customers) -> None:
    c = replace(few_customers, insolvency_day=np.full(8, NEVER), preventive=np.ones(8, bool))
    n = 400
    cust = np.arange(n) % 8
    due = np.full(n, day_number(date(2025, 1, 15)))
    settle = np.where(np.arange(n) < 100, due, NEVER)  # the first 100 are paid on the due day
    disputed = np.arange(n) >= 300  # the last 100 have a dispute open on the send day
    disputes = (disputed, due - 30, due + 60)
    settle_after, sent, keep = dunning_step(1, c, cust, due, settle, disputes, _rng())  # cordial, due + 7
    assert len(sent["inv"]) > 100
    assert (sent["inv"] >= 100).all() and (sent["inv"] < 300).all()
    assert ((sent["sent"] // SECONDS_PER_DAY + 3) % 7 < 5).all()  # on weekdays
    paid = sent["inv"][sent["response"] == RESPONSES.index("paid")]
    assert len(paid) > 0 and (settle_after[paid] < NEVER).all()
    assert ((keep > 0) & (keep <= 1)).all()
    assert (keep[disputed] == 1).all()  # no reminder can be answered 'paid' during a dispute


def test_reconcile_drops_late_credit_notes_and_nets_the_rest() -> None:
    n = 3
    settle = np.array([100, 100, 100])
    notes = CreditNotes(from_dispute=np.array([False, False, False]), gesture=np.array([True, True, True]),
                        day=np.array([90, 100, 110]), full=np.array([False, True, False]),
                        cents=np.array([500, 10_000, 700]))  # fmt: skip
    disputes = Disputes(np.array([True, True, False]), np.array([50, 120, 0]), np.zeros(n), np.zeros(n), np.zeros(n))
    out = reconcile(np.array([10_000] * 3), settle, disputes, notes)
    assert out.has_credit_note.tolist() == [True, True, False]
    assert out.paid_by_credit_note.tolist() == [False, True, False]
    assert out.disputed.tolist() == [True, False, False]
    assert out.net_cents.tolist() == [9_500, 0, 10_000]


def test_payment_lines_pay_the_net_amount_once_or_in_two_instalments(few_customers: Customers) -> None:
    c = replace(few_customers, batch=np.zeros(8, bool))
    n = 2000
    cust, issue = np.arange(n) % 8, np.full(n, START)
    settle = np.where(np.arange(n) % 10 == 0, NEVER, START + 60)
    net = np.full(n, 80_000)
    by_note = np.arange(n) % 10 == 1
    outcome = Outcome(by_note, by_note, np.zeros(n, bool), np.where(by_note, 0, net))
    inv, day, cents = draw_payment_lines(c, cust, issue, settle, outcome, _rng())
    paid = np.bincount(inv, weights=cents, minlength=n)
    expect_paid = (settle < NEVER) & ~by_note
    assert (paid[expect_paid] == 80_000).all() and (paid[~expect_paid] == 0).all()
    lines = np.bincount(inv, minlength=n)
    assert 0.05 < (lines == 2).sum() / expect_paid.sum() < 0.15
    assert ((day > issue[inv]) & (day <= settle[inv])).all()


def test_the_steps_repeat_draw_for_draw_with_the_same_generator(few_customers: Customers) -> None:
    cust = np.repeat(np.arange(8), 25)
    issue = START + (np.arange(200) * 7) % 400
    a = simulate_invoices(few_customers, cust, issue, _rng(5))
    b = simulate_invoices(few_customers, cust, issue, _rng(5))
    assert (a.settle == b.settle).all() and (a.p_unpaid == b.p_unpaid).all()
    assert all((a.reminders[k] == b.reminders[k]).all() for k in a.reminders)
    assert (a.issue[:-1] <= a.issue[1:]).all()  # ordered by issue day


def test_blocks_hold_whole_customers() -> None:
    counts = np.array([3, 0, 5, 2, 4, 1])
    bounds = block_bounds(counts, 6)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [int(counts[c0:c1].sum()) for c0, c1 in bounds]
    assert sum(sizes) == counts.sum() and all(s <= 6 + counts.max() for s in sizes)
