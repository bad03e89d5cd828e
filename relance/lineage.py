"""Lineage identifiers gathered once per run and stamped on every row and message.

The chain: reminder_key -> ops.reminders_planned (flow run id, model version, MLflow run id, dbt invocation id)
-> ml.ml_invoice_features (dbt invocation id) -> staging (raw_batch_id) -> raw rows (_batch_id, _file_hash).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)


def package_version() -> str:
    """The installed relance version (what an installed wheel can say about its code)."""
    try:
        return metadata.version("relance")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_sha(where: Path | None = None) -> str:
    """The commit of the checkout the code runs from (default: the one holding this package), or 'unknown'
    outside a git checkout (an installed wheel: see :func:`package_version`)."""
    where = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dbt_invocation_id(target_dir: Path) -> str:
    """The invocation id of the last dbt command, from its run_results.json (written by every build)."""
    path = target_dir / "run_results.json"
    try:
        return json.loads(path.read_text())["metadata"]["invocation_id"]
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"cannot read the dbt invocation id from {path}: {exc}") from exc


DBT_ARTIFACTS = ("run_results.json", "manifest.json")


def archive_dbt_invocation(target_dir: Path, archive_root: Path) -> str:
    """Keep the artefacts of the last dbt command under ``archive_root/<invocation_id>/``; return the id.

    The target directory is overwritten by every dbt command and the ML tables are rebuilt, so without this a
    dbt invocation id stamped on a prediction or a reminder would stop resolving after the next run.
    """
    invocation_id = dbt_invocation_id(target_dir)
    dest = archive_root / invocation_id
    dest.mkdir(parents=True, exist_ok=True)
    for name in DBT_ARTIFACTS:
        if (target_dir / name).exists():
            shutil.copy2(target_dir / name, dest / name)
    return invocation_id
