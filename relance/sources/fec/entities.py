"""The four raw entities an FEC yields (customers, invoices, payments, payment_allocations), from its parsed
customer lines: documents get their ids, lettering allocates credits, then one table per entity.

A customer is every account seen (zero lines included), named by its most frequent label. A net debit is an
invoice, a net credit in a sales journal a credit note (one row per invoice it credits), any other credit part
of a payment (the credit lines of one entry and customer). Allocations are summed per (payment, invoice).

Every table is declared a full snapshot scoped to its file (:func:`relance.sources.base.declare_full_snapshot`,
scope ``file``): an FEC holds every entry of one fiscal year, so a re-export of that year (the same legal file name
``<SIREN>FEC<closing date>``) is that year's complete state. The loader then retires what the new export no longer
holds: a document cancelled at the source, or the (payment, invoice) allocation of a payment re-lettered from one
invoice to another. Another year's file (another name) retires nothing of it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa

from relance.sources.base import declare_full_snapshot, entity_schema
from relance.sources.fec.ids import PaymentKey, assign_document_ids, payment_ids, payment_key
from relance.sources.fec.lettering import allocate_lettering
from relance.sources.fec.lines import CustomerLine


def _table(entity: str, columns: dict[str, list[object]], n: int, *, source_row: bool = False) -> pa.Table:
    """A table with the raw schema of ``entity`` (the columns the FEC does not hold are nulls), declared the full
    snapshot of what files of its name hold."""
    schema = entity_schema(entity, source_row=source_row)
    arrays = [pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return declare_full_snapshot(pa.table(arrays, schema=schema), "file")


def customers_table(lines: list[CustomerLine]) -> pa.Table:
    """Every account seen, zero lines included (an account with a nil balance is still a customer)."""
    names: dict[str, Counter[str]] = defaultdict(Counter)
    currencies: dict[str, Counter[str]] = defaultdict(Counter)
    for ln in lines:
        names[ln.customer_id][ln.customer_name] += 1
        currencies[ln.customer_id][ln.currency] += 1
    columns: dict[str, list[object]] = {
        "customer_id": list(names),
        "customer_name": [c.most_common(1)[0][0] for c in names.values()],
        "currency": [currencies[c].most_common(1)[0][0] for c in names],
    }
    return _table("customers", columns, len(names))


def documents_table(docs: list[CustomerLine], default_terms_days: int) -> pa.Table:
    """Invoices and credit notes (a credit note spread over several invoices: one row per part, ``~2``...)."""
    inv: dict[str, list[object]] = defaultdict(list)

    def add(doc_id: str, ln: CustomerLine, doc_type: str, credited: str | None, amount: Decimal, due: date) -> None:
        inv["invoice_id"].append(doc_id)
        inv["customer_id"].append(ln.customer_id)
        inv["document_type"].append(doc_type)
        inv["credited_invoice_id"].append(credited)
        inv["issue_date"].append(ln.doc_date)
        inv["due_date"].append(due)
        inv["amount"].append(amount)
        inv["currency"].append(ln.currency)
        inv["payment_terms_days"].append((due - ln.doc_date).days)
        inv["_source_row"].append(ln.line_no)

    for ln in docs:
        issue = ln.doc_date
        if ln.is_debit:
            due = ln.due_date if ln.due_date and ln.due_date >= issue else issue + timedelta(days=default_terms_days)
            add(ln.identity, ln, "invoice", None, ln.amount, due)
        else:
            for k, (credited, part) in enumerate(ln.parts, start=1):
                doc_id = ln.identity if k == 1 else f"{ln.identity}~{k}"
                add(doc_id, ln, "credit_note", credited, -part, issue)
    return _table("invoices", inv, len(inv["invoice_id"]), source_row=True)


def payments_tables(lines: list[CustomerLine]) -> tuple[pa.Table, pa.Table]:
    """Payments (the credit lines of one entry and customer) and their allocations per (payment, invoice)."""
    pay_lines: dict[PaymentKey, list[CustomerLine]] = defaultdict(list)
    for ln in lines:
        if not ln.is_debit and not ln.is_credit_note:
            pay_lines[payment_key(ln)].append(ln)
    ids = payment_ids(list(pay_lines))
    pay: dict[str, list[object]] = defaultdict(list)
    alloc: dict[tuple[str, str], Decimal] = {}
    for key, members in pay_lines.items():
        payment_id = ids[key]
        pay["payment_id"].append(payment_id)
        pay["customer_id"].append(key[0])
        pay["payment_date"].append(min(m.payment_date for m in members))
        pay["amount"].append(sum((m.amount for m in members), Decimal("0.00")))
        pay["currency"].append(Counter(m.currency for m in members).most_common(1)[0][0])
        pay["_source_row"].append(min(m.line_no for m in members))
        for m in members:
            for invoice_id, part in m.parts:
                if invoice_id is not None:
                    alloc[(payment_id, invoice_id)] = alloc.get((payment_id, invoice_id), Decimal("0.00")) + part
    allocations: dict[str, list[object]] = {
        "payment_id": [k[0] for k in alloc],
        "invoice_id": [k[1] for k in alloc],
        "allocated_amount": list(alloc.values()),
    }
    payments = _table("payments", pay, len(pay_lines), source_row=True)
    return payments, _table("payment_allocations", allocations, len(alloc))


def entity_tables(all_lines: list[CustomerLine], default_terms_days: int) -> dict[str, pa.Table]:
    """Customers, invoices, payments and allocations from parsed customer lines (zero lines make no document)."""
    lines = [ln for ln in all_lines if ln.net != 0]
    docs = [ln for ln in lines if ln.is_debit or ln.is_credit_note]
    assign_document_ids(docs)
    allocate_lettering(lines)
    payments, allocations = payments_tables(lines)
    return {
        "customers": customers_table(all_lines),
        "invoices": documents_table(docs, default_terms_days),
        "payments": payments,
        "payment_allocations": allocations,
    }
