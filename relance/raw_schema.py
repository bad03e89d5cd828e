"""The canonical raw model: what every source (demo export, ledger file, FEC, ERP) is loaded into.

One table per entity in the DuckDB schema ``raw``. Raw tables are append-only: each row also carries the load
metadata columns of :data:`LOAD_METADATA` and the version columns of :data:`VERSION_METADATA`. dbt reads them
through ``source('raw', <entity>)`` and nothing else.

A natural key's rows are its versions; the *current* version is the latest one, by ``_loaded_at`` then
``_load_seq`` (which orders the versions of one load: extracts in load order, rows in source order), among the rows
of batches whose ``ops.ingest_batches.validation_state`` is not ``failed``, ``superseded`` or ``quarantined``. A
current version with ``_deleted`` is a tombstone: the source no longer holds the key (``relance.ingest`` writes
them for full-snapshot sources) and staging drops it. The loader (``relance.ingest``) and the staging macro
(``dbt_project/macros/staging.sql``) apply this same rule.

Money is DECIMAL(18,2) with an explicit ISO 4217 currency. Credit notes are rows of ``invoices`` with
``document_type = 'credit_note'``, a negative amount and ``credited_invoice_id`` set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

RAW_SCHEMA = "raw"

# How a payment was made: the values of payments.payment_method (null when the source does not say).
PAYMENT_METHODS: tuple[str, ...] = ("transfer", "direct_debit", "cheque", "card")

# Column name -> DuckDB type, in file order. Keys are the natural keys of each entity.
ENTITIES: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "VARCHAR",
        "customer_name": "VARCHAR",
        "customer_type": "VARCHAR",  # 'B2B' | 'B2C'
        "siren": "VARCHAR",  # 9 digits, Luhn-valid; null for B2C and foreign companies
        "company_number": "VARCHAR",  # UK Companies House number (8 characters); null otherwise
        "naf_code": "VARCHAR",  # e.g. '41.20A'; null for B2C
        "sector_section": "VARCHAR",  # NAF section letter, 'F' = construction; null for B2C
        "size_band": "VARCHAR",  # 'micro' | 'small' | 'medium' | 'large'; null for B2C
        "region": "VARCHAR",
        # the postal address a letter is sent to (billing address); null when the source has none
        "address_line1": "VARCHAR",  # number and street ('12 rue des Lilas', '4 Station Road')
        "address_line2": "VARCHAR",  # building, industrial estate, PO box ('ZA des Portes', 'Unit 4'); often null
        "postal_code": "VARCHAR",  # as written in the country ('75011', 'LS1 4AB'): text, leading zeros kept
        "city": "VARCHAR",
        "country_code": "VARCHAR",  # ISO 3166-1 alpha-2
        "language": "VARCHAR",  # ISO 639-1 the customer corresponds in ('fr', 'en'); null: from its country
        "email": "VARCHAR",
        "phone": "VARCHAR",  # E.164
        "credit_limit": "DECIMAL(18,2)",
        "currency": "VARCHAR",
        "payment_terms_days": "INTEGER",  # 30 | 45 | 60
        "is_end_of_month_terms": "BOOLEAN",  # '45 jours fin de mois'
        "created_date": "DATE",
    },
    "invoices": {
        "invoice_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "document_type": "VARCHAR",  # 'invoice' | 'credit_note'
        "credited_invoice_id": "VARCHAR",  # credit notes only
        "issue_date": "DATE",
        "due_date": "DATE",
        "amount": "DECIMAL(18,2)",  # tax included; negative for credit notes
        "currency": "VARCHAR",
        "payment_terms_days": "INTEGER",
        "is_end_of_month_terms": "BOOLEAN",
    },
    "payments": {
        "payment_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "payment_date": "DATE",  # value date: the day the money is known to have arrived
        "amount": "DECIMAL(18,2)",
        "currency": "VARCHAR",
        "payment_method": "VARCHAR",  # one of PAYMENT_METHODS
    },
    "payment_allocations": {
        "payment_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "allocated_amount": "DECIMAL(18,2)",
    },
    "disputes": {
        "dispute_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "opened_date": "DATE",
        "resolved_date": "DATE",  # null while open
        "reason": "VARCHAR",
    },
    "reminders": {
        "reminder_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "sent_at": "TIMESTAMP",  # UTC
        "channel": "VARCHAR",  # 'email' | 'sms' | 'letter' | 'call'
        "tone": "VARCHAR",  # 'preventive' | 'cordial' | 'firm'
        "response": "VARCHAR",  # 'none' | 'promise_to_pay' | 'dispute' | 'paid'
        "responded_at": "TIMESTAMP",  # null when response = 'none'
        "promised_date": "DATE",  # promise_to_pay only
    },
}

# Columns added after sources were first configured, that a source may leave out: an ERP query or a profile
# written before them keeps working, and the column is NULL (customers.company_number: only UK companies have one;
# the postal address: a source without it still loads, and its letters say the address is missing).
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("company_number", "address_line1", "address_line2", "postal_code", "city", "language")
}

# External company-risk events (BODACC, Companies House, Recherche d'entreprises), one row per published event.
# Not a receivables source: the risk-data flows fill it (until then it is empty and every risk feature is
# null-safe). The as-of date of an event is when it became public (published_date), never the judgment date:
# BODACC publishes a judgment 5-20 days after it is handed down, and a feature may not know it earlier.
RISK_ENTITIES: dict[str, dict[str, str]] = {
    # one normalised event (relance.risk.events: the vocabulary and what each type means)
    "company_events": {
        "event_id": "VARCHAR",  # the publisher's id (BODACC record id, Companies House case/transaction id, ...)
        "registry": "VARCHAR",  # 'FR-SIREN' | 'GB-CRN': what company_id is
        "company_id": "VARCHAR",  # SIREN (9 digits) or Companies House number
        "event_type": "VARCHAR",  # relance.risk.events.EVENT_TYPES ('procedure_opened', 'director_change', ...)
        "event_subtype": "VARCHAR",  # e.g. the procedure ('liquidation'), the closure kind; null when none
        "event_date": "DATE",  # judgment / effective date, as published
        "published_date": "DATE",  # the day the event became public: features know it from this date on
        "publisher": "VARCHAR",  # 'bodacc' | 'companies_house' | 'recherche_entreprises' | a configured provider
        "detail": "VARCHAR",  # publisher's label, e.g. 'Jugement d'ouverture de liquidation judiciaire'
        "is_confidential": "BOOLEAN",  # accounts_filed: filed with a confidentiality declaration; else null
        "court": "VARCHAR",  # the court (tribunal / greffe) for judgments: where a claim is declared
        "source_url": "VARCHAR",  # permalink of the notice, when the publisher has one
    },
    # what a registry says about a company on the day relance looked (Recherche d'entreprises, Companies House
    # profile): the as-of features read the last snapshot observed on or before their date
    "company_profiles": {
        "profile_id": "VARCHAR",  # '<publisher>:<registry>:<company_id>:<observed_date>'
        "registry": "VARCHAR",
        "company_id": "VARCHAR",
        "publisher": "VARCHAR",
        "observed_date": "DATE",  # the day relance fetched it
        "company_name": "VARCHAR",
        "status": "VARCHAR",  # 'active' | 'closed' | the registry's own status word ('liquidation', ...)
        "closure_date": "DATE",
        "naf_code": "VARCHAR",  # NAF rev. 2 ('70.10Z') or UK SIC code
        "headcount_band": "VARCHAR",  # INSEE tranche_effectif_salarie code ('NN', '00', '01', ... '53')
        "head_office_id": "VARCHAR",  # SIRET of the head office / UK registered office postcode
        "directors": "VARCHAR",  # JSON list of the directors' names and roles, sorted: diffed between snapshots
        "accounts_year": "INTEGER",  # last financial year with published accounts
        "revenue": "DECIMAL(18,2)",
        "net_income": "DECIMAL(18,2)",
        "accounts_next_due": "DATE",
        "is_accounts_overdue": "BOOLEAN",
    },
}

# What debtors did in answer to relance's own contacts, fed back by people and providers (not a receivables
# source: a bad batch of theirs never blocks the day's receivables gate, see ``relance.ops.CONTACT_DATA_ENTITIES``).
CONTACT_ENTITIES: dict[str, dict[str, str]] = {
    # a collector's call, from ``relance calls import FILE`` or a CSV dropped in ``<landing>/calls``
    "call_outcomes": {
        "call_id": "VARCHAR",  # the file's id for the call, or sha256(customer_id, called_at) when it has none
        "reminder_key": "VARCHAR",  # the call task on the call list (null for a call made outside it)
        "customer_id": "VARCHAR",
        "called_at": "TIMESTAMP",  # UTC
        # relance.reminders.calls.CALL_OUTCOMES: 'reached' | 'voicemail' | 'no_answer' | 'promise' | 'dispute'
        # | 'wrong_contact' | 'paid' | 'do_not_contact'
        "outcome": "VARCHAR",
        "promised_date": "DATE",  # 'promise' only
        "promised_amount": "DECIMAL(18,2)",  # 'promise' only; null: the whole balance
        "collector": "VARCHAR",
        "note": "VARCHAR",
    },
    # what a provider reported about a message (SendGrid Event Webhook, Twilio status callback)
    "message_events": {
        "event_id": "VARCHAR",  # sg_event_id, or '<MessageSid>:<status>' for Twilio
        "reminder_key": "VARCHAR",  # the custom arg relance sets on every message
        "customer_id": "VARCHAR",
        "provider": "VARCHAR",  # 'sendgrid' | 'twilio'
        "channel": "VARCHAR",  # 'email' | 'sms'
        # 'processed' | 'queued' | 'sent' | 'delivered' | 'open' | 'click' | 'bounce' | 'dropped' | 'deferred'
        # | 'spamreport' | 'unsubscribe' | 'group_unsubscribe' | 'failed' | 'undelivered' | 'stop' (an SMS opt-out)
        "event": "VARCHAR",
        "occurred_at": "TIMESTAMP",  # UTC
        "reason": "VARCHAR",  # the provider's reason for a bounce or failure
    },
}

NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "call_outcomes": ("call_id",),
    "message_events": ("event_id",),
    "company_events": ("event_id",),
    "company_profiles": ("profile_id",),
    "customers": ("customer_id",),
    "invoices": ("invoice_id",),
    "payments": ("payment_id",),
    "payment_allocations": ("payment_id", "invoice_id"),
    "disputes": ("dispute_id",),
    "reminders": ("reminder_id",),
}

# Appended by the loader to every raw row.
LOAD_METADATA: dict[str, str] = {
    "_batch_id": "VARCHAR",
    "_source_file": "VARCHAR",
    "_file_hash": "VARCHAR",
    "_row_hash": "VARCHAR",
    "_loaded_at": "TIMESTAMP",
    "_flow_run_id": "VARCHAR",
}

# Appended by the loader too: a row's place in its key's history (see the module docstring). Added to raw tables
# created before them by :func:`ensure_version_columns`.
VERSION_METADATA: dict[str, str] = {
    "_load_seq": "BIGINT",  # per table, increasing in load order: later load, later extract, later source row
    "_deleted": "BOOLEAN",  # true: a tombstone (the key left its full-snapshot source); null counts as false
    # the row's number in its source (file line, query position), as load rejects name it; null for tombstones
    # and rows loaded before it was kept
    "_source_row": "BIGINT",
}

# Columns whose leading and trailing whitespace the loader trims (natural keys and the ids that refer to them):
# 'INV-1 ' and 'INV-1' are one invoice.
ID_COLUMN_SUFFIX = "_id"


@dataclass(frozen=True)
class Entity:
    name: str
    columns: dict[str, str]
    key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    @property
    def id_columns(self) -> tuple[str, ...]:
        """The natural key and every ``*_id`` column: the columns the loader trims of surrounding whitespace."""
        return tuple(c for c in self.columns if c in self.key or c.endswith(ID_COLUMN_SUFFIX))

    def ddl(self) -> str:
        cols = {**self.columns, **LOAD_METADATA, **VERSION_METADATA}
        body = ",\n  ".join(f"{c} {t}" for c, t in cols.items())
        return f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  {body}\n)"


def entity(name: str) -> Entity:
    columns = ENTITIES.get(name) or RISK_ENTITIES.get(name) or CONTACT_ENTITIES.get(name)
    if columns is None:
        known = ", ".join([*ENTITIES, *RISK_ENTITIES, *CONTACT_ENTITIES])
        raise KeyError(f"unknown raw entity {name!r}; known: {known}")
    return Entity(name, columns, NATURAL_KEYS[name])


def all_entities() -> list[Entity]:
    """The receivables entities every source adapter maps to (not the risk events)."""
    return [entity(n) for n in ENTITIES]


def risk_entities() -> list[Entity]:
    """The external risk tables (filled by the risk-data flows, read by the as-of risk features)."""
    return [entity(n) for n in RISK_ENTITIES]


def contact_entities() -> list[Entity]:
    """What debtors answered: call outcomes and provider events (read by the contact-state and reaction models)."""
    return [entity(n) for n in CONTACT_ENTITIES]


def ensure_version_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Add :data:`VERSION_METADATA` to raw tables created before it, once, in the caller's transaction.

    Rows already there get ``_deleted = false`` and a ``_load_seq`` in the order they were loaded (``_loaded_at``,
    then insertion order), so the versions of one old load keep the order they were appended in; their
    ``_source_row`` stays null (validation then numbers them by position, as before).
    """
    present = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?", [RAW_SCHEMA]
        ).fetchall()
    )
    for ent in [*all_entities(), *risk_entities(), *contact_entities()]:
        if not any(t == ent.name for t, _ in present):
            continue
        if (ent.name, "_load_seq") not in present:
            con.execute(f"ALTER TABLE {ent.qualified} ADD COLUMN _load_seq BIGINT")
            con.execute(
                f"UPDATE {ent.qualified} AS t SET _load_seq = o.seq FROM (SELECT rowid AS rid, "
                f"row_number() OVER (ORDER BY _loaded_at NULLS FIRST, rowid) AS seq FROM {ent.qualified}) AS o "
                "WHERE t.rowid = o.rid"
            )
        if (ent.name, "_deleted") not in present:
            con.execute(f"ALTER TABLE {ent.qualified} ADD COLUMN _deleted BOOLEAN")
            con.execute(f"UPDATE {ent.qualified} SET _deleted = false")
        if (ent.name, "_source_row") not in present:
            con.execute(f"ALTER TABLE {ent.qualified} ADD COLUMN _source_row BIGINT")
    # business columns added since (customers.company_number, the risk tables' event_subtype, court, ...): a
    # warehouse of an earlier version gets them, null on its rows; the loader inserts by column name. A row loaded
    # again after that hashes differently (its new column is part of the hash) and is appended once as a version.
    for ent in [*all_entities(), *risk_entities(), *contact_entities()]:
        if not any(t == ent.name for t, _ in present):
            continue
        for column, typ in ent.columns.items():
            if (ent.name, column) not in present:
                con.execute(f"ALTER TABLE {ent.qualified} ADD COLUMN {column} {typ}")
