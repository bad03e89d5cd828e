"""The GX file context at ``gx_dir``: its quiet set-up, the checkpoints registered in it, its data docs site.

Suites, validation definitions and checkpoints are (re)written there from code on every run (the suites of
:mod:`expectations.suites` are the source of truth, not the JSON files). Checkpoints carry no actions: the data
docs site is rendered by :func:`render_data_docs`, once per validation call and only for that call's results,
instead of once per checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

from expectations.suites import ROW_NUMBER_COLUMN, build_suite, suite_name
from relance.raw_schema import NATURAL_KEYS

DATASOURCE_NAME = "relance_raw"
BATCH_DEFINITION_NAME = "whole_batch"
DATA_DOCS_INDEX = Path("uncommitted") / "data_docs" / "local_site" / "index.html"


def file_context(gx_dir: Path) -> Any:
    """A quiet GX file context rooted at ``gx_dir`` (``great_expectations.yml`` lives there)."""
    gx_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    current = ctx.variables.progress_bars
    if current is None or getattr(current, "globally", None) is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.variables.save()
    return ctx


def entity_checkpoint(ctx: Any, entity_name: str) -> Any:
    """(Re)register the suite, validation definition and checkpoint of an entity from code."""
    try:
        ds = ctx.data_sources.get(DATASOURCE_NAME)
    except (KeyError, ValueError):
        ds = ctx.data_sources.add_pandas(DATASOURCE_NAME)
    asset_names = {a.name for a in ds.assets}
    asset = ds.get_asset(entity_name) if entity_name in asset_names else ds.add_dataframe_asset(entity_name)
    bd_names = {b.name for b in asset.batch_definitions}
    bd = (
        asset.get_batch_definition(BATCH_DEFINITION_NAME)
        if BATCH_DEFINITION_NAME in bd_names
        else asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
    )
    name = suite_name(entity_name)
    suite = ctx.suites.add_or_update(build_suite(entity_name))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=bd, suite=suite))
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[vd],
            actions=[],
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [*NATURAL_KEYS[entity_name], ROW_NUMBER_COLUMN],
            },
        )
    )


def render_data_docs(ctx: Any, gx_dir: Path, results: list[Any]) -> Path | None:
    """Render the pages of these checkpoint results (and of their suites) and the site index, in one build.

    What one ``UpdateDataDocsAction`` per checkpoint rendered, without re-rendering the index (and re-listing
    every stored result) after each one. Returns the site's ``index.html``, or ``None`` if it was not written.
    """
    identifiers: list[Any] = []
    for result in results:
        for key, run in result.run_results.items():
            identifiers += [key, ExpectationSuiteIdentifier(name=run.suite_name)]
    ctx.build_data_docs(resource_identifiers=identifiers)
    index = gx_dir / DATA_DOCS_INDEX
    return index if index.is_file() else None
