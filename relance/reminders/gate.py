"""The last check before a message leaves: every contact rule, against what is true at that moment.

The plan is made in the morning from the dbt build; by the time a message goes out, a call outcome may have been
imported (a promise, a "do not call me"), a provider may have reported a bounce or an unsubscribe, a debtor may
have entered a collective procedure, and this very run may already have contacted the customer. So
:meth:`SendGate.check`, the delivery loop's ``stop_check`` hook, asks again, right before claiming each send:

* the insolvency stop (:class:`relance.risk.stops.DunningStops`, the live ``serving.customer_risk_status`` view);
* the customer's contact state (``serving.customer_contact_state``, a live view as well: suppressions, promises,
  disputes), re-read when older than ``max_age_seconds``;
* the contact rules of :mod:`relance.reminders.rules` (quiet hours in the debtor's time zone, public holidays,
  frequency caps, the gap between two contacts, call caps, materiality), against the history of contacts: every
  message of the send ledger (sent or in flight) at the moment it reached or will reach the debtor, the last
  contact the warehouse knows (legacy reminders, collectors' calls) and what this run sent so far.

A blocked message is returned as a :class:`~relance.risk.stops.Stop` (rule and detail): ``relance.delivery``
records it in ``ops.reminder_blocks`` and does not claim it, so tomorrow's plan can try again. An email planned
outside the debtor's hours is not blocked but deferred: the gate sets the row's ``deliver_at`` (SendGrid
``send_at``) and records it on the plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from relance import ops
from relance.reminders.engine import _text
from relance.reminders.policy import _as_date
from relance.reminders.rules import (
    Contact,
    ContactRules,
    CustomerFacts,
    check_send,
    debtor_timezone,
    next_allowed_moment,
)
from relance.risk.stops import DunningStops, Stop
from relance.send_ledger import SendLedger
from relance.warehouse import relation_exists

log = logging.getLogger(__name__)

CONTACT_STATE_RELATION = "serving.customer_contact_state"
#: How far ahead a message may be scheduled with its provider (SendGrid's ``send_at`` limit is 72 hours).
MAX_SCHEDULE_AHEAD = timedelta(hours=71)


def _utc(value: Any) -> datetime | None:
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def read_contact_state(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The live contact state, or an empty frame (with a warning) on a warehouse built before it existed."""
    if not relation_exists(con, CONTACT_STATE_RELATION):
        log.warning("%s does not exist yet (no dbt build since the engine): no reactions known", CONTACT_STATE_RELATION)
        return pd.DataFrame(columns=["customer_id"])
    return con.execute(f"SELECT * FROM {CONTACT_STATE_RELATION}").df()


