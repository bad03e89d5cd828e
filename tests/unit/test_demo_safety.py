"""The demo never reaches anyone (issue 9, item 4).

Reproductions: ``relance demo`` wrote addresses at real mail domains (``gmail.com``, ``orange.fr``, ``<firm>.fr``)
and real-looking numbers (``+336...``, ``+4420...``), and it used the SendGrid key of a ``.env`` if there was one.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from pydantic import SecretStr

from relance.channels import OutboxTransport, SendGridTransport, transport_factory
from relance.demo import arrow_schema, generate_demo
from relance.demo.fec_export import write_fec
from relance.demo.safety import (
    demo_settings,
    is_fictional_phone,
    is_reserved_email,
    provider_credential_fields,
)
from relance.settings import Settings

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+\d{7,15}")
SECRET = "SG.live-key-that-must-stay-home"
END = date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A small demo with British customers and published insolvencies, plus its FEC: every text file it emits."""
    root = tmp_path_factory.mktemp("demo-safety")
    summary = generate_demo(
        root / "landing", root / "truth", n_customers=800, n_invoices=3000, months=24, end_date=END, seed=3
    )
    fec = write_fec(root / "landing", root / "FEC.txt")
    texts = [p for p in summary.files.values() if p.suffix in (".csv", ".json")] + [fec]
    return root, texts


# ---------------------------------------------------------------------------------------------------------
# contact details
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "reserved"),
    [
        ("compta@batiment-martin12.example", True),
        ("jean.dupont3@example.com", True),
        ("a@sub.example.org", True),
        ("a@boite.test", True),
        ("a@EXAMPLE.NET", True),
        ("a@gmail.com", False),
        ("compta@batisud.fr", False),
        ("a@example.com.evil.fr", False),
        ("a@notexample.com", False),
        ("no-at-sign.example", False),
    ],
)
def test_reserved_mail_domains_are_those_of_rfc_2606_and_6761(address, reserved):
    assert is_reserved_email(address) is reserved


@pytest.mark.parametrize(
    ("number", "fictional"),
    [
        ("+33199001234", True),
        ("+33261910000", True),
        ("+33353019999", True),
        ("+33465715555", True),
        ("+33536490001", True),
        ("+33639981234", True),
        ("+442079460999", True),
        ("+447700900123", True),
        ("+33612345678", False),
        ("+33199011234", False),  # 01 99 01: outside the block
        ("+442079461000", False),  # 020 7946 1000: past the drama range
        ("+3319900123", False),  # one digit short
        ("+33 1 99 00 12 34", False),  # not E.164
    ],
)
def test_fictional_phone_ranges_are_arcep_and_ofcom_blocks(number, fictional):
    assert is_fictional_phone(number) is fictional


def test_every_demo_email_is_at_a_reserved_domain_and_every_phone_in_a_fiction_range(demo_files):
    """Scans every text file the demo writes (landing CSVs, BODACC JSON, its FEC) for anything that looks like an
    address or an E.164 number, and checks the customers table column by column."""
    root, texts = demo_files
    emails: set[str] = set()
    phones: set[str] = set()
    for path in texts:
        text = path.read_text(encoding="utf-8")
        emails.update(EMAIL.findall(text))
        phones.update(PHONE.findall(text))
    customers = pacsv.read_csv(
        root / "landing" / "customers.csv",
        convert_options=pacsv.ConvertOptions(column_types=arrow_schema("customers")),
    ).to_pylist()
    assert {c["email"] for c in customers} <= emails and {c["phone"] for c in customers} <= phones
    assert sorted(e for e in emails if not is_reserved_email(e)) == []
    assert sorted(p for p in phones if not is_fictional_phone(p)) == []
    # every kind of customer is covered: French firms, consumers, British firms; numbers still E.164
    kinds = {(c["customer_type"], c["country_code"]) for c in customers}
    assert kinds == {("B2B", "FR"), ("B2C", "FR"), ("B2B", "GB")}
    for c in customers:
        assert re.fullmatch(r"\+[1-9]\d{9,13}", c["phone"]), c
        if c["country_code"] == "GB":
            assert c["phone"].startswith("+442079460"), c
        elif c["customer_type"] == "B2C":
            assert c["phone"].startswith("+3363998"), c
    bodacc = json.loads((root / "landing" / "risk" / "bodacc_notices.json").read_text(encoding="utf-8"))
    assert bodacc["results"], "the scan must cover published notices too"


# ---------------------------------------------------------------------------------------------------------
# provider credentials
# ---------------------------------------------------------------------------------------------------------
def _settings_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What ``relance demo`` builds in a directory whose ``.env`` holds a live SendGrid key."""
    for key in ("RELANCE_SENDGRID_API_KEY", "RELANCE_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / ".env").write_text(f"RELANCE_SENDGRID_API_KEY={SECRET}\nRELANCE_DATA_DIR={tmp_path / 'data'}\n")
    monkeypatch.chdir(tmp_path)
    return Settings()


def test_demo_settings_send_email_to_the_outbox_even_with_a_sendgrid_key_in_dotenv(tmp_path, monkeypatch, caplog):
    settings = _settings_from_dotenv(tmp_path, monkeypatch)
    day = date(2026, 10, 31)
    # the reproduction: these settings would email through SendGrid
    assert isinstance(transport_factory(settings, day)("email"), SendGridTransport)

    with caplog.at_level(logging.WARNING, logger="relance.demo.safety"):
        safe = demo_settings(settings)
    assert isinstance(transport_factory(safe, day)("email"), OutboxTransport)
    assert safe.sendgrid_api_key is None
    assert settings.sendgrid_api_key is not None  # the caller's settings are not changed
    assert safe.data == settings.data and safe.outbox == settings.outbox
    assert "sendgrid_api_key" in caplog.text and SECRET not in caplog.text


def test_demo_settings_keep_the_keys_only_when_asked(tmp_path, monkeypatch, caplog):
    settings = _settings_from_dotenv(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="relance.demo.safety"):
        kept = demo_settings(settings, use_provider_keys=True)
    assert isinstance(transport_factory(kept, date(2026, 10, 31))("email"), SendGridTransport)
    assert "sendgrid_api_key" in caplog.text and SECRET not in caplog.text


def test_demo_settings_without_keys_change_nothing_and_warn_nothing(tmp_path, caplog):
    settings = Settings(_env_file=None, data_dir=tmp_path, sendgrid_api_key=None)
    with caplog.at_level(logging.WARNING, logger="relance.demo.safety"):
        assert demo_settings(settings) is settings
    assert caplog.text == ""


def test_every_credential_setting_is_cleared_including_future_ones(tmp_path):
    """Any SecretStr setting or ``*_api_key`` / ``*_auth_token`` name counts (a Twilio token added later)."""

    class WithTwilio(Settings):
        twilio_auth_token: SecretStr | None = None
        twilio_account_sid: str | None = None
        partner_api_key: str | None = None

    assert {"sendgrid_api_key", "twilio_auth_token", "partner_api_key"} <= set(provider_credential_fields(WithTwilio))
    assert "twilio_account_sid" not in provider_credential_fields(WithTwilio)
    settings = WithTwilio(
        _env_file=None,
        data_dir=tmp_path,
        sendgrid_api_key=SecretStr("a"),
        twilio_auth_token=SecretStr("b"),
        twilio_account_sid="AC1",
        partner_api_key="c",
    )
    safe = demo_settings(settings)
    assert (safe.sendgrid_api_key, safe.twilio_auth_token, safe.partner_api_key) == (None, None, None)
    assert safe.twilio_account_sid == "AC1"
