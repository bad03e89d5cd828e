"""Seeded, vectorised generator of a realistic receivables export plus its hidden ground truth.

Why a simulator rather than random rows: the pipeline must find what a real ledger holds (an open book in
every aging bucket, batch payers, instalments, credit notes, disputes, a legacy dunning history, insolvent
debtors with BODACC notices) and evaluation needs the *true* payment probabilities and channel effects to say
how close a model gets to the best achievable. The landing files are an export **as of** ``end_date``;
the simulated world continues after it only so the ground truth can hold settle dates beyond the export.

Generative story, per invoice (all numpy, no Python loop per invoice or customer; one loop over the five
dunning steps):

1. Customer latents: propensity ``z`` (higher = pays later) that may drift upward from a random date;
   1-2 % of French B2B companies go into a collective procedure (``z`` deteriorates before it).
2. Base days late ``D`` = on time (uniform -12..0 days) with P(on time) = sigmoid(segment - z), otherwise
   lognormal with median = sector prior x size x region x season x exp(0.8 z) (risk_data_apis.md §4.4).
3. Disputes hold payment until resolution; write-offs and insolvency (90 % of the invoices still unpaid at the
   judgment are never paid) make some invoices never settle; batch payers pay on their run days (10th, 25th).
4. Legacy dunning: preventive e-mail at due-3 (some customers), cordial at +7 and +21, firm at +45 and +75,
   channels drawn from a segment-dependent mix. A reminder is sent only while the invoice is unpaid; its
   response is 'paid' with a probability that depends on channel x segment x days overdue x propensity
   (a call works far better than an e-mail on a late construction invoice; B2C answers SMS).
5. Payments: one per invoice, two instalments for some, one per run day covering several invoices for batch
   payers; credit notes (partial or full) and dispute-linked credit notes reduce what is due.

Because reminder randomness is independent of the base delay, the true P(unpaid 30 days after due) has a
closed form given the customer's latent path: P(base not settled by due+30) x prod_s (1 - P(step s sent and
answered 'paid')), which is what ``invoice_truth.parquet`` holds.

Ground truth (never read by the pipeline; for evaluation only):

- ``invoice_truth.parquet``: ``invoice_id, customer_id, p_unpaid_30d_after_due`` (the closed form above, i.e.
  P(settle_date > due_date + 30) given the customer's latent path, dispute and credit-note timeline),
  ``base_days_late`` (D, before disputes and dunning), ``effect_email|sms|letter|call`` (P(a cordial
  reminder on that channel, sent 30 days after due, is answered by payment within 7 days), for every channel,
  not only the one the legacy process used), ``settle_date`` (day the invoice was fully settled, by payment or
  full credit note, even after end_date; null if never),
  ``is_never_paid, is_paid_by_credit_note, is_disputed``.
- ``customer_truth.parquet``: ``customer_id, propensity_start, propensity_end`` (z on the first and last day),
  ``drift_date, drift_delta`` (null / 0 without drift), ``insolvency_date`` (judgment day, may be after
  end_date), ``is_batch_payer``.

Modules, one job each: :mod:`~relance.demo.customers` (who the customers are), :mod:`~relance.demo.issuing`
(when invoices are issued), :mod:`~relance.demo.simulate` (the per-invoice steps) with
:mod:`~relance.demo.behaviour` (delay and response models) and :mod:`~relance.demo.dunning` (legacy reminders),
:mod:`~relance.demo.block_tables` (a block as landing tables), :mod:`~relance.demo.landing_files` (writing them).
This module wires them: seeds, blocks, files, summary.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from relance.demo.block_tables import IdCounters, block_tables
from relance.demo.bodacc import Insolvent, RegistryFirms, build_notices, plan_registry_notices
from relance.demo.customers import Customers, customer_truth, customers_table, make_customers
from relance.demo.days import EPOCH, NEVER, day_number, month_start_months_before
from relance.demo.issuing import allocate_invoices, draw_issue_days
from relance.demo.landing_files import FileFormat, LandingFile, arrow_schema
from relance.demo.reference import LEGAL_FORMS, NAF_CODES, REGION_NAMES
from relance.demo.simulate import simulate_invoices

logger = logging.getLogger(__name__)

LANDING_ENTITIES: tuple[str, ...] = (
    "customers",
    "invoices",
    "payments",
    "payment_allocations",
    "disputes",
    "reminders",
)
BLOCK_INVOICES = 500_000  # invoices simulated at once: bounds peak memory whatever the total


@dataclass(frozen=True)
class DemoSummary:
    """Row counts as written (i.e. as of ``end_date``), the files, and how long it took."""

    customers: int
    invoices: int
    credit_notes: int
    payments: int
    allocations: int
    disputes: int
    reminders: int
    insolvencies: int
    end_date: date
    files: dict[str, Path]
    seconds: float


def _validate(n_customers: int, n_invoices: int, months: int, end_date: date, seed: int, file_format: str) -> None:
    if not isinstance(n_customers, int) or n_customers < 1:
        raise ValueError(f"n_customers must be a positive integer, got {n_customers!r}")
    if n_customers > 9_000_000:
        raise ValueError(f"n_customers must be at most 9,000,000 (SIREN space), got {n_customers}")
    if not isinstance(n_invoices, int) or n_invoices < 1:
        raise ValueError(f"n_invoices must be a positive integer, got {n_invoices!r}")
    if not isinstance(months, int) or not 1 <= months <= 240:
        raise ValueError(f"months must be an integer between 1 and 240, got {months!r}")
    if not isinstance(end_date, date):
        raise TypeError(f"end_date must be a datetime.date, got {type(end_date).__name__}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', got {file_format!r}")


def block_bounds(counts: np.ndarray, block_invoices: int) -> list[tuple[int, int]]:
    """(first, end) customer indices of consecutive blocks of whole customers, about ``block_invoices`` each."""
    cum = np.cumsum(counts)
    block_of_customer = np.maximum(cum - 1, 0) // block_invoices
    bounds = np.searchsorted(block_of_customer, np.arange(int(block_of_customer[-1]) + 2), side="left")
    return [(int(bounds[b]), int(bounds[b + 1])) for b in range(len(bounds) - 1)]


def generate_demo(
    landing_dir: Path,
    ground_truth_dir: Path,
    *,
    n_customers: int = 2000,
    n_invoices: int = 60_000,
    months: int = 24,
    end_date: date = date(2026, 10, 31),
    seed: int = 42,
    file_format: FileFormat = "csv",
) -> DemoSummary:
    """Write a demo receivables export as of ``end_date`` into landing_dir, and its ground truth apart.

    Same arguments give byte-identical files. Files: one per raw entity (``customers.csv`` ... or
    ``.parquet``) with exactly the columns of ``relance.raw_schema.ENTITIES``, ``risk/bodacc_notices.json``
    (BODACC v2.1 envelope: collective procedures, director changes, head-office transfers, accounts filings,
    strike-offs), and in ground_truth_dir ``invoice_truth.parquet`` / ``customer_truth.parquet``
    which the pipeline must never read.
    """
    _validate(n_customers, n_invoices, months, end_date, seed, file_format)
    t0 = time.perf_counter()
    landing_dir, ground_truth_dir = Path(landing_dir), Path(ground_truth_dir)
    (landing_dir / "risk").mkdir(parents=True, exist_ok=True)
    ground_truth_dir.mkdir(parents=True, exist_ok=True)

    def rng_for(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))

    start = day_number(month_start_months_before(end_date, months))
    end = day_number(end_date)
    customers = make_customers(n_customers, start, end, rng_for(0))
    issuing = allocate_invoices(customers, n_invoices, start, end, rng_for(1))
    # issue dates for every invoice (customer windows, seasonal intensity): 2 small arrays, then blocks
    inv_cust, inv_issue = draw_issue_days(issuing, start, end, rng_for(2))

    files = {e: landing_dir / f"{e}.{file_format}" for e in LANDING_ENTITIES}
    sinks = {e: LandingFile(files[e], arrow_schema(e, file_format), file_format) for e in LANDING_ENTITIES}
    totals = dict.fromkeys(("invoices", "credit_notes", "payments", "allocations", "disputes", "reminders"), 0)
    truth_path = ground_truth_dir / "invoice_truth.parquet"
    truth_writer: pq.ParquetWriter | None = None
    try:
        sinks["customers"].write(customers_table(customers))
        ids = IdCounters()
        inv_bounds = np.concatenate([[0], np.cumsum(issuing.counts)])
        for b, (c0, c1) in enumerate(block_bounds(issuing.counts, BLOCK_INVOICES)):
            i0, i1 = int(inv_bounds[c0]), int(inv_bounds[c1])
            if i1 == i0:
                continue
            sim = simulate_invoices(customers, inv_cust[i0:i1], inv_issue[i0:i1], rng_for(3, b))
            block = block_tables(customers, sim, end, ids)
            for name, table in block.tables.items():
                sinks[name].write(table)
            if truth_writer is None:
                truth_writer = pq.ParquetWriter(str(truth_path), block.truth.schema, compression="zstd")
            truth_writer.write_table(block.truth)
            for key, value in block.counts.items():
                totals[key] += value
            logger.debug("demo block %d: customers %d-%d, %d invoices", b, c0, c1, i1 - i0)
    finally:
        for sink in sinks.values():
            sink.close()
        if truth_writer is not None:
            truth_writer.close()

    pq.write_table(customer_truth(customers, start, end), ground_truth_dir / "customer_truth.parquet")
    insolvencies = _write_bodacc(
        customers,
        end_date,
        landing_dir / "risk" / "bodacc_notices.json",
        rng_for(4),
        registry_rng=rng_for(5),
        start=start,
        invoices=(inv_cust, inv_issue),
        invoice_truth=truth_path,
    )
    files["bodacc_notices"] = landing_dir / "risk" / "bodacc_notices.json"
    files["invoice_truth"] = truth_path
    files["customer_truth"] = ground_truth_dir / "customer_truth.parquet"

    seconds = time.perf_counter() - t0
    summary = DemoSummary(
        customers=n_customers,
        invoices=totals["invoices"],
        credit_notes=totals["credit_notes"],
        payments=totals["payments"],
        allocations=totals["allocations"],
        disputes=totals["disputes"],
        reminders=totals["reminders"],
        insolvencies=insolvencies,
        end_date=end_date,
        files=files,
        seconds=seconds,
    )
    logger.info(
        "demo export as of %s: %d customers, %d invoices, %d credit notes, %d payments, %d reminders, "
        "%d insolvencies in %.1f s",
        end_date, n_customers, summary.invoices, summary.credit_notes, summary.payments, summary.reminders,
        insolvencies, seconds,
    )  # fmt: skip
    return summary


def _write_bodacc(
    c: Customers,
    end_date: date,
    path: Path,
    rng: np.random.Generator,
    *,
    registry_rng: np.random.Generator,
    start: int,
    invoices: tuple[np.ndarray, np.ndarray],
    invoice_truth: Path,
) -> int:
    """Write the notices; return how many customers had a judgment on or before end_date.

    Collective procedures come from ``rng`` (the stream they always had: same notices as before registry
    notices existed); the registry notices of the French firms from ``registry_rng``, knowing each customer's
    last invoice (``invoices``: customer index and issue day of every invoice) and whether it still owes
    something at end_date (``invoice_truth``: settle dates), so that the demo's director changes and strike-offs
    concern customers whose invoices are open.
    """
    end = day_number(end_date)
    firms = [
        Insolvent(
            siren=f"{int(c.siren[i]):09d}",
            name=str(c.names[i]).upper(),
            legal_form=LEGAL_FORMS[int(c.legal_form[i])][1],
            activity=NAF_CODES[int(c.naf[i])][2],
            region=REGION_NAMES[int(c.region[i])],
            judgment_date=EPOCH + timedelta(days=int(c.insolvency_day[i])),
        )
        for i in np.flatnonzero(c.insolvency_day < NEVER)
    ]
    payload = build_notices(firms, end_date, rng)

    inv_cust, inv_issue = invoices
    last_invoice = np.full(c.n, -1, dtype=np.int64)
    np.maximum.at(last_invoice, inv_cust, inv_issue)
    truth = pq.read_table(invoice_truth, columns=["customer_id", "settle_date"])
    settle = truth.column("settle_date").cast(pa.date32())
    unpaid = pc.or_kleene(pc.is_null(settle), pc.greater(settle, pa.scalar(end_date, pa.date32())))
    owing = pc.utf8_slice_codeunits(truth.column("customer_id").filter(unpaid), 1).cast(pa.int64())  # 'C000123'
    has_open = np.zeros(c.n, dtype=bool)
    has_open[owing.to_numpy() - 1] = True
    fr = np.flatnonzero(c.siren > 0)
    registry = RegistryFirms(
        siren=c.siren[fr],
        name=c.names[fr],
        legal_form=c.legal_form[fr],
        region=c.region[fr],
        size=c.size[fr],
        first_day=c.created[fr],
        last_day=np.minimum(end, c.insolvency_day[fr] - 1),
        last_invoice=last_invoice[fr],
        has_open_invoices=has_open[fr],
        deteriorating=(c.drift_delta[fr] > 0) & (c.insolvency_day[fr] == NEVER),
    )
    taken = {r["id"] for r in payload["results"]}
    window_start = EPOCH + timedelta(days=start)
    generated = plan_registry_notices(registry, window_start, end_date, registry_rng, taken)
    records = payload["results"] + [g.record for g in generated]
    records.sort(key=lambda r: (r["dateparution"], r["id"]), reverse=True)
    payload = {"total_count": len(records), "results": records}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return int((c.insolvency_day <= end).sum())
