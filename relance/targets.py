"""What "late" means: the model's target is a setting, and its honest name goes with every number.

``RELANCE_TARGET_KIND`` with ``RELANCE_HORIZON_DAYS`` or ``RELANCE_LATE_THRESHOLD_DAYS`` choose it; dbt computes
the label (``ml_invoice_labels``, macro ``target_name``), and ``target_name`` names it in the labels, MLflow (one
experiment per target) and ``ops.predictions``, so a number is never read against the wrong definition.
"""

from __future__ import annotations

TARGET_KIND_DOCS: dict[str, str] = {
    "unpaid_after_due": "still not fully paid N days after the later of the due date and the as-of date "
    "(N = horizon_days; lateness for an invoice not yet due, 'still unpaid in N days' for an overdue one)",
    "unpaid_after": "still not fully paid N days after the as-of date (N = horizon_days)",
    "late_over": "paid more than N days after the due date, or not at all (N = late_threshold_days; 0: late at all)",
}
TARGET_KINDS: tuple[str, ...] = tuple(TARGET_KIND_DOCS)
DEFAULT_TARGET_KIND = "unpaid_after_due"


def target_name(kind: str, days: int) -> str:
    """The honest name of a target: ``unpaid_30d_after_due``, ``unpaid_30d_after_as_of``, ``late_over_5d``,
    ``late_any`` (late_over with 0 days)."""
    if kind not in TARGET_KIND_DOCS:
        raise ValueError(f"unknown target kind {kind!r}; expected one of {TARGET_KINDS}")
    if int(days) < 0:
        raise ValueError(f"target days must be >= 0, got {days}")
    days = int(days)
    if kind == "late_over":
        return "late_any" if days == 0 else f"late_over_{days}d"
    if kind == "unpaid_after":
        return f"unpaid_{days}d_after_as_of"
    return f"unpaid_{days}d_after_due"
