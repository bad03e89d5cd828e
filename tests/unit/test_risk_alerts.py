"""Alerts to finance: which facts raise which alert, each once, and the digest email exactly once."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relance import ops
from relance.channels.email import DeliveryError, OutboxTransport
from relance.risk.alerts import build_alerts, digest_key, notify
from relance.send_ledger import SendLedger
from relance.warehouse import ensure_schemas

AS_OF = date(2026, 10, 31)


def _status(**kw: object) -> pd.DataFrame:
    row = {
        "customer_id": "C1",
        "customer_name": "DJ BATIMENT",
        "company_id": "833310592",
        "has_open_procedure": True,
        "procedure_event_id": "A2026001",
        "procedure_kind": "liquidation",
        "judgment_date": date(2026, 10, 1),
        "procedure_published_date": date(2026, 10, 12),
        "court": "TRIBUNAL DE COMMERCE DE BORDEAUX",
        "claim_deadline_date": date(2026, 12, 12),
        "source_url": "https://www.bodacc.fr/x",
    }
    row.update(kw)
    return pd.DataFrame([row])


def _claims(days: int, status: str = "to_declare") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "claim_id": "A2026001:EUR",
                "customer_id": "C1",
                "customer_name": "DJ BATIMENT",
                "company_id": "833310592",
                "court": "TC Bordeaux",
                "deadline_date": date(2026, 11, 15),
                "days_to_deadline": days,
                "currency": "EUR",
                "amount_due": 1200.5,
                "amount_not_yet_due": 300,
                "invoice_count": 3,
                "status": status,
            }
        ]
    )


def _events(kind: str, published: date) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "customer_id": "C2",
                "customer_name": "DANONE",
                "company_id": "552032534",
                "event_id": f"B-{kind}",
                "event_type": kind,
                "published_date": published,
                "publisher": "bodacc",
                "detail": "Modification survenue sur l'administration.",
                "source_url": None,
            }
        ]
    )


EMPTY = pd.DataFrame()


def _alerts(**kw: pd.DataFrame) -> pd.DataFrame:
    frames = {"status": EMPTY, "claims": EMPTY, "degradation": EMPTY, "events": EMPTY, **kw}
    return build_alerts(**frames, as_of_date=AS_OF, claim_alert_days=15)


def test_open_procedure_raises_one_insolvency_alert_with_the_claim_deadline() -> None:
    alerts = _alerts(status=_status())
    assert alerts["alert_type"].tolist() == ["insolvency_notice"]
    row = alerts.iloc[0]
    assert row["alert_key"] == "insolvency_notice:A2026001:C1"
    assert row["due_date"] == date(2026, 12, 12)
    assert "12/12/2026" in row["detail"] and "liquidation judiciaire" in row["title"]
    assert _alerts(status=_status(has_open_procedure=False)).empty


@pytest.mark.parametrize(
    ("days", "status", "raised"),
    [(15, "to_declare", True), (16, "to_declare", False), (0, "to_declare", True), (-3, "deadline_passed", False)],
)
def test_claim_deadline_alert_from_15_days(days: int, status: str, raised: bool) -> None:
    alerts = _alerts(claims=_claims(days, status))
    assert (alerts["alert_type"] == "claim_deadline").any() == raised
    if raised:
        assert "1\u202f200,50" in alerts.iloc[0]["detail"] and "300,00" in alerts.iloc[0]["detail"]


def test_warning_events_alert_only_when_recent_and_only_warning_types() -> None:
    recent = _alerts(events=_events("director_change", date(2026, 10, 20)))
    assert recent["alert_type"].tolist() == ["director_change"]
    assert recent.iloc[0]["alert_key"] == "director_change:B-director_change:C2"
    assert _alerts(events=_events("director_change", date(2026, 1, 2))).empty  # > 90 days: history, not news
    assert _alerts(events=_events("accounts_filed", date(2026, 10, 20))).empty
    assert _alerts(events=_events("head_office_move", date(2026, 10, 30)))["alert_type"].tolist() == [
        "head_office_move"
    ]


def test_degrading_payer_alert_once_a_month() -> None:
    frame = pd.DataFrame([{"customer_id": "C3", "customer_name": "X", "is_degrading": True,
                           "degradation_reason": "paid 2.0 days late, now 25.0"}])  # fmt: skip
    alerts = _alerts(degradation=frame)
    assert alerts["alert_key"].tolist() == ["payer_degrading:C3:2026-10"]
    assert _alerts(degradation=frame.assign(is_degrading=False)).empty


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    ensure_schemas(c)
    return c


def _record(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame) -> int:
    return ops.record_alerts(con, alerts.assign(created_at=datetime(2026, 10, 31, 6), flow_run_id="run-1"))


def test_each_alert_once_and_the_digest_email_exactly_once(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    alerts = _alerts(status=_status(), events=_events("director_change", date(2026, 10, 20)))
    assert _record(con, alerts) == 2
    assert _record(con, alerts) == 0  # tomorrow's run: the same facts, no new alert
    transport = OutboxTransport(tmp_path / "outbox")
    args = {
        "transport": transport,
        "as_of_date": AS_OF,
        "sender_email": "r@example.com",
        "sender_name": "Recouvrement",
        "recipients": ["finance@example.com"],
        "flow_run_id": "run-1",
        "now": datetime(2026, 10, 31, 6),
    }
    with SendLedger(tmp_path / "ledger.sqlite") as ledger:
        sent, key = notify(con, ledger=ledger, **args)
        assert sent == 2 and key == digest_key(alerts["alert_key"].tolist())
        again, _ = notify(con, ledger=ledger, **args)
        assert again == 0
        assert ledger.get(key).status == "sent"
    files = list((tmp_path / "outbox" / "email").glob("*.json"))
    assert len(files) == 1
    mail = json.loads(files[0].read_text())
    assert mail["personalizations"][0]["to"] == [{"email": "finance@example.com"}]
    assert mail["personalizations"][0]["custom_args"] == {"reminder_key": key, "flow_run_id": "run-1"}
    assert "DJ BATIMENT" in mail["content"][0]["value"] and "DANONE" in mail["content"][0]["value"]
    assert ops.read_alerts(con, unnotified_only=True).empty


class _Refusing:
    def send(self, message: object, reminder_key: str) -> object:
        raise DeliveryError("SendGrid refused: HTTP 400", status=400)


def test_a_failed_digest_leaves_the_alerts_for_the_next_run(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _record(con, _alerts(status=_status()))
    args = {
        "as_of_date": AS_OF,
        "sender_email": "r@example.com",
        "sender_name": "R",
        "recipients": ["finance@example.com"],
        "flow_run_id": None,
        "now": datetime(2026, 10, 31, 6),
    }
    with SendLedger(tmp_path / "ledger.sqlite") as ledger:
        with pytest.raises(DeliveryError):
            notify(con, ledger=ledger, transport=_Refusing(), **args)
        assert len(ops.read_alerts(con, unnotified_only=True)) == 1
        sent, _ = notify(con, ledger=ledger, transport=OutboxTransport(tmp_path / "outbox"), **args)
        assert sent == 1
