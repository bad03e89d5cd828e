"""Great Expectations (GX Core 1.x) suites for the raw entities, as code.

One :class:`great_expectations.ExpectationSuite` per raw entity (``raw_<entity>``). Every expectation
carries its severity twice: GX's own ``severity`` field (``FailureSeverity``, present in GX 1.24.1; it is
written to the suite JSON) and ``meta={"severity": ..., "rule": ...}`` where ``rule`` is the human-readable
sentence used as the quarantine reason.

* ``critical``: the batch cannot be trusted at all (missing columns, null or duplicated natural keys, null
  amounts or dates, unknown customer, empty batch). The flow stops; nothing downstream runs.
* ``warning``: a row-level business rule. Failing rows are written to ``ops.quarantine`` with the reason and
  the batch still passes.

Rules GX cannot express on one pandas frame are turned into *derived columns* that the runner adds to the
frame before validation, and a plain expectation checks the derived column:

* ``_siren_is_valid`` (customers): ``stdnum.fr.siren.is_valid`` (9 digits + Luhn), computed in Python by
  :func:`prepare_frame`; null when ``siren`` is null so B2C customers pass. Chosen over a custom GX
  Expectation class because it needs no metric registration and reads plainly in data docs.
* ``_customer_exists`` (invoices): referential integrity ``invoices.customer_id -> customers``. GX has no
  cross-table expectation for pandas assets, so the runner computes it in DuckDB against every customer
  ever loaded (:data:`SQL_DERIVED_COLUMNS`) and the suite expects it to be ``True``.

The runner also adds ``_row_number`` (1-based position of the row within its batch, in load order), used
with the natural key as ``unexpected_index_column_names`` so every failing row is identified even when keys
are duplicated.
"""

from __future__ import annotations

from typing import Any, Literal

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column
from stdnum.fr import siren as stdnum_siren

from relance.raw_schema import ENTITIES, NATURAL_KEYS, RAW_SCHEMA

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
PAYMENT_METHODS = ("transfer", "direct_debit", "cheque", "card")
REMINDER_CHANNELS = ("email", "sms", "letter", "call")
REMINDER_TONES = ("preventive", "cordial", "firm")
REMINDER_RESPONSES = ("none", "promise_to_pay", "dispute", "paid")

# Derived boolean columns computed in DuckDB by the runner (entity -> column -> SQL expression over the
# batch's raw row). Expressions may reference the raw schema.
SQL_DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "invoices": {
        "_customer_exists": (
            f"coalesce(customer_id IN (SELECT customer_id FROM {RAW_SCHEMA}.customers "
            "WHERE customer_id IS NOT NULL), false)"
        ),
    },
}
# Derived columns computed in Python by prepare_frame (entity -> column -> source column).
PY_DERIVED_COLUMNS: dict[str, dict[str, str]] = {"customers": {"_siren_is_valid": "siren"}}


def suite_name(entity: str) -> str:
    """GX suite (and validation definition / checkpoint) name of a raw entity."""
    return f"{SUITE_PREFIX}{entity}"


def derived_source_column(entity: str, column: str) -> str | None:
    """Business column a derived column was computed from (for readable quarantine reasons)."""
    if column in PY_DERIVED_COLUMNS.get(entity, {}):
        return PY_DERIVED_COLUMNS[entity][column]
    if column == "_customer_exists":
        return "customer_id"
    return None


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
            column_set=list(ENTITIES[entity]),
            exact_match=False,
        ),
        _critical(gxe.ExpectTableRowCountToBeBetween, "the batch is not empty", min_value=1),
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
            _critical(
                gxe.ExpectColumnValuesToBeInSet,
                "customer_id refers to a loaded customer",
                column="_customer_exists",
                value_set=[True],
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
    return []


def build_suite(entity: str) -> gx.ExpectationSuite:
    """The expectation suite of one raw entity (not yet attached to a GX context)."""
    if entity not in ENTITIES:
        raise KeyError(f"unknown raw entity {entity!r}; known: {', '.join(ENTITIES)}")
    return gx.ExpectationSuite(
        name=suite_name(entity),
        expectations=[*_common(entity), *_specific(entity)],
        meta={"entity": entity, "natural_key": list(NATURAL_KEYS[entity])},
    )


def build_suites() -> dict[str, gx.ExpectationSuite]:
    """Every raw entity's suite, keyed by entity name."""
    return {name: build_suite(name) for name in ENTITIES}


def severity_of(config: Any) -> Severity:
    """Severity of an expectation configuration: ``meta['severity']``, else GX's own field, else critical."""
    meta = getattr(config, "meta", None) or {}
    if meta.get("severity") in (CRITICAL, WARNING):
        return meta["severity"]
    sev = getattr(config, "severity", None)
    value = getattr(sev, "value", sev)
    return WARNING if value in (WARNING, "info") else CRITICAL
