"""Read one raw load batch into pandas: the rows a checkpoint validates and the rows quarantine copies.

:func:`read_batch` selects the batch's rows from ``raw.<entity>`` (``_batch_id`` = the batch; batches are bounded)
with their ``_row_number``, the SQL-derived columns of :mod:`expectations.suites` and each row as JSON;
:func:`checkpoint_frame` turns that into the frame the entity's checkpoint runs on.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from expectations.suites import ROW_NUMBER_COLUMN, SQL_DERIVED_COLUMNS, VOLUME_COLUMN, prepare_frame
from relance import ops
from relance.raw_schema import entity

ROW_JSON = "_row_json"


def read_batch(con: duckdb.DuckDBPyConnection, info: ops.BatchRecord) -> pd.DataFrame:
    """The batch's raw rows + ``_row_number``, SQL-derived columns and ``_row_json``."""
    ent = entity(info.entity)
    cols = ", ".join(f'"{c}"' for c in ent.columns)
    packed = ", ".join(f'"{c}" := "{c}"' for c in ent.columns)
    derived = "".join(f", {expr} AS {name}" for name, expr in SQL_DERIVED_COLUMNS.get(info.entity, {}).items())
    sql = (
        f"SELECT {cols}{derived}, to_json(struct_pack({packed}))::VARCHAR AS {ROW_JSON}, "
        f"row_number() OVER (ORDER BY rowid) AS {ROW_NUMBER_COLUMN} "
        f"FROM {ent.qualified} WHERE _batch_id = ? ORDER BY {ROW_NUMBER_COLUMN}"
    )
    return con.execute(sql, [info.batch_id]).df()


def checkpoint_frame(info: ops.BatchRecord, df: pd.DataFrame) -> pd.DataFrame:
    """What the checkpoint validates: the Python-derived columns added, the batch's ``rows_read`` on every row."""
    frame = prepare_frame(info.entity, df.drop(columns=[ROW_JSON]))
    frame[VOLUME_COLUMN] = info.rows_read
    return frame
