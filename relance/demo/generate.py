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

- ``invoice_truth.parquet``: ``invoice_id, customer_id, p_late_30d_after_due`` (the closed form above, i.e.
  P(settle_date > due_date + 30) given the customer's latent path, dispute and credit-note timeline),
  ``base_days_late`` (D, before disputes and dunning), ``effect_email|sms|letter|call`` (P(a cordial
  reminder on that channel, sent 30 days after due, is answered by payment within 7 days), for every channel,
  not only the one the legacy process used), ``settle_date`` (day the invoice was fully settled, by payment or
  full credit note, even after end_date; null if never),
  ``is_never_paid, is_paid_by_credit_note, is_disputed``.
- ``customer_truth.parquet``: ``customer_id, propensity_start, propensity_end`` (z on the first and last day),
  ``drift_date, drift_delta`` (null / 0 without drift), ``insolvency_date`` (judgment day, may be after
  end_date), ``is_batch_payer``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from relance.demo.bodacc import Insolvent, build_notices
from relance.demo.reference import (
    B2C_MAIL_DOMAINS,
    CHANNELS,
    FIRST_NAMES,
    FOREIGN_REGION,
    LEGAL_FORMS,
    NAF_CODES,
    REGION_NAMES,
    REGIONS,
    SECTION_LETTERS,
    SECTIONS,
    SIZE_BANDS,
    SIZE_NAMES,
    SURNAMES,
    TONES,
    UK_SUFFIXES,
    as_array,
    ascii_slug,
)
from relance.raw_schema import ENTITIES, PAYMENT_METHODS

logger = logging.getLogger(__name__)

FileFormat = Literal["csv", "parquet"]
LANDING_ENTITIES: tuple[str, ...] = (
    "customers",
    "invoices",
    "payments",
    "payment_allocations",
    "disputes",
    "reminders",
)
BLOCK_INVOICES = 500_000  # invoices simulated at once: bounds peak memory whatever the total
EPOCH = date(1970, 1, 1)
NEVER = 10_000_000  # day number standing for "never" (year ~29000), safe to add offsets to in int32/int64
SECONDS_PER_DAY = 86_400
F_SECTION = SECTION_LETTERS.index("F")

# Legacy dunning steps: (days from due, tone, P(applied) B2B, P(applied) B2C,
#                        channel mix B2B, channel mix B2C) with channels in CHANNELS order.
# Step 0 is applied to customers flagged for preventive e-mails rather than at random.
STEPS: tuple[tuple[int, str, float, float, tuple[float, ...], tuple[float, ...]], ...] = (
    (-3, "preventive", 1.0, 1.0, (1.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),
    (7, "cordial", 0.90, 0.90, (0.90, 0.0, 0.10, 0.0), (0.50, 0.50, 0.0, 0.0)),
    (21, "cordial", 0.85, 0.85, (0.35, 0.0, 0.30, 0.35), (0.30, 0.50, 0.20, 0.0)),
    (45, "firm", 0.80, 0.80, (0.10, 0.0, 0.50, 0.40), (0.0, 0.40, 0.50, 0.10)),
    (75, "firm", 0.70, 0.60, (0.0, 0.0, 0.80, 0.20), (0.0, 0.20, 0.80, 0.0)),
)
TRUTH_STEPS = 3  # steps whose 'paid' answer always lands by due+30 (21 + 2 weekend + <7 days of lag)
PAID_LAG_S = (SECONDS_PER_DAY, 7 * SECONDS_PER_DAY)  # the payment arrives on a later day than the reminder

# Response model: logit P(answer 'paid' within a week) by channel (email, sms, letter, call).
RESP_BASE = np.array([-2.0, -2.2, -1.8, -1.3])
RESP_B2C = np.array([-0.2, 1.3, -0.4, -0.2])
RESP_CONSTRUCTION = np.array([-0.6, -0.2, 0.2, 0.9])
RESP_HOSPITALITY = np.array([0.0, 0.4, 0.0, 0.2])
RESP_LARGE = np.array([0.4, -0.5, 0.2, -0.2])  # medium/large firms: accounts-payable teams read e-mail
RESP_OVERDUE_SLOPE = np.array([0.0, 0.005, 0.012, 0.02])  # per day overdue, capped at 60
RESP_FIRM_TONE = 0.15
RESP_PREVENTIVE = -0.6
RESP_PROPENSITY = -0.6
PROMISE_P = np.array([0.05, 0.05, 0.08, 0.14])

SEASON_DELAY = {1: 1.10, 7: 1.10, 8: 1.40, 12: 1.25}  # by month of the due date: August and year-end slower
SEASON_ON_TIME = {8: -0.30, 12: -0.25}
DISPUTE_REASONS: tuple[str, ...] = (
    "price_disagreement",
    "goods_not_received",
    "quality_issue",
    "wrong_quantity",
    "missing_purchase_order",
    "duplicate_invoice",
)


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


# ---------------------------------------------------------------------------------------------------------
# small vectorised helpers
# ---------------------------------------------------------------------------------------------------------
def _day(d: date) -> int:
    return (d - EPOCH).days


def _month_start_months_before(end: date, months: int) -> date:
    """First day of the month ``months - 1`` months before end's month: ``months`` calendar months in all."""
    idx = end.year * 12 + end.month - 1 - (months - 1)
    return date(idx // 12, idx % 12 + 1, 1)


def _end_of_month(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    return ((d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1).astype(np.int64)


def _month(days: np.ndarray) -> np.ndarray:
    return (days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int8)


def _day_of_month(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    return (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


def _next_weekday(days: np.ndarray) -> np.ndarray:
    """Move Saturdays and Sundays to the following Monday (1970-01-01 was a Thursday)."""
    wd = (days + 3) % 7
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def _next_run_day(days: np.ndarray) -> np.ndarray:
    """Batch payers pay on the 10th and 25th: the first run day on or after ``days``."""
    dom = _day_of_month(days)
    first = days - dom + 1
    nxt = _end_of_month(days) + 1 + 9
    return np.where(dom <= 10, first + 9, np.where(dom <= 25, first + 24, nxt))


def _last_run_day(days: np.ndarray) -> np.ndarray:
    """The last run day (10th or 25th) on or before ``days``."""
    dom = _day_of_month(days)
    first = days - dom + 1
    prev_month_first = _end_of_month(first - 1) - _day_of_month(first - 1) + 1
    return np.where(dom >= 25, first + 24, np.where(dom >= 10, first + 9, prev_month_first + 24))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7): avoids a scipy dependency."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _siren_check_digit(base8: np.ndarray) -> np.ndarray:
    """Luhn check digit for 8-digit SIREN bodies: double the 2nd, 4th, 6th and 8th digits from the left."""
    digits = (base8[:, None] // 10 ** np.arange(7, -1, -1)) % 10
    doubled = digits[:, 1::2] * 2
    total = digits[:, 0::2].sum(axis=1) + np.where(doubled > 9, doubled - 9, doubled).sum(axis=1)
    return (10 - total % 10) % 10


def _choice_by_row(rng: np.random.Generator, cumprobs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) cumulative-probability matrix."""
    u = rng.random(cumprobs.shape[0])
    return np.minimum((u[:, None] >= cumprobs).sum(axis=1), cumprobs.shape[1] - 1)


def _str_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    padded = pc.utf8_lpad(pa.array(numbers.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _decimal(cents: np.ndarray) -> pa.Array:
    """Exact DECIMAL(18,2) from integer cents (no float round trip): 128-bit two's complement."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    buf = np.empty((len(cents), 2), dtype=np.int64)
    buf[:, 0] = cents
    buf[:, 1] = -(cents < 0).astype(np.int64)
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(buf)])


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(days, dtype=np.int32), mask=null)
    return arr.cast(pa.date32())


def _timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64), mask=null).cast(pa.timestamp("s"))


def _vocab(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Strings from a small vocabulary by integer code (negative code -> null)."""
    codes = np.asarray(codes, dtype=np.int64)
    return pc.take(pa.array(list(values), pa.string()), pa.array(codes, mask=codes < 0))


# ---------------------------------------------------------------------------------------------------------
# customers
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Customers:
    """Customer attributes as parallel arrays (index = customer number - 1)."""

    n: int
    is_b2b: np.ndarray
    is_gb: np.ndarray
    section: np.ndarray  # index into SECTION_LETTERS, -1 for B2C
    naf: np.ndarray  # index into NAF_CODES, -1 for B2C
    size: np.ndarray  # index into SIZE_NAMES, -1 for B2C
    region: np.ndarray  # index into REGION_NAMES, -1 for foreign customers
    legal_form: np.ndarray  # index into LEGAL_FORMS, -1 for B2C / foreign
    siren: np.ndarray  # int64, 0 when none
    terms: np.ndarray
    eom: np.ndarray
    gbp: np.ndarray
    credit_limit_cents: np.ndarray
    created: np.ndarray
    method: np.ndarray
    batch: np.ndarray
    preventive: np.ndarray
    z0: np.ndarray
    drift_day: np.ndarray
    drift_delta: np.ndarray
    insolvency_day: np.ndarray
    names: np.ndarray  # object array
    emails: np.ndarray
    phones: np.ndarray
    window_start: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    window_end: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def z_at(self, cust: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Latent propensity on given days: z0 plus the drift, ramped in over 90 days."""
        ramp = np.clip((days - self.drift_day[cust]) / 90.0, 0.0, 1.0)
        return self.z0[cust] + self.drift_delta[cust] * ramp


def _make_customers(n: int, start: int, end: int, rng: np.random.Generator) -> _Customers:
    is_b2b = rng.random(n) < 0.8
    is_gb = is_b2b & (rng.random(n) < 0.02)
    is_fr_b2b = is_b2b & ~is_gb

    sect_w = np.array([SECTIONS[s][0] for s in SECTION_LETTERS])
    section = np.where(is_b2b, rng.choice(len(SECTION_LETTERS), n, p=sect_w / sect_w.sum()), -1)
    # NAF code uniformly among the codes of the section
    naf_section = np.array([SECTION_LETTERS.index(s) for _, s, _ in NAF_CODES])
    order = np.argsort(naf_section, kind="stable")
    per_section = np.bincount(naf_section, minlength=len(SECTION_LETTERS))
    offsets = np.concatenate([[0], np.cumsum(per_section)[:-1]])
    pick = (rng.random(n) * per_section[np.maximum(section, 0)]).astype(np.int64)
    naf = np.where(is_b2b, order[offsets[np.maximum(section, 0)] + pick], -1)

    size_w = np.array([SIZE_BANDS[s][0] for s in SIZE_NAMES])
    size = np.where(is_b2b, rng.choice(len(SIZE_NAMES), n, p=size_w / size_w.sum()), -1)
    region_w = np.array([REGIONS[r][0] for r in REGION_NAMES])
    region = np.where(is_gb, -1, rng.choice(len(REGION_NAMES), n, p=region_w / region_w.sum()))
    form_w = np.array([w for *_, w in LEGAL_FORMS])
    legal_form = np.where(is_fr_b2b, rng.choice(len(LEGAL_FORMS), n, p=form_w / form_w.sum()), -1)

    # SIRENs: distinct 8-digit bodies (first digit 1-9) + Luhn check digit
    n_fr = int(is_fr_b2b.sum())
    bodies = rng.choice(90_000_000, size=n_fr, replace=False).astype(np.int64) + 10_000_000
    siren = np.zeros(n, dtype=np.int64)
    siren[is_fr_b2b] = bodies * 10 + _siren_check_digit(bodies)

    terms = np.where(is_b2b, rng.choice([30, 45, 60], n, p=[0.5, 0.3, 0.2]), 30).astype(np.int32)
    eom = is_b2b & (rng.random(n) < 0.35)
    gbp = is_gb
    limit_base = np.array([SIZE_BANDS[s][3] for s in SIZE_NAMES])
    limit_eur = np.where(
        is_b2b,
        limit_base[np.maximum(size, 0)] * rng.choice([0.5, 1.0, 1.5, 2.0], n),
        rng.choice([500.0, 1000.0, 2000.0], n),
    )
    credit_limit_cents = (limit_eur * 100).astype(np.int64)

    old = rng.random(n) < 0.8
    created = np.where(old, start - rng.integers(30, 3000, n), rng.integers(start, max(start + 1, end - 60), n)).astype(
        np.int64
    )
    method = np.where(
        is_b2b,
        rng.choice([0, 1, 2], n, p=[0.80, 0.12, 0.08]),
        rng.choice([3, 1, 0], n, p=[0.45, 0.35, 0.20]),
    )
    batch_p = np.array([0.10, 0.30, 0.50, 0.70])[np.maximum(size, 0)]
    batch = is_b2b & (rng.random(n) < batch_p)
    preventive = rng.random(n) < np.where(is_b2b, 0.30, 0.15)

    z0 = rng.normal(0.0, np.where(is_b2b, 0.55, 0.7))
    drift_day = np.full(n, NEVER, dtype=np.int64)
    drift_delta = np.zeros(n)
    drifter = (rng.random(n) < 0.12) & (z0 < 0.3)
    drift_draw = rng.integers(start + 60, max(start + 61, end), n)
    delta_draw = rng.uniform(0.7, 1.5, n)
    drift_day[drifter] = drift_draw[drifter]
    drift_delta[drifter] = delta_draw[drifter]

    hazard = np.array([SECTIONS[s][3] for s in SECTION_LETTERS])
    mean_hazard = float((hazard * sect_w).sum() / sect_w.sum())
    p_insolvent = 0.015 * hazard[np.maximum(section, 0)] / mean_hazard
    insolvent = is_fr_b2b & (created < start) & (rng.random(n) < p_insolvent)
    ins_draw = rng.integers(start + 120, end + 91, n)
    pre_draw = rng.integers(90, 301, n)
    ins_delta = rng.uniform(1.2, 2.2, n)
    insolvency_day = np.where(insolvent, ins_draw, NEVER).astype(np.int64)
    drift_day = np.where(insolvent, ins_draw - pre_draw, drift_day)
    drift_delta = np.where(insolvent, ins_delta, drift_delta)

    # names, e-mails, phones (object arrays; one vectorised concatenation per column)
    surnames, firsts = as_array(SURNAMES), as_array(FIRST_NAMES)
    s_idx, f_idx = rng.integers(0, len(SURNAMES), n), rng.integers(0, len(FIRST_NAMES), n)
    w_idx = rng.integers(0, 5, n)
    sector_words = as_array([w for s in SECTION_LETTERS for w in SECTIONS[s][4]])
    word = sector_words[np.maximum(section, 0) * 5 + w_idx]
    slug_surnames = as_array([ascii_slug(s) for s in SURNAMES])
    slug_firsts = as_array([ascii_slug(s) for s in FIRST_NAMES])
    slug_words = as_array([ascii_slug(w) for s in SECTION_LETTERS for w in SECTIONS[s][4]])
    forms = as_array([abbr for abbr, _, _ in LEGAL_FORMS] + [""])
    uk = as_array(UK_SUFFIXES)
    num = (np.arange(1, n + 1)).astype(str).astype(object)

    fr_name = word + " " + surnames[s_idx] + " " + forms[legal_form]
    gb_name = slug_surnames[s_idx].astype(str).astype(object)
    gb_name = np.char.capitalize(gb_name.astype(str)).astype(object) + " Trading " + uk[w_idx % len(uk)]
    b2c_name = firsts[f_idx] + " " + surnames[s_idx]
    names = np.where(is_gb, gb_name, np.where(is_b2b, fr_name, b2c_name))

    b2b_mail = "compta@" + slug_words[np.maximum(section, 0) * 5 + w_idx] + "-" + slug_surnames[s_idx] + num
    b2b_mail = b2b_mail + np.where(is_gb, ".co.uk", ".fr").astype(object)
    domains = as_array(B2C_MAIL_DOMAINS)
    b2c_mail = slug_firsts[f_idx] + "." + slug_surnames[s_idx] + num + "@" + domains[rng.integers(0, len(domains), n)]
    emails = np.where(is_b2b, b2b_mail, b2c_mail)

    subscriber = np.char.zfill(rng.integers(0, 100_000_000, n).astype(str), 8).astype(object)
    mobile = np.where(rng.random(n) < 0.5, "+336", "+337").astype(object)
    landline = ("+33" + rng.integers(1, 6, n).astype(str)).astype(object)
    prefix = np.where(is_gb, "+4420", np.where(is_b2b, landline, mobile))
    phones = prefix + subscriber

    return _Customers(
        n=n, is_b2b=is_b2b, is_gb=is_gb, section=section.astype(np.int8), naf=naf, size=size.astype(np.int8),
        region=region, legal_form=legal_form, siren=siren, terms=terms, eom=eom, gbp=gbp,
        credit_limit_cents=credit_limit_cents, created=created, method=method, batch=batch,
        preventive=preventive, z0=z0, drift_day=drift_day, drift_delta=drift_delta,
        insolvency_day=insolvency_day, names=names, emails=emails, phones=phones,
    )  # fmt: skip


def _customers_table(c: _Customers) -> pa.Table:
    naf_codes = tuple(code for code, _, _ in NAF_CODES)
    region_code = np.where(c.is_gb, len(REGION_NAMES), c.region)
    siren_str = pa.array(np.char.zfill(c.siren.astype(str), 9), mask=c.siren == 0)
    return pa.table(
        {
            "customer_id": _str_ids("C", np.arange(1, c.n + 1), 6),
            "customer_name": pa.array(c.names.tolist(), pa.string()),
            "customer_type": pa.array(np.where(c.is_b2b, "B2B", "B2C")),
            "siren": siren_str,
            "naf_code": _vocab(naf_codes, c.naf),
            "sector_section": _vocab(SECTION_LETTERS, c.section),
            "size_band": _vocab(SIZE_NAMES, c.size),
            "region": _vocab((*REGION_NAMES, FOREIGN_REGION), region_code),
            "country_code": pa.array(np.where(c.is_gb, "GB", "FR")),
            "email": pa.array(c.emails.tolist(), pa.string()),
            "phone": pa.array(c.phones.tolist(), pa.string()),
            "credit_limit": _decimal(c.credit_limit_cents),
            "currency": pa.array(np.where(c.gbp, "GBP", "EUR")),
            "payment_terms_days": pa.array(c.terms, pa.int32()),
            "is_end_of_month_terms": pa.array(c.eom),
            "created_date": _dates(c.created),
        }
    )


def _allocate_invoices(c: _Customers, n_invoices: int, start: int, end: int, rng: np.random.Generator) -> np.ndarray:
    """Invoices per customer, proportional to activity x length of the customer's active window."""
    activity = np.array([SIZE_BANDS[s][4] for s in SIZE_NAMES])
    weight = rng.lognormal(0.0, 0.8, c.n) * np.where(c.is_b2b, activity[np.maximum(c.size, 0)], 0.4)
    stop_after = rng.integers(0, 46, c.n)
    c.window_start = np.maximum(start, c.created)
    c.window_end = np.minimum(end, c.insolvency_day + stop_after)
    c.window_end = np.maximum(c.window_end, c.window_start)
    weight = weight * (c.window_end - c.window_start + 1)
    return rng.multinomial(n_invoices, weight / weight.sum())


def _issue_day_cdf(start: int, end: int) -> np.ndarray:
    """Cumulative issuing intensity per calendar day: weekends quiet, August and late December slower."""
    days = np.arange(start, end + 1)
    wd = (days + 3) % 7
    w = np.where(wd == 5, 0.05, np.where(wd == 6, 0.02, 1.0))
    month = _month(days)
    w = w * np.where(month == 8, 0.6, 1.0) * np.where((month == 12) & (_day_of_month(days) > 20), 0.5, 1.0)
    return np.concatenate([[0.0], np.cumsum(w)])


# ---------------------------------------------------------------------------------------------------------
# the per-invoice simulation
# ---------------------------------------------------------------------------------------------------------
def _response_p(
    channel: np.ndarray, c: _Customers, cust: np.ndarray, overdue: np.ndarray, z: np.ndarray, tone: str
) -> np.ndarray:
    """P(reminder answered 'paid' within a week): channel effects depend on segment and days overdue."""
    sec, b2c = c.section[cust], ~c.is_b2b[cust]
    big = c.size[cust] >= SIZE_NAMES.index("medium")
    logit = (
        RESP_BASE[channel]
        + np.where(b2c, RESP_B2C[channel], 0.0)
        + np.where(sec == F_SECTION, RESP_CONSTRUCTION[channel], 0.0)
        + np.where(sec == SECTION_LETTERS.index("I"), RESP_HOSPITALITY[channel], 0.0)
        + np.where(big, RESP_LARGE[channel], 0.0)
        + RESP_OVERDUE_SLOPE[channel] * np.clip(overdue, 0, 60)
        + np.where(overdue < 0, RESP_PREVENTIVE, 0.0)
        + (RESP_FIRM_TONE if tone == "firm" else 0.0)
        + RESP_PROPENSITY * z
    )
    return _sigmoid(logit)


def _delay_cdf(x: np.ndarray, p_on: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(D <= x) for the base days-late mixture: uniform -12..0 when on time, else max(1, ceil(lognormal))."""
    fx = np.floor(x)
    on = np.clip((fx + 13.0) / 13.0, 0.0, 1.0)
    late = np.where(fx >= 1, _norm_cdf((np.log(np.maximum(fx, 1.0)) - mu) / sigma), 0.0)
    return p_on * on + (1.0 - p_on) * late


@dataclass
class _Block:
    """Tables of one block of customers, ready to write."""

    tables: dict[str, pa.Table]
    truth: pa.Table
    counts: dict[str, int]


@dataclass
class _Counters:
    invoice: int = 0
    credit_note: int = 0
    payment: int = 0
    dispute: int = 0
    reminder: int = 0


def _simulate_block(
    c: _Customers,
    cust: np.ndarray,
    issue: np.ndarray,
    end: int,
    rng: np.random.Generator,
    ids: _Counters,
) -> _Block:
    n = len(cust)
    order = np.lexsort((cust, issue))
    cust, issue = cust[order].astype(np.int64), issue[order].astype(np.int64)
    is_b2b = c.is_b2b[cust]
    sec = c.section[cust]
    size = c.size[cust]
    reg = c.region[cust]
    batch = c.batch[cust]
    ins_day = c.insolvency_day[cust]

    # amounts (cents) and due dates
    med_amount = np.array([SIZE_BANDS[s][2] for s in SIZE_NAMES])
    median = np.where(is_b2b, med_amount[np.maximum(size, 0)], 180.0) * np.where(c.gbp[cust], 0.85, 1.0)
    euros = median * np.exp(rng.normal(0.0, 1.0, n) * np.where(is_b2b, 0.9, 0.7))
    amount = np.maximum(np.round(euros * 100.0), 1000).astype(np.int64)
    terms = c.terms[cust].astype(np.int64)
    due = np.where(c.eom[cust], _end_of_month(issue), issue) + terms

    # base days late
    z_due = c.z_at(cust, due)
    month = _month(due)
    season = np.ones(n)
    season_on = np.zeros(n)
    for m, mult in SEASON_DELAY.items():
        season[month == m] = mult
    for m, adj in SEASON_ON_TIME.items():
        season_on[month == m] = adj
    sect_mean = np.array([SECTIONS[s][1] for s in SECTION_LETTERS])
    sect_on = np.array([SECTIONS[s][2] for s in SECTION_LETTERS])
    size_mult = np.array([SIZE_BANDS[s][1] for s in SIZE_NAMES])
    region_mult = np.append(np.array([REGIONS[r][1] for r in REGION_NAMES]), 1.0)  # last: foreign
    late_median = (
        np.where(is_b2b, sect_mean[np.maximum(sec, 0)] * 0.6 * size_mult[np.maximum(size, 0)], 7.0)
        * region_mult[reg]
        * season
        * np.exp(0.8 * z_due)
    )
    mu = np.log(late_median)
    sigma = np.where(is_b2b, 1.0, 0.9)
    p_on = _sigmoid(np.where(is_b2b, sect_on[np.maximum(sec, 0)], 0.6) + season_on - 1.0 * z_due)
    on_time = rng.random(n) < p_on
    late_days = np.ceil(np.exp(mu + sigma * rng.normal(0.0, 1.0, n)))
    base_late = np.where(on_time, rng.integers(-12, 1, n), np.clip(late_days, 1, 2000)).astype(np.int64)
    p_writeoff = np.minimum(0.004 * np.exp(z_due), 0.2)
    written_off = rng.random(n) < p_writeoff

    # disputes hold payment until resolution (+ a few days to pay)
    disputed = rng.random(n) < 0.02
    opened = issue + rng.integers(5, 46, n)
    long_dispute = rng.random(n) < 0.12
    duration = np.where(long_dispute, rng.integers(150, 401, n), rng.integers(7, 91, n))
    resolved = opened + duration
    release = np.where(disputed, resolved + rng.integers(1, 16, n), -NEVER)
    dispute_reason = rng.integers(0, len(DISPUTE_REASONS), n)

    # credit notes: half of the disputes end with one, plus ~2.5 % commercial gestures
    cn_from_dispute = disputed & (rng.random(n) < 0.5)
    cn_random = ~cn_from_dispute & (rng.random(n) < 0.025)
    has_cn = cn_from_dispute | cn_random
    cn_day = np.where(cn_from_dispute, resolved, issue + rng.integers(3, 41, n))
    cn_full = rng.random(n) < 0.25
    cn_amount = np.where(cn_full, amount, np.round(amount * rng.uniform(0.1, 0.5, n)).astype(np.int64))

    # base settle day (before dunning)
    base = np.maximum(due + base_late, release)
    lost_in_insolvency = (base > ins_day) & (rng.random(n) < 0.9)
    never = written_off | lost_in_insolvency
    settle = np.where(never, NEVER, np.where(batch, _next_run_day(base), base))
    settle = np.where(has_cn & cn_full & (cn_day < settle), cn_day, settle)

    # legacy dunning, step by step
    rem_parts: list[dict[str, np.ndarray]] = []
    truth_keep = np.ones(n)  # prod over early steps of (1 - P(step sent and answered 'paid'))
    for s, (offset, tone, q_b2b, q_b2c, mix_b2b, mix_b2c) in enumerate(STEPS):
        send_day = _next_weekday(due + offset)
        in_pre_dispute = disputed & (send_day >= opened - 10) & (send_day < opened)
        suspended = disputed & (send_day >= opened) & (send_day < resolved)
        allowed = ~suspended & (send_day < ins_day)
        q = c.preventive[cust].astype(float) if s == 0 else np.where(is_b2b, q_b2b, q_b2c)
        applied = rng.random(n) < q
        cum = np.cumsum(np.array([mix_b2b, mix_b2c]), axis=1)
        channel = _choice_by_row(rng, cum[np.where(is_b2b, 0, 1)])
        z_send = c.z_at(cust, send_day)
        overdue = send_day - due
        p_paid = _response_p(channel, c, cust, overdue, z_send, tone)
        if s < TRUTH_STEPS:
            mix = np.where(is_b2b[:, None], np.array(mix_b2b)[None, :], np.array(mix_b2c)[None, :])
            expected = np.zeros(n)
            for ch in range(len(CHANNELS)):
                ch_arr = np.full(n, ch)
                expected += mix[:, ch] * _response_p(ch_arr, c, cust, overdue, z_send, tone)
            truth_keep *= 1.0 - q * expected * (allowed & ~in_pre_dispute)

        sent = applied & allowed & (settle > send_day)
        u = rng.random(n)
        send_sec = send_day * SECONDS_PER_DAY + rng.integers(7 * 3600, 18 * 3600, n)
        paid_lag = rng.integers(*PAID_LAG_S, n)
        promise_lag = rng.integers(600, 2 * SECONDS_PER_DAY, n)
        honour_gap = rng.integers(0, 4, n)
        broken_gap = rng.integers(5, 22, n)
        dispute_sec = opened * SECONDS_PER_DAY + rng.integers(8 * 3600, 18 * 3600, n)

        is_dispute = sent & in_pre_dispute
        is_paid = sent & ~is_dispute & (u < p_paid)
        is_promise = sent & ~is_dispute & ~is_paid & (overdue >= 0) & (u < p_paid + PROMISE_P[channel])
        responded = np.where(
            is_paid,
            send_sec + paid_lag,
            np.where(is_promise, send_sec + promise_lag, np.where(is_dispute, dispute_sec, -1)),
        )
        settle = np.where(is_paid, np.minimum(settle, responded // SECONDS_PER_DAY), settle)
        resp_day = responded // SECONDS_PER_DAY
        honoured = (settle - resp_day >= 1) & (settle - resp_day <= 45)
        promised = np.where(honoured, np.maximum(settle - honour_gap, resp_day + 1), resp_day + broken_gap)
        response = np.where(is_paid, 3, np.where(is_promise, 1, np.where(is_dispute, 2, 0)))
        idx = np.flatnonzero(sent)
        rem_parts.append(
            {
                "inv": idx,
                "sent": send_sec[idx],
                "channel": channel[idx],
                "tone": np.full(len(idx), TONES.index(tone)),
                "response": response[idx],
                "responded": responded[idx],
                "promised": np.where(is_promise[idx], promised[idx], -1),
            }
        )

    # post-hoc consistency: a credit note only if issued by the (final) settle day, a dispute only if opened
    # before it; what remains to pay is the amount net of the credit note
    has_cn = has_cn & (cn_day <= settle)
    paid_by_cn = has_cn & cn_full & (cn_day == settle)
    disputed = disputed & (opened < settle)
    net = amount - np.where(has_cn, cn_amount, 0)

    # ground truth: P(unpaid at due+30)
    check_day = due + 30
    run_day = np.where(batch, _last_run_day(check_day), check_day)
    k = (run_day - due).astype(float)
    release_rel = (release - due).astype(float)

    def released_cdf(x: np.ndarray) -> np.ndarray:
        return _delay_cdf(x, p_on, mu, sigma) * (release_rel <= x)

    k_ins = np.minimum((ins_day - due).astype(float), k)
    p_base_paid = np.where(
        ins_day < run_day,
        released_cdf(k_ins) + 0.1 * (released_cdf(k) - released_cdf(k_ins)),
        released_cdf(k),
    ) * (1.0 - p_writeoff)
    full_cn_in_time = (cn_from_dispute | cn_random) & cn_full & (cn_day <= check_day)
    p_unpaid = np.where(full_cn_in_time, 0.0, (1.0 - p_base_paid) * truth_keep)
    z30 = c.z_at(cust, check_day)
    effects = {
        f"effect_{ch}": _response_p(np.full(n, i), c, cust, np.full(n, 30), z30, "cordial")
        for i, ch in enumerate(CHANNELS)
    }

    # ---- ids (invoices ordered by issue date) and censoring at end_date --------------------------------
    inv_no = ids.invoice + 1 + np.arange(n)
    ids.invoice += n
    inv_ids = _str_ids("INV-", inv_no, 7)
    cust_ids = _str_ids("C", cust + 1, 6)
    currency = pa.array(np.where(c.gbp[cust], "GBP", "EUR"))
    terms_arr = pa.array(terms.astype(np.int32), pa.int32())
    eom_arr = pa.array(c.eom[cust])

    # credit notes as invoice rows
    cn_idx = np.flatnonzero(has_cn & (cn_day <= end))
    cn_idx = cn_idx[np.lexsort((cn_idx, cn_day[cn_idx]))]
    cn_ids = _str_ids("CN-", ids.credit_note + 1 + np.arange(len(cn_idx)), 7)
    ids.credit_note += len(cn_idx)
    invoices = pa.table(
        {
            "invoice_id": pa.concat_arrays([inv_ids, cn_ids]),
            "customer_id": pa.concat_arrays([cust_ids, cust_ids.take(cn_idx)]),
            "document_type": pa.array(["invoice"] * n + ["credit_note"] * len(cn_idx), pa.string()),
            "credited_invoice_id": pa.concat_arrays([pa.nulls(n, pa.string()), inv_ids.take(cn_idx)]),
            "issue_date": _dates(np.concatenate([issue, cn_day[cn_idx]])),
            "due_date": _dates(np.concatenate([due, cn_day[cn_idx]])),
            "amount": _decimal(np.concatenate([amount, -cn_amount[cn_idx]])),
            "currency": pa.concat_arrays([currency, currency.take(cn_idx)]),
            "payment_terms_days": pa.concat_arrays([terms_arr, terms_arr.take(cn_idx)]),
            "is_end_of_month_terms": pa.concat_arrays([eom_arr, eom_arr.take(cn_idx)]),
        }
    )

    # payment lines: (invoice, day, cents); two instalments for some, batch payers grouped per run day
    pays = (settle < NEVER) & ~paid_by_cn
    split = pays & ~batch & (rng.random(n) < 0.10) & (settle - issue >= 20) & (net >= 50_000)
    first_day = np.clip(settle - rng.integers(7, 32, n), issue + 1, settle - 1)
    first_cents = np.round(net * rng.uniform(0.3, 0.7, n)).astype(np.int64)
    i_full, i_split = np.flatnonzero(pays & ~split), np.flatnonzero(split)
    line_inv = np.concatenate([i_full, i_split, i_split])
    line_day = np.concatenate([settle[i_full], first_day[i_split], settle[i_split]])
    line_cents = np.concatenate([net[i_full], first_cents[i_split], net[i_split] - first_cents[i_split]])
    keep = line_day <= end
    line_inv, line_day, line_cents = line_inv[keep], line_day[keep], line_cents[keep]
    line_cust = cust[line_inv]
    lo = np.lexsort((line_inv, line_cust, line_day))
    line_inv, line_day, line_cents, line_cust = line_inv[lo], line_day[lo], line_cents[lo], line_cust[lo]
    same_batch = np.zeros(len(lo), dtype=bool)
    if len(lo) > 1:
        same_batch[1:] = batch[line_inv[1:]] & (line_cust[1:] == line_cust[:-1]) & (line_day[1:] == line_day[:-1])
    pay_no = np.cumsum(~same_batch) - 1
    starts = np.flatnonzero(~same_batch)
    n_pay = len(starts)
    pay_ids = _str_ids("PAY-", ids.payment + 1 + np.arange(n_pay), 7)
    ids.payment += n_pay
    pay_cust = line_cust[starts]
    payments = pa.table(
        {
            "payment_id": pay_ids,
            "customer_id": _str_ids("C", pay_cust + 1, 6),
            "payment_date": _dates(line_day[starts]),
            "amount": _decimal(np.add.reduceat(line_cents, starts) if n_pay else np.empty(0, np.int64)),
            "currency": pa.array(np.where(c.gbp[pay_cust], "GBP", "EUR").astype(str), pa.string()),
            "payment_method": _vocab(PAYMENT_METHODS, c.method[pay_cust]),
        }
    )
    allocations = pa.table(
        {
            "payment_id": pay_ids.take(pa.array(pay_no)),
            "invoice_id": inv_ids.take(pa.array(line_inv)),
            "allocated_amount": _decimal(line_cents),
        }
    )

    # disputes
    d_idx = np.flatnonzero(disputed & (opened <= end))
    d_idx = d_idx[np.lexsort((d_idx, opened[d_idx]))]
    disputes = pa.table(
        {
            "dispute_id": _str_ids("DSP-", ids.dispute + 1 + np.arange(len(d_idx)), 7),
            "invoice_id": inv_ids.take(pa.array(d_idx)),
            "opened_date": _dates(opened[d_idx]),
            "resolved_date": _dates(resolved[d_idx], null=resolved[d_idx] > end),
            "reason": _vocab(DISPUTE_REASONS, dispute_reason[d_idx]),
        }
    )
    ids.dispute += len(d_idx)

    # reminders: sent by end_date; answers after it are not known yet
    rem = {key: np.concatenate([p[key] for p in rem_parts]) for key in rem_parts[0]}
    end_sec = (end + 1) * SECONDS_PER_DAY
    ok = rem["sent"] < end_sec
    rem = {key: v[ok] for key, v in rem.items()}
    ro = np.lexsort((rem["inv"], rem["sent"]))
    rem = {key: v[ro] for key, v in rem.items()}
    unknown = (rem["responded"] < 0) | (rem["responded"] >= end_sec)
    response = np.where(unknown, 0, rem["response"])
    n_rem = len(ro)
    reminders = pa.table(
        {
            "reminder_id": _str_ids("RMD-", ids.reminder + 1 + np.arange(n_rem), 7),
            "invoice_id": inv_ids.take(pa.array(rem["inv"])),
            "customer_id": cust_ids.take(pa.array(rem["inv"])),
            "sent_at": _timestamps(rem["sent"]),
            "channel": _vocab(CHANNELS, rem["channel"]),
            "tone": _vocab(TONES, rem["tone"]),
            "response": _vocab(("none", "promise_to_pay", "dispute", "paid"), response),
            "responded_at": _timestamps(rem["responded"], null=unknown),
            "promised_date": _dates(rem["promised"], null=unknown | (rem["promised"] < 0)),
        }
    )
    ids.reminder += n_rem

    truth = pa.table(
        {
            "invoice_id": inv_ids,
            "customer_id": cust_ids,
            "p_late_30d_after_due": pa.array(p_unpaid),
            "base_days_late": pa.array(base_late.astype(np.int32)),
            **{name: pa.array(v) for name, v in effects.items()},
            "settle_date": _dates(np.minimum(settle, NEVER), null=settle >= NEVER),
            "is_never_paid": pa.array(settle >= NEVER),
            "is_paid_by_credit_note": pa.array(paid_by_cn),
            "is_disputed": pa.array(disputed),
        }
    )
    counts = {
        "invoices": n,
        "credit_notes": len(cn_idx),
        "payments": n_pay,
        "allocations": len(line_inv),
        "disputes": len(d_idx),
        "reminders": n_rem,
    }
    return _Block(
        tables={
            "invoices": invoices,
            "payments": payments,
            "payment_allocations": allocations,
            "disputes": disputes,
            "reminders": reminders,
        },
        truth=truth,
        counts=counts,
    )


# ---------------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------------
_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DECIMAL(18,2)": pa.decimal128(18, 2),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
}


def arrow_schema(entity: str, file_format: FileFormat = "csv") -> pa.Schema:
    """Arrow schema of a raw entity's landing file, in raw_schema column order.

    TIMESTAMP is written with second precision in CSV (``2026-01-05 09:30:00``) and microseconds in
    Parquet (which has no second unit).
    """
    ts = pa.timestamp("s") if file_format == "csv" else pa.timestamp("us")
    return pa.schema([(col, ts if typ == "TIMESTAMP" else _ARROW_TYPES[typ]) for col, typ in ENTITIES[entity].items()])


class _Sink:
    """Append-only writer for one landing file, so blocks never need to be held together in memory."""

    def __init__(self, path: Path, schema: pa.Schema, file_format: FileFormat) -> None:
        self.path, self.schema = path, schema
        if file_format == "csv":
            options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            self._writer: Any = pacsv.CSVWriter(str(path), schema, write_options=options)
        else:
            self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.select(self.schema.names).cast(self.schema))

    def close(self) -> None:
        self._writer.close()


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


def generate_demo(
    landing_dir: Path,
    ground_truth_dir: Path,
    *,
    n_customers: int = 2000,
    n_invoices: int = 60_000,
    months: int = 24,
    end_date: date = date(2026, 10, 31),
    seed: int = 42,
    file_format: Literal["csv", "parquet"] = "csv",
) -> DemoSummary:
    """Write a demo receivables export as of ``end_date`` into landing_dir, and its ground truth apart.

    Same arguments give byte-identical files. Files: one per raw entity (``customers.csv`` ... or
    ``.parquet``) with exactly the columns of ``relance.raw_schema.ENTITIES``, ``risk/bodacc_notices.json``
    (BODACC v2.1 envelope), and in ground_truth_dir ``invoice_truth.parquet`` / ``customer_truth.parquet``
    which the pipeline must never read.
    """
    _validate(n_customers, n_invoices, months, end_date, seed, file_format)
    t0 = time.perf_counter()
    landing_dir, ground_truth_dir = Path(landing_dir), Path(ground_truth_dir)
    (landing_dir / "risk").mkdir(parents=True, exist_ok=True)
    ground_truth_dir.mkdir(parents=True, exist_ok=True)

    def rng_for(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))

    start = _day(_month_start_months_before(end_date, months))
    end = _day(end_date)
    customers = _make_customers(n_customers, start, end, rng_for(0))
    counts = _allocate_invoices(customers, n_invoices, start, end, rng_for(1))

    # issue dates for every invoice (customer windows, seasonal intensity): 2 small arrays, then blocks
    cdf = _issue_day_cdf(start, end)
    inv_cust = np.repeat(np.arange(n_customers, dtype=np.int32), counts)
    rng_dates = rng_for(2)
    lo_idx = customers.window_start[inv_cust] - start
    hi_idx = customers.window_end[inv_cust] - start
    u = cdf[lo_idx] + rng_dates.random(len(inv_cust)) * (cdf[hi_idx + 1] - cdf[lo_idx])
    inv_issue = np.clip(np.searchsorted(cdf, u, side="right") - 1, lo_idx, hi_idx).astype(np.int32) + start

    ext = file_format
    files = {e: landing_dir / f"{e}.{ext}" for e in LANDING_ENTITIES}
    sinks = {e: _Sink(files[e], arrow_schema(e, file_format), file_format) for e in LANDING_ENTITIES}
    totals = dict.fromkeys(("invoices", "credit_notes", "payments", "allocations", "disputes", "reminders"), 0)
    truth_path = ground_truth_dir / "invoice_truth.parquet"
    truth_writer: pq.ParquetWriter | None = None
    try:
        sinks["customers"].write(_customers_table(customers))
        # blocks of whole customers, about BLOCK_INVOICES invoices each
        cum = np.cumsum(counts)
        block_of_customer = np.maximum(cum - 1, 0) // BLOCK_INVOICES
        bounds = np.searchsorted(block_of_customer, np.arange(int(block_of_customer[-1]) + 2), side="left")
        ids = _Counters()
        inv_bounds = np.concatenate([[0], cum])
        for b in range(len(bounds) - 1):
            c0, c1 = int(bounds[b]), int(bounds[b + 1])
            i0, i1 = int(inv_bounds[c0]), int(inv_bounds[c1])
            if i1 == i0:
                continue
            block = _simulate_block(customers, inv_cust[i0:i1], inv_issue[i0:i1], end, rng_for(3, b), ids)
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

    pq.write_table(_customer_truth(customers, start, end), ground_truth_dir / "customer_truth.parquet")
    insolvencies = _write_bodacc(customers, end_date, landing_dir / "risk" / "bodacc_notices.json", rng_for(4))
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


def _customer_truth(c: _Customers, start: int, end: int) -> pa.Table:
    idx = np.arange(c.n)
    has_drift = c.drift_day < NEVER
    insolvent = c.insolvency_day < NEVER
    return pa.table(
        {
            "customer_id": _str_ids("C", idx + 1, 6),
            "propensity_start": pa.array(c.z_at(idx, np.full(c.n, start))),
            "propensity_end": pa.array(c.z_at(idx, np.full(c.n, end))),
            "drift_date": _dates(np.where(has_drift, c.drift_day, 0), null=~has_drift),
            "drift_delta": pa.array(c.drift_delta),
            "insolvency_date": _dates(np.where(insolvent, c.insolvency_day, 0), null=~insolvent),
            "is_batch_payer": pa.array(c.batch),
        }
    )


def _write_bodacc(c: _Customers, end_date: date, path: Path, rng: np.random.Generator) -> int:
    """Write the notices; return how many customers had a judgment on or before end_date."""
    end = _day(end_date)
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
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return int((c.insolvency_day <= end).sum())
