"""The reminder wording as Jinja templates (issue 13): every language, tone and shape (one invoice, or a statement
of account) has its template in the package; the HTML part escapes whatever the data says, the text part carries no
HTML."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib.resources import files

import pytest
from jinja2 import StrictUndefined

from relance.channels.email import (
    HTML_TEMPLATES,
    LANGUAGES,
    TEXT_TEMPLATES,
    TONES,
    MailOptions,
    build_mail,
    message_html,
    render_reminder,
)

NOW = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
HOSTILE_NAME = "<script>alert(\"x\")</script> & 'Fils'"
HOSTILE_INVOICE = "F<b>1</b>&x"
HOSTILE_SENDER = "Cabinet <Dupont> & Associés"
STATEMENT = [
    {"invoice_id": HOSTILE_INVOICE, "due_date": "2026-01-29", "open_amount": 1200.0, "amount": 1500.0,
     "days_overdue": 45},
    {"invoice_id": "F-0077", "due_date": "2026-03-20", "open_amount": 2700.0, "days_overdue": -5},
]  # fmt: skip
SHAPES = ("single", "statement")


def _row(language: str, tone: str, shape: str, customer_type: str = "B2B") -> dict[str, object]:
    row: dict[str, object] = {
        "reminder_key": f"k-{language}-{tone}-{shape}",
        "invoice_id": HOSTILE_INVOICE,
        "customer_id": "C-1",
        "customer_name": HOSTILE_NAME,
        "customer_type": customer_type,
        "recipient": "ap@example.com",
        "tone": tone,
        "open_amount": 1200.0 if shape == "single" else 3900.0,
        "currency": "EUR",
        "due_date": "2026-01-29",
        "language": language,
    }
    if shape == "statement":
        row["statement"] = json.dumps(STATEMENT)
    return row


def test_every_language_tone_and_shape_has_its_template_in_the_package():
    root = files("relance.channels") / "templates" / "email"
    for language in LANGUAGES:
        for name in ("frame", "formal_notice_demand", *(f"{s}_{t}" for s in SHAPES for t in TONES)):
            assert (root / language / f"{name}.txt").is_file(), f"{language}/{name}.txt"
    assert (root / "base.html").is_file() and (root / "message.html").is_file() and (root / "message.txt").is_file()
    assert TEXT_TEMPLATES.autoescape is False
    assert HTML_TEMPLATES.undefined is StrictUndefined and TEXT_TEMPLATES.undefined is StrictUndefined
    assert HTML_TEMPLATES.get_template("email/message.html").render(language="fr", blocks=["<x>"]).count("&lt;x&gt;")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("customer_type", ["B2B", "B2C"])
def test_every_combination_escapes_the_html_and_keeps_html_out_of_the_text(language, tone, shape, customer_type):
    row = _row(language, tone, shape, customer_type)
    link = "https://pay.example.com/{invoice_id}?amount={amount}&c={customer_id}"
    message = render_reminder(row, sender_name=HOSTILE_SENDER, payment_link_template=link)
    html_part = message_html(message)
    text_part = message.text

    # the HTML part: one document in the message's language, nothing from the data left unescaped
    assert html_part.startswith(f'<!doctype html><html lang="{language}"><body><p>')
    assert html_part.endswith("</p></body></html>")
    for raw in ("<script>", "<b>", "<Dupont>", "& Associés", "& 'Fils'"):
        assert raw not in html_part
    assert "&lt;Dupont&gt; &amp; Associés" in html_part
    assert "F&lt;b&gt;1&lt;/b&gt;&amp;x" in html_part
    if tone != "formal_notice":  # a formal notice opens with "Madame, Monsieur," / "Dear Sir or Madam,"
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;Fils&#x27;" in html_part
    assert ("<table" in html_part) is (shape == "statement")
    assert html_part.count("<a href=") == (1 if shape == "single" else 2)

    # the text part: the data as written, and no markup of its own
    assert message.subject and "\n" not in message.subject
    assert (HOSTILE_INVOICE in message.subject) is (shape == "single")  # a statement's subject counts invoices
    assert HOSTILE_SENDER in text_part and HOSTILE_INVOICE in text_part
    assert (HOSTILE_NAME in text_part) is (tone != "formal_notice")
    scrubbed = text_part.replace(HOSTILE_NAME, "").replace(HOSTILE_INVOICE, "").replace(HOSTILE_SENDER, "")
    assert not re.search(r"</?[a-zA-Z][^>]*>|&(?:[a-z]+|#x?[0-9a-f]+);", scrubbed), scrubbed
    assert "\x00" not in text_part and "\n\n\n" not in text_part

    # the same words in both parts, and the message goes out as SendGrid expects
    mail = build_mail(
        row,
        sender_email="ar@example.com",
        sender_name=HOSTILE_SENDER,
        lineage={},
        now=NOW,
        options=MailOptions(payment_link_template=link),
    ).get()
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]
    assert mail["content"][0]["value"] == text_part and mail["content"][1]["value"] == html_part
