"""The FEC layout: the 18 legal columns, and which separator and header spelling one file uses.

A header is matched case-insensitively, padding and quotes ignored (``CompteLIB``, ``"Debit"``); known extra
columns (DateRglt, ModeRglt, NatOp, IdClient) are kept, unknown ones kept as written. The variant layout with
``Montant`` + ``Sens`` instead of ``Debit`` + ``Credit`` is accepted. A trailing separator on the header (one
empty extra field on every line) is tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass

from relance.sources.base import SourceError
from relance.sources.separators import best_separator, separator_name

# The 18 columns of the legal layout, canonical spelling.
FEC_COLUMNS: tuple[str, ...] = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
# The variant layout (A.47 A-1, II) writes one signed amount column and its direction instead.
AMOUNT_VARIANT: tuple[str, ...] = ("Montant", "Sens")
SEPARATORS: tuple[str, ...] = ("\t", "|", ";")

_KNOWN_EXTRA = ("DateRglt", "ModeRglt", "NatOp", "IdClient", "Montant", "Sens")
_CANONICAL = {name.lower(): name for name in (*FEC_COLUMNS, *_KNOWN_EXTRA)}


@dataclass(frozen=True)
class FecLayout:
    """How one FEC file is written: what :func:`detect_layout` found, kept so errors and logs can say it."""

    encoding: str  # the Python codec that decoded the file ('utf-8-sig', 'cp1252' or 'iso8859_15')
    separator: str  # '\t', '|' or ';'
    columns: tuple[str, ...]  # header names as canonical FEC spelling when known, else as written
    trailing_separator: bool  # the header ends with a separator (every line then has one empty extra field)
    has_bom: bool

    def index(self, column: str) -> int | None:
        """Position of a canonical column, or ``None`` when the file does not have it."""
        try:
            return self.columns.index(column)
        except ValueError:
            return None

    @property
    def separator_name(self) -> str:
        """Human name of the separator, for messages."""
        return separator_name(self.separator)


def _canonical(name: str) -> str:
    """Canonical spelling of a header name (case, padding and quotes ignored); unknown names kept as written."""
    clean = name.strip().strip('"').strip()
    return _CANONICAL.get(clean.lower(), clean)


def _missing_columns(columns: tuple[str, ...]) -> list[str]:
    """Mandatory FEC columns absent from a header (Debit/Credit may be replaced by Montant/Sens)."""
    present = set(columns)
    missing = [c for c in FEC_COLUMNS if c not in present]
    if {"Debit", "Credit"} & set(missing) and all(c in present for c in AMOUNT_VARIANT):
        missing = [c for c in missing if c not in ("Debit", "Credit")]
    return missing


def _header_columns(header_line: str, separator: str) -> tuple[str, ...]:
    """The header split on ``separator``, in canonical spelling."""
    return tuple(_canonical(n) for n in header_line.split(separator))


def detect_layout(header_line: str, *, encoding: str, has_bom: bool, source: str = "FEC file") -> FecLayout:
    """Find the separator and columns from the header line; :class:`SourceError` if it is not an FEC header.

    The separator is the candidate whose split yields the fewest missing mandatory columns (ties: the most
    fields), so a pipe inside a label of a tab file cannot fool it.
    """

    def score(sep: str) -> tuple[int, int]:
        columns = _header_columns(header_line, sep)
        return (-len(_missing_columns(columns)), len(columns))

    sep = best_separator(SEPARATORS, score)
    assert sep is not None  # every candidate has a score
    columns = _header_columns(header_line, sep)
    trailing = len(columns) > 1 and columns[-1] == ""
    if trailing:
        columns = columns[:-1]
    missing = _missing_columns(columns)
    if missing:
        raise SourceError(
            f"{source}: not an FEC file: header line 1 lacks mandatory column(s) {', '.join(missing)} "
            f"(best separator guess: {separator_name(sep)}; header read: {header_line[:200]!r})"
        )
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        raise SourceError(f"{source}: header line 1 repeats column(s) {', '.join(dupes)}")
    return FecLayout(encoding, sep, columns, trailing, has_bom)
