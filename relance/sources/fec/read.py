"""The read: an FEC file's bytes decoded, its header's layout found, its customer lines parsed (broken ones
rejected with line and reason), and the derived entity tables handed over as extracts.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from relance.sources.base import EntityExtract, Reject, SourceError
from relance.sources.encoding import decode_bytes
from relance.sources.fec.entities import entity_tables
from relance.sources.fec.layout import FecLayout, detect_layout
from relance.sources.fec.lines import CustomerLine, parse_line, records, split_fields

log = logging.getLogger(__name__)

DEFAULT_TERMS_DAYS = 30


@dataclass(frozen=True)
class FecParse:
    """What parsing one file found: its layout, the customer lines and the rejected lines."""

    layout: FecLayout
    lines_read: int  # data records (header excluded)
    lines: list[CustomerLine]  # customer lines parsed (zero lines included, rejected lines excluded)
    rejects: list[Reject]


def parse_fec(data: bytes, source: str, customer_accounts: str) -> FecParse:
    """Decode the bytes, detect the layout and parse every customer line (pure: no I/O)."""
    if not customer_accounts:
        raise ValueError("customer_accounts must be a non-empty account prefix such as '411'")
    text, encoding = decode_bytes(data)
    if encoding != "utf-8-sig":
        log.info("%s: not valid UTF-8, decoded as %s", source, encoding)
    recs = records(text)
    if not recs:
        raise SourceError(f"{source}: empty file, expected an FEC header line")
    _, header = recs[0]
    layout = detect_layout(
        header.lstrip("\ufeff"), encoding=encoding, has_bom=data.startswith(b"\xef\xbb\xbf"), source=source
    )
    rejects: list[Reject] = []
    lines: list[CustomerLine] = []
    for line_no, record in recs[1:]:
        fields = split_fields(record, layout)
        if fields is None:
            n_fields = len(record.split(layout.separator))
            rejects.append(
                Reject(
                    "invoices",
                    line_no,
                    f"line has {n_fields} {layout.separator_name}-separated fields, header has {len(layout.columns)}",
                    {"line": line_no, "text": record[:1000]},
                )
            )
            continue
        parsed = parse_line(line_no, fields, layout, customer_accounts)
        if isinstance(parsed, Reject):
            rejects.append(parsed)
        elif parsed is not None:
            lines.append(parsed)
    return FecParse(layout, len(recs) - 1, lines, rejects)


def read_fec(
    path: Path,
    *,
    customer_accounts: str = "411",
    default_terms_days: int = DEFAULT_TERMS_DAYS,
) -> list[EntityExtract]:
    """Read an FEC file into extracts of customers, invoices, payments and payment_allocations.

    Args:
        path: the FEC file (any of the encodings, separators and line ends described in :mod:`relance.sources.fec`).
        customer_accounts: account prefix of customer lines (``411``; ``41`` would include 416 doubtful
            debts and 419 advances).
        default_terms_days: payment terms used for the due date when the file has no ``DateRglt``.

    Returns:
        Four :class:`EntityExtract` (customers, invoices, payments, payment_allocations) sharing the file's
        path and sha256; rejects are attached to the entity each broken line was meant to become.

    Raises:
        SourceError: the file cannot be read, is empty, or its header lacks mandatory FEC columns.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read FEC file: {exc}") from exc
    file_hash = hashlib.sha256(data).hexdigest()
    parsed = parse_fec(data, str(path), customer_accounts)
    tables = entity_tables(parsed.lines, default_terms_days)
    source_file = str(path.resolve())
    by_entity: dict[str, list[Reject]] = defaultdict(list)
    for r in parsed.rejects:
        by_entity[r.entity].append(r)
    extracts = [
        EntityExtract(name, table, source_file, file_hash, rejects=by_entity.get(name, []))
        for name, table in tables.items()
    ]
    log.info(
        "%s: FEC %s/%s, %d lines, %d customer lines -> %s; %d rejected",
        path.name,
        parsed.layout.encoding,
        parsed.layout.separator_name,
        parsed.lines_read,
        len(parsed.lines),
        ", ".join(f"{e.entity} {e.table.num_rows}" for e in extracts if isinstance(e.table, pa.Table)),
        len(parsed.rejects),
    )
    return extracts
