"""What the README demo leaves in the outbox, one of each: emails in French and in English, an SMS, a PDF formal
notice with the debtor's postal address, a call list; every message has its ledger row. Reads the shared demo run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
from pypdf import PdfReader

from tests.e2e.conftest import AS_OF, DemoRun


def _df(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def _planned(demo_run: DemoRun) -> pd.DataFrame:
    return _df(
        demo_run.data / "warehouse.duckdb",
        f"""select p.reminder_key, p.channel, p.tone, p.customer_id, w.language, w.customer_type, w.postal_code,
                   s.status, s.provider_message_id, s.outbox_path
            from ops.reminders_planned p
            join (select distinct customer_id, language, customer_type, postal_code
                  from serving.collection_worklist) w using (customer_id)
            join ops.reminder_sends s using (reminder_key)
            where p.as_of_date = date '{AS_OF}'""",
    )


def test_emails_in_french_and_in_english(demo_run: DemoRun) -> None:
    planned = _planned(demo_run)
    emails = planned[planned["channel"] == "email"]
    assert {"fr", "en"} <= set(emails["language"]), "the demo has customers corresponding in each language"
    for row in emails.to_dict("records"):
        mail = json.loads(Path(row["outbox_path"]).read_text(encoding="utf-8"))
        html = next(c["value"] for c in mail["content"] if c["type"] == "text/html")
        text = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
        assert f'lang="{row["language"]}"' in html
        assert ("Dear" in text or "Hello" in text) if row["language"] == "en" else ("Bonjour" in text)


def test_an_sms_in_e164_within_two_segments_with_the_opt_out(demo_run: DemoRun) -> None:
    planned = _planned(demo_run)
    sms = planned[planned["channel"] == "sms"]
    assert not sms.empty, "a consumer gets a text message"
    for row in sms.to_dict("records"):
        assert row["status"] == "sent"
        message = json.loads(Path(row["outbox_path"]).read_text(encoding="utf-8"))
        assert re.fullmatch(r"\+\d{8,15}", message["to"])
        assert message["segments"] <= 2 and message["encoding"] in ("GSM-7", "UCS-2")
        assert "STOP" in message["body"]


def test_a_pdf_formal_notice_to_the_debtors_postal_address(demo_run: DemoRun) -> None:
    planned = _planned(demo_run)
    notices = planned[(planned["channel"] == "letter") & (planned["tone"] == "formal_notice")]
    assert not notices.empty, "the demo sends a formal notice"
    for row in notices.to_dict("records"):
        path = Path(row["outbox_path"])
        assert path.suffix == ".pdf" and path.read_bytes().startswith(b"%PDF")
        text = "".join(page.extract_text() for page in PdfReader(path).pages)
        assert row["postal_code"] in text, "the letter is addressed to the customer's postal address"
        if row["customer_type"] == "B2B":
            assert "L441-10" in text and "40" in text, "penalties and the fixed indemnity for a professional"
        else:
            assert "L441-10" not in text


def test_the_call_list_is_in_the_outbox_and_every_message_has_its_ledger_row(demo_run: DemoRun) -> None:
    assert (demo_run.data / "outbox" / "calls" / f"{AS_OF}.csv").exists()
    planned = _planned(demo_run)
    assert set(planned["status"]) == {"sent"}
    assert {"email", "sms", "letter", "call"} <= set(planned["channel"])
