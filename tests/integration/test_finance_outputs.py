"""The finance outputs end to end on a real warehouse: the daily run's report flow writes the flash and the weekly
report (files per language, ``ops.report_runs``, Prefect artifacts), emails each recipient group once in its
language (the outbox JSON carries the charts as CID attachments and the workbook), sends nothing on a rerun or
when the weekly deployment's flow runs after it; the workbook's totals match the ledger; the HTML renders in
headless Chromium; the SendGrid path goes through a spec-validating stand-in on 127.0.0.1.

The warehouse: the session's demo export (tests/conftest.py) built by the project's dbt runs as the daily run builds
it (features on a 28-day grid, scores written to ops.predictions by a model fitted on what was known before the
as-of date, then the serving stage), plus one risk alert whose title starts like a formula.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows._finance_outputs import ReportNotReadyError
from flows.publish_finance_report import publish_finance_report
from flows.publish_weekly_report import publish_weekly_report
from models.backtest import fit_relance, load_backtest_frame, training_rows
from models.contract import PREDICTION, QUANTILE_COLUMNS
from relance import dbt, ops
from relance.reports.finance_outputs import FinanceDeliveryError
from relance.send_ledger import SendLedger
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.conftest import DEMO_AS_OF, DbtInvoke, copy_warehouse, require
from tests.standins.sendgrid import running_sendgrid_standin

pytestmark = pytest.mark.integration

AS_OF = DEMO_AS_OF  # a Saturday: the weekly report is asked for explicitly
EVIL_TITLE = '=HYPERLINK("http://evil.example","x") : changement de dirigeant'
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ENV = {
    "RELANCE_SNAPSHOT_INTERVAL_DAYS": "28",
    "RELANCE_HISTORY_START_DAYS": "120",
    "RELANCE_FORECAST_BACKTEST_WEEKS": "4",
    "RELANCE_REPORT_RECIPIENTS": json.dumps(
        {
            "finance": {"emails": ["daf@example.com"], "language": "fr", "receives": ["weekly", "flash"]},
            "board": {"emails": ["board@example.com"], "language": "en", "receives": ["weekly"]},
            "data": {"emails": ["data@example.com"], "language": "en", "receives": ["failures"]},
        }
    ),
}


def _settings(data: Path, **extra) -> Settings:
    return Settings(
        data_dir=data,
        snapshot_interval_days=28,
        history_start_days=120,
        forecast_backtest_weeks=4,
        report_recipients=json.loads(ENV["RELANCE_REPORT_RECIPIENTS"]),
        **extra,
    )


@pytest.fixture(scope="module")
def built(demo_raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Path:
    """A data directory whose warehouse the daily run's dbt builds and scores made (see the module docstring)."""
    data = tmp_path_factory.mktemp("finance") / "data"
    path = copy_warehouse(demo_raw_warehouse, data)
    settings = _settings(data)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
    dbt.run_dbt(settings, dbt.daily_build_args(settings, AS_OF), invoke=dbt_invoke)
    with duckdb.connect(str(path)) as con:
        frame = load_backtest_frame(con, train_rows="all")
        predict = fit_relance(training_rows(frame, AS_OF, train_rows="all"))
        rows = frame.loc[frame["as_of_date"] == pd.Timestamp(AS_OF)].reset_index(drop=True)
        preds = rows[["invoice_id", "as_of_date", "target_name"]].join(predict(rows)[[PREDICTION, *QUANTILE_COLUMNS]])
        preds = preds.assign(model_name="payment_delay", model_version="7", model_run_id="run-7")
        ops.upsert_predictions(
            con, preds, dbt_invocation_id="inv-1", flow_run_id="flow-1", scored_at=datetime(2026, 10, 31)
        )
    dbt.run_dbt(settings, dbt.serving_build_args(settings, AS_OF), invoke=dbt_invoke)
    with duckdb.connect(str(path)) as con:
        ops.record_alerts(
            con,
            pd.DataFrame(
                [
                    {
                        "alert_key": "director_change:E1:C1",
                        "alert_type": "director_change",
                        "customer_id": "C000001",
                        "customer_name": "x",
                        "company_id": "1",
                        "event_id": "E1",
                        "title": EVIL_TITLE,
                        "detail": "Publié le 30/10/2026.",
                        "due_date": None,
                        "as_of_date": AS_OF,
                        "created_at": datetime(2026, 10, 31, 6),
                        "notified_at": None,
                        "notification_id": None,
                        "flow_run_id": "flow-1",
                    }
                ]  # fmt: skip
            ),
        )
    return data


