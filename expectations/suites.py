"""Great Expectations (GX Core 1.x) suites for the raw entities, as code.

One :class:`great_expectations.ExpectationSuite` per raw entity (``raw_<entity>``). Every expectation
carries its severity twice: GX's own ``severity`` field (``FailureSeverity``, present in GX 1.24.1; it is
written to the suite JSON) and ``meta={"severity": ..., "rule": ...}`` where ``rule`` is the human-readable
sentence used as the quarantine reason.

* ``critical``: the batch cannot be trusted at all (missing columns, null or duplicated natural keys, null
  amounts or dates, unknown customer / payment / invoice, empty batch). The flow stops; nothing downstream runs.
* ``warning``: a row-level business rule. Failing rows are written to ``ops.quarantine`` with the reason and
  the batch still passes. The one batch-level warning (volume anomaly, ``meta["batch_level"]``) is reported
  and counted but quarantines nothing.

Rules GX cannot express on one pandas frame are turned into *derived columns* that the runner adds to the
frame before validation, and a plain expectation checks the derived column:

* ``_siren_is_valid`` (customers): ``stdnum.fr.siren.is_valid`` (9 digits + Luhn), computed in Python by
  :func:`prepare_frame`; null when ``siren`` is null so B2C customers pass. Chosen over a custom GX
  Expectation class because it needs no metric registration and reads plainly in data docs.
* ``_<thing>_exists``: referential integrity, one derived column per link of :data:`REFERENCES`. GX has no
  cross-table expectation for pandas assets, so the runner computes each in DuckDB against *everything loaded
  so far* in ``raw`` (the current batch included) (:data:`SQL_DERIVED_COLUMNS`) and the suite expects it to
  be ``True``. A null reference counts as missing, except where the link is optional (``nullable``):

  * ``invoices.customer_id -> customers`` (``_customer_exists``): critical
  * ``invoices.credited_invoice_id -> invoices`` when set (``_credited_invoice_exists``): warning
  * ``payments.customer_id -> customers`` (``_customer_exists``): critical
  * ``payment_allocations.payment_id -> payments`` (``_payment_exists``): critical
  * ``payment_allocations.invoice_id -> invoices`` (``_invoice_exists``): critical
  * ``disputes.invoice_id -> invoices`` (``_invoice_exists``): warning (the orphan row is quarantined)
  * ``reminders.invoice_id -> invoices`` (``_invoice_exists``): warning (the orphan row is quarantined)
  * ``call_outcomes.customer_id -> customers`` (``_customer_exists``): warning (the orphan call is quarantined)
  * ``message_events.customer_id -> customers`` when set (``_customer_exists``): warning

Contact data (``call_outcomes``, ``message_events``: what debtors answered) is checked row by row with warnings
(a bad row is quarantined, the others count); only structure is critical (columns, an empty batch, the natural key).
Like the risk data, it has no volume check, and a failed batch of it never blocks the receivables gate.

Volume anomaly against previous loads (batch-level, severity ``warning``, never quarantines rows): the runner
adds ``_rows_read`` (the batch's ``ops.ingest_batches.rows_read``, the same value on every row) and the suite
checks it with ``ExpectColumnMaxToBeBetween`` whose bounds are the suite parameters :data:`VOLUME_MIN_PARAM` /
:data:`VOLUME_MAX_PARAM`, computed per batch by :func:`volume_bounds` from the previous loads of the same
(source, entity) (``ops.ingest_batches.source_name``; null is one source): status ``loaded``,
``rows_read > 0``, loaded before the current batch. Of the last
:data:`VOLUME_HISTORY` (10) such loads, a batch is flagged when its ``rows_read`` is below
:data:`VOLUME_LOW_RATIO` (0.5) x their median or above :data:`VOLUME_HIGH_RATIO` (3.0) x their median. With
fewer than :data:`VOLUME_MIN_HISTORY` (3) previous loads both bounds are ``None`` and nothing is flagged.
``rows_read`` (not the rows appended) is compared so that re-extracts whose rows are mostly unchanged are not
mistaken for a collapse.

The runner also adds ``_row_number`` (1-based position of the row within its batch, in load order), used
with the natural key as ``unexpected_index_column_names`` so every failing row is identified even when keys
are duplicated.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column
from stdnum.fr import siren as stdnum_siren

from relance.raw_schema import CONTACT_ENTITIES, ENTITIES, NATURAL_KEYS, PAYMENT_METHODS, RAW_SCHEMA, RISK_ENTITIES
from relance.reminders.calls import CALL_OUTCOMES
from relance.risk.events import EVENT_TYPES, REGISTRIES

Severity = Literal["critical", "warning"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"

ROW_NUMBER_COLUMN = "_row_number"
SUITE_PREFIX = "raw_"

# Active ISO 4217 alphabetic codes (list one, 2024), without funds/metals/testing codes (XAU, XTS, ...).
# Neither pycountry nor a stdnum currency module is installed, so the compact list lives here.
_ISO_4217_TEXT = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217_CURRENCIES: frozenset[str] = frozenset(_ISO_4217_TEXT.split())

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
E164_REGEX = r"^\+[1-9]\d{6,14}$"

CUSTOMER_TYPES = ("B2B", "B2C")
DOCUMENT_TYPES = ("invoice", "credit_note")
REMINDER_CHANNELS = ("email", "sms", "letter", "call")
REMINDER_TONES = ("preventive", "cordial", "firm")
REMINDER_RESPONSES = ("none", "promise_to_pay", "dispute", "paid")
#: INSEE ``tranche_effectif_salarie`` codes (API Recherche d'entreprises), NN = not an employer.
HEADCOUNT_BANDS = ("NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53")
#: What a provider reports about a message (raw.message_events): SendGrid Event Webhook events, Twilio statuses,
#: and 'stop' (an SMS opt-out).
MESSAGE_EVENTS = (
    # a provider took the message (SendGrid 'processed'; Twilio 'queued' and 'sent'): they settle a send in doubt
    "processed",
    "queued",
    "sent",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "deferred",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "failed",
    "undelivered",
    "stop",
)
MESSAGE_CHANNELS = ("email", "sms")
MESSAGE_PROVIDERS = ("sendgrid", "twilio")
#: Every raw table a suite exists for: the receivables entities, the external risk data, the debtors' answers.
SUITE_ENTITIES: dict[str, dict[str, str]] = {**ENTITIES, **RISK_ENTITIES, **CONTACT_ENTITIES}
#: Entities whose batches come in ones and tens, any day: their volume says nothing about a broken extract.
NO_VOLUME_CHECK: frozenset[str] = frozenset({*RISK_ENTITIES, *CONTACT_ENTITIES})


@dataclass(frozen=True)
class Reference:
    """A referential-integrity link ``entity.column -> target.target_column``, checked on every batch."""

    entity: str
    column: str
    target: str
    target_column: str
    severity: Severity
    nullable: bool = False

    @property
    def derived_column(self) -> str:
        """Name of the derived boolean column (``customer_id`` -> ``_customer_exists``)."""
        return f"_{self.column.removesuffix('_id')}_exists"

    @property
    def rule(self) -> str:
        optional = " when set" if self.nullable else ""
        return f"{self.entity}.{self.column} refers to a loaded {self.target}.{self.target_column}{optional}"

    def sql(self) -> str:
        """DuckDB expression over the batch's raw row: does the referenced row exist anywhere in raw?"""
        exists = (
            f"coalesce({self.column} IN (SELECT {self.target_column} FROM {RAW_SCHEMA}.{self.target} "
            f"WHERE {self.target_column} IS NOT NULL), false)"
        )
        return f"({self.column} IS NULL OR {exists})" if self.nullable else exists


