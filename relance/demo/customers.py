"""Simulated customers: who they are (segment, sector, size, region, SIREN), their habits (terms, payment method,
batch paying), their latent propensity to pay late (with drift and insolvency), their contact details and postal
address; and their landing table and ground truth.

Each step draws from the generator in a fixed order (:func:`make_customers` calls them in turn), so the same
seed gives the same customers. The postal addresses came later: they are drawn from a child generator spawned
from the customers' one (:meth:`numpy.random.Generator.spawn` leaves its parent's stream where it was), so every
other draw, and so every invoice, payment and reminder of the demo, is the one it was before addresses existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from relance.demo.arrow_columns import dates, decimal_from_cents, str_ids, vocab
from relance.demo.days import NEVER
from relance.demo.reference import (
    ADDRESS_LINE2_B2B_FR,
    ADDRESS_LINE2_B2C_FR,
    ADDRESS_LINE2_GB,
    B2B_MAIL_SUFFIX_FR,
    B2B_MAIL_SUFFIX_GB,
    B2C_MAIL_DOMAINS,
    FIRST_NAMES,
    FOREIGN_REGION,
    LEGAL_FORMS,
    NAF_CODES,
    REGION_NAMES,
    REGION_TOWNS,
    REGIONS,
    SECTION_LETTERS,
    SECTIONS,
    SIZE_BANDS,
    SIZE_NAMES,
    STREET_NAMES_FR,
    STREET_NAMES_GB,
    STREET_TYPES_FR,
    STREET_TYPES_GB,
    SURNAMES,
    UK_POSTCODE_UNIT_LETTERS,
    UK_SUFFIXES,
    UK_TOWNS,
    as_array,
    ascii_slug,
)
from relance.demo.safety import FR_GEOGRAPHIC_FICTION, FR_MOBILE_FICTION, GB_LONDON_FICTION


@dataclass(frozen=True)
class Address:
    """Postal addresses as parallel object arrays (``line2`` holds ``None`` where there is no second line)."""

    line1: np.ndarray
    line2: np.ndarray
    postal_code: np.ndarray
    city: np.ndarray


@dataclass
class Customers:
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
    method: np.ndarray  # index into relance.raw_schema.PAYMENT_METHODS
    batch: np.ndarray
    preventive: np.ndarray
    z0: np.ndarray
    drift_day: np.ndarray
    drift_delta: np.ndarray
    insolvency_day: np.ndarray
    names: np.ndarray  # object array
    emails: np.ndarray
    phones: np.ndarray
    address: Address
    english: np.ndarray  # corresponds in English: UK customers, and French firms of foreign groups

    def z_at(self, cust: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Latent propensity on given days: z0 plus the drift, ramped in over 90 days."""
        ramp = np.clip((days - self.drift_day[cust]) / 90.0, 0.0, 1.0)
        return self.z0[cust] + self.drift_delta[cust] * ramp


@dataclass(frozen=True)
class Segments:
    """Who the customers are (indices into the reference tables, -1 where it does not apply)."""

    is_b2b: np.ndarray
    is_gb: np.ndarray
    section: np.ndarray
    naf: np.ndarray
    size: np.ndarray
    region: np.ndarray
    legal_form: np.ndarray
    siren: np.ndarray

    @property
    def is_fr_b2b(self) -> np.ndarray:
        return self.is_b2b & ~self.is_gb


@dataclass(frozen=True)
class Habits:
    """Commercial terms and how each customer pays."""

    terms: np.ndarray
    eom: np.ndarray
    credit_limit_cents: np.ndarray
    created: np.ndarray
    method: np.ndarray
    batch: np.ndarray
    preventive: np.ndarray


@dataclass(frozen=True)
class Latent:
    """The hidden propensity to pay late: start value, an upward drift from a day, and an insolvency judgment."""

    z0: np.ndarray
    drift_day: np.ndarray
    drift_delta: np.ndarray
    insolvency_day: np.ndarray


