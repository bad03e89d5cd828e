"""The header row of a CSV file or an Excel sheet: refuse empty or repeated column names, with a hint."""

from __future__ import annotations

from relance.sources.base import SourceError


def check_header(names: list[str], where: str, header_row: int) -> list[str]:
    """Reject empty or duplicated column names: they usually mean a title row or a two-row header."""
    empty = [i + 1 for i, n in enumerate(names) if not n]
    lowered = [n.lower() for n in names if n]
    dupes = sorted({n for n in names if n and lowered.count(n.lower()) > 1})
    problems = []
    if empty:
        problems.append(f"empty column name(s) at position(s) {', '.join(map(str, empty))}")
    if dupes:
        problems.append(f"duplicated column name(s) {', '.join(repr(d) for d in dupes)}")
    if problems:
        raise SourceError(
            f"{where}: header row {header_row} has {' and '.join(problems)} (found: {names}); "
            "title rows above the header or a two-row header? set reader.header_row to the 1-based row "
            "that holds the column names"
        )
    return names