REFERENCES: tuple[Reference, ...] = (
    Reference("invoices", "customer_id", "customers", "customer_id", CRITICAL),
    Reference("invoices", "credited_invoice_id", "invoices", "invoice_id", WARNING, nullable=True),
    Reference("payments", "customer_id", "customers", "customer_id", CRITICAL),
    Reference("payment_allocations", "payment_id", "payments", "payment_id", CRITICAL),
    Reference("payment_allocations", "invoice_id", "invoices", "invoice_id", CRITICAL),
    Reference("disputes", "invoice_id", "invoices", "invoice_id", WARNING),
    Reference("reminders", "invoice_id", "invoices", "invoice_id", WARNING),
    Reference("call_outcomes", "customer_id", "customers", "customer_id", WARNING),
    Reference("message_events", "customer_id", "customers", "customer_id", WARNING, nullable=True),
)

# Derived boolean columns computed in DuckDB by the runner (entity -> column -> SQL expression over the
# batch's raw row). Expressions may reference the raw schema.
SQL_DERIVED_COLUMNS: dict[str, dict[str, str]] = {}
for _ref in REFERENCES:
    SQL_DERIVED_COLUMNS.setdefault(_ref.entity, {})[_ref.derived_column] = _ref.sql()
del _ref

# Volume anomaly against previous loads of the same (source, entity); see the module docstring.
VOLUME_LOW_RATIO = 0.5  # flag a batch that read fewer rows than this x the median of previous loads
VOLUME_HIGH_RATIO = 3.0  # flag a batch that read more rows than this x the median of previous loads
VOLUME_MIN_HISTORY = 3  # previous loads needed before anything is flagged
VOLUME_HISTORY = 10  # the median is over at most this many most recent previous loads
VOLUME_COLUMN = "_rows_read"  # derived column: the batch's rows_read on every row
VOLUME_MIN_PARAM = "volume_min_rows_read"  # suite parameters holding the per-batch bounds
VOLUME_MAX_PARAM = "volume_max_rows_read"


