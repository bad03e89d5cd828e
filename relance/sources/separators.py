"""Field separators of delimited text files (CSV exports, FEC files): their names, and picking the one that fits.

Why one module: both readers try each candidate separator on the first line(s) and keep the one that reads
best. Only what "best" means differs, so each reader passes its own score: a CSV export wants the most fields,
consistent from line to line (:mod:`relance.sources.tabular.csv_file`); an FEC wants its legal column names
(:mod:`relance.sources.fec.layout`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

SEPARATOR_NAMES: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def separator_name(separator: str) -> str:
    """Human name of a separator, for messages (``tab``, ``pipe``...)."""
    return SEPARATOR_NAMES.get(separator, repr(separator))


def best_separator(candidates: Sequence[str], score: Callable[[str], Any]) -> str | None:
    """The candidate with the highest ``score`` (the earliest candidate on a tie); ``None`` when every score is None.

    ``score`` returns a comparable value (a tuple: most important first), or ``None`` when the candidate cannot
    be the separator at all.
    """
    best: str | None = None
    best_score: Any = None
    for candidate in candidates:
        value = score(candidate)
        if value is not None and (best_score is None or value > best_score):
            best, best_score = candidate, value
    return best
