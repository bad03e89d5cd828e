"""One simulated block written as of ``end_date``: the landing tables of what is known by then (invoices and
credit notes, payments and allocations, disputes, reminders) and the invoice ground truth, which is not censored.

Ids are numbered across blocks (:class:`IdCounters`): invoices by issue day, credit notes, payments, disputes
and reminders by the day they happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from relance.demo.arrow_columns import dates, decimal_from_cents, str_ids, timestamps, vocab
from relance.demo.customers import Customers
from relance.demo.days import NEVER, SECONDS_PER_DAY
from relance.demo.reference import CHANNELS, DISPUTE_REASONS, RESPONSES, TONES
from relance.demo.simulate import SimulatedInvoices
from relance.raw_schema import PAYMENT_METHODS


@dataclass
class IdCounters:
    """The last number used for each id, carried from block to block."""

    invoice: int = 0
    credit_note: int = 0
    payment: int = 0
    dispute: int = 0
    reminder: int = 0


@dataclass
class Block:
    """Tables of one block of customers, ready to write."""

    tables: dict[str, pa.Table]
    truth: pa.Table
    counts: dict[str, int]


def _invoices_table(
    c: Customers, sim: SimulatedInvoices, inv_ids: pa.Array, cust_ids: pa.Array, end: int, ids: IdCounters
) -> tuple[pa.Table, int]:
    """Invoices, then the credit notes issued by end_date as invoice rows; and the number of credit notes."""
    n, cust, notes = len(sim.cust), sim.cust, sim.notes
    currency = pa.array(np.where(c.gbp[cust], "GBP", "EUR"))
    terms_arr = pa.array(sim.terms.astype(np.int32), pa.int32())
    eom_arr = pa.array(c.eom[cust])
    cn_idx = np.flatnonzero(sim.outcome.has_credit_note & (notes.day <= end))
    cn_idx = cn_idx[np.lexsort((cn_idx, notes.day[cn_idx]))]
    cn_ids = str_ids("CN-", ids.credit_note + 1 + np.arange(len(cn_idx)), 7)
    ids.credit_note += len(cn_idx)
    table = pa.table(
        {
            "invoice_id": pa.concat_arrays([inv_ids, cn_ids]),
            "customer_id": pa.concat_arrays([cust_ids, cust_ids.take(cn_idx)]),
            "document_type": pa.array(["invoice"] * n + ["credit_note"] * len(cn_idx), pa.string()),
            "credited_invoice_id": pa.concat_arrays([pa.nulls(n, pa.string()), inv_ids.take(cn_idx)]),
            "issue_date": dates(np.concatenate([sim.issue, notes.day[cn_idx]])),
            "due_date": dates(np.concatenate([sim.due, notes.day[cn_idx]])),
            "amount": decimal_from_cents(np.concatenate([sim.amount, -notes.cents[cn_idx]])),
            "currency": pa.concat_arrays([currency, currency.take(cn_idx)]),
            "payment_terms_days": pa.concat_arrays([terms_arr, terms_arr.take(cn_idx)]),
            "is_end_of_month_terms": pa.concat_arrays([eom_arr, eom_arr.take(cn_idx)]),
        }
    )
    return table, len(cn_idx)


def _payments_tables(
    c: Customers, sim: SimulatedInvoices, inv_ids: pa.Array, end: int, ids: IdCounters
) -> tuple[pa.Table, pa.Table]:
    """Payment lines made by end_date; a batch payer's lines of one run day are one payment."""
    line_inv, line_day, line_cents = sim.payment_lines
    keep = line_day <= end
    line_inv, line_day, line_cents = line_inv[keep], line_day[keep], line_cents[keep]
    line_cust = sim.cust[line_inv]
    lo = np.lexsort((line_inv, line_cust, line_day))
    line_inv, line_day, line_cents, line_cust = line_inv[lo], line_day[lo], line_cents[lo], line_cust[lo]
    batch = c.batch[sim.cust]
    same_batch = np.zeros(len(lo), dtype=bool)
    if len(lo) > 1:
        same_batch[1:] = batch[line_inv[1:]] & (line_cust[1:] == line_cust[:-1]) & (line_day[1:] == line_day[:-1])
    pay_no = np.cumsum(~same_batch) - 1
    starts = np.flatnonzero(~same_batch)
    n_pay = len(starts)
    pay_ids = str_ids("PAY-", ids.payment + 1 + np.arange(n_pay), 7)
    ids.payment += n_pay
    pay_cust = line_cust[starts]
    payments = pa.table(
        {
            "payment_id": pay_ids,
            "customer_id": str_ids("C", pay_cust + 1, 6),
            "payment_date": dates(line_day[starts]),
            "amount": decimal_from_cents(np.add.reduceat(line_cents, starts) if n_pay else np.empty(0, np.int64)),
            "currency": pa.array(np.where(c.gbp[pay_cust], "GBP", "EUR").astype(str), pa.string()),
            "payment_method": vocab(PAYMENT_METHODS, c.method[pay_cust]),
        }
    )
    allocations = pa.table(
        {
            "payment_id": pay_ids.take(pa.array(pay_no)),
            "invoice_id": inv_ids.take(pa.array(line_inv)),
            "allocated_amount": decimal_from_cents(line_cents),
        }
    )
    return payments, allocations