@dataclass(frozen=True)
class VolumeBounds:
    """Acceptable ``rows_read`` of a batch, from the previous loads of the same (source, entity)."""

    median: float
    loads: int
    min_value: float
    max_value: float

    def is_anomaly(self, rows_read: int) -> bool:
        return rows_read < self.min_value or rows_read > self.max_value


def volume_bounds(
    history: Sequence[int],
    *,
    low_ratio: float | None = None,
    high_ratio: float | None = None,
    min_history: int | None = None,
) -> VolumeBounds | None:
    """Bounds for the next batch's ``rows_read`` given previous loads' ``rows_read``, most recent first.

    Uses the first :data:`VOLUME_HISTORY` values; ``None`` (nothing to flag) with fewer than ``min_history``
    (default :data:`VOLUME_MIN_HISTORY`). Ratios default to :data:`VOLUME_LOW_RATIO` / :data:`VOLUME_HIGH_RATIO`.
    """
    low = VOLUME_LOW_RATIO if low_ratio is None else low_ratio
    high = VOLUME_HIGH_RATIO if high_ratio is None else high_ratio
    needed = VOLUME_MIN_HISTORY if min_history is None else min_history
    recent = [int(n) for n in history[:VOLUME_HISTORY]]
    if len(recent) < needed or not recent:
        return None
    median = float(statistics.median(recent))
    return VolumeBounds(median=median, loads=len(recent), min_value=low * median, max_value=high * median)


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def volume_message(entity: str, source_name: str | None, rows_read: int, bounds: VolumeBounds) -> str:
    """E.g. ``invoices from demo: 1,200 rows read, 12% of the median 10,000 of the last 10 loads``."""
    source = source_name or "an unnamed source"
    pct = f"{rows_read / bounds.median:.0%}" if bounds.median else "n/a"
    return (
        f"{entity} from {source}: {rows_read:,} rows read, {pct} of the median {_count(bounds.median)} "
        f"of the last {bounds.loads} loads"
    )


# Derived columns computed in Python by prepare_frame (entity -> column -> source column).
PY_DERIVED_COLUMNS: dict[str, dict[str, str]] = {"customers": {"_siren_is_valid": "siren"}}


def suite_name(entity: str) -> str:
    """GX suite (and validation definition / checkpoint) name of a raw entity."""
    return f"{SUITE_PREFIX}{entity}"


def derived_source_column(entity: str, column: str) -> str | None:
    """Business column a derived column was computed from (for readable quarantine reasons)."""
    if column in PY_DERIVED_COLUMNS.get(entity, {}):
        return PY_DERIVED_COLUMNS[entity][column]
    ref = reference_of(entity, column)
    return ref.column if ref else None


def reference_of(entity: str, column: str) -> Reference | None:
    """The referential link checked by a derived column of ``entity``, if any."""
    return next((r for r in REFERENCES if r.entity == entity and r.derived_column == column), None)


