"""The layout is the architecture: dependencies point flows -> relance, models, expectations, dbt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["relance", "models", "expectations"])
def test_library_layers_import_no_prefect_and_no_flows(package: str) -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"prefect", "prefect_dbt", "flows"})
        for p in (ROOT / package).rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package}/ must not import Prefect or flows/: {offenders}"


#: What each package may import of the others: relance at the bottom, flows at the top (no cycles).
LAYERS = {
    "relance": set(),
    "expectations": {"relance"},
    "models": {"relance"},
    "flows": {"relance", "models", "expectations"},
}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_packages_import_only_the_layers_below(package: str) -> None:
    others = set(LAYERS) - {package}
    offenders = {
        str(p.relative_to(ROOT)): sorted((_imports(p) & others) - LAYERS[package])
        for p in (ROOT / package).rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package}/ may import only {sorted(LAYERS[package]) or 'none of the others'}: {offenders}"


def test_cli_loads_flows_only_lazily_by_import_path() -> None:
    source = (ROOT / "relance" / "cli.py").read_text()
    assert 'import_module(f"flows.' in source
    assert not (_imports(ROOT / "relance" / "cli.py") & {"prefect", "flows"})


def test_flows_one_flow_per_file() -> None:
    for path in (ROOT / "flows").glob("*.py"):
        if path.name.startswith("_"):
            continue
        count = path.read_text().count("@flow(")
        assert count == 1, f"{path.name} defines {count} flows; one flow per file"


def test_no_package_registry_host_is_committed() -> None:
    # assembled at run time so that this file itself names no registry host
    hosts = tuple(
        ".".join(parts) for parts in (("pypi", "org"), ("pythonhosted", "org"), ("npmjs", "org"), ("debian", "org"))
    )
    for name in ("requirements.lock", "pyproject.toml", "Makefile", "README.md"):
        path = ROOT / name
        if path.exists():
            text = path.read_text()
            assert not any(h in text for h in hosts), f"{name} names a package registry host"
    assert not (ROOT / "uv.lock").exists()


def test_flows_hold_no_sql() -> None:
    """Flows orchestrate; reading a relation is relance.warehouse.read_for_date, building one is dbt's."""
    for path in (ROOT / "flows").glob("*.py"):
        text = path.read_text().lower()
        assert "select " not in text and ".sql(" not in text and ".execute(" not in text, path.name
