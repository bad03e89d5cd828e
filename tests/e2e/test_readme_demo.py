"""The README demo, as a newcomer runs it: the `relance` CLI on an ephemeral Prefect API, in a subprocess.

Smaller than the real demo so the suite stays fast; `make demo` runs the full size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _relance(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "relance"
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_demo_then_rerun_sends_nothing_new(tmp_path: Path, repo_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_"))}
    env |= {"RELANCE_DATA_DIR": str(tmp_path / "data"), "RELANCE_PROJECT_ROOT": str(repo_root), "COLUMNS": "200"}
    demo = _relance(["demo", "--customers", "200", "--invoices", "5000"], env, repo_root)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-5000:]
    assert "Demo done" in demo.stdout
    emails = list((tmp_path / "data" / "outbox" / "email").glob("*.json"))
    assert emails
    assert (tmp_path / "data" / "prefect" / "prefect.db").exists(), "runs are kept for `relance ui`"

    again = _relance(["run", "daily", "--as-of", "2026-10-31"], env, repo_root)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    assert any(
        line.split()[:2] == ["reminders_sent", "0"]
        for line in (ln.replace("│", " ").strip() for ln in again.stdout.splitlines())
    )
    assert sorted((tmp_path / "data" / "outbox" / "email").glob("*.json")) == sorted(emails)
