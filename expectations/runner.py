"""Validate raw load batches with the GX suites, quarantine warning rows, record the run.

:func:`validate_batches` reads each batch's rows from ``raw.<entity>`` (``_batch_id`` = the batch) into pandas
(batches are bounded), adds the derived columns of :mod:`expectations.suites`, and runs one GX checkpoint per
entity in a *file* context rooted at ``gx_dir`` (suites, validation definitions and checkpoints are written
there from code on every run; data docs are rebuilt by ``UpdateDataDocsAction``).

* warning failures: every failing row goes to ``ops.quarantine`` (one row per row x expectation) and
  ``ops.ingest_batches.rows_flagged`` is set to the number of distinct quarantined rows of the batch (rows that
  were loaded into raw and are excluded downstream; ``rows_quarantined`` counts the rows rejected at load).
  Re-validating a batch replaces its quarantine rows, so nothing is duplicated.
* volume anomaly (batch-level warning, see :mod:`expectations.suites`): the batch's ``rows_read`` is compared
  with the median of the previous loads of the same (source, entity); an anomaly is a warning failure
  (``warning_failures``, ``ops.validation_runs.warning_failures``) and quarantines no row.
* critical failures: ``success`` is ``False`` and ``critical_failures`` lists entity, expectation and example
  values. The caller raises :class:`CriticalValidationError`
  (:meth:`ValidationSummary.raise_for_critical`) and runs nothing downstream.

Batches with nothing new to validate (status ``unchanged``, or a new file whose rows were all already in raw)
are skipped.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from expectations.suites import (
    ROW_NUMBER_COLUMN,
    SQL_DERIVED_COLUMNS,
    VOLUME_COLUMN,
    VOLUME_HISTORY,
    VOLUME_MAX_PARAM,
    VOLUME_MIN_HISTORY,
    VOLUME_MIN_PARAM,
    WARNING,
    VolumeBounds,
    build_suite,
    derived_source_column,
    prepare_frame,
    severity_of,
    suite_name,
    volume_bounds,
    volume_message,
)
from relance import ops
from relance.raw_schema import NATURAL_KEYS, entity
from relance.runs import StopRun
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

DATASOURCE_NAME = "relance_raw"
BATCH_DEFINITION_NAME = "whole_batch"
DATA_DOCS_INDEX = Path("uncommitted") / "data_docs" / "local_site" / "index.html"
_ROW_JSON = "_row_json"
_MAX_EXAMPLES = 5


class CriticalValidationError(StopRun):
    """A batch failed a critical expectation: nothing downstream may run.

    Built from a :class:`ValidationSummary` (the message lists every critical failure) or from a plain
    message; ``summary`` is ``None`` in the latter case.
    """

    def __init__(self, summary_or_message: ValidationSummary | str) -> None:
        if isinstance(summary_or_message, str):
            self.summary: ValidationSummary | None = None
            super().__init__(summary_or_message)
            return
        summary = summary_or_message
        self.summary = summary
        lines = "\n  - ".join(summary.critical_failures)
        docs = f"\nData docs: {summary.data_docs_index}" if summary.data_docs_index else ""
        super().__init__(
            f"validation {summary.validation_id} failed {len(summary.critical_failures)} critical "
            f"expectation(s):\n  - {lines}{docs}"
        )


@dataclass(frozen=True)
class ValidationSummary:
    """Outcome of one :func:`validate_batches` call."""

    success: bool
    critical_failures: list[str]
    warning_failures: list[str]
    quarantined_rows: int
    data_docs_index: Path | None
    validation_id: str
    batch_ids: list[str] = field(default_factory=list)

    def raise_for_critical(self) -> None:
        """Raise :class:`CriticalValidationError` if any critical expectation failed."""
        if not self.success:
            raise CriticalValidationError(self)


@dataclass
class _Outcome:
    critical: list[str] = field(default_factory=list)
    warning: list[str] = field(default_factory=list)  # row-level: their rows are in `quarantine`
    batch_warning: list[str] = field(default_factory=list)  # batch-level (volume): nothing quarantined
    quarantine: list[ops.QuarantineRow] = field(default_factory=list)


def _context(gx_dir: Path) -> Any:
    """A quiet GX file context rooted at ``gx_dir`` (``great_expectations.yml`` lives there)."""
    gx_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    current = ctx.variables.progress_bars
    if current is None or getattr(current, "globally", None) is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.variables.save()
    return ctx


def _checkpoint(ctx: Any, entity_name: str) -> Any:
    """(Re)register the suite, validation definition and checkpoint of an entity from code."""
    try:
        ds = ctx.data_sources.get(DATASOURCE_NAME)
    except (KeyError, ValueError):
        ds = ctx.data_sources.add_pandas(DATASOURCE_NAME)
    asset_names = {a.name for a in ds.assets}
    asset = ds.get_asset(entity_name) if entity_name in asset_names else ds.add_dataframe_asset(entity_name)
    bd_names = {b.name for b in asset.batch_definitions}
    bd = (
        asset.get_batch_definition(BATCH_DEFINITION_NAME)
        if BATCH_DEFINITION_NAME in bd_names
        else asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
    )
    name = suite_name(entity_name)
    suite = ctx.suites.add_or_update(build_suite(entity_name))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=bd, suite=suite))
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [*NATURAL_KEYS[entity_name], ROW_NUMBER_COLUMN],
            },
        )
    )


def _volume_parameters(info: ops.BatchRecord, history: list[int]) -> tuple[VolumeBounds | None, dict[str, Any]]:
    """Bounds of the batch's volume check and the suite parameters that carry them (``None``: not checked)."""
    bounds = volume_bounds(history)
    if bounds is None:
        log.info(
            "%s from %s (batch %s): %d previous load(s), volume anomaly check needs %d; not checked",
            info.entity,
            info.source_name or "an unnamed source",
            info.batch_id,
            len(history),
            VOLUME_MIN_HISTORY,
        )
        return None, {VOLUME_MIN_PARAM: None, VOLUME_MAX_PARAM: None}
    return bounds, {VOLUME_MIN_PARAM: bounds.min_value, VOLUME_MAX_PARAM: bounds.max_value}


