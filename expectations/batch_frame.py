"""Read one raw load batch into pandas: the rows a checkpoint validates and the rows quarantine copies.

:func:`read_batch` selects the batch's rows from ``raw.<entity>`` (``_batch_id`` = the batch; batches are bounded)
with their ``_row_number``, the SQL-derived columns of :mod:`expectations.suites` and each row as JSON;
:func:`checkpoint_frame` turns that into the frame the entity's checkpoint runs on.

Bounded: a checkpoint validates a batch as one pandas frame (uniqueness and volume expectations need the whole
batch), so a batch larger than ``max_rows`` (:data:`MAX_BATCH_FRAME_ROWS`, about 0.5 KiB of memory a row with its
JSON copy) is refused with :class:`BatchTooLarge` before anything is read, instead of exhausting memory; split
the source file, or raise the cap on a machine that has the memory.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from expectations.suites import ROW_NUMBER_COLUMN, SQL_DERIVED_COLUMNS, VOLUME_COLUMN, prepare_frame
from relance import ops
from relance.raw_schema import entity

ROW_JSON = "_row_json"
MAX_BATCH_FRAME_ROWS = 10_000_000


class BatchTooLarge(ValueError):
    """A batch with more rows than one validation frame may hold."""


def read_batch(
    con: duckdb.DuckDBPyConnection, info: ops.BatchRecord, *, max_rows: int = MAX_BATCH_FRAME_ROWS
) -> pd.DataFrame:
    """The batch's raw rows (tombstones excluded) + ``_row_number``, SQL-derived columns and ``_row_json``.

    Raises:
        BatchTooLarge: the batch holds more than ``max_rows`` rows (nothing is read into memory).
    """
    ent = entity(info.entity)
    live = "_batch_id = ? AND NOT coalesce(_deleted, false)"
    (n_rows,) = con.execute(f"SELECT count(*) FROM {ent.qualified} WHERE {live}", [info.batch_id]).fetchone()  # type: ignore[misc]
    if n_rows > max_rows:
        raise BatchTooLarge(
            f"batch {info.batch_id} ({info.entity} from {info.source_file}) holds {n_rows:,} rows, over the "
            f"{max_rows:,}-row cap of one validation frame (expectations.batch_frame.MAX_BATCH_FRAME_ROWS); "
            "split the source file"
        )
    cols = ", ".join(f'"{c}"' for c in ent.columns)
    packed = ", ".join(f'"{c}" := "{c}"' for c in ent.columns)
    derived = "".join(f", {expr} AS {name}" for name, expr in SQL_DERIVED_COLUMNS.get(info.entity, {}).items())
    sql = (
        f"SELECT {cols}{derived}, to_json(struct_pack({packed}))::VARCHAR AS {ROW_JSON}, "
        # the source's own row number (file line, query position), as load rejects name rows; by position for
        # rows loaded before raw kept it
        f"coalesce(_source_row, row_number() OVER (ORDER BY rowid)) AS {ROW_NUMBER_COLUMN} "
        # tombstones (a full snapshot retiring keys) copy a valid version: nothing to validate, and a warning
        # that quarantined one would bring its key back
        f"FROM {ent.qualified} WHERE {live} ORDER BY {ROW_NUMBER_COLUMN}"
    )
    return con.execute(sql, [info.batch_id]).df()


def checkpoint_frame(info: ops.BatchRecord, df: pd.DataFrame) -> pd.DataFrame:
    """What the checkpoint validates: the Python-derived columns added, the batch's ``rows_read`` on every row."""
    frame = prepare_frame(info.entity, df.drop(columns=[ROW_JSON]))
    frame[VOLUME_COLUMN] = info.rows_read
    return frame
