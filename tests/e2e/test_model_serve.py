"""`relance model serve` (issue 10, item 8): the champion over HTTP gives the numbers batch scoring stored.

The server was started on the demo's data at the end of the shared sequence (tests/e2e/conftest.py); this test
posts the demo's scoring rows to it as any HTTP client would and compares with ``ops.predictions``.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import date

import duckdb
import pytest

from models.contract import FEATURE_COLUMNS, PREDICTION
from models.features import load_scoring_frame
from tests.e2e.conftest import AS_OF, DemoRun, _wait_for_http

pytestmark = pytest.mark.e2e


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_the_served_champion_answers_what_batch_scoring_stored(demo_run: DemoRun) -> None:
    _wait_for_http(f"{demo_run.model_server}/ping")
    with duckdb.connect(str(demo_run.data / "warehouse.duckdb"), read_only=True) as con:
        frame = load_scoring_frame(con, date.fromisoformat(AS_OF))
        stored = dict(
            con.execute(
                f"select invoice_id, {PREDICTION} from ops.predictions where as_of_date = ?", [AS_OF]
            ).fetchall()
        )
        (version,) = con.execute(
            "select distinct model_version from ops.predictions where as_of_date = ?", [AS_OF]
        ).fetchone()
    assert len(frame) > 100 and set(frame["invoice_id"]) == set(stored)
    # the JSON a client sends: pandas' split orientation (missing values as null)
    body = json.loads(frame[list(FEATURE_COLUMNS)].to_json(orient="split", index=False, date_format="iso"))
    answer = _post(f"{demo_run.model_server}/invocations", {"dataframe_split": body})
    served = [row[PREDICTION] for row in answer["predictions"]]
    assert len(served) == len(frame)
    worst = max(abs(p - stored[i]) for i, p in zip(frame["invoice_id"], served, strict=True))
    assert worst < 1e-9, f"HTTP and batch scoring differ by up to {worst}"
    log = (demo_run.tmp / "model-serve.log").read_text()
    assert f"v{version} (@champion" in " ".join(log.split()), log