@pytest.fixture(scope="module")
def published(built: Path, prefect_api: None):
    """The daily run's report step on the built warehouse, asked for the weekly report too; then a rerun."""
    settings = _settings(built)
    first = publish_finance_report(settings, AS_OF, "7", weekly=True)
    emails = sorted((settings.finance_outbox / "email").glob("finance-*.json"))
    stamps = {p.name: p.stat().st_mtime_ns for p in emails}
    again = publish_finance_report(settings, AS_OF, "7", weekly=False)
    return settings, first, again, emails, stamps


def _rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path)) as con:  # read-write: dbt's in-process connection has that configuration
        return con.execute(sql, params or []).fetchall()


async def _artifacts(key: str):
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_files_per_kind_and_language_and_the_runs_recorded(published) -> None:
    settings, first, again, _, _ = published
    assert first.html_path == settings.reports_dir / AS_OF.isoformat() / "finance_report.html"
    assert set(first.html_paths) == set(first.xlsx_paths) == {"flash_fr", "flash_en", "weekly_fr", "weekly_en"}
    weekly = settings.reports_dir / AS_OF.isoformat() / "weekly"
    assert first.html_paths["weekly_fr"] == weekly / f"finance_weekly_{AS_OF}_fr.html"
    assert sorted(p.name for p in (weekly / "charts").iterdir()) == [
        "aged_en.png", "aged_fr.png", "dso_en.png", "dso_fr.png", "forecast_en.png", "forecast_fr.png",
    ]  # fmt: skip
    assert all(p.exists() for p in [*first.html_paths.values(), *first.xlsx_paths.values()])
    runs = _rows(
        settings.warehouse,
        "select report_id, html_path, csv_paths from ops.report_runs where report_id like 'finance-%' order by 1",
    )
    # finance-<kind>-<yyyy-mm-dd>-<flow run id>: the day's report, the flash and the weekly, once per flow run
    assert {r[0].split(f"-{AS_OF}-")[0] for r in runs} == {"finance", "finance-flash", "finance-weekly"}
    weekly_run = next(r for r in runs if r[0].startswith("finance-weekly-"))
    assert weekly_run[1] == str(first.html_paths["weekly_fr"])
    assert json.loads(weekly_run[2])["xlsx_en"] == str(first.xlsx_paths["weekly_en"])


def test_each_group_got_one_email_in_its_language_with_cid_charts_and_the_workbook(published) -> None:
    settings, first, _, emails, _ = published
    assert [p.name for p in emails] == [
        f"finance-flash-{AS_OF}-finance.json",
        f"finance-weekly-{AS_OF}-board.json",
        f"finance-weekly-{AS_OF}-finance.json",
    ], "flash: the 'flash' group only; weekly: both 'weekly' groups; nothing to the 'failures' group"
    assert first.emails == {"flash:finance": "sent", "weekly:board": "sent", "weekly:finance": "sent"}
    board = json.loads(emails[1].read_text())
    assert board["subject"] == "relance: weekly receivables report as of 31 Oct 2026"
    html = next(c["value"] for c in board["content"] if c["type"] == "text/html")
    inline = {a["content_id"] for a in board["attachments"] if a["disposition"] == "inline"}
    assert inline == {"chart-aged", "chart-dso", "chart-forecast"}
    assert all(f'src="cid:{cid}"' in html for cid in inline) and "data:image" not in html
    (xlsx,) = [a for a in board["attachments"] if a["disposition"] == "attachment"]
    assert xlsx["filename"] == f"finance_weekly_{AS_OF}_en.xlsx"
    finance = json.loads(emails[2].read_text())
    assert finance["subject"] == "relance : rapport hebdomadaire du poste clients au 31/10/2026"
    flash = json.loads(emails[0].read_text())
    assert flash["subject"] == "relance : flash du poste clients au 31/10/2026"
    assert [a["filename"] for a in flash["attachments"]] == [f"finance_flash_{AS_OF}_fr.xlsx"]
    with SendLedger(settings.notification_ledger) as ledger:
        keys = [p.stem for p in emails]
        assert {k: v[0] for k, v in ledger.statuses(keys).items()} == dict.fromkeys(keys, "sent")


