"""RELIABILITY.md names a test for every fault it lists: each named test file and test function must exist, so
the document cannot silently point at tests that were renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_reliability_md_names_exists() -> None:
    text = (ROOT / "RELIABILITY.md").read_text(encoding="utf-8")
    files = set(re.findall(r"`((?:unit|integration|e2e)/test_\w+\.py)", text))
    assert len(files) >= 10
    missing_files = [f for f in files if not (ROOT / "tests" / f).is_file()]
    assert not missing_files
    sources = "\n".join((ROOT / "tests" / f).read_text(encoding="utf-8") for f in files)
    names = set(re.findall(r"::(test_\w+)", text))
    assert len(names) >= 40
    missing = sorted(n for n in names if not re.search(rf"def {n}\b", sources))
    assert not missing, f"RELIABILITY.md names tests that do not exist: {missing}"
