"""The volume-anomaly parameters of one batch: the bounds its ``rows_read`` is checked against, as suite parameters.

The bounds come from the previous loads of the same (source, entity) (:func:`expectations.suites.volume_bounds`);
with too few of them the check is switched off for the batch (both parameters ``None``) and the log says so.
"""

from __future__ import annotations

import logging
from typing import Any

from expectations.suites import VOLUME_MAX_PARAM, VOLUME_MIN_HISTORY, VOLUME_MIN_PARAM, VolumeBounds, volume_bounds
from relance import ops

log = logging.getLogger(__name__)


def volume_parameters(info: ops.BatchRecord, history: list[int]) -> tuple[VolumeBounds | None, dict[str, Any]]:
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
