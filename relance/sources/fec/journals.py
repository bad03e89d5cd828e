"""Which kind of journal a line was booked in: sales (a credit is a credit note) or opening balances."""

from __future__ import annotations

import unicodedata

SALES_JOURNAL_CODES = frozenset({"V", "VE", "VT", "VEN", "VTE", "VENTE", "VENTES"})
OPENING_JOURNAL_CODES = frozenset({"AN", "ANO", "RAN"})


def _fold(text: str) -> str:
    """Upper case without accents, for matching journal labels."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).upper()


def is_sales_journal(code: str, label: str) -> bool:
    """A sales journal, where a credit on a customer line is a credit note rather than a payment."""
    return code.strip().upper() in SALES_JOURNAL_CODES or "VENTE" in _fold(label)


def is_opening_journal(code: str, label: str) -> bool:
    """An opening-balance journal (à-nouveaux), whose lines carry items from earlier years."""
    folded = _fold(label)
    return code.strip().upper() in OPENING_JOURNAL_CODES or "NOUVEAU" in folded or "OUVERTURE" in folded