def _siren_valid(value: Any) -> bool | None:
    """``stdnum`` SIREN validity; ``None`` for a missing SIREN (nothing to check)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    return bool(stdnum_siren.is_valid(str(value)))


def prepare_frame(entity: str, df: pd.DataFrame) -> pd.DataFrame:
    """Add the Python-computed derived columns the suite of ``entity`` expects. Returns a new frame."""
    out = df.copy()
    if entity == "customers":
        out["_siren_is_valid"] = pd.array([_siren_valid(v) for v in out["siren"]], dtype="boolean")
    return out


def _meta(severity: Severity, rule: str) -> dict[str, Any]:
    return {"severity": severity, "rule": rule}


def _sev(severity: Severity) -> FailureSeverity:
    return FailureSeverity.CRITICAL if severity == CRITICAL else FailureSeverity.WARNING


def _critical(cls: type[gxe.Expectation], rule: str, **kwargs: Any) -> gxe.Expectation:
    return cls(severity=_sev(CRITICAL), meta=_meta(CRITICAL, rule), **kwargs)


def _warning(cls: type[gxe.Expectation], rule: str, **kwargs: Any) -> gxe.Expectation:
    return cls(severity=_sev(WARNING), meta=_meta(WARNING, rule), **kwargs)


def _common(entity: str) -> list[gxe.Expectation]:
    """Critical structure checks shared by every entity: columns, volume, natural key not null and unique."""
    key = NATURAL_KEYS[entity]
    exps: list[gxe.Expectation] = [
        _critical(
            gxe.ExpectTableColumnsToMatchSet,
            f"all {entity} columns are present",
            column_set=list(SUITE_ENTITIES[entity]),
            exact_match=False,
        ),
        _critical(gxe.ExpectTableRowCountToBeBetween, "the batch is not empty", min_value=1),
        *([] if entity in NO_VOLUME_CHECK else [_volume()]),
        *(_reference(r) for r in REFERENCES if r.entity == entity),
    ]
    exps += [_critical(gxe.ExpectColumnValuesToNotBeNull, f"natural key {col} is not null", column=col) for col in key]
    if len(key) == 1:
        exps.append(_critical(gxe.ExpectColumnValuesToBeUnique, f"{key[0]} is unique in the batch", column=key[0]))
    else:
        exps.append(
            _critical(
                gxe.ExpectCompoundColumnsToBeUnique,
                f"({', '.join(key)}) is unique in the batch",
                column_list=list(key),
            )
        )
    return exps


def _volume() -> gxe.Expectation:
    """Batch-level volume anomaly check; bounds are suite parameters set per batch by the runner."""
    return gxe.ExpectColumnMaxToBeBetween(
        column=VOLUME_COLUMN,
        min_value={"$PARAMETER": VOLUME_MIN_PARAM},
        max_value={"$PARAMETER": VOLUME_MAX_PARAM},
        severity=_sev(WARNING),
        meta={
            **_meta(
                WARNING,
                f"rows read is within {VOLUME_LOW_RATIO:g}x to {VOLUME_HIGH_RATIO:g}x the median of the last "
                f"{VOLUME_HISTORY} loads of the same source (after {VOLUME_MIN_HISTORY} loads)",
            ),
            "batch_level": True,
        },
    )


def _reference(ref: Reference) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(
        column=ref.derived_column,
        value_set=[True],
        severity=_sev(ref.severity),
        meta={**_meta(ref.severity, ref.rule), "references": f"{ref.target}.{ref.target_column}"},
    )


def _currency() -> gxe.Expectation:
    return _warning(
        gxe.ExpectColumnValuesToBeInSet,
        "currency is an active ISO 4217 code",
        column="currency",
        value_set=sorted(ISO_4217_CURRENCIES),
    )


def _in_set(column: str, values: tuple[str, ...]) -> gxe.Expectation:
    return _warning(
        gxe.ExpectColumnValuesToBeInSet,
        f"{column} is one of {', '.join(values)}",
        column=column,
        value_set=list(values),
    )


def _positive(column: str) -> gxe.Expectation:
    return _warning(gxe.ExpectColumnValuesToBeBetween, f"{column} is > 0", column=column, min_value=0, strict_min=True)


def _registry() -> gxe.Expectation:
    return _critical(
        gxe.ExpectColumnValuesToBeInSet, "registry is FR-SIREN or GB-CRN", column="registry", value_set=list(REGISTRIES)
    )


def _specific(entity: str) -> list[gxe.Expectation]:
    """Entity-specific expectations."""
    if entity == "customers":
        return [
            _in_set("customer_type", CUSTOMER_TYPES),
            _warning(
                gxe.ExpectColumnValuesToBeInSet,
                "siren is a valid SIREN (9 digits, Luhn checksum)",
                column="_siren_is_valid",
                value_set=[True],
            ),
            _warning(
                gxe.ExpectColumnValuesToMatchRegex,
                "email looks like an email address",
                column="email",
                regex=EMAIL_REGEX,
            ),
            _warning(
                gxe.ExpectColumnValuesToMatchRegex,
                "phone is in E.164 format (+ and 7 to 15 digits)",
                column="phone",
                regex=E164_REGEX,
            ),
            _currency(),
        ]
    if entity == "invoices":
        return [
            *(
                _critical(gxe.ExpectColumnValuesToNotBeNull, f"{col} is not null", column=col)
                for col in ("amount", "issue_date", "due_date")
            ),
            _in_set("document_type", DOCUMENT_TYPES),
            _warning(
                gxe.ExpectColumnValuesToBeBetween,
                "an invoice amount is > 0",
                column="amount",
                min_value=0,
                strict_min=True,
                row_condition=Column("document_type") == "invoice",
            ),
            _warning(
                gxe.ExpectColumnValuesToBeBetween,
                "a credit note amount is < 0",
                column="amount",
                max_value=0,
                strict_max=True,
                row_condition=Column("document_type") == "credit_note",
            ),
            _warning(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                "due_date is on or after issue_date",
                column_A="due_date",
                column_B="issue_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            _currency(),
        ]
    if entity == "payments":
        return [_positive("amount"), _currency(), _in_set("payment_method", PAYMENT_METHODS)]
    if entity == "payment_allocations":
        return [_positive("allocated_amount")]
    if entity == "disputes":
        return [
            _warning(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                "resolved_date is on or after opened_date",
                column_A="resolved_date",
                column_B="opened_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        ]
    if entity == "reminders":
        return [
            _in_set("channel", REMINDER_CHANNELS),
            _in_set("tone", REMINDER_TONES),
            _in_set("response", REMINDER_RESPONSES),
        ]
    if entity == "company_events":
        return [
            _registry(),
            *(
                _critical(gxe.ExpectColumnValuesToNotBeNull, f"{col} is not null", column=col)
                for col in ("company_id", "event_type", "published_date", "publisher")
            ),
            _in_set("event_type", EVENT_TYPES),
            _warning(
                gxe.ExpectColumnValuesToMatchRegex,
                "a FR-SIREN company_id is 9 digits",
                column="company_id",
                regex=r"^\d{9}$",
                row_condition=Column("registry") == "FR-SIREN",
            ),
            _warning(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                "published_date is on or after event_date (a notice follows its judgment)",
                column_A="published_date",
                column_B="event_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ]
    if entity == "company_profiles":
        return [
            _registry(),
            *(
                _critical(gxe.ExpectColumnValuesToNotBeNull, f"{col} is not null", column=col)
                for col in ("company_id", "observed_date", "publisher")
            ),
            _in_set("headcount_band", HEADCOUNT_BANDS),
        ]
    if entity == "call_outcomes":
        return [
            *(
                _warning(gxe.ExpectColumnValuesToNotBeNull, f"{col} is not null", column=col)
                for col in ("customer_id", "called_at", "outcome")
            ),
            _in_set("outcome", CALL_OUTCOMES),
            _warning(
                gxe.ExpectColumnValuesToNotBeNull,
                "a promise has a promised_date",
                column="promised_date",
                row_condition=Column("outcome") == "promise",
            ),
            _positive("promised_amount"),
        ]
    if entity == "message_events":
        return [
            *(
                _warning(gxe.ExpectColumnValuesToNotBeNull, f"{col} is not null", column=col)
                for col in ("event", "channel", "occurred_at")
            ),
            _in_set("event", MESSAGE_EVENTS),
            _in_set("channel", MESSAGE_CHANNELS),
            _in_set("provider", MESSAGE_PROVIDERS),
        ]
    return []


def build_suite(entity: str) -> gx.ExpectationSuite:
    """The expectation suite of one raw entity (not yet attached to a GX context)."""
    if entity not in SUITE_ENTITIES:
        raise KeyError(f"unknown raw entity {entity!r}; known: {', '.join(SUITE_ENTITIES)}")
    return gx.ExpectationSuite(
        name=suite_name(entity),
        expectations=[*_common(entity), *_specific(entity)],
        meta={"entity": entity, "natural_key": list(NATURAL_KEYS[entity])},
    )


def build_suites() -> dict[str, gx.ExpectationSuite]:
    """Every raw entity's suite, keyed by entity name."""
    return {name: build_suite(name) for name in SUITE_ENTITIES}


def severity_of(config: Any) -> Severity:
    """Severity of an expectation configuration: ``meta['severity']``, else GX's own field, else critical."""
    meta = getattr(config, "meta", None) or {}
    if meta.get("severity") in (CRITICAL, WARNING):
        return meta["severity"]
    sev = getattr(config, "severity", None)
    value = getattr(sev, "value", sev)
    return WARNING if value in (WARNING, "info") else CRITICAL
