"""The finance outputs on disk and by email: files per kind and language, a standalone HTML (data-URI charts,
inline styles, autoescaped), the email's HTML pointing at inline CID attachments that are all there, the workbook
attached, and each group's email sent exactly once through the real send ledger and outbox."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from relance.channels.email import OutboxTransport
from relance.reports.finance_outputs import (
    FinanceDeliveryError,
    build_finance_mail,
    content_id,
    notification_key,
    send_finance_outputs,
    write_finance_outputs,
)
from relance.send_ledger import SendLedger
from tests.unit.finance_pack_factory import AS_OF, EVIL, aged_by_customer, tiny_pack

NOW = datetime(2026, 10, 26, 7, 0)
SCRIPT = "<script>alert(1)</script> SARL"
GROUPS = {
    "finance": SimpleNamespace(emails=["daf@example.com", "compta@example.com"], language="fr"),
    "board": SimpleNamespace(emails=["board@example.com"], language="en"),
}


class _Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def weekly(tmp_path_factory: pytest.TempPathFactory):
    customers = aged_by_customer()
    customers.loc[0, "customer_name"] = SCRIPT
    pack = tiny_pack(aged_by_customer=customers)
    return write_finance_outputs(pack, "weekly", tmp_path_factory.mktemp("reports"), generated_at=NOW)


def test_files_per_kind_and_language(weekly, tmp_path: Path) -> None:
    base = weekly.directory
    assert base.parts[-2:] == (AS_OF.isoformat(), "weekly")
    assert sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()) == [
        "charts/aged_en.png", "charts/aged_fr.png", "charts/dso_en.png", "charts/dso_fr.png",
        "charts/forecast_en.png", "charts/forecast_fr.png",
        "finance_weekly_2026-10-26_en.html", "finance_weekly_2026-10-26_en.xlsx",
        "finance_weekly_2026-10-26_fr.html", "finance_weekly_2026-10-26_fr.xlsx",
    ]  # fmt: skip
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in base.glob("charts/*.png"))
    assert set(weekly.paths()) >= {"html_fr", "html_en", "xlsx_fr", "xlsx_en", "chart_forecast_en"}
    flash = write_finance_outputs(tiny_pack(), "flash", tmp_path)
    assert sorted(p.name for p in flash.directory.iterdir()) == [
        "finance_flash_2026-10-26_en.html", "finance_flash_2026-10-26_en.xlsx",
        "finance_flash_2026-10-26_fr.html", "finance_flash_2026-10-26_fr.xlsx",
    ]  # fmt: skip


def test_the_archived_html_stands_alone_with_inline_styles_and_escaped_data(weekly) -> None:
    html = weekly.html["fr"].read_text(encoding="utf-8")
    page = _Tags(html)
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == 3 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert base64.b64decode(images[0]["src"].split(",", 1)[1])[:4] == b"\x89PNG"
    assert "<style" not in html and all("style" in a for t, a in page.tags if t in ("td", "th", "table", "h2"))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; SARL" in html
    assert SCRIPT in "".join(page.text) and EVIL in "".join(page.text)
    assert 'lang="fr"' in html and "Rapport hebdomadaire du poste clients au 26/10/2026" in html
    assert "WAPE EUR sur 2 semaines passées" in html
    en = weekly.html["en"].read_text(encoding="utf-8")
    assert "€2,109.56" in en and "Weekly receivables report as of 26 Oct 2026" in en


def test_the_email_points_at_inline_cid_images_and_attaches_the_workbook(weekly) -> None:
    key = notification_key("weekly", AS_OF, "finance")
    body = build_finance_mail(
        weekly, "fr", sender_email="relance@example.com", sender_name="relance",
        recipients=["daf@example.com"], key=key, flow_run_id="run-1",
    ).get()  # fmt: skip
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    text = next(c["value"] for c in body["content"] if c["type"] == "text/plain")
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    inline = {a["content_id"]: a for a in body["attachments"] if a["disposition"] == "inline"}
    assert cids == set(inline) == {content_id(c) for c in ("aged", "dso", "forecast")}
    assert all(base64.b64decode(a["content"])[:4] == b"\x89PNG" and a["type"] == "image/png" for a in inline.values())
    (xlsx,) = [a for a in body["attachments"] if a["disposition"] == "attachment"]
    assert xlsx["filename"] == "finance_weekly_2026-10-26_fr.xlsx" and "content_id" not in xlsx
    assert base64.b64decode(xlsx["content"]) == weekly.xlsx["fr"].read_bytes()
    assert "data:image" not in html
    assert body["subject"] == "relance : rapport hebdomadaire du poste clients au 26/10/2026"
    assert "[EUR]" in text and "Encours : 2\u202f109,56\u00a0€" in text
    assert body["personalizations"][0]["custom_args"] == {"reminder_key": key, "flow_run_id": "run-1"}
    assert key == "finance-weekly-2026-10-26-finance"
    assert notification_key("weekly", AS_OF, "DAF / comptabilité").startswith("finance-weekly-2026-10-26-")
    assert "/" not in notification_key("weekly", AS_OF, "DAF / comptabilité")


def test_each_group_gets_its_language_once_then_never_again(weekly, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with SendLedger(tmp_path / "notifications.sqlite") as ledger:
        kwargs = dict(ledger=ledger, transport=OutboxTransport(outbox), sender_email="r@example.com",
                      sender_name="relance", flow_run_id="run-1", now=NOW)  # fmt: skip
        first = send_finance_outputs(weekly, GROUPS, **kwargs)
        files = sorted((outbox / "email").iterdir())
        stamps = [p.stat().st_mtime_ns for p in files]
        second = send_finance_outputs(weekly, GROUPS, **kwargs)
        assert ledger.statuses(["finance-weekly-2026-10-26-board"]) == {"finance-weekly-2026-10-26-board": ("sent", 1)}
    assert [(d.group, d.language, d.status) for d in first] == [("board", "en", "sent"), ("finance", "fr", "sent")]
    assert [d.status for d in second] == ["already_sent", "already_sent"]
    assert [p.name for p in files] == ["finance-weekly-2026-10-26-board.json", "finance-weekly-2026-10-26-finance.json"]
    assert [p.stat().st_mtime_ns for p in files] == stamps, "nothing rewritten"
    board = json.loads(files[0].read_text())
    assert board["subject"].startswith("relance: weekly receivables report")
    assert [t["email"] for t in board["personalizations"][0]["to"]] == ["board@example.com"]
    finance = json.loads(files[1].read_text())
    assert [t["email"] for t in finance["personalizations"][0]["to"]] == ["daf@example.com", "compta@example.com"]


def test_a_failed_send_is_recorded_reported_and_sent_by_the_next_run(weekly, tmp_path: Path) -> None:
    blocked = tmp_path / "outbox"
    blocked.mkdir()
    (blocked / "email").write_text("a file where the outbox's folder should be")
    groups = {"finance": GROUPS["finance"]}
    with SendLedger(tmp_path / "notifications.sqlite") as ledger:
        kwargs = dict(ledger=ledger, sender_email="r@example.com", sender_name="relance", flow_run_id="r", now=NOW)
        (failed,) = send_finance_outputs(weekly, groups, transport=OutboxTransport(blocked), **kwargs)
        assert failed.status == "failed" and "Error" in failed.error
        assert ledger.statuses([failed.key])[failed.key] == ("failed", 1)
        with pytest.raises(FinanceDeliveryError, match="group 'finance'"):
            raise FinanceDeliveryError([failed])
        (retried,) = send_finance_outputs(weekly, groups, transport=OutboxTransport(tmp_path / "ok"), **kwargs)
        assert retried.status == "sent" and ledger.statuses([failed.key])[failed.key] == ("sent", 2)
    assert (tmp_path / "ok" / "email" / f"{failed.key}.json").exists()


def test_a_send_in_flight_elsewhere_is_not_repeated(weekly, tmp_path: Path) -> None:
    with SendLedger(tmp_path / "notifications.sqlite") as ledger:
        key = notification_key("weekly", AS_OF, "finance")
        assert ledger.claim(key, "email", at=NOW) == 0  # another run holds it (or died holding it)
        (held,) = send_finance_outputs(
            weekly, {"finance": GROUPS["finance"]}, ledger=ledger, transport=OutboxTransport(tmp_path),
            sender_email="r@example.com", sender_name="relance", flow_run_id=None, now=NOW,
        )  # fmt: skip
    assert held.status == "in_flight" and not (tmp_path / "email").exists()
