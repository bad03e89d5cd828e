"""The insolvency stop, checked again just before each send.

The planner already leaves out debtors in a collective procedure (``has_open_procedure`` in the worklist, built
by dbt from the events known at the build). Between that build and a send, the hourly risk watch or a manual
``relance risk import`` may load a new opening judgment; a reminder to that debtor must not go out, by law
(L622-21: individual collection actions stop at the judgment). So the delivery loop asks :class:`DunningStops`
about every customer right before it claims the send. The answer comes from ``serving.customer_risk_status``,
a dbt **view** over the staging views of raw: it reflects whatever raw holds at the moment of the query, without
a rebuild. The set is re-read when it is older than ``max_age_seconds`` (default 0: before every send; a query on
a small view costs milliseconds, a reminder sent in breach costs much more).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import duckdb

from relance.warehouse import relation_exists

log = logging.getLogger(__name__)

STATUS_RELATION = "serving.customer_risk_status"
RULE_INSOLVENCY = "insolvency_stop"


@dataclass(frozen=True)
class Stop:
    """Why a customer may not be dunned: the rule and a sentence for the log, the artifact and ops.reminder_blocks."""

    rule: str
    detail: str


class DunningStops:
    """Customers that must receive no reminder now, read from the live view (see the module docstring).

    If the view does not exist (a warehouse built before it: nothing was ever built with risk data), nobody is
    stopped by it and a warning says so once; any other database error propagates: better no send than a send
    the check could not clear.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        max_age_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._con = con
        self._max_age = max_age_seconds
        self._clock = clock
        self._stops: dict[str, Stop] = {}
        self._read_at: float | None = None
        self.reads = 0

    def _refresh(self) -> None:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._max_age:
            return
        self._stops = read_stops(self._con)
        self._read_at = now
        self.reads += 1

    def stop_for(self, customer_id: object) -> Stop | None:
        """The stop that applies to this customer now, or None."""
        self._refresh()
        return self._stops.get(str(customer_id))

    def check(self, row: Mapping[str, object]) -> Stop | None:
        """The delivery loop's hook: the stop for the planned row's customer, or None."""
        return self.stop_for(row.get("customer_id"))


def read_stops(con: duckdb.DuckDBPyConnection) -> dict[str, Stop]:
    """customer_id -> :class:`Stop` for every customer in an open collective procedure, from the live view."""
    if not relation_exists(con, STATUS_RELATION):
        log.warning("%s does not exist yet (no dbt build since risk data): no insolvency stop applies", STATUS_RELATION)
        return {}
    rows = con.execute(
        f"SELECT customer_id, procedure_kind, judgment_date, procedure_published_date, court "
        f"FROM {STATUS_RELATION} WHERE has_open_procedure"
    ).fetchall()
    stops: dict[str, Stop] = {}
    for customer_id, kind, judgment, published, court in rows:
        what = f"collective procedure ({kind or 'unspecified'})"
        when = f"judgment {judgment}" if judgment else "judgment date unknown"
        where = f", {court}" if court else ""
        stops[str(customer_id)] = Stop(RULE_INSOLVENCY, f"{what}, {when}, published {published}{where}")
    return stops
