"""Money amounts as ledger exports write them: decimal comma or point, thousands separators, sign and padding.

One home for what both readers know about amounts: the characters that group thousands (a space also comes as
the no-break spaces of French typography) and the exact parse of an amount to Decimal cents. The FEC reader
parses in Python (:func:`parse_amount`); the tabular reader normalises in DuckDB SQL with the same separators
(:mod:`relance.sources.tabular.mapping_sql`), so the loader's ``TRY_CAST`` sees ``1234.56``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
# a space, a no-break space and a narrow no-break space: the three ways a space groups thousands
SPACE_SEPARATORS: tuple[str, ...] = (" ", "\u00a0", "\u202f")
THOUSANDS_SEPARATORS: tuple[str, ...] = (",", ".", " ", "'", "\u00a0", "\u202f")

_AMOUNT = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def thousands_marks(thousands: str) -> tuple[str, ...]:
    """The characters to remove for a file whose thousands separator is ``thousands`` (a space: all three)."""
    return SPACE_SEPARATORS if thousands == " " else (thousands,)


def parse_amount(text: str) -> Decimal:
    """An amount as exact Decimal cents; empty means zero. ``ValueError`` when it is not an amount.

    Accepts what exporters write: ``1234,56``, ``1234.56``, ``+000001107,13``, ``-12``, ``1 234,56``,
    ``1.234,56``; more than two decimals is refused rather than silently rounded.
    """
    s = text.strip()
    for space in SPACE_SEPARATORS:
        s = s.replace(space, "")
    if not s:
        return Decimal("0.00")
    if "," in s and "." in s:  # the last one is the decimal mark, the other groups thousands
        thousands = "." if s.rfind(",") > s.rfind(".") else ","
        s = s.replace(thousands, "")
    if not _AMOUNT.match(s):
        raise ValueError(f"{text.strip()!r} is not an amount (expected digits with a decimal comma)")
    try:
        value = Decimal(s.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"{text.strip()!r} is not an amount") from exc
    if value != value.quantize(CENT):
        raise ValueError(f"{text.strip()!r} has more than two decimals")
    return value.quantize(CENT)
