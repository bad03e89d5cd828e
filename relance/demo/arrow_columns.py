"""numpy arrays as the Arrow columns of the landing files: zero-padded ids, exact decimals from integer cents,
dates and timestamps from day and second numbers, strings of a small vocabulary from integer codes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def str_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    padded = pc.utf8_lpad(pa.array(numbers.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def decimal_from_cents(cents: np.ndarray) -> pa.Array:
    """Exact DECIMAL(18,2) from integer cents (no float round trip): 128-bit two's complement."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    buf = np.empty((len(cents), 2), dtype=np.int64)
    buf[:, 0] = cents
    buf[:, 1] = -(cents < 0).astype(np.int64)
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(buf)])


def dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(days, dtype=np.int32), mask=null)
    return arr.cast(pa.date32())


def timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64), mask=null).cast(pa.timestamp("s"))


def vocab(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Strings from a small vocabulary by integer code (negative code -> null)."""
    codes = np.asarray(codes, dtype=np.int64)
    return pc.take(pa.array(list(values), pa.string()), pa.array(codes, mask=codes < 0))
