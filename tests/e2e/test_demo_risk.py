"""Company-risk data in the README demo: the demo's BODACC notices load, a debtor in a collective procedure gets no
reminder and a claim task with the right deadline, a director change raises an alert to finance (by email, in the
report), and the risk features are non-zero for the debtors concerned. Reads the shared demo run only."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from dateutil.relativedelta import relativedelta

from tests.e2e.conftest import AS_OF, DemoRun


def _df(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def test_the_demo_notices_load_and_stop_dunning_of_debtors_in_procedure(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    events = _df(warehouse, "select publisher, event_type, count(*) as n from raw.company_events group by all")
    assert set(events["publisher"]) == {"bodacc"}
    assert {"procedure_opened", "director_change"} <= set(events["event_type"])

    in_procedure = _df(
        warehouse,
        """select s.customer_id, s.procedure_published_date, s.claim_deadline_date
           from serving.customer_risk_status s
           where s.has_open_procedure
             and exists (select 1 from marts.invoices i where i.customer_id = s.customer_id and i.is_open)""",
    )
    assert not in_procedure.empty, "the demo has a debtor in a collective procedure with invoices still open"
    ids = "', '".join(in_procedure["customer_id"])
    planned = _df(
        warehouse,
        f"select count(*) as n from ops.reminders_planned where as_of_date = date '{AS_OF}' "
        f"and customer_id in ('{ids}')",
    )
    assert planned["n"].iloc[0] == 0, "no reminder is even planned for a debtor in a collective procedure"
    sent = _df(warehouse, f"select count(*) as n from ops.reminder_sends where customer_id in ('{ids}')")
    assert sent["n"].iloc[0] == 0
    worklist = _df(
        warehouse, f"select bool_and(has_open_procedure) as all_flagged from serving.collection_worklist "
        f"where customer_id in ('{ids}')",
    )  # fmt: skip
    assert worklist["all_flagged"].iloc[0]


def test_a_claim_task_with_the_deadline_two_months_after_publication(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    claims = _df(warehouse, f"select * from serving.claim_declarations where as_of_date = date '{AS_OF}'")
    assert not claims.empty
    for row in claims.to_dict("records"):
        published = pd.Timestamp(row["published_date"]).date()
        assert pd.Timestamp(row["deadline_date"]).date() == published + relativedelta(months=2)
        assert row["amount_due"] + row["amount_not_yet_due"] > 0
        assert row["status"] == ("to_declare" if row["deadline_date"] >= pd.Timestamp(AS_OF) else "deadline_passed")
    path = demo_run.data / "outbox" / "claims" / f"{AS_OF}.csv"
    with path.open(encoding="utf-8") as fh:
        tasks = list(csv.DictReader(fh))
    assert {t["claim_id"] for t in tasks} == set(claims["claim_id"])
    assert all(t["invoice_id"] for t in tasks)


def test_a_director_change_raises_one_alert_emailed_and_in_the_report(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    alerts = _df(warehouse, "select * from ops.risk_alerts")
    directors = alerts[alerts["alert_type"] == "director_change"]
    assert not directors.empty
    assert alerts["alert_key"].is_unique and alerts["notified_at"].notna().all()
    assert set(alerts["alert_type"]) >= {"insolvency_notice", "director_change"}
    digests = [
        json.loads(p.read_text()) for p in (demo_run.data / "outbox" / "finance" / "email").glob("risk-alerts*.json")
    ]  # the rerun added none: every alert had been sent
    assert len(digests) == 1
    body = digests[0]["content"][0]["value"]
    assert all(title in body for title in directors["title"])
    html = (demo_run.data / "reports" / str(AS_OF) / "finance_report.html").read_text(encoding="utf-8")
    assert 'id="risk-alerts"' in html and directors["title"].iloc[0] in html
    assert 'id="claims"' in html and ("à déclarer" in html or "délai dépassé" in html)


def test_risk_features_are_non_zero_for_the_debtors_concerned(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    features = _df(
        warehouse,
        f"""select f.customer_id, max(f.risk_open_procedure) as procedure, max(f.risk_recent_director_change) as dc,
                   max(f.risk_days_since_last_event) as days
            from ml.ml_invoice_features f where f.as_of_date = date '{AS_OF}' group by 1""",
    )
    concerned = _df(  # the window of the "recent" features (RELANCE_RISK_RECENT_DAYS, 365 by default)
        warehouse,
        "select distinct customer_id, event_type from serving.customer_risk_events "
        f"where published_date <= date '{AS_OF}' and published_date > date '{AS_OF}' - interval 365 day",
    )
    procedure = set(concerned.loc[concerned["event_type"] == "procedure_opened", "customer_id"])
    director = set(concerned.loc[concerned["event_type"] == "director_change", "customer_id"])
    scored = features.set_index("customer_id")
    assert (scored.loc[sorted(procedure & set(scored.index)), "procedure"] > 0).any()
    assert (scored.loc[sorted(director & set(scored.index)), "dc"] > 0).all()
    assert scored.loc[sorted((procedure | director) & set(scored.index)), "days"].notna().all()
    assert date.fromisoformat(str(AS_OF))  # the demo's as-of date is the one the features were built for