def test_a_rerun_and_the_weekly_deployment_send_nothing_more(published, monkeypatch, tmp_path: Path) -> None:
    settings, _, again, emails, stamps = published
    assert again.emails == {"flash:finance": "already_sent"} and "weekly_fr" not in again.html_paths
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELANCE_DATA_DIR", str(settings.data))
    result = publish_weekly_report(as_of_date=AS_OF)
    assert result["email:board"] == result["email:finance"] == "already_sent"
    assert result["html_en"] == str(
        settings.reports_dir / AS_OF.isoformat() / "weekly" / f"finance_weekly_{AS_OF}_en.html"
    )
    after = sorted((settings.finance_outbox / "email").glob("finance-*.json"))
    assert after == emails and {p.name: p.stat().st_mtime_ns for p in after} == stamps


def test_the_weekly_deployment_refuses_a_date_the_daily_run_has_not_built(published, monkeypatch, tmp_path) -> None:
    settings = published[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELANCE_DATA_DIR", str(settings.data))
    with pytest.raises(ReportNotReadyError, match="the daily run of that date has not built them"):
        publish_weekly_report.with_options(retries=0)(as_of_date=AS_OF - timedelta(days=1))


def test_the_workbook_matches_the_ledger_and_keeps_data_as_text(published) -> None:
    settings, first, _, _, _ = published
    open_book = dict(
        _rows(settings.warehouse, "select currency, sum(open_amount) from marts.invoices where is_open group by 1")
    )
    wb = openpyxl.load_workbook(first.xlsx_paths["weekly_en"])
    assert wb.sheetnames == [
        "Summary",
        "Aged balance",
        "By customer",
        "By segment",
        "By sector",
        "DSO",
        "CEI",
        "Forecast",
        "Backtest",
        "At risk",
        "Alerts",
        "Reminders",
        "Holdout effect",
        "Late payment cost",
        "Notes",
    ]  # fmt: skip -- the same sheets every week: a header alone when a table has no rows (no reminder sent here)
    assert wb["Reminders"].max_row == 1 and wb["Holdout effect"].max_row == 1
    aged = wb["Aged balance"]
    header = [c.value for c in aged[1]]
    totals = {r[0]: r[header.index("Total")] for r in aged.iter_rows(min_row=2, values_only=True)}
    assert totals == pytest.approx({k: float(v) for k, v in open_book.items()})
    customers = wb["By customer"]
    header = [c.value for c in customers[1]]
    for currency, expected in open_book.items():
        got = sum(
            r[header.index("Total")] for r in customers.iter_rows(min_row=2, values_only=True) if r[0] == currency
        )
        assert got == pytest.approx(float(expected))
    alerts = wb["Alerts"]
    titles = [c for c in alerts["C"][1:]]
    assert [c.value for c in titles] == [EVIL_TITLE] and titles[0].data_type == "s" and titles[0].quotePrefix
    dso = wb["DSO"]
    ((trend_rows,),) = _rows(
        settings.warehouse, "select count(*) from serving.report_dso_trend where as_of_date = ?", [AS_OF]
    )
    assert dso.max_row - 1 == trend_rows == 14 * len(open_book), "the as-of date and 13 Sundays, every row"


def test_the_html_prints_the_wape_and_the_artifacts_are_published(published) -> None:
    settings, first, _, _, _ = published
    html = first.html_paths["weekly_en"].read_text(encoding="utf-8")
    assert "WAPE EUR over 4 past weeks:" in html and "baselines: customer&#39;s mean delay" in html
    flash = first.html_paths["flash_fr"].read_text(encoding="utf-8")
    assert "Nouvelles alertes risque" in flash and "=HYPERLINK(&#34;http://evil.example&#34;" in flash
    markdown = asyncio.run(_artifacts("finance-weekly-en"))
    table = asyncio.run(_artifacts("finance-weekly"))
    assert markdown and markdown[0].type == "markdown" and "| Open receivables |" in markdown[0].data
    assert table and table[0].type == "table"
    rows = json.loads(table[0].data) if isinstance(table[0].data, str) else table[0].data
    currencies = {r[0] for r in _rows(settings.warehouse, "select distinct currency from marts.invoices")}
    assert {r["currency"] for r in rows} == currencies and all(r["open_receivables"] is not None for r in rows)


def _screenshot(html: Path, png: Path, height: int = 3000) -> Image.Image:
    require(Path(CHROMIUM).exists(), "chromium is not installed (make test installs it)")
    profile = png.parent / "chromium-profile"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
         f"--screenshot={png}", f"--window-size=1200,{height}", html.as_uri()],
        check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(png.parent)},
    )  # fmt: skip
    assert png.exists(), "chromium wrote no screenshot"
    return Image.open(png).convert("RGB")


