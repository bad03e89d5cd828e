"""Deterministic, stable ids of what an FEC yields.

A document (invoice or credit note) or a payment keeps one id across exports of the same books: the reminder key of
an invoice is built on it, so an id that changes between two exports is a second invoice to dun.

The rule, for documents:

* the lines carrying a given ``PieceRef`` (trimmed, non-empty) are ranked by fields of their own that a later
  export does not change: invoices (net debits) before credit notes, then ``JournalCode``, then ``EcritureNum``
  (numbers compared as numbers), then ``EcritureDate``, ``PieceDate``, account, auxiliary account,
  ``EcritureLib``, debit and credit. The first line of that order takes the ``PieceRef`` as its id;
* every other document line (sharing a reference, or with an empty one) gets ``FEC-`` + 16 hex digits of a sha1
  over (journal code, ``EcritureNum``, ``EcritureDate``, ``PieceRef``, account, auxiliary account,
  ``EcritureLib``, debit, credit, rank among lines identical in all of these).

Never the line number, nor the lettering or validation columns, and never whether a reference is unique in the
file. Before, a ``PieceRef`` was the id only while it was unique: a credit note, an instalment or a correction
entered later with the same reference turned the invoice's id into a hash (and back when it went away), giving
one invoice two reminder keys. Now adding documents keeps every existing id, because validated FEC entries are
numbered chronologically (a later entry has a higher ``EcritureNum`` in its journal) and a credit note never
ranks before an invoice. The limit: a document with the same ``PieceRef`` that ranks first although it was entered
later (another journal whose code sorts first; or, where an exporter writes ``EcritureNum`` 0 everywhere, an earlier
date) takes the reference over, and the previous holder gets its hash id.

Payments follow the same rule: the payment (the credit lines of one customer in one entry) that ranks first by
(journal, ``EcritureNum``, payment date, customer) takes its ``PieceRef``, any other gets ``FEC-P`` + a hash of
(customer, journal, ``EcritureNum``, payment date, ``PieceRef``). A bank statement reference shared by receipts of
several customers therefore names the first one, and keeps naming it as the statement grows.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from relance.sources.fec.lines import CustomerLine

PaymentKey = tuple[str, str, str, str, str]  # customer, journal, EcritureNum, payment date, PieceRef


def identity_hash(*parts: object) -> str:
    """16 hex digits of sha1 over the parts, joined unambiguously."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


def _entry_number(num: str) -> tuple[int, int, str]:
    """``EcritureNum`` for ordering: numbers as numbers (9 before 10), other forms after, as text."""
    digits = num.strip()
    return (0, int(digits), "") if digits.isdigit() else (1, 0, digits)


def _document_rank(d: CustomerLine) -> tuple[object, ...]:
    """A document line's place among the lines sharing its PieceRef: only fields a later export keeps."""
    return (
        not d.is_debit,
        d.journal.upper(),
        _entry_number(d.entry_num),
        d.entry_date,
        d.doc_date,
        d.account,
        d.aux_account,
        d.label,
        d.debit,
        d.credit,
    )


def assign_document_ids(docs: list[CustomerLine]) -> None:
    """Invoice / credit-note ids: the PieceRef for the first-ranked line carrying it, else a content hash."""
    holders: dict[str, CustomerLine] = {}
    for d in sorted((d for d in docs if d.piece_ref), key=_document_rank):  # stable: twins keep file order
        holders.setdefault(d.piece_ref, d)
    seen: Counter[tuple[object, ...]] = Counter()
    for d in docs:
        if d.piece_ref and holders[d.piece_ref] is d:
            d.identity = d.piece_ref
            continue
        key = (
            d.journal.upper(),
            d.entry_num,
            d.entry_date.isoformat(),
            d.piece_ref,
            d.account,
            d.aux_account,
            d.label,
            d.debit,
            d.credit,
        )
        seen[key] += 1
        d.identity = "FEC-" + identity_hash(*key, seen[key])


def payment_key(line: CustomerLine) -> PaymentKey:
    """Lines of one customer in one accounting entry form one payment (carried items: one per original date)."""
    return (line.customer_id, line.journal.upper(), line.entry_num, line.payment_date.isoformat(), line.piece_ref)


def _payment_rank(key: PaymentKey) -> tuple[object, ...]:
    customer, journal, entry_num, payment_date, _ = key
    return (journal, _entry_number(entry_num), payment_date, customer)


def payment_ids(keys: list[PaymentKey]) -> dict[PaymentKey, str]:
    """Payment ids: the PieceRef for the first-ranked payment carrying it, else a hash of the payment's key."""
    holders: dict[str, PaymentKey] = {}
    for key in sorted((k for k in keys if k[4]), key=_payment_rank):
        holders.setdefault(key[4], key)
    return {key: key[4] if key[4] and holders[key[4]] == key else "FEC-P" + identity_hash(*key) for key in keys}
