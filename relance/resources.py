"""Files the product ships with, found through the installed package, never the working directory.

In a wheel the dbt project is packaged as ``relance/dbt_project/`` (``pyproject.toml`` maps the repository's
top-level ``dbt_project/`` there); in a checkout installed in editable mode it is the repository's own
``dbt_project/``, next to the ``relance`` package. Either way the answer depends only on where the code is.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_FILE = "dbt_project.yml"


def packaged_dbt_project() -> Path:
    """The dbt project this code was installed with.

    Raises:
        FileNotFoundError: neither the packaged copy nor a checkout's ``dbt_project/`` is there (a broken
            install); ``RELANCE_PROJECT_ROOT`` can point at a checkout instead.
    """
    candidates = (_PACKAGE_DIR / "dbt_project", _PACKAGE_DIR.parent / "dbt_project")
    for candidate in candidates:
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        "the dbt project is not installed with relance (looked for "
        + " and ".join(str(c / PROJECT_FILE) for c in candidates)
        + "); reinstall the package or set RELANCE_PROJECT_ROOT to a checkout"
    )
