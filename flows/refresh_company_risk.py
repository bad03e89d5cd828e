"""External company-risk data for every B2B debtor: fetch what is new, load it, validate it, never fail the day.

Runs inside the daily pipeline (after the receivables gate, before dbt, so today's notices are in today's features
and stops) and alone (``relance run risk``; the hourly risk watch of issue 14). ``Settings.risk_mode``:

* ``files`` (the default; the demo): every notice file in ``<landing_dir>/risk`` (BODACC v2.1 / v1 / JSON Lines,
  Recherche d'entreprises, Companies House payloads) is loaded; a file loaded before is an unchanged batch;
* ``live``: each provider of ``Settings.risk_providers`` is asked about the debtors it covers, from each
  company's watermark (``ops.risk_checks``), through the HTTP clients of ``relance.risk`` (retries, rate limits,
  an on-disk cache with a TTL under ``<data_dir>/risk_cache``);
* ``off``: nothing.

A provider that is down, over quota or answers garbage, a file that is not a notice file, or a batch that fails its
data contract: the error is recorded (``ops.risk_checks``, the artifact, the report), the companies concerned keep
their last known data and watermark, and the run goes on. Risk batches never block the receivables gate
(``relance.ops.RISK_DATA_ENTITIES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from expectations.runner import validate_batches
from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance import ops
from relance.risk.load import debtors, load_notice_file, load_rows, notice_files, previous_profiles
from relance.risk.providers import RiskProvider, build_providers
from relance.settings import Settings
from relance.warehouse import connection, ensure_schemas


@dataclass
class RiskRefresh:
    """What one refresh did, per source, and which sources are stale now."""

    mode: str
    companies: int = 0
    events_read: int = 0
    profiles_read: int = 0
    batches: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # source -> what went wrong (this run)
    stale: dict[str, str] = field(default_factory=dict)  # source -> since when it has no good answer

    def as_markdown(self) -> str:
        lines = [
            f"**Company-risk data** ({self.mode}): {self.companies} debtor(s) with a SIREN or company number, "
            f"{self.events_read} event(s) and {self.profiles_read} profile(s) read, {len(self.batches)} batch(es) "
            "loaded.",
            "",
        ]
        if self.errors:
            lines += ["**Errors** (the run went on with the last known data):", ""]
            lines += [f"- `{source}`: {error}" for source, error in sorted(self.errors.items())]
            lines.append("")
        if self.stale:
            lines += ["**Stale sources**:", ""]
            lines += [f"- `{source}`: {since}" for source, since in sorted(self.stale.items())]
        return "\n".join(lines)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _validate(con, settings: Settings, flow_run_id: str | None) -> list[str]:
    """Validate every risk batch not validated yet (this run's, and any a crash left pending); the critical
    failures' messages. A failed batch is excluded from the current state and never blocks the run."""
    pending = ops.pending_batch_ids(con, risk_data=True)
    if not pending:
        return []
    summary = validate_batches(con, pending, gx_dir=settings.gx_dir, flow_run_id=flow_run_id, data_docs=False)
    return summary.critical_failures


@dataclass(frozen=True)
class NoticeImport:
    """One notice file imported: what it held, what loaded, what the data contract said (or why it could not)."""

    path: Path
    events: int = 0
    profiles: int = 0
    batches: tuple[str, ...] = ()
    rows_loaded: int = 0
    rows_unchanged: int = 0
    contract_failures: tuple[str, ...] = ()
    error: str | None = None


def import_notice_files(con, paths: list[Path], *, gx_dir: Path, flow_run_id: str | None) -> list[NoticeImport]:
    """Load notice files (``relance risk import``, and the files mode of the flow) and validate what they loaded.

    A file that cannot be read is reported with its error and loads nothing; the others load. A batch that fails
    its contract is excluded (its rows never reach the current state) and reported; nothing raises.
    """
    ensure_schemas(con)
    out: list[NoticeImport] = []
    for path in paths:
        try:
            report, n_events, n_profiles = load_notice_file(con, path, flow_run_id=flow_run_id)
        except ValueError as exc:  # not a notice file, not UTF-8, not JSON
            out.append(NoticeImport(path, error=str(exc)))
            continue
        batches = tuple(report.loaded_batch_ids) if report is not None else ()
        summary = (
            validate_batches(con, list(batches), gx_dir=gx_dir, flow_run_id=flow_run_id, data_docs=False)
            if batches
            else None
        )
        out.append(
            NoticeImport(
                path,
                events=n_events,
                profiles=n_profiles,
                batches=batches,
                rows_loaded=report.rows_loaded if report is not None else 0,
                rows_unchanged=sum(b.rows_unchanged for b in report.batches) if report is not None else 0,
                contract_failures=tuple(summary.critical_failures) if summary is not None else (),
            )
        )
    return out


def refresh_files(settings: Settings, flow_run_id: str | None) -> RiskRefresh:
    """The files mode: load every notice file of ``<landing_dir>/risk`` (see the module docstring)."""
    result = RiskRefresh(mode="files")
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
        result.companies = len(debtors(con))
        leftovers = _validate(con, settings, flow_run_id)  # batches a crash left pending
        imports = import_notice_files(
            con, notice_files(settings.landing / "risk"), gx_dir=settings.gx_dir, flow_run_id=flow_run_id
        )
        checks = []
        for item in imports:
            result.events_read += item.events
            result.profiles_read += item.profiles
            result.batches += list(item.batches)
            problem = item.error or ("; ".join(item.contract_failures) if item.contract_failures else None)
            if problem:
                result.errors[f"files:{item.path.name}"] = problem
            checks.append((ops.WHOLE_SOURCE, item.path.name, problem[:500] if problem else None, None))
        for failure in leftovers:
            result.errors[f"contract:{len(result.errors)}"] = failure
        ops.record_risk_checks(con, "files", checks, at=_utcnow())
    return result


def refresh_provider(settings: Settings, provider: RiskProvider, as_of: date, flow_run_id: str | None) -> RiskRefresh:
    """The live mode for one provider: ask about its debtors from their watermarks, load, validate, record."""
    result = RiskRefresh(mode="live")
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
        companies = [c for c in debtors(con) if c.registry in provider.registries]
        state = {(c.registry, c.company_id): c for c in ops.risk_checks(con, provider.name)}
        watermarks = {
            c: state[(c.registry, c.company_id)].watermark_date
            for c in companies
            if (c.registry, c.company_id) in state
        }
        previous = previous_profiles(con, provider.name)
    result.companies = len(companies)
    try:
        fetched = provider.fetch(companies, watermarks=watermarks, previous=previous, today=as_of)
    except Exception as exc:  # a provider's bug or outage never fails the daily run
        result.errors[provider.name] = f"{type(exc).__name__}: {exc}"
        with connection(settings.warehouse) as con:
            ops.record_risk_checks(
                con, provider.name, [(c.registry, c.company_id, str(exc)[:500], None) for c in companies], at=_utcnow()
            )
        return result
    result.events_read += len(fetched.events)
    result.profiles_read += len(fetched.profiles)
    with connection(settings.warehouse) as con:
        report = load_rows(
            con,
            fetched.events,
            fetched.profiles,
            source_name=f"risk:{provider.name}",
            source_file=f"{provider.name}:{as_of.isoformat()}",
            flow_run_id=flow_run_id,
        )
        batch_ids = report.loaded_batch_ids if report is not None else []
        result.batches += batch_ids
        failures = _validate(con, settings, flow_run_id)
        if failures:  # the answer is excluded: nobody's watermark moves
            result.errors[provider.name] = "data contract failed: " + "; ".join(failures)[:500]
            checks = [(c.registry, c.company_id, "data contract failed", None) for c in fetched.checks]
        else:
            checks = [(c.registry, c.company_id, e, as_of if e is None else None) for c, e in fetched.checks.items()]
        if fetched.errors:
            first = next(iter(fetched.errors.values()))
            result.errors.setdefault(provider.name, f"{len(fetched.errors)} company(ies) not checked, e.g. {first}")
        ops.record_risk_checks(con, provider.name, checks, at=_utcnow())
    return result


def stale_sources(settings: Settings, now: datetime) -> dict[str, str]:
    """Sources whose last good answer is older than ``risk_stale_after_hours`` (or that never answered)."""
    limit = now - timedelta(hours=settings.risk_stale_after_hours)
    stale: dict[str, str] = {}
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
        for check in ops.risk_checks(con):
            if check.last_success_at is None or check.last_success_at < limit:
                since = (
                    f"last good answer {check.last_success_at:%Y-%m-%d %H:%M} UTC"
                    if check.last_success_at
                    else ("never answered")
                )
                stale.setdefault(check.publisher, f"{since}: {check.last_error or 'no recent check'}")
    return stale


def refresh(settings: Settings, as_of_date: date, flow_run_id: str | None) -> RiskRefresh:
    """Everything the flow does, without Prefect (tests and the flow call this)."""
    result = RiskRefresh(mode=settings.risk_mode)
    parts: list[RiskRefresh] = []
    if settings.risk_mode == "files":
        parts.append(refresh_files(settings, flow_run_id))
    elif settings.risk_mode == "live":
        for provider in build_providers(settings, settings.data / "risk_cache"):
            parts.append(refresh_provider(settings, provider, as_of_date, flow_run_id))
    for part in parts:
        result.companies = max(result.companies, part.companies)
        result.events_read += part.events_read
        result.profiles_read += part.profiles_read
        result.batches += part.batches
        result.errors |= part.errors
    if settings.risk_mode != "off":
        result.stale = stale_sources(settings, _utcnow())
    return result


@flow(name="refresh-company-risk")
def refresh_company_risk(settings: Settings, as_of_date: date) -> RiskRefresh:
    """Fetch and load the company-risk data of the day; never raises for a source's failure (see the module)."""
    logger = get_run_logger()
    with flow_lineage(
        settings, "refresh-company-risk", as_of_date=as_of_date, inputs=lineage_inputs(settings)
    ) as lineage:
        result = refresh(settings, as_of_date, current_flow_run_id())
        record_lineage(lineage, settings, result)
    for source, error in result.errors.items():
        logger.warning("risk data: %s: %s", source, error)
    logger.info(
        "risk data (%s): %d debtors, %d events, %d profiles read, %d batches loaded, %d stale source(s)",
        result.mode,
        result.companies,
        result.events_read,
        result.profiles_read,
        len(result.batches),
        len(result.stale),
    )
    create_markdown_artifact(key="company-risk-data", markdown=result.as_markdown())
    return result


def _provider_urls(settings: Settings) -> dict[str, str]:
    """Where each built-in provider's answers come from (the namespace of its datasets)."""
    return {
        "bodacc": settings.bodacc_url,
        "recherche_entreprises": settings.recherche_entreprises_url,
        "companies_house": settings.companies_house_url,
    }


def lineage_inputs(settings: Settings) -> list[ol.OutputDataset]:
    """What a refresh reads: the notice files waiting (files mode) or each provider's API (live mode)."""
    if settings.risk_mode == "files":
        return [ol.file_dataset(p) for p in notice_files(settings.landing / "risk")]
    if settings.risk_mode == "live":
        urls = _provider_urls(settings)
        return [
            ol.http_dataset(urls[name], name) if name in urls else ol.source_dataset(name)
            for name in settings.risk_providers
        ]
    return []


def record_lineage(lineage: ol.LineageRun, settings: Settings, result: RiskRefresh) -> None:
    """The raw tables the refresh appended to (with each file's sha256 on its input), the batch ledger, the
    checks and the validation record; the batch ids."""
    with connection(settings.warehouse) as con:
        batches = ops.batch_records(con, result.batches) if result.batches else []
    for b in batches:
        if Path(b.source_file).is_absolute():  # files mode: the notice file, now with its hash
            lineage.add_inputs(ol.file_dataset(b.source_file, sha256=b.file_hash.split(":", 1)[0]))
        lineage.add_outputs(ol.table(settings, f"raw.{b.entity}", rows=b.rows_loaded))
    if settings.risk_mode != "off":
        lineage.add_outputs(ol.table(settings, "ops.risk_checks"))
    if batches:
        lineage.add_outputs(ol.table(settings, "ops.ingest_batches"), ol.table(settings, "ops.validation_runs"))
    lineage.set_ids(raw_batch_ids=[b.batch_id for b in batches])
    lineage.count(
        events_read=result.events_read,
        profiles_read=result.profiles_read,
        batches_loaded=len(batches),
        errors=len(result.errors),
        stale_sources=len(result.stale),
    )