def _read_batch(con: duckdb.DuckDBPyConnection, info: ops.BatchRecord) -> pd.DataFrame:
    """The batch's raw rows + ``_row_number``, SQL-derived columns and ``_row_json``."""
    ent = entity(info.entity)
    cols = ", ".join(f'"{c}"' for c in ent.columns)
    packed = ", ".join(f'"{c}" := "{c}"' for c in ent.columns)
    derived = "".join(f", {expr} AS {name}" for name, expr in SQL_DERIVED_COLUMNS.get(info.entity, {}).items())
    sql = (
        f"SELECT {cols}{derived}, to_json(struct_pack({packed}))::VARCHAR AS {_ROW_JSON}, "
        f"row_number() OVER (ORDER BY rowid) AS {ROW_NUMBER_COLUMN} "
        f"FROM {ent.qualified} WHERE _batch_id = ? ORDER BY {ROW_NUMBER_COLUMN}"
    )
    return con.execute(sql, [info.batch_id]).df()


def _column_label(config: Any) -> str:
    kw = config.kwargs
    if "column" in kw:
        return str(kw["column"])
    if "column_A" in kw:
        return f"{kw['column_A']},{kw['column_B']}"
    if "column_list" in kw:
        return ",".join(kw["column_list"])
    return ""


def _fmt(value: Any) -> str:
    """A short readable rendering of a cell value for messages."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if hasattr(value, "item"):  # numpy scalar -> Python scalar (numpy 2 reprs as np.float64(...))
        value = value.item()
    return repr(value)


def _row_values(entity_name: str, config: Any, row: pd.Series) -> str:
    """``col=value`` of the business column(s) an expectation looked at, for one row."""
    label = _column_label(config)
    shown = []
    for col in label.split(",") if label else []:
        src = derived_source_column(entity_name, col) or col
        if src in row.index:
            val = row[src]
            shown.append(f"{src}={'null' if pd.isna(val) else _fmt(val)}")
    return ", ".join(shown)


def _natural_key(entity_name: str, row: pd.Series) -> str:
    """Natural key columns of a row joined with ``|`` in NATURAL_KEYS order (null -> empty string)."""
    return "|".join("" if pd.isna(row[k]) else str(row[k]) for k in NATURAL_KEYS[entity_name])


def _examples(entity_name: str, config: Any, result: dict[str, Any], by_row: pd.DataFrame) -> str:
    """A few failing rows (row number, natural key, values), or the observed value of a table expectation."""
    index_list = [
        i for i in result.get("unexpected_index_list") or [] if isinstance(i, dict) and ROW_NUMBER_COLUMN in i
    ]
    count = result.get("unexpected_count", len(index_list))
    if index_list:
        shown = []
        for idx in index_list[:_MAX_EXAMPLES]:
            row = by_row.loc[int(idx[ROW_NUMBER_COLUMN])]
            values = _row_values(entity_name, config, row)
            shown.append(f"row {int(idx[ROW_NUMBER_COLUMN])} [{_natural_key(entity_name, row)}] {values}".rstrip())
        return f"{count} unexpected, e.g. " + "; ".join(shown)
    values = result.get("partial_unexpected_list") or result.get("unexpected_list")
    if values:
        return f"{count} unexpected, e.g. " + ", ".join(_fmt(v) for v in values[:_MAX_EXAMPLES])
    if "observed_value" in result:
        return f"observed {_fmt(result['observed_value'])}"
    return "no details"


def _column_of(entity_name: str, config: Any) -> str:
    """The business column a (possibly derived) column expectation is about."""
    label = _column_label(config)
    return derived_source_column(entity_name, label) or label


def _reason(entity_name: str, config: Any, row: pd.Series) -> str:
    """Human-readable quarantine reason: the rule and the offending value(s) of the row."""
    rule = (config.meta or {}).get("rule") or config.type
    shown = _row_values(entity_name, config, row)
    return f"{rule}; got {shown}" if shown else rule


def _validate_one(
    checkpoint: Any,
    info: ops.BatchRecord,
    df: pd.DataFrame,
    history: list[int],
    *,
    now: datetime,
    flow_run_id: str | None,
) -> _Outcome:
    """Run the entity checkpoint on one batch frame and sort its failures by severity."""
    frame = prepare_frame(info.entity, df.drop(columns=[_ROW_JSON]))
    frame[VOLUME_COLUMN] = info.rows_read
    by_row = df.set_index(ROW_NUMBER_COLUMN, drop=False)
    bounds, parameters = _volume_parameters(info, history)
    result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
    outcome = _Outcome()
    for vr in result.run_results.values():
        for er in vr.results:
            config = er.expectation_config
            exc = er.exception_info or {}
            raised = bool(exc.get("raised_exception")) if isinstance(exc, dict) else False
            if er.success and not raised:
                continue
            sev = severity_of(config)
            label = _column_label(config)
            what = f"{config.type}({label})" if label else config.type
            res = dict(er.result or {})
            where = f"{info.entity} [batch {info.batch_id}]"
            if raised:
                outcome.critical.append(f"{where}: {what} could not run: {exc.get('exception_message')}")
                continue
            meta = config.meta or {}
            if meta.get("batch_level"):
                # an empty batch has no max to compare: it already fails the critical "not empty" check
                if bounds is not None and not frame.empty:
                    outcome.batch_warning.append(
                        f"{volume_message(info.entity, info.source_name, info.rows_read, bounds)} "
                        f"(batch {info.batch_id}; {what} expected {bounds.min_value:,.0f} to "
                        f"{bounds.max_value:,.0f} rows read)"
                    )
                continue
            details = _examples(info.entity, config, res, by_row)
            if meta.get("references"):
                details = f"{_column_of(info.entity, config)} not found in {meta['references']}: {details}"
            msg = f"{where}: {what} failed: {details}"
            if sev != WARNING:
                outcome.critical.append(msg)
                continue
            outcome.warning.append(msg)
            for idx in res.get("unexpected_index_list") or []:
                if not isinstance(idx, dict) or ROW_NUMBER_COLUMN not in idx:
                    continue
                row_number = int(idx[ROW_NUMBER_COLUMN])
                row = by_row.loc[row_number]
                key = _natural_key(info.entity, row)
                outcome.quarantine.append(
                    ops.QuarantineRow(
                        batch_id=info.batch_id,
                        entity=info.entity,
                        row_number=row_number,
                        natural_key=key,
                        expectation=what,
                        severity=WARNING,
                        reason=_reason(info.entity, config, row),
                        row_json=row[_ROW_JSON],
                        stage="contract",
                        quarantined_at=now,
                        flow_run_id=flow_run_id,
                    )
                )
    return outcome


def validate_batches(
    con: duckdb.DuckDBPyConnection,
    batch_ids: list[str],
    *,
    gx_dir: Path,
    flow_run_id: str | None,
    in_transaction: bool = False,
) -> ValidationSummary:
    """Validate raw load batches, quarantine warning rows and record the run in ``ops.validation_runs``.

    Args:
        con: DuckDB connection to the warehouse (no transaction in progress, unless ``in_transaction``: then
            the caller's transaction is used and the caller commits or rolls back, e.g. for a dry run).
        batch_ids: ids from :class:`relance.ingest.LoadReport`; unknown ids raise ``ValueError``.
        gx_dir: root of the GX file context (``great_expectations.yml``, suites, data docs).
        flow_run_id: orchestrator run id stored with quarantine rows and the run record.

    Returns:
        A :class:`ValidationSummary`; ``success`` is ``False`` when any critical expectation failed.
    """
    ensure_schemas(con)
    gx_dir = Path(gx_dir).resolve()
    validation_id = uuid.uuid4().hex
    infos = ops.batch_records(con, list(batch_ids))
    now = datetime.now(UTC).replace(tzinfo=None)
    todo = [i for i in infos if i.status == "loaded" and not (i.rows_loaded == 0 and i.rows_read > 0)]
    for skipped in (i for i in infos if i not in todo):
        log.info("batch %s (%s): nothing new to validate, skipped", skipped.batch_id, skipped.entity)

    outcomes: list[tuple[ops.BatchRecord, _Outcome]] = []
    if todo:
        ctx = _context(gx_dir)
        checkpoints: dict[str, Any] = {}
        for info in todo:
            if info.entity not in checkpoints:
                checkpoints[info.entity] = _checkpoint(ctx, info.entity)
            df = _read_batch(con, info)
            history = ops.previous_volumes(con, info, VOLUME_HISTORY)
            outcomes.append(
                (
                    info,
                    _validate_one(checkpoints[info.entity], info, df, history, now=now, flow_run_id=flow_run_id),
                )
            )
            log.info("validated batch %s (%s): %d rows", info.batch_id, info.entity, len(df))

    critical = [m for _, o in outcomes for m in o.critical]
    warning = [m for _, o in outcomes for m in [*o.warning, *o.batch_warning]]
    rows = [q for _, o in outcomes for q in o.quarantine]
    docs = gx_dir / DATA_DOCS_INDEX
    data_docs_index = docs if docs.is_file() else None
    validated_ids = [i.batch_id for i in todo]

    if not in_transaction:
        con.begin()
    try:
        ops.replace_contract_quarantine(con, validated_ids, rows)
        ops.record_validation_run(
            con,
            validation_id=validation_id,
            batch_ids=[i.batch_id for i in infos],
            success=not critical,
            critical_failures=len(critical),
            warning_failures=len(warning),
            data_docs_path=str(data_docs_index) if data_docs_index else None,
            validated_at=now,
            flow_run_id=flow_run_id,
        )
        if not in_transaction:
            con.commit()
    except BaseException:
        if not in_transaction:
            con.rollback()
        raise

    quarantined = len({(r.batch_id, r.row_number) for r in rows})
    for msg in critical:
        log.error("critical: %s", msg)
    for _, o in outcomes:
        for msg in o.warning:
            log.warning("quarantined: %s", msg)
        for msg in o.batch_warning:
            log.warning("volume anomaly: %s", msg)
    return ValidationSummary(
        success=not critical,
        critical_failures=critical,
        warning_failures=warning,
        quarantined_rows=quarantined,
        data_docs_index=data_docs_index,
        validation_id=validation_id,
        batch_ids=[i.batch_id for i in infos],
    )