class SendGate:
    """``check(row) -> Stop | None`` for :func:`relance.delivery.deliver` (see the module docstring)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        ledger: SendLedger,
        rules: ContactRules,
        *,
        promise_grace_days: int = 3,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_age_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._con = con
        self._rules = rules
        self._grace = promise_grace_days
        self._now = now
        self._max_age = max_age_seconds
        self._clock = clock
        self._stops = DunningStops(con)
        self._state: dict[str, Mapping[str, Any]] = {}
        self._state_read_at: float | None = None
        self._history: dict[str, list[Contact]] = {}
        self._load_history(ledger)
        self.checked = 0
        self.deferred = 0

    # --- what is known -------------------------------------------------------------------------------------

    def _load_history(self, ledger: SendLedger) -> None:
        sends = ledger.frame()
        sends = sends[sends["status"].isin(["sent", "sending"]) & sends["customer_id"].notna()]
        if sends.empty:
            return
        planned = ops.planned_deliveries(self._con, sends["customer_id"].astype(str).unique().tolist())
        deliver_at = dict(zip(planned["reminder_key"], planned["deliver_at"], strict=True))
        for rec in sends.to_dict("records"):
            at = _utc(deliver_at.get(rec["reminder_key"])) or _utc(rec.get("sent_at")) or _utc(rec.get("claimed_at"))
            if at is not None:
                cid = str(rec["customer_id"])
                self._history.setdefault(cid, []).append(Contact(cid, str(rec["channel"]), at))

    def _contact(self, customer_id: str) -> Mapping[str, Any]:
        now = self._clock()
        if self._state_read_at is None or now - self._state_read_at >= self._max_age:
            frame = read_contact_state(self._con)
            self._state = {str(r["customer_id"]): r for r in frame.to_dict("records")}
            self._state_read_at = now
        return self._state.get(customer_id, {})

    def history(self, customer_id: str, contact: Mapping[str, Any]) -> list[Contact]:
        """Ledger contacts of this customer, this run's, and the warehouse's last contact (legacy, calls)."""
        out = list(self._history.get(customer_id, []))
        last = _utc(contact.get("last_contact_at"))
        if last is not None and not any(abs((h.at - last).total_seconds()) < 60 for h in out):
            channel = _text(contact.get("last_contact_channel")) or "email"
            channel = channel if channel in ("email", "sms", "letter", "call") else "email"
            out.append(Contact(customer_id, channel, last))
        return out

    def facts(self, row: Mapping[str, Any], contact: Mapping[str, Any]) -> CustomerFacts:
        suppressed = frozenset(c.strip() for c in _text(contact.get("suppressed_channels")).split(",") if c.strip())
        promise_until = None
        if _text(contact.get("promise_status")) == "active":
            promised = _as_date(contact.get("promise_date"))
            promise_until = promised + timedelta(days=self._grace) if promised else None
        return CustomerFacts(
            customer_id=str(row.get("customer_id")),
            # an unknown type gets the consumer rules: the stricter hours
            customer_type="B2B" if str(row.get("customer_type") or "").strip().upper() == "B2B" else "B2C",
            country_code=_text(row.get("country_code")).upper() or None,
            total_due=float(row.get("open_amount") or 0.0),
            do_not_contact="*" in suppressed,
            suppressed_channels=suppressed,
            in_insolvency=False,  # DunningStops answers first, with the procedure's details
            promise_until=promise_until,
            # a dispute raised on the phone covers the customer (invoice disputes are out of the plan already)
            all_disputed=_text(contact.get("last_call_outcome")) == "dispute",
        )

    # --- the hook ------------------------------------------------------------------------------------------

    def check(self, row: dict[str, Any]) -> Stop | None:
        """None: send now (``row['deliver_at']`` set when deferred); a Stop: do not send, and why."""
        self.checked += 1
        customer_id = str(row.get("customer_id"))
        stop = self._stops.check(row)
        if stop is not None:
            return stop
        contact = self._contact(customer_id)
        channel = str(row["channel"])
        facts = self.facts(row, contact)
        now = self._now()
        when = now
        if channel in ("call", "sms"):
            # a call task is dialled (an SMS scheduled) in the debtor's next allowed window, not when the list is
            # written at dawn: the rules are checked for that moment
            when = next_allowed_moment(
                now,
                channel=channel,
                customer_type=facts.customer_type,
                country_code=facts.country_code,
                rules=self._rules,
            )
        verdict = check_send(channel, when, facts, self.history(customer_id, contact), self._rules)
        if not verdict.allowed:
            return Stop(str(verdict.rule), verdict.detail)
        at = verdict.deliver_at or when
        if channel in ("email", "sms") and at - now > MAX_SCHEDULE_AHEAD:
            # SendGrid schedules at most 72 h ahead: a long holiday weekend waits for a later run instead
            return Stop(
                "quiet_hours",
                f"next allowed moment {at:%Y-%m-%d %H:%M} UTC is more than {MAX_SCHEDULE_AHEAD} ahead; a later run "
                "sends it",
            )
        if channel == "call":
            zone = debtor_timezone(facts.country_code, self._rules.default_timezone)
            row["call_window"] = f"à partir du {at.astimezone(zone):%d/%m/%Y %H:%M} ({zone.key})"
        if at > now + timedelta(minutes=1):
            row["deliver_at"] = at
            ops.set_deliver_at(self._con, str(row["reminder_key"]), at.astimezone(UTC).replace(tzinfo=None))
            self.deferred += 1
            why = verdict.detail or f"the debtor's next allowed {channel} window"
            log.info("reminder %s to %s deferred to %s: %s", row["reminder_key"], customer_id, at, why)
        self._history.setdefault(customer_id, []).append(Contact(customer_id, channel, at))
        return None
