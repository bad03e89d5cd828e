"""A first reminder policy, relative to the due date and modulated by the predicted risk of non-payment.

Why a table of steps instead of "remind everyone every week": each step is a distinct message with its own
tone and channel, sent at most once per invoice. The step is chosen from a *window* of days overdue (not an
exact day) so that a pipeline that did not run on day 7 still sends the 7-day reminder on day 8; the ledger in
``relance.delivery`` then guarantees the same (invoice, step) is never sent twice, because its key is a pure
function of the pair.

Steps (``d = days_overdue = as_of_date - due_date``, ``p = p_late``, the probability of being late under the
model's target, ``target_name`` in the worklist):

===========  ==============  ==========================================  ==========
step         window          channel                                     tone
===========  ==============  ==========================================  ==========
pre_due      -5 <= d <= 0    email, only when p >= high_risk             preventive
overdue_7    7 <= d <= 20    email                                       cordial
overdue_21   21 <= d <= 44   call if B2B and p >= high_risk, else email  firm
overdue_45   d >= 45         call if B2B, letter if B2C                  firm
===========  ==============  ==========================================  ==========

Days 1-6 are a grace period (payments in transit). Disputed invoices get nothing: a dispute is a human matter
and a dunning letter on a contested invoice damages the relationship. A debtor in a collective procedure
(``has_open_procedure`` in the worklist, from BODACC / Companies House events) gets nothing at all: the law stops
individual collection at the opening judgment (L622-21); its claim goes to the court's representative instead
(``serving.claim_declarations``), and ``relance.risk.stops`` checks again just before each send. An unscored
invoice (``p`` missing) is treated as not high-risk and ranks last under the cap.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from relance.ops import PLAN_COLUMNS

log = logging.getLogger(__name__)

#: Columns of ``ops.reminders_planned`` produced here; ``relance.delivery.deliver`` adds the lineage ones
#: (dbt_invocation_id, planned_at, flow_run_id) when it records the plan.
PLANNED_COLUMNS: tuple[str, ...] = PLAN_COLUMNS

#: Extra columns carried for rendering messages (the email needs the due date, the letter the name);
#: they are not persisted in ``ops.reminders_planned``.
CONTEXT_COLUMNS: tuple[str, ...] = (
    "customer_name",
    "customer_type",
    "due_date",
    "days_overdue",
    "expected_exposure",
)

#: Why an invoice is flagged, carried from the worklist to the call list (a collector reads them before dialling):
#: the three reasons towards late, the predicted payment date with its p10..p90 range, the customer's risk grade.
#: Null when the model gives none. Not persisted in ``ops.reminders_planned`` (``ops.predictions`` and
#: ``serving.customer_risk_grades`` keep them).
EXPLANATION_COLUMNS: tuple[str, ...] = (
    "reason_1",
    "reason_2",
    "reason_3",
    "predicted_payment_date",
    "predicted_payment_date_p10",
    "predicted_payment_date_p90",
    "risk_grade",
)

REQUIRED_WORKLIST_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "customer_id",
    "customer_name",
    "customer_type",
    "email",
    "phone",
    "currency",
    "open_amount",
    "due_date",
    "days_overdue",
    "is_disputed",
    "p_late",
    "model_version",
    "model_run_id",
    *EXPLANATION_COLUMNS,
)

STEPS: tuple[str, ...] = ("pre_due", "overdue_7", "overdue_21", "overdue_45")
CHANNELS: tuple[str, ...] = ("email", "call", "letter")
TONES: tuple[str, ...] = ("preventive", "cordial", "firm")


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy, in one place so a change is one reviewed diff.

    ``pre_due_days``: how many days before the due date a preventive email may go out.
    ``overdue_first/second/third``: first day of the ``overdue_7``/``overdue_21``/``overdue_45`` windows;
    each window ends the day before the next one starts.
    """

    high_risk: float = 0.5
    pre_due_days: int = 5
    overdue_first: int = 7
    overdue_second: int = 21
    overdue_third: int = 45

    def __post_init__(self) -> None:
        if not 0.0 <= self.high_risk <= 1.0:
            raise ValueError(f"high_risk must be a probability in [0, 1], got {self.high_risk}")
        if self.pre_due_days < 0:
            raise ValueError(f"pre_due_days must be >= 0, got {self.pre_due_days}")
        if not 0 < self.overdue_first < self.overdue_second < self.overdue_third:
            raise ValueError(
                "overdue windows must start at increasing positive days, got "
                f"{self.overdue_first}, {self.overdue_second}, {self.overdue_third}"
            )


