"""An installed wheel carries the schedules: `relance serve` and `relance status` read infra/prefect.yaml from the
package (relance/infra/prefect.yaml), from any working directory, the very file `prefect deploy --all` reads."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_deployments_file_where_relance_reads_it(tmp_path: Path) -> None:
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)], check=True)
    (wheel,) = (tmp_path / "dist").glob("relance-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "relance/infra/prefect.yaml" in names, "pyproject.toml must map infra/prefect.yaml into the wheel"
        assert archive.read("relance/infra/prefect.yaml") == (ROOT / "infra" / "prefect.yaml").read_bytes()
        archive.extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "from relance.operations import deployments_file, load_deployments; "
        "print(deployments_file()); print(' '.join(s.name for s in load_deployments()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    )
    where, names = done.stdout.splitlines()
    assert Path(where) == tmp_path / "site" / "relance" / "infra" / "prefect.yaml"
    assert names.split() == ["daily", "weekly-finance-report", "weekly-retraining", "hourly-risk-watch"]