def _disputes_table(sim: SimulatedInvoices, inv_ids: pa.Array, end: int, ids: IdCounters) -> pa.Table:
    """Disputes opened by end_date (those resolved after it are still open)."""
    d = sim.disputes
    d_idx = np.flatnonzero(sim.outcome.disputed & (d.opened <= end))
    d_idx = d_idx[np.lexsort((d_idx, d.opened[d_idx]))]
    table = pa.table(
        {
            "dispute_id": str_ids("DSP-", ids.dispute + 1 + np.arange(len(d_idx)), 7),
            "invoice_id": inv_ids.take(pa.array(d_idx)),
            "opened_date": dates(d.opened[d_idx]),
            "resolved_date": dates(d.resolved[d_idx], null=d.resolved[d_idx] > end),
            "reason": vocab(DISPUTE_REASONS, d.reason[d_idx]),
        }
    )
    ids.dispute += len(d_idx)
    return table


def _reminders_table(
    sim: SimulatedInvoices, inv_ids: pa.Array, cust_ids: pa.Array, end: int, ids: IdCounters
) -> pa.Table:
    """Reminders sent by end_date; answers after it are not known yet."""
    end_sec = (end + 1) * SECONDS_PER_DAY
    ok = sim.reminders["sent"] < end_sec
    rem = {key: v[ok] for key, v in sim.reminders.items()}
    ro = np.lexsort((rem["inv"], rem["sent"]))
    rem = {key: v[ro] for key, v in rem.items()}
    unknown = (rem["responded"] < 0) | (rem["responded"] >= end_sec)
    response = np.where(unknown, 0, rem["response"])
    n_rem = len(ro)
    table = pa.table(
        {
            "reminder_id": str_ids("RMD-", ids.reminder + 1 + np.arange(n_rem), 7),
            "invoice_id": inv_ids.take(pa.array(rem["inv"])),
            "customer_id": cust_ids.take(pa.array(rem["inv"])),
            "sent_at": timestamps(rem["sent"]),
            "channel": vocab(CHANNELS, rem["channel"]),
            "tone": vocab(TONES, rem["tone"]),
            "response": vocab(RESPONSES, response),
            "responded_at": timestamps(rem["responded"], null=unknown),
            "promised_date": dates(rem["promised"], null=unknown | (rem["promised"] < 0)),
        }
    )
    ids.reminder += n_rem
    return table


def _invoice_truth(sim: SimulatedInvoices, inv_ids: pa.Array, cust_ids: pa.Array) -> pa.Table:
    """``invoice_truth.parquet`` rows: P(late 30 days after due), base delay, channel effects, settle day."""
    settle = sim.settle
    return pa.table(
        {
            "invoice_id": inv_ids,
            "customer_id": cust_ids,
            "p_unpaid_30d_after_due": pa.array(sim.p_unpaid),
            "base_days_late": pa.array(sim.delay.days_late.astype(np.int32)),
            **{name: pa.array(v) for name, v in sim.effects.items()},
            "settle_date": dates(np.minimum(settle, NEVER), null=settle >= NEVER),
            "is_never_paid": pa.array(settle >= NEVER),
            "is_paid_by_credit_note": pa.array(sim.outcome.paid_by_credit_note),
            "is_disputed": pa.array(sim.outcome.disputed),
        }
    )


def block_tables(c: Customers, sim: SimulatedInvoices, end: int, ids: IdCounters) -> Block:
    """The landing tables of one simulated block as of day ``end``, its ground truth and row counts."""
    n = len(sim.cust)
    inv_ids = str_ids("INV-", ids.invoice + 1 + np.arange(n), 7)
    ids.invoice += n
    cust_ids = str_ids("C", sim.cust + 1, 6)
    invoices, n_credit_notes = _invoices_table(c, sim, inv_ids, cust_ids, end, ids)
    payments, allocations = _payments_tables(c, sim, inv_ids, end, ids)
    disputes = _disputes_table(sim, inv_ids, end, ids)
    reminders = _reminders_table(sim, inv_ids, cust_ids, end, ids)
    counts = {
        "invoices": n,
        "credit_notes": n_credit_notes,
        "payments": payments.num_rows,
        "allocations": allocations.num_rows,
        "disputes": disputes.num_rows,
        "reminders": reminders.num_rows,
    }
    tables = {
        "invoices": invoices,
        "payments": payments,
        "payment_allocations": allocations,
        "disputes": disputes,
        "reminders": reminders,
    }
    return Block(tables=tables, truth=_invoice_truth(sim, inv_ids, cust_ids), counts=counts)
