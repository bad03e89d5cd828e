"""Values between the database and the loader: a watermark as the text ``ops.source_watermarks`` stores and back
as a typed query parameter, and any database value as text the loader's ``TRY_CAST`` understands."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any


def watermark_to_str(value: Any) -> str:
    """ISO text of a watermark value as stored in ``ops.source_watermarks``."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def watermark_param(text: str) -> Any:
    """Python value to bind for a stored watermark: int, date or datetime when it reads as one, else the text.

    Typed parameters let the database compare with its own column type (``timestamp``, ``timestamptz``, ``date``,
    ``bigint``) instead of comparing text.
    """
    stripped = text.strip()
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        return date.fromisoformat(stripped)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", stripped):
        try:
            return datetime.fromisoformat(stripped)
        except ValueError:
            return text
    return text


def overlap_start(previous: Any, overlap: timedelta) -> Any:
    """Where an incremental read starts again: ``overlap`` before a timestamp watermark, whole days of it before a
    date, the watermark itself otherwise (ids, versions, text), always inclusive (``>=``).

    Why: a row committed late (its transaction began before the last read took ``max(updated_at)``) carries an
    ``updated_at`` at or below the stored watermark; a strict ``>`` would skip it forever. The loader's
    (natural key, row hash) deduplication makes the rows read again come back ``unchanged``.
    """
    if isinstance(previous, datetime):
        return previous - overlap
    if isinstance(previous, date):
        return previous - timedelta(days=overlap.days)
    return previous


def as_text(value: Any) -> str | None:
    """A database value as text the loader's ``TRY_CAST`` understands (timestamps in UTC, no offset)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
