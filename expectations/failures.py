"""Turn one checkpoint's GX results into failure messages and ``ops.quarantine`` rows, sorted by severity.

* a critical failure (or an expectation that could not run) is a message in ``critical``;
* a row-level warning failure is a message in ``warning`` and one :class:`relance.ops.QuarantineRow` per failing
  row (the row's natural key, the rule and offending values as the reason, the raw row as JSON);
* a batch-level warning (the volume anomaly) is a message in ``batch_warning`` and quarantines no row.

Messages name the entity, the batch, the expectation and a few example rows (row number, natural key, values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from expectations.batch_frame import ROW_JSON
from expectations.suites import (
    ROW_NUMBER_COLUMN,
    WARNING,
    VolumeBounds,
    derived_source_column,
    severity_of,
    volume_message,
)
from relance import ops
from relance.raw_schema import NATURAL_KEYS

MAX_EXAMPLES = 5


@dataclass
class BatchFailures:
    """The failures of one batch, by severity, and the rows its warnings quarantine."""

    critical: list[str] = field(default_factory=list)
    warning: list[str] = field(default_factory=list)  # row-level: their rows are in `quarantine`
    batch_warning: list[str] = field(default_factory=list)  # batch-level (volume): nothing quarantined
    quarantine: list[ops.QuarantineRow] = field(default_factory=list)


def batch_failures(
    result: Any,
    info: ops.BatchRecord,
    df: pd.DataFrame,
    bounds: VolumeBounds | None,
    *,
    now: datetime,
    flow_run_id: str | None,
) -> BatchFailures:
    """Sort the failed expectations of a checkpoint result on the batch ``df`` (as read by ``read_batch``)."""
    by_row = df.set_index(ROW_NUMBER_COLUMN, drop=False)
    out = BatchFailures()
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
                out.critical.append(f"{where}: {what} could not run: {exc.get('exception_message')}")
                continue
            meta = config.meta or {}
            if meta.get("batch_level"):
                # an empty batch has no max to compare: it already fails the critical "not empty" check
                if bounds is not None and not df.empty:
                    out.batch_warning.append(
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
                out.critical.append(msg)
                continue
            out.warning.append(msg)
            for idx in res.get("unexpected_index_list") or []:
                if not isinstance(idx, dict) or ROW_NUMBER_COLUMN not in idx:
                    continue
                row_number = int(idx[ROW_NUMBER_COLUMN])
                row = by_row.loc[row_number]
                out.quarantine.append(
                    ops.QuarantineRow(
                        batch_id=info.batch_id,
                        entity=info.entity,
                        row_number=row_number,
                        natural_key=_natural_key(info.entity, row),
                        expectation=what,
                        severity=WARNING,
                        reason=_reason(info.entity, config, row),
                        row_json=row[ROW_JSON],
                        stage="contract",
                        quarantined_at=now,
                        flow_run_id=flow_run_id,
                    )
                )
    return out


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
        for idx in index_list[:MAX_EXAMPLES]:
            row = by_row.loc[int(idx[ROW_NUMBER_COLUMN])]
            values = _row_values(entity_name, config, row)
            shown.append(f"row {int(idx[ROW_NUMBER_COLUMN])} [{_natural_key(entity_name, row)}] {values}".rstrip())
        return f"{count} unexpected, e.g. " + "; ".join(shown)
    values = result.get("partial_unexpected_list") or result.get("unexpected_list")
    if values:
        return f"{count} unexpected, e.g. " + ", ".join(_fmt(v) for v in values[:MAX_EXAMPLES])
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