def _siren_check_digit(base8: np.ndarray) -> np.ndarray:
    """Luhn check digit for 8-digit SIREN bodies: double the 2nd, 4th, 6th and 8th digits from the left."""
    digits = (base8[:, None] // 10 ** np.arange(7, -1, -1)) % 10
    doubled = digits[:, 1::2] * 2
    total = digits[:, 0::2].sum(axis=1) + np.where(doubled > 9, doubled - 9, doubled).sum(axis=1)
    return (10 - total % 10) % 10


def _section_weights() -> np.ndarray:
    return np.array([SECTIONS[s][0] for s in SECTION_LETTERS])


def draw_segments(n: int, rng: np.random.Generator) -> Segments:
    """B2B (2 % of them British) or B2C; sector, NAF code, size, region, legal form and a Luhn-valid SIREN."""
    is_b2b = rng.random(n) < 0.8
    is_gb = is_b2b & (rng.random(n) < 0.02)
    is_fr_b2b = is_b2b & ~is_gb

    sect_w = _section_weights()
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
    return Segments(is_b2b, is_gb, section, naf, size, region, legal_form, siren)


def draw_habits(seg: Segments, start: int, end: int, rng: np.random.Generator) -> Habits:
    """Terms (30/45/60 days, end of month), credit limit, creation day, payment method, batch paying, preventive."""
    is_b2b, size = seg.is_b2b, seg.size
    n = len(is_b2b)
    terms = np.where(is_b2b, rng.choice([30, 45, 60], n, p=[0.5, 0.3, 0.2]), 30).astype(np.int32)
    eom = is_b2b & (rng.random(n) < 0.35)
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
    return Habits(terms, eom, credit_limit_cents, created, method, batch, preventive)


def draw_latent(seg: Segments, created: np.ndarray, start: int, end: int, rng: np.random.Generator) -> Latent:
    """Propensity z0; 12 % of good payers drift upward from a random day; 1-2 % of French firms go insolvent
    (by sector hazard), their z deteriorating 90-300 days before the judgment."""
    is_b2b, section = seg.is_b2b, seg.section
    n = len(is_b2b)
    z0 = rng.normal(0.0, np.where(is_b2b, 0.55, 0.7))
    drift_day = np.full(n, NEVER, dtype=np.int64)
    drift_delta = np.zeros(n)
    drifter = (rng.random(n) < 0.12) & (z0 < 0.3)
    drift_draw = rng.integers(start + 60, max(start + 61, end), n)
    delta_draw = rng.uniform(0.7, 1.5, n)
    drift_day[drifter] = drift_draw[drifter]
    drift_delta[drifter] = delta_draw[drifter]

    sect_w = _section_weights()
    hazard = np.array([SECTIONS[s][3] for s in SECTION_LETTERS])
    mean_hazard = float((hazard * sect_w).sum() / sect_w.sum())
    p_insolvent = 0.015 * hazard[np.maximum(section, 0)] / mean_hazard
    insolvent = seg.is_fr_b2b & (created < start) & (rng.random(n) < p_insolvent)
    ins_draw = rng.integers(start + 120, end + 91, n)
    pre_draw = rng.integers(90, 301, n)
    ins_delta = rng.uniform(1.2, 2.2, n)
    insolvency_day = np.where(insolvent, ins_draw, NEVER).astype(np.int64)
    drift_day = np.where(insolvent, ins_draw - pre_draw, drift_day)
    drift_delta = np.where(insolvent, ins_delta, drift_delta)
    return Latent(z0, drift_day, drift_delta, insolvency_day)


def draw_contacts(seg: Segments, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Names, e-mails and phones (object arrays; one vectorised concatenation per column)."""
    is_b2b, is_gb, section, legal_form = seg.is_b2b, seg.is_gb, seg.section, seg.legal_form
    n = len(is_b2b)
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
    b2b_mail = b2b_mail + np.where(is_gb, B2B_MAIL_SUFFIX_GB, B2B_MAIL_SUFFIX_FR).astype(object)
    domains = as_array(B2C_MAIL_DOMAINS)
    b2c_mail = slug_firsts[f_idx] + "." + slug_surnames[s_idx] + num + "@" + domains[rng.integers(0, len(domains), n)]
    emails = np.where(is_b2b, b2b_mail, b2c_mail)
    return names, emails, draw_phones(seg, rng)


def draw_phones(seg: Segments, rng: np.random.Generator) -> np.ndarray:
    """E.164 numbers in the ranges kept for fiction (:mod:`relance.demo.safety`): French firms get the ARCEP
    block of their zone (01-05), consumers the mobile block 06 39 98, British firms London's 020 7946 0.

    The draws are the ones the generator made when it wrote ordinary numbers (subscriber, mobile coin, zone),
    in the same order, so every later draw (invoices, payments) is unchanged; the coin is no longer used.
    The ranges hold 10,000 (France) and 1,000 (UK) numbers, so two customers may share one.
    """
    n = len(seg.is_b2b)
    subscriber = rng.integers(0, 100_000_000, n)
    rng.random(n)  # was the 06/07 mobile coin: drawn so the stream of draws stays the same
    zone = rng.integers(1, 6, n)
    fr_digits = np.char.zfill((subscriber % 10_000).astype(str), 4).astype(object)
    gb_digits = np.char.zfill((subscriber % 1_000).astype(str), 3).astype(object)
    landline = as_array(FR_GEOGRAPHIC_FICTION)[zone - 1] + fr_digits
    mobile = FR_MOBILE_FICTION + fr_digits
    return np.where(seg.is_gb, GB_LONDON_FICTION + gb_digits, np.where(seg.is_b2b, landline, mobile))


def _numbered(templates: tuple[str, ...], pick: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """``templates[pick]`` with ``{n}`` replaced by ``numbers`` (object array)."""
    out = np.empty(len(pick), dtype=object)
    out[:] = [templates[k].replace("{n}", str(v)) for k, v in zip(pick.tolist(), numbers.tolist(), strict=True)]
    return out


def draw_addresses(seg: Segments, rng: np.random.Generator) -> Address:
    """A billing address per customer: French ones in a town of the customer's region (number, street type and
    name; a second line for a third of the businesses and a fifth of the consumers), British firms in a British
    town with a full postcode (district + drawn sector and unit). Draws in a fixed order, all vectorised."""
    n = len(seg.is_b2b)
    number = rng.integers(1, 200, n)
    fr_type = rng.integers(0, len(STREET_TYPES_FR), n)
    fr_name = rng.integers(0, len(STREET_NAMES_FR), n)
    gb_name = rng.integers(0, len(STREET_NAMES_GB), n)
    gb_type = rng.integers(0, len(STREET_TYPES_GB), n)
    town_coin = rng.random(n)
    line2_coin = rng.random(n)
    line2_kind = rng.integers(0, 1 << 16, n)
    line2_number = rng.integers(1, 30, n)
    sector = rng.integers(1, 10, n)
    unit = rng.integers(0, len(UK_POSTCODE_UNIT_LETTERS), (n, 2))

    towns = [REGION_TOWNS[r] for r in REGION_NAMES]
    per_region = np.array([len(t) for t in towns])
    region = np.maximum(seg.region, 0)
    pick = np.minimum((town_coin * per_region[region]).astype(np.int64), per_region[region] - 1)
    fr_city = as_array([t[0] for ts in towns for t in ts])
    fr_code = as_array([t[1] for ts in towns for t in ts])
    offsets = np.concatenate([[0], np.cumsum(per_region)[:-1]])
    flat = offsets[region] + pick
    gb_pick = (town_coin * len(UK_TOWNS)).astype(np.int64)
    gb_city = as_array([c for c, _ in UK_TOWNS])[gb_pick]
    letters = np.array(list(UK_POSTCODE_UNIT_LETTERS))
    gb_code = (
        as_array([d for _, d in UK_TOWNS])[gb_pick]
        + " "
        + sector.astype(str).astype(object)
        + np.char.add(letters[unit[:, 0]], letters[unit[:, 1]]).astype(object)
    )

    num = number.astype(str).astype(object)
    fr_line1 = num + " " + as_array(STREET_TYPES_FR)[fr_type] + " " + as_array(STREET_NAMES_FR)[fr_name]
    gb_line1 = num + " " + as_array(STREET_NAMES_GB)[gb_name] + " " + as_array(STREET_TYPES_GB)[gb_type]
    b2b_fr = _numbered(ADDRESS_LINE2_B2B_FR, line2_kind % len(ADDRESS_LINE2_B2B_FR), line2_number)
    b2c_fr = _numbered(ADDRESS_LINE2_B2C_FR, line2_kind % len(ADDRESS_LINE2_B2C_FR), line2_number)
    gb_2 = _numbered(ADDRESS_LINE2_GB, line2_kind % len(ADDRESS_LINE2_GB), line2_number)
    has_line2 = line2_coin < np.where(seg.is_b2b, 0.35, 0.2)
    line2 = np.where(seg.is_gb, gb_2, np.where(seg.is_b2b, b2b_fr, b2c_fr))
    line2 = np.where(has_line2, line2, None)
    return Address(
        line1=np.where(seg.is_gb, gb_line1, fr_line1),
        line2=line2,
        postal_code=np.where(seg.is_gb, gb_code, fr_code[flat]),
        city=np.where(seg.is_gb, gb_city, fr_city[flat]),
    )


#: French professional customers that correspond in English (subsidiaries of foreign groups, shared-service
#: accounts-payable teams): the language is the customer's data, not its country's.
ENGLISH_SHARE_FR_B2B = 0.08


def make_customers(n: int, start: int, end: int, rng: np.random.Generator) -> Customers:
    """``n`` customers active between day numbers ``start`` and ``end``: segments, habits, latent, contacts and
    postal addresses (the latter from a generator spawned from ``rng``, which leaves ``rng``'s draws as they were)."""
    address_rng = rng.spawn(1)[0]
    language_rng = rng.spawn(1)[0]  # a second child: addresses and every other draw stay as they were
    seg = draw_segments(n, rng)
    habits = draw_habits(seg, start, end, rng)
    latent = draw_latent(seg, habits.created, start, end, rng)
    names, emails, phones = draw_contacts(seg, rng)
    return Customers(
        n=n, is_b2b=seg.is_b2b, is_gb=seg.is_gb, section=seg.section.astype(np.int8), naf=seg.naf,
        size=seg.size.astype(np.int8), region=seg.region, legal_form=seg.legal_form, siren=seg.siren,
        terms=habits.terms, eom=habits.eom, gbp=seg.is_gb, credit_limit_cents=habits.credit_limit_cents,
        created=habits.created, method=habits.method, batch=habits.batch, preventive=habits.preventive,
        z0=latent.z0, drift_day=latent.drift_day, drift_delta=latent.drift_delta,
        insolvency_day=latent.insolvency_day, names=names, emails=emails, phones=phones,
        address=draw_addresses(seg, address_rng),
        english=seg.is_gb | (seg.is_b2b & (language_rng.random(n) < ENGLISH_SHARE_FR_B2B)),
    )  # fmt: skip


def customers_table(c: Customers) -> pa.Table:
    """The ``customers`` landing table."""
    naf_codes = tuple(code for code, _, _ in NAF_CODES)
    region_code = np.where(c.is_gb, len(REGION_NAMES), c.region)
    siren_str = pa.array(np.char.zfill(c.siren.astype(str), 9), mask=c.siren == 0)
    # UK companies: an 8-digit Companies House number derived from the customer number (no draw: the rest of the
    # demo stays byte-identical), distinct per customer
    uk_company = c.is_b2b & c.is_gb
    crn = np.char.zfill(((np.arange(c.n, dtype=np.int64) * 7919 + 1_000_003) % 100_000_000).astype(str), 8)
    company_number = pa.array(crn, mask=~uk_company)
    return pa.table(
        {
            "customer_id": str_ids("C", np.arange(1, c.n + 1), 6),
            "customer_name": pa.array(c.names.tolist(), pa.string()),
            "customer_type": pa.array(np.where(c.is_b2b, "B2B", "B2C")),
            "siren": siren_str,
            "company_number": company_number,
            "naf_code": vocab(naf_codes, c.naf),
            "sector_section": vocab(SECTION_LETTERS, c.section),
            "size_band": vocab(SIZE_NAMES, c.size),
            "region": vocab((*REGION_NAMES, FOREIGN_REGION), region_code),
            "address_line1": pa.array(c.address.line1.tolist(), pa.string()),
            "address_line2": pa.array(c.address.line2.tolist(), pa.string()),
            "postal_code": pa.array(c.address.postal_code.tolist(), pa.string()),
            "city": pa.array(c.address.city.tolist(), pa.string()),
            "country_code": pa.array(np.where(c.is_gb, "GB", "FR")),
            "language": pa.array(np.where(c.english, "en", "fr")),
            "email": pa.array(c.emails.tolist(), pa.string()),
            "phone": pa.array(c.phones.tolist(), pa.string()),
            "credit_limit": decimal_from_cents(c.credit_limit_cents),
            "currency": pa.array(np.where(c.gbp, "GBP", "EUR")),
            "payment_terms_days": pa.array(c.terms, pa.int32()),
            "is_end_of_month_terms": pa.array(c.eom),
            "created_date": dates(c.created),
        }
    )


def customer_truth(c: Customers, start: int, end: int) -> pa.Table:
    """``customer_truth.parquet``: propensity on the first and last day, drift, insolvency, batch paying."""
    idx = np.arange(c.n)
    has_drift = c.drift_day < NEVER
    insolvent = c.insolvency_day < NEVER
    return pa.table(
        {
            "customer_id": str_ids("C", idx + 1, 6),
            "propensity_start": pa.array(c.z_at(idx, np.full(c.n, start))),
            "propensity_end": pa.array(c.z_at(idx, np.full(c.n, end))),
            "drift_date": dates(np.where(has_drift, c.drift_day, 0), null=~has_drift),
            "drift_delta": pa.array(c.drift_delta),
            "insolvency_date": dates(np.where(insolvent, c.insolvency_day, 0), null=~insolvent),
            "is_batch_payer": pa.array(c.batch),
        }
    )