def _share(image: Image.Image, predicate) -> float:
    pixels = list(image.getdata())
    return sum(1 for p in pixels if predicate(p)) / len(pixels)


@pytest.mark.parametrize("name", ["weekly_fr", "weekly_en", "flash_en"])
def test_the_html_renders_in_headless_chromium(published, name: str) -> None:
    first = published[1]
    html = first.html_paths[name]
    out = html.parent / f"screenshot_{name}.png"
    image = _screenshot(html, out)
    assert image.size == (1200, 3000)
    # where the page has content (the flash is short), a fair share of it is ink: text, rules, bars
    small = image.resize((300, 750))
    inked_rows = [y for y in range(small.height) if any(max(small.getpixel((x, y))) < 200 for x in range(300))]
    assert inked_rows and inked_rows[-1] > 100, f"{out} looks blank"
    ink = _share(small.crop((0, 0, 300, inked_rows[-1] + 1)), lambda p: max(p) < 200)
    assert ink > 0.02, f"{out} looks blank ({ink:.1%} ink above its last line)"
    if name.startswith("weekly"):
        # the charts were decoded and drawn: the aged balance's green 'not due' bars are on the page
        green = _share(image, lambda p: abs(p[0] - 0x4C) < 12 and abs(p[1] - 0x9A) < 12 and abs(p[2] - 0x5B) < 12)
        assert green > 0.002, f"{out}: no chart colour on the page"


def test_through_sendgrid_a_refused_email_fails_the_run_and_the_rerun_sends_it_once(
    built: Path, prefect_api: None, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(built, data, ignore=shutil.ignore_patterns("reports", "outbox", "ledger"))
    with running_sendgrid_standin() as stand_in:
        settings = _settings(data, sendgrid_api_key=stand_in.api_key, sendgrid_host=stand_in.url)
        settings = settings.model_copy(update={"forecast_backtest_weeks": 1})
        stand_in.fail_next(1, 400)  # the first request, the flash to 'finance', is refused; the weekly ones go
        with pytest.raises(FinanceDeliveryError, match=r"group 'finance' \(finance-flash-2026-10-31-finance\)"):
            publish_finance_report(settings, AS_OF, "7", weekly=True)
        assert sorted(m.reminder_key for m in stand_in.messages) == [
            f"finance-weekly-{AS_OF}-board", f"finance-weekly-{AS_OF}-finance",
        ]  # fmt: skip
        report = publish_finance_report(settings, AS_OF, "7", weekly=True)
        assert report.emails == {
            "flash:finance": "sent",
            "weekly:board": "already_sent",
            "weekly:finance": "already_sent",
        }
        assert stand_in.requests == 4, "the refused one, then each email once"
        assert sorted(m.reminder_key for m in stand_in.messages) == [
            f"finance-flash-{AS_OF}-finance", f"finance-weekly-{AS_OF}-board", f"finance-weekly-{AS_OF}-finance",
        ]  # fmt: skip
        board = next(m for m in stand_in.messages if m.reminder_key.endswith("board"))
        inline = [a for a in board.body["attachments"] if a.get("disposition") == "inline"]
        assert {a["content_id"] for a in inline} == {"chart-aged", "chart-dso", "chart-forecast"}
    assert not (data / "outbox" / "finance" / "email").exists(), "with a key, nothing goes to the outbox"
