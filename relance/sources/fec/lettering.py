"""Lettering: within each group of one customer's lines sharing an ``EcritureLet``, credits (payments and credit
notes, oldest first) are allocated to debits (invoices, oldest first) until one side runs out.

A group that does not balance leaves the remainder of its invoices open, or of its credits unallocated;
unlettered credits stay on account. Two currencies are never netted. The result is each credit line's
``parts``: (invoice id or ``None`` for on account, amount).
"""

from __future__ import annotations

from collections import defaultdict

from relance.sources.fec.lines import CustomerLine


def allocate_group(group: list[CustomerLine]) -> None:
    """Allocate a lettering group's credits to its debits, oldest first, into each credit's ``parts``."""
    debits = sorted((ln for ln in group if ln.is_debit), key=lambda ln: (ln.doc_date, ln.line_no))
    credits = sorted((ln for ln in group if not ln.is_debit), key=lambda ln: (ln.credit_date, ln.line_no))
    remaining = [d.amount for d in debits]
    i = 0
    for credit in credits:
        left = credit.amount
        while left > 0 and i < len(debits):
            if debits[i].currency != credit.currency:  # never net two currencies; leave it on account
                break
            take = min(left, remaining[i])
            credit.parts.append((debits[i].identity, take))
            left -= take
            remaining[i] -= take
            if remaining[i] == 0:
                i += 1
        if left > 0:
            credit.parts.append((None, left))


def allocate_lettering(lines: list[CustomerLine]) -> None:
    """Allocate every lettering group (per customer and code, case-sensitive); unlettered credits on account.

    The debits must already carry their document ids (``identity``).
    """
    groups: dict[tuple[str, str], list[CustomerLine]] = defaultdict(list)
    for ln in lines:
        if ln.lettering:
            groups[(ln.customer_id, ln.lettering)].append(ln)
    for group in groups.values():
        allocate_group(group)
    for ln in lines:
        if not ln.is_debit and not ln.parts:
            ln.parts.append((None, ln.amount))  # unlettered credit: on account
