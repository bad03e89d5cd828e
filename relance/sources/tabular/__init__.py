"""Tabular ledgers (CSV, Excel, Parquet) mapped to the canonical raw entities by declarative YAML profiles.

Why profiles: every ERP, accounting package and spreadsheet exports receivables with its own column names,
separators, encodings, decimal commas and date formats. A profile states that mapping once, in data, so a new
export needs a YAML file and no code (``relance/sources/profiles/*.yaml`` ship with relance; any YAML file path
works too).

What this adapter does and does not do (see :mod:`relance.sources.base`): it never types values. Every column
is read as text (``read_csv(..., all_varchar=true)``, Excel cells as text) and only *normalised* in SQL (decimal
comma, thousands separators, ``date_format`` via ``try_strptime``) so that a value that does not fit stays the
original non-null text and the loader's ``TRY_CAST`` quarantines that row with the value and expected type,
instead of one bad cell failing the file. A date that ``try_strptime`` cannot parse with ``date_format`` keeps
its original text: the loader then accepts it only if it is an ISO date and quarantines it otherwise, which is
how a file with mixed date formats ends up as loaded rows plus quarantined rows with a reason.

CSV and Parquet extracts are DuckDB ``SELECT`` strings over the file (nothing is read into Python, a 10M-row
file streams); Excel sheets are streamed row by row with openpyxl into Arrow record batches and mapped with the
same SQL on a private DuckDB connection. Lines DuckDB cannot parse (a truncated last line, a line with too
many fields) become :class:`~relance.sources.base.Reject` rows naming the line, so counts reconcile.

One module per job:

* :mod:`~relance.sources.tabular.profile`: the profile schema (pydantic) and loading a profile;
* :mod:`~relance.sources.tabular.mapping_sql`: the SQL that maps a file's columns onto an entity;
* :mod:`~relance.sources.tabular.csv_file`, :mod:`~relance.sources.tabular.excel_sheet`,
  :mod:`~relance.sources.tabular.parquet_file`: each format's source relation and header
  (:mod:`~relance.sources.tabular.header` checks the header row of the first two);
* :mod:`~relance.sources.tabular.read`: :func:`read_tabular`, which ties them together.
"""

from relance.sources.tabular.profile import (
    EntityMapping,
    Profile,
    ProfileError,
    ReaderOptions,
    load_profile,
    packaged_profiles,
    parse_profile,
)
from relance.sources.tabular.read import read_tabular

__all__ = [
    "EntityMapping",
    "Profile",
    "ProfileError",
    "ReaderOptions",
    "load_profile",
    "packaged_profiles",
    "parse_profile",
    "read_tabular",
]
