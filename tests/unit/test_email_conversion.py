"""Email that converts and errors that say what they prove (issue 13): a payment link per invoice in both parts,
the unsubscribe group on consumers' emails, SendGrid's sandbox mode, every request valid against the Mail Send
spec; the classification of provider answers and the retry delay."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html.parser import HTMLParser

import pytest

from relance.channels.email import (
    DeliveryError,
    MailOptions,
    build_mail,
    check_payment_link_template,
    classify_status,
    parse_retry_after,
    payment_link,
    render_reminder,
)
from relance.delivery import retry_delay
from tests.conftest import require
from tests.standins.sendgrid import SPEC_PATH, load_validator

TEMPLATE = "https://pay.example.com/invoices/{invoice_id}?amount={amount}&currency={currency}&customer={customer_id}"
STATEMENT = [
    {"invoice_id": "F/2026 12", "due_date": "2026-01-29", "open_amount": 1200.0, "days_overdue": 45},
    {"invoice_id": "F-0040", "due_date": "2026-03-03", "open_amount": 310.5, "days_overdue": 12},
]


def _row(**overrides) -> dict:
    row = {
        "reminder_key": "rk-1",
        "invoice_id": "F/2026 12",
        "customer_id": "C&1",
        "customer_name": "Marie Dupont",
        "customer_type": "B2C",
        "recipient": "marie@example.org",
        "tone": "cordial",
        "channel": "email",
        "open_amount": 1200.0,
        "currency": "eur",
        "due_date": "2026-01-29",
        "language": "fr",
    }
    row.update(overrides)
    return row


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def _hrefs(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def _validate(body: dict) -> None:
    require(SPEC_PATH.exists(), f"SendGrid Mail Send spec not found at {SPEC_PATH}")
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in load_validator().iter_errors(body)]
    assert errors == []


# --------------------------------------------------------------------------------------- payment links


def test_a_payment_link_fills_and_quotes_every_value() -> None:
    url = payment_link(TEMPLATE, invoice_id="F/2026 12", amount=1200, currency="eur", customer_id="C&1")
    assert url == "https://pay.example.com/invoices/F%2F2026%2012?amount=1200.00&currency=EUR&customer=C%261"
    assert payment_link("https://p.example/{invoice_id}", invoice_id="F-1", amount=None, currency=None) == (
        "https://p.example/F-1"
    ), "only the placeholders the template uses need a value"
    with pytest.raises(ValueError, match="customer_id"):
        payment_link(TEMPLATE, invoice_id="F-1", amount=1, currency="EUR", customer_id=None)


@pytest.mark.parametrize(
    "template",
    [
        "https://pay.example.com/{invoice}",  # unknown placeholder
        "https://pay.example.com/{amount:.0f}",  # a format spec would bypass the quoting rules
        "https://pay.example.com/{invoice_id!r}",
        "javascript:alert({invoice_id})",  # not a web link
        "https://pay.example.com/{invoice_id",  # unbalanced
    ],
)
def test_a_wrong_template_is_refused_before_any_send(template: str) -> None:
    with pytest.raises(ValueError):
        check_payment_link_template(template)
    with pytest.raises(ValueError):
        MailOptions(payment_link_template=template)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_one_invoice_gets_its_link_in_the_text_and_the_html_part(language: str) -> None:
    mail = build_mail(_row(language=language), sender_email="r@example.com", sender_name="S", lineage={},
                      options=MailOptions(payment_link_template=TEMPLATE))  # fmt: skip
    body = mail.get()
    text, html = (c["value"] for c in body["content"])
    url = "https://pay.example.com/invoices/F%2F2026%2012?amount=1200.00&currency=EUR&customer=C%261"
    assert url in text
    assert (
        "To pay this invoice online: " if language == "en" else "Pour régler cette facture en ligne : "
    ) + url in text
    assert _hrefs(html) == [url]
    assert text.index(url) < text.index("Cordialement" if language == "fr" else "Kind regards"), "before the closing"
    _validate(body)


def test_a_statement_gets_a_link_per_invoice() -> None:
    row = _row(statement=json.dumps(STATEMENT), open_amount=1510.5, customer_type="B2B", language="en")
    message = render_reminder(row, sender_name="S", payment_link_template=TEMPLATE)
    urls = [
        "https://pay.example.com/invoices/F%2F2026%2012?amount=1200.00&currency=EUR&customer=C%261",
        "https://pay.example.com/invoices/F-0040?amount=310.50&currency=EUR&customer=C%261",
    ]
    lines = message.text.splitlines()
    for invoice, url in zip(["F/2026 12", "F-0040"], urls, strict=True):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"- Invoice {invoice}"))
        assert lines[at + 1] == f"  Pay online: {url}", "under its own line"
    html = message.html_blocks()
    assert _hrefs(html) == urls
    assert "<th" in html and "Pay online" in html
    assert message.statement is not None and message.statement.link("F-0040") == urls[1]


def test_without_a_template_the_message_is_unchanged() -> None:
    plain = render_reminder(_row(), sender_name="S")
    assert render_reminder(_row(), sender_name="S", payment_link_template=None) == plain
    assert "http" not in plain.text and "<a " not in plain.html_blocks()


def test_a_missing_value_stops_the_message_instead_of_sending_a_wrong_link() -> None:
    with pytest.raises(ValueError, match="customer_id"):
        build_mail(_row(customer_id=None), sender_email="r@example.com", sender_name="S", lineage={},
                   options=MailOptions(payment_link_template=TEMPLATE))  # fmt: skip


# --------------------------------------------------------------------------------------- unsubscribe group, sandbox


@pytest.mark.parametrize(("customer_type", "has_group"), [("B2C", True), (None, True), ("B2B", False), ("b2b", False)])
def test_consumers_emails_carry_the_unsubscribe_group(customer_type, has_group) -> None:
    options = MailOptions(unsubscribe_group_id=4242)
    body = build_mail(_row(customer_type=customer_type), sender_email="r@example.com", sender_name="S", lineage={},
                      options=options).get()  # fmt: skip
    assert body.get("asm") == ({"group_id": 4242} if has_group else None)
    _validate(body)


def test_sandbox_mode_and_opaque_custom_args() -> None:
    options = MailOptions(payment_link_template=TEMPLATE, unsubscribe_group_id=7, sandbox_mode=True)
    body = build_mail(_row(model_version="3"), sender_email="r@example.com", sender_name="S",
                      lineage={"prefect.flow_run_id": "run-1"}, options=options).get()  # fmt: skip
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["personalizations"][0]["custom_args"] == {
        "reminder_key": "rk-1",
        "invoice_id": "F/2026 12",
        "model_version": "3",
        "flow_run_id": "run-1",
    }, "ids only: no name, address, amount or link"
    _validate(body)
    assert "mail_settings" not in build_mail(_row(), sender_email="r@example.com", sender_name="S", lineage={}).get()


def test_options_from_settings() -> None:
    from relance.settings import Settings

    settings = Settings(payment_link_template=TEMPLATE, sendgrid_unsubscribe_group_id=12, sendgrid_sandbox_mode=True)
    assert MailOptions.from_settings(settings) == MailOptions(TEMPLATE, 12, True)
    assert MailOptions.from_settings(Settings()) == MailOptions()


# --------------------------------------------------------------------------------------- what an answer proves


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "refused"),
        (413, "refused"),
        (422, "refused"),
        (401, "account"),
        (403, "account"),
        (404, "account"),
        (408, "retry"),
        (429, "retry"),
        (500, "unknown"),
        (502, "unknown"),
        (503, "unknown"),
        (504, "unknown"),
        (200, "unknown"),
        (302, "unknown"),
    ],
)
def test_every_status_has_one_meaning(status: int, kind: str) -> None:
    assert classify_status(status) == kind
    error = DeliveryError.for_status(status, "x", retry_after=5.0)
    flags = (error.retryable, error.permanent, error.pause_channel, error.outcome_unknown)
    assert flags == (kind == "retry", kind == "refused", kind == "account", kind == "unknown")
    assert error.retry_after == (5.0 if kind == "retry" else None)


def test_an_unknown_outcome_is_never_retryable_whatever_the_transport_says() -> None:
    error = DeliveryError("read timeout", retryable=True, ambiguous=True, permanent=True)
    assert (error.outcome_unknown, error.ambiguous, error.retryable, error.permanent) == (True, True, False, False)
    assert DeliveryError("refused", retryable=True).outcome_unknown is False


def test_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None


def test_the_retry_delay_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (6, 30.0), (12, 30.0)]:
        delays = [retry_delay(attempt, backoff_seconds=1, max_backoff_seconds=30, rng=rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert len(set(delays)) > 150, "jittered: runs throttled together do not retry in step"
    assert retry_delay(0, backoff_seconds=1, max_backoff_seconds=30, retry_after=20, rng=rng) == 20
    assert retry_delay(0, backoff_seconds=0, max_backoff_seconds=30) == 0
