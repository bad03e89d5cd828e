"""Deterministic ids of what an FEC yields: the ``PieceRef`` when it names one document (or one payment) of the
file, else ``FEC-`` (``FEC-P`` for payments) and a hash of what identifies the line(s).

Never the line number, nor the lettering or validation columns: the same books exported again with more lines,
or with old lines lettered since, give the same ids.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from relance.sources.fec.lines import CustomerLine

PaymentKey = tuple[str, str, str, str, str]  # customer, journal, EcritureNum, payment date, PieceRef


def identity_hash(*parts: object) -> str:
    """16 hex digits of sha1 over the parts, joined unambiguously."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


def assign_document_ids(docs: list[CustomerLine]) -> None:
    """Invoice / credit-note ids: PieceRef when unique among document lines, else a content hash."""
    ref_counts = Counter(d.piece_ref for d in docs if d.piece_ref)
    seen: Counter[tuple[object, ...]] = Counter()
    for d in docs:
        if d.piece_ref and ref_counts[d.piece_ref] == 1:
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


def payment_ids(keys: list[PaymentKey]) -> dict[PaymentKey, str]:
    """Payment ids: PieceRef when it names exactly one payment of the file, else a hash of the payment's key."""
    ref_counts = Counter(key[4] for key in keys if key[4])
    return {key: key[4] if key[4] and ref_counts[key[4]] == 1 else "FEC-P" + identity_hash(*key) for key in keys}
