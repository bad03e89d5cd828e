"""The read: an FEC file's bytes decoded, its header's layout found, its customer lines parsed (broken ones
rejected with line and reason), and the derived entity tables handed over as extracts.

Bounded memory: the file is streamed (encoding found by streaming, text decoded 1 MiB at a time, records split
as they come), so only the parsed customer (411) lines are kept, never the file's bytes, its text or its list
of records; revenue, VAT and bank lines (most of an FEC) are dropped as soon as they are split. The file size,
the line length and the field length are capped (:mod:`relance.sources.limits`): a file over its cap or a line
over the line cap is a :class:`SourceError`, a field over the cell cap rejects its line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from relance.sources.base import EntityExtract, Reject, SourceError, file_sha256
from relance.sources.encoding import decode_bytes, decoded_chunks, stream_encoding
from relance.sources.fec.entities import entity_tables
from relance.sources.fec.layout import FecLayout, detect_layout
from relance.sources.fec.lines import CustomerLine, LineTooLong, iter_records, parse_line, split_fields
from relance.sources.limits import DEFAULT_LIMITS, InputLimits, check_file_size, oversized_raw, oversized_reason

log = logging.getLogger(__name__)

DEFAULT_TERMS_DAYS = 30


@dataclass(frozen=True)
class FecParse:
    """What parsing one file found: its layout, the customer lines and the rejected lines."""

    layout: FecLayout
    lines_read: int  # data records (header excluded)
    lines: list[CustomerLine]  # customer lines parsed (zero lines included, rejected lines excluded)
    rejects: list[Reject]


def parse_fec(
    data: bytes, source: str, customer_accounts: str, *, max_cell_chars: int = DEFAULT_LIMITS.max_cell_chars
) -> FecParse:
    """Decode the bytes, detect the layout and parse every customer line (pure: no I/O)."""
    text, encoding = decode_bytes(data)
    return parse_records(
        iter_records([text]),
        source,
        customer_accounts,
        encoding=encoding,
        has_bom=data.startswith(b"\xef\xbb\xbf"),
        max_cell_chars=max_cell_chars,
    )


def parse_records(
    recs: Iterator[tuple[int, str]],
    source: str,
    customer_accounts: str,
    *,
    encoding: str,
    has_bom: bool,
    max_cell_chars: int = DEFAULT_LIMITS.max_cell_chars,
) -> FecParse:
    """Detect the layout from the first record and parse every customer line, consuming ``recs`` once."""
    if not customer_accounts:
        raise ValueError("customer_accounts must be a non-empty account prefix such as '411'")
    if encoding != "utf-8-sig":
        log.info("%s: not valid UTF-8, decoded as %s", source, encoding)
    try:
        first = next(recs, None)
        if first is None:
            raise SourceError(f"{source}: empty file, expected an FEC header line")
        _, header = first
        layout = detect_layout(header.lstrip("\ufeff"), encoding=encoding, has_bom=has_bom, source=source)
        rejects: list[Reject] = []
        lines: list[CustomerLine] = []
        lines_read = 0
        for line_no, record in recs:
            lines_read += 1
            fields = split_fields(record, layout)
            if fields is None:
                n_fields = len(record.split(layout.separator))
                rejects.append(
                    Reject(
                        "invoices",
                        line_no,
                        f"line has {n_fields} {layout.separator_name}-separated fields, header has "
                        f"{len(layout.columns)}",
                        {"line": line_no, "text": record[:1000]},
                    )
                )
                continue
            long = next((i for i, f in enumerate(fields) if len(f) > max_cell_chars), None)
            if long is not None:
                raw = oversized_raw(
                    {"line": str(line_no), **dict(zip(layout.columns, fields, strict=True))}, max_cell_chars
                )
                why = oversized_reason(layout.columns[long], len(fields[long]), max_cell_chars)
                rejects.append(Reject("invoices", line_no, why, raw))
                continue
            parsed = parse_line(line_no, fields, layout, customer_accounts)
            if isinstance(parsed, Reject):
                rejects.append(parsed)
            elif parsed is not None:
                lines.append(parsed)
    except LineTooLong as exc:
        raise SourceError(
            f"{source}: {exc}, over the cap for one line; not a line-oriented FEC file (nothing was loaded)"
        ) from None
    return FecParse(layout, lines_read, lines, rejects)


def read_fec(
    path: Path,
    *,
    customer_accounts: str = "411",
    default_terms_days: int = DEFAULT_TERMS_DAYS,
    limits: InputLimits = DEFAULT_LIMITS,
) -> list[EntityExtract]:
    """Read an FEC file into extracts of customers, invoices, payments and payment_allocations.

    Args:
        path: the FEC file (any of the encodings, separators and line ends described in :mod:`relance.sources.fec`).
        customer_accounts: account prefix of customer lines (``411``; ``41`` would include 416 doubtful
            debts and 419 advances).
        default_terms_days: payment terms used for the due date when the file has no ``DateRglt``.
        limits: file size, line length and field length caps (:mod:`relance.sources.limits`).

    Returns:
        Four :class:`EntityExtract` (customers, invoices, payments, payment_allocations) sharing the file's
        path and sha256; rejects are attached to the entity each broken line was meant to become.

    Raises:
        SourceError: the file cannot be read, is empty, is over the file cap, holds a line over the line cap,
            or its header lacks mandatory FEC columns.
    """
    path = Path(path)
    try:
        check_file_size(path, limits.max_file_bytes)
        file_hash = file_sha256(path)
        encoding = stream_encoding(path)
        with path.open("rb") as fh:
            has_bom = fh.read(3) == b"\xef\xbb\xbf"
        recs = iter_records(decoded_chunks(path, encoding), limits.max_line_chars)
        parsed = parse_records(
            recs,
            str(path),
            customer_accounts,
            encoding=encoding,
            has_bom=has_bom,
            max_cell_chars=limits.max_cell_chars,
        )
    except OSError as exc:
        raise SourceError(f"{path}: cannot read FEC file: {exc}") from exc
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
