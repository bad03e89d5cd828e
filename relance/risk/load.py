"""Risk rows into the warehouse through the shared loader, and what the risk flow needs to read first.

Events and profiles become :class:`~relance.sources.base.EntityExtract` objects and go through
:func:`relance.ingest.load_extracts`, exactly like a receivables file: typed, row-hashed (a notice seen again is
``unchanged``, not a duplicate), versioned, with batch lineage, then validated by the GX suites of
``expectations/suites.py`` (the flow runs them). A notice file keeps its own name and sha256 as its batch's
source; a live answer is identified by the publisher, the day and the sha256 of its rows, so the same answer
loaded twice is one batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from relance import ops
from relance.ingest import ExtractLoadReport, current_versions_sql, load_extracts
from relance.raw_schema import RISK_ENTITIES, entity
from relance.risk.events import REGISTRY_FR, REGISTRY_GB, CompanyProfile, RiskEvent
from relance.risk.providers import Company
from relance.sources.base import EntityExtract, file_sha256

log = logging.getLogger(__name__)

#: Files the offline mode reads from ``<landing_dir>/risk`` (and ``relance risk import`` accepts).
NOTICE_FILE_SUFFIXES: tuple[str, ...] = (".json", ".jsonl")


def debtors(con: duckdb.DuckDBPyConnection) -> list[Company]:
    """Every B2B customer a registry can be asked about, from the current customer rows (the loader's own rule of
    what is current: the risk flow runs before dbt builds anything). A SIREN must be 9 digits; a UK company number
    8 characters."""
    sql = current_versions_sql(entity("customers"))
    rows = con.execute(
        f"""SELECT DISTINCT siren, company_number FROM ({sql}) AS c
            WHERE upper(trim(customer_type)) = 'B2B' AND NOT coalesce(_deleted, false)""",
        [list(ops.EXCLUDED_STATES)],
    ).fetchall()
    companies: set[Company] = set()
    for siren, number in rows:
        if siren and len(str(siren).strip()) == 9 and str(siren).strip().isdigit():
            companies.add(Company(REGISTRY_FR, str(siren).strip()))
        if number and len(str(number).strip()) == 8:
            companies.add(Company(REGISTRY_GB, str(number).strip().upper()))
    return sorted(companies)


def previous_profiles(con: duckdb.DuckDBPyConnection, publisher: str) -> dict[Company, CompanyProfile]:
    """The latest profile this publisher gave of each company (current rows): what a new one is diffed against."""
    sql = current_versions_sql(entity("company_profiles"))
    columns = [c for c in RISK_ENTITIES["company_profiles"] if c != "profile_id"]
    rows = con.execute(
        f"""SELECT {", ".join(columns)} FROM ({sql}) AS p
            WHERE publisher = ? AND NOT coalesce(_deleted, false)
            QUALIFY row_number() OVER (PARTITION BY registry, company_id ORDER BY observed_date DESC) = 1""",
        [list(ops.EXCLUDED_STATES), publisher],
    ).fetchall()
    out: dict[Company, CompanyProfile] = {}
    for row in rows:
        profile = CompanyProfile(**dict(zip(columns, row, strict=True)))
        out[Company(profile.registry, profile.company_id)] = profile
    return out


def _table(name: str, rows: Sequence[dict]) -> pa.Table:
    columns = list(RISK_ENTITIES[name])
    return pa.table({c: pa.array([_text(r.get(c)) for r in rows], pa.string()) for c in columns})


def _text(value: object) -> str | None:
    """Raw values go to the loader as text (it casts them to the raw types and quarantines what does not cast)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def extracts(
    events: Iterable[RiskEvent],
    profiles: Iterable[CompanyProfile],
    *,
    source_file: str,
    file_hash: str | None = None,
) -> list[EntityExtract]:
    """One extract per non-empty entity. ``file_hash`` defaults to the sha256 of the rows themselves."""
    out: list[EntityExtract] = []
    for name, rows in (
        ("company_events", [e.as_row() for e in events]),
        ("company_profiles", [p.as_row() for p in profiles]),
    ):
        if not rows:
            continue
        digest = file_hash or hashlib.sha256(json.dumps(rows, default=str, sort_keys=True).encode()).hexdigest()
        out.append(
            EntityExtract(entity=name, table=_table(name, rows), source_file=source_file, file_hash=f"{digest}:{name}")
        )
    return out


def load_rows(
    con: duckdb.DuckDBPyConnection,
    events: Sequence[RiskEvent],
    profiles: Sequence[CompanyProfile],
    *,
    source_name: str,
    source_file: str,
    flow_run_id: str | None,
    file_hash: str | None = None,
) -> ExtractLoadReport | None:
    """Load events and profiles as one load of ``source_name``; None when there is nothing to load."""
    parts = extracts(events, profiles, source_file=source_file, file_hash=file_hash)
    if not parts:
        return None
    return load_extracts(con, parts, source_name=source_name, flow_run_id=flow_run_id)


def notice_files(directory: Path) -> list[Path]:
    """The notice files of the offline mode, by name (a sub-directory is not read)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in NOTICE_FILE_SUFFIXES)


def load_notice_file(
    con: duckdb.DuckDBPyConnection, path: Path, *, flow_run_id: str | None, observed_date: date | None = None
) -> tuple[ExtractLoadReport | None, int, int]:
    """Read one notice file (``relance.risk.files.read_notice_file``: BODACC v2.1 / v1 / JSON Lines, Recherche
    d'entreprises, Companies House) and load it under source ``risk:files``; returns (report, events, profiles).

    Raises:
        ValueError: the file is not one of the known shapes, not UTF-8, or not JSON (nothing is loaded).
    """
    from relance.risk.files import read_notice_file

    if observed_date is None:
        events, profiles = read_notice_file(path)
    else:
        events, profiles = read_notice_file(path, observed_date=observed_date)
    report = load_rows(
        con,
        events,
        profiles,
        source_name="risk:files",
        source_file=str(path),
        flow_run_id=flow_run_id,
        file_hash=file_sha256(path),
    )
    return report, len(events), len(profiles)