def reminder_key(invoice_id: str, step: str) -> str:
    """Deterministic id of one reminder: sha256 of the JSON pair, so no separator can make two pairs collide.

    Independent of the as-of date on purpose: the same step re-planned tomorrow has the same key, and the
    ledger refuses to send it twice.
    """
    payload = json.dumps([str(invoice_id), str(step)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _as_date(value: Any) -> date | None:
    """Normalise DuckDB/pandas date flavours (datetime64, Timestamp, date, ISO string) to ``date``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _clean_text(series: pd.Series) -> pd.Series:
    """Strip strings; missing values become empty strings so 'no recipient' is one test."""
    return series.astype("string").fillna("").str.strip()


def _explanation(series: pd.Series) -> pd.Series:
    """Dates as ``date``, text as ``str``, missing values as None (they reach a CSV cell as they are); object
    dtype, so a missing reason stays None instead of becoming a string column's NaN."""
    if series.name is not None and str(series.name).startswith("predicted_payment_date"):
        values = [_as_date(v) for v in series]
    else:
        values = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in series]
    return pd.Series(values, index=series.index, dtype=object)


def empty_plan() -> pd.DataFrame:
    """The zero-row result, with the right columns, so callers never special-case an empty day."""
    frame = pd.DataFrame(
        {c: pd.Series(dtype="object") for c in (*PLANNED_COLUMNS, *CONTEXT_COLUMNS, *EXPLANATION_COLUMNS)}
    )
    frame.attrs["skipped"] = {"disputed": 0, "insolvency": 0, "nothing_due": 0, "no_recipient": 0, "capped": 0}
    return frame


def plan_reminders(
    worklist: pd.DataFrame,
    *,
    as_of_date: date,
    high_risk: float = 0.5,
    max_reminders: int,
    config: PolicyConfig | None = None,
    exclude_keys: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Choose today's reminders: at most one row per (invoice, step), capped by expected exposure.

    Returns the columns of ``ops.reminders_planned`` minus the lineage ones (:data:`PLANNED_COLUMNS`),
    followed by :data:`CONTEXT_COLUMNS` for rendering and :data:`EXPLANATION_COLUMNS` for the call list, sorted
    by ``expected_exposure`` (open_amount * p), descending.

    Rows skipped are *counted, not returned*: the counts are logged and stored in
    ``result.attrs["skipped"]`` as ``{"disputed", "insolvency", "nothing_due", "no_recipient", "capped"}``.

    ``config`` supersedes ``high_risk`` when given. ``exclude_keys`` (e.g. keys already sent, from
    ``relance.delivery.handled_reminder_keys``) are removed *before* the cap so that reminders already
    delivered on earlier days do not use up today's budget.
    """
    cfg = config or PolicyConfig(high_risk=high_risk)
    if max_reminders < 0:
        raise ValueError(f"max_reminders must be >= 0, got {max_reminders}")
    missing = [c for c in REQUIRED_WORKLIST_COLUMNS if c not in worklist.columns]
    if missing:
        raise ValueError(f"worklist is missing columns {missing}; expected serving.collection_worklist")
    if worklist.empty:
        return empty_plan()
    if "as_of_date" in worklist.columns:
        dates = {_as_date(v) for v in worklist["as_of_date"].unique()}
        if dates - {as_of_date, None}:
            raise ValueError(
                f"worklist holds as_of_date values {sorted(str(d) for d in dates)}, planning for {as_of_date}"
            )

    wl = worklist.reset_index(drop=True)
    d = pd.to_numeric(wl["days_overdue"], errors="coerce")
    p = pd.to_numeric(wl["p_late"], errors="coerce")
    amount = pd.to_numeric(wl["open_amount"], errors="coerce").astype(float)
    disputed = wl["is_disputed"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    insolvent = (
        wl["has_open_procedure"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "has_open_procedure" in wl.columns
        else np.zeros(len(wl), dtype=bool)
    )
    b2b = _clean_text(wl["customer_type"]).str.upper().eq("B2B").to_numpy(dtype=bool)
    high = (p >= cfg.high_risk).fillna(False).to_numpy(dtype=bool)
    dv = d.to_numpy(dtype=float, na_value=np.nan)

    in_pre = (dv >= -cfg.pre_due_days) & (dv <= 0) & high
    in_7 = (dv >= cfg.overdue_first) & (dv < cfg.overdue_second)
    in_21 = (dv >= cfg.overdue_second) & (dv < cfg.overdue_third)
    in_45 = dv >= cfg.overdue_third
    step = np.select([in_pre, in_7, in_21, in_45], list(STEPS), default="")
    channel = np.select(
        [in_pre, in_7, in_21 & b2b & high, in_21, in_45 & b2b, in_45],
        ["email", "email", "call", "email", "call", "letter"],
        default="",
    )
    tone = np.select([in_pre, in_7, in_21 | in_45], ["preventive", "cordial", "firm"], default="")

    emails = _clean_text(wl["email"])
    recipient = np.select(
        [channel == "email", channel == "call", channel == "letter"],
        [
            emails.where(emails.str.contains("@", regex=False) & ~emails.str.contains(r"\s")).fillna(""),
            _clean_text(wl["phone"]),
            _clean_text(wl["customer_name"]),
        ],
        default="",
    )

    has_step = step != ""
    stopped = has_step & insolvent
    nothing_due = has_step & ~stopped & ~disputed & ~(amount > 0).to_numpy(dtype=bool)
    keep = has_step & ~stopped & ~disputed & ~nothing_due
    no_recipient = keep & (recipient == "")
    keep &= ~no_recipient
    skipped = {
        "disputed": int((has_step & ~stopped & disputed).sum()),
        "insolvency": int(stopped.sum()),
        "nothing_due": int(nothing_due.sum()),
        "no_recipient": int(no_recipient.sum()),
        "capped": 0,
    }

    out = pd.DataFrame(
        {
            "invoice_id": wl["invoice_id"].astype(str),
            "customer_id": wl["customer_id"].astype(str),
            "as_of_date": as_of_date,
            "step": step,
            "channel": channel,
            "tone": tone,
            "p_late": p.astype(float),
            "open_amount": amount.round(2),
            "currency": _clean_text(wl["currency"]).str.upper(),
            "recipient": recipient,
            "model_version": wl["model_version"],
            "model_run_id": wl["model_run_id"],
            "customer_name": wl["customer_name"],
            "customer_type": wl["customer_type"],
            "due_date": [_as_date(v) for v in wl["due_date"]],
            "days_overdue": d,
            "expected_exposure": (amount * p.fillna(0.0)).round(2),
            **{c: _explanation(wl[c]) for c in EXPLANATION_COLUMNS},
        }
    )[keep].copy()
    out.insert(0, "reminder_key", [reminder_key(i, s) for i, s in zip(out["invoice_id"], out["step"], strict=True)])
    out = out.drop_duplicates("reminder_key", keep="first")
    if exclude_keys:
        out = out[~out["reminder_key"].isin(exclude_keys)]
    # reminder_key as tie-breaker: the same worklist always yields the same plan, whatever its row order.
    out = out.sort_values(["expected_exposure", "reminder_key"], ascending=[False, True], kind="mergesort")
    if len(out) > max_reminders:
        skipped["capped"] = len(out) - max_reminders
        out = out.head(max_reminders)
    out = out[[*PLANNED_COLUMNS, *CONTEXT_COLUMNS, *EXPLANATION_COLUMNS]].reset_index(drop=True)
    out.attrs["skipped"] = skipped

    log.info(
        "planned %d reminders for %s (%s); skipped %s",
        len(out),
        as_of_date,
        out["step"].value_counts().to_dict(),
        skipped,
    )
    if skipped["no_recipient"]:
        log.warning("%d reminders skipped: no recipient for their channel", skipped["no_recipient"])
    return out
