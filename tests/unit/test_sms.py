"""SMS: numbers in E.164, the segment count a carrier bills, the text by tone and language, the outbox, and which
transport the settings choose."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from relance.channels import TWILIO_STATUS_PATH, make_transport_for
from relance.channels.email import DeliveryError, OutboxTransport
from relance.channels.sms import (
    FICTION_MOBILE_BLOCKS,
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SEGMENTS,
    OPT_OUT_EN,
    OPT_OUT_FR,
    UCS2,
    InvalidPhoneNumber,
    SmsMessage,
    SmsOutbox,
    TwilioTransport,
    build_sms,
    is_gsm7,
    is_mobile,
    normalize_phone,
    render_sms,
    segments,
    sms_amount,
    to_gsm7,
    with_query,
)
from relance.demo import safety

TONES = ("preventive", "cordial", "firm", "formal_notice")
LINK = "https://pay.example.com/F-2026-000123?amount=1234567.50&currency=EUR"
ACCOUNT_SID = "AC" + "0" * 32


def _row(**overrides) -> dict:
    row = {
        "reminder_key": "k" * 64,
        "invoice_id": "F-2026-000123",
        "customer_id": "C-1",
        "tone": "cordial",
        "language": "fr",
        "open_amount": 1234567.5,
        "currency": "EUR",
        "customer_name": "Dupont SARL",
        "recipient": "06 39 98 00 01",
        "invoice_count": 1,
    }
    return {**row, **overrides}


# --- numbers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["06 12 34 56 78", "0612345678", "06.12.34.56.78", "06-12-34-56-78", "+33 6 12 34 56 78", "0033 6 12 34 56 78"],
)
def test_french_mobile_written_any_way_is_e164(raw):
    assert normalize_phone(raw, "FR") == "+33612345678"


def test_region_reads_national_numbers_and_international_ones_keep_their_country():
    assert normalize_phone("07911 123456", "GB") == "+447911123456"
    assert normalize_phone("+44 7911 123456", "FR") == "+447911123456"
    assert normalize_phone("07 81 23 45 67", "fr") == "+33781234567"


def test_fiction_mobile_ranges_are_accepted_though_libphonenumber_does_not_know_them():
    assert normalize_phone("06 39 98 00 01") == "+33639980001"
    assert normalize_phone("+44 7700 900123") == "+447700900123"
    # the same blocks as the demo's safety module, which writes the demo's numbers
    assert dict(FICTION_MOBILE_BLOCKS) == {
        safety.FR_MOBILE_FICTION: safety.FICTIONAL_PHONE_BLOCKS[safety.FR_MOBILE_FICTION],
        safety.GB_MOBILE_FICTION: safety.FICTIONAL_PHONE_BLOCKS[safety.GB_MOBILE_FICTION],
    }


@pytest.mark.parametrize("raw", [None, "", "   ", "abc", "+336", "06 12 34", "+33 6 12 34 56 78 90 12"])
def test_invalid_numbers_raise_a_clear_error(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)
    assert not is_mobile(raw)


@pytest.mark.parametrize("raw", ["01 23 45 67 89", "+33199001234", "+33 1 99 00 12 34"])
def test_a_landline_cannot_receive_an_sms(raw):
    with pytest.raises(InvalidPhoneNumber, match="not a mobile"):
        normalize_phone(raw)
    assert not is_mobile(raw)
    assert is_mobile("06 12 34 56 78")


# --- segments -----------------------------------------------------------------------------------------------


def test_gsm_alphabet_has_127_characters_and_the_extension_table_9_plus_form_feed():
    assert len(GSM7_BASIC) == 127
    assert frozenset("^{}\\[~]|€\f") == GSM7_EXTENSION
    assert is_gsm7("é è à ù ì ò Ç É Ä Ö Ñ Ü ä ö ñ ü ß @ £ $ ¥ €")
    for char in "çêâîôûëïœ’\u00a0\u202f😀":
        assert not is_gsm7(char), char


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (GSM7, 0)),
        ("a" * 160, (GSM7, 1)),
        ("a" * 161, (GSM7, 2)),
        ("é" * 160, (GSM7, 1)),  # French accents é è à ù are GSM-7
        ("a" * 306, (GSM7, 2)),
        ("a" * 307, (GSM7, 3)),
        ("€" * 80, (GSM7, 1)),  # extension characters count twice: 160 septets
        ("€" * 81, (GSM7, 2)),
        ("a" * 158 + "[", (GSM7, 1)),
        ("a" * 159 + "[", (GSM7, 2)),
        ("œ" * 70, (UCS2, 1)),
        ("œ" * 71, (UCS2, 2)),
        ("a" * 69 + "œ", (UCS2, 1)),  # one non-GSM character makes the whole message UCS-2
        ("a" * 70 + "ç", (UCS2, 2)),
        ("a" * 134, (GSM7, 1)),
        ("œ" * 134, (UCS2, 2)),
        ("œ" * 135, (UCS2, 3)),
        ("😀" * 35, (UCS2, 1)),  # an emoji is two UTF-16 code units
        ("😀" * 36, (UCS2, 2)),
    ],
)
def test_segment_count_at_the_boundaries(text, expected):
    assert segments(text) == expected


def test_an_escape_or_surrogate_pair_is_never_split_across_segments():
    # 306 septets would fit in two segments of 153, but the euro sign cannot start at septet 153 of segment one
    assert segments("a" * 152 + "€" + "a" * 152) == (GSM7, 3)
    assert segments("a" * 152 + "€" + "a" * 151) == (GSM7, 2)
    assert segments("œ" * 66 + "😀" + "œ" * 67) == (UCS2, 3)


def test_to_gsm7_keeps_what_gsm_has_and_spells_the_rest_closely():
    assert to_gsm7("François Lefèvre") == "Francois Lefèvre"
    assert to_gsm7("Œuvres d\u2019art «\u00a0Noël\u00a0» – Gîte") == 'OEuvres d\'art " Noel " - Gite'
    assert to_gsm7("北京") == "北京"  # no close spelling: kept (the message becomes UCS-2)


# --- text ---------------------------------------------------------------------------------------------------


def test_amounts_use_plain_spaces_so_the_message_stays_gsm7():
    assert sms_amount(1234567.5, "EUR", "fr") == "1 234 567,50 €"
    assert sms_amount(1234.5, "EUR", "en") == "€1,234.50"
    assert sms_amount(99, "CHF", "en") == "CHF 99.00"


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("count", [1, 3])
def test_every_text_says_who_what_how_many_and_how_to_stop_within_two_gsm_segments(language, tone, count):
    row = _row(tone=tone, language=language, invoice_count=count, payment_link=LINK)
    text = render_sms(row, sender_name="Service recouvrement")
    encoding, n = segments(text)
    assert encoding == GSM7 and n <= MAX_SEGMENTS, (text, encoding, n)
    assert text.startswith("Service recouvrement")
    assert "Dupont SARL" in text
    assert sms_amount(1234567.5, "EUR", language) in text
    assert LINK in text
    if count == 1:
        assert "F-2026-000123" in text
    else:
        assert ("3 invoices" if language == "en" else "3 factures") in text
    assert text.endswith(OPT_OUT_EN if language == "en" else OPT_OUT_FR)


def test_the_opt_out_names_the_number_to_text_when_there_is_one():
    fr = render_sms(_row(), sender_name="ACME", opt_out_number="+33639980000")
    en = render_sms(_row(language="en"), sender_name="ACME", opt_out_number="+33639980000")
    assert fr.endswith("STOP au +33639980000")
    assert en.endswith("STOP to +33639980000")


def test_tones_escalate_in_both_languages():
    texts = {
        (lang, tone): render_sms(_row(tone=tone, language=lang), sender_name="S")
        for lang in ("fr", "en")
        for tone in TONES
    }
    assert "MISE EN DEMEURE" in texts["fr", "formal_notice"]
    assert "FORMAL NOTICE" in texts["en", "formal_notice"]
    assert "8 jours" in texts["fr", "firm"] and "8 days" in texts["en", "firm"]
    assert "échéance" in texts["fr", "preventive"] and "falls due" in texts["en", "preventive"]
    assert len(set(texts.values())) == len(texts)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("tone", TONES)
def test_a_long_name_is_shortened_never_the_amount_the_link_or_the_opt_out(language, tone):
    name = "Établissements Dupont-Durand et Associés Holding Internationale " * 6
    row = _row(tone=tone, language=language, invoice_count=12, customer_name=name, open_amount=98765432.1)
    row["payment_link"] = LINK
    text = render_sms(row, sender_name="Service recouvrement")
    assert segments(text)[0] == GSM7 and segments(text)[1] <= MAX_SEGMENTS
    assert sms_amount(98765432.1, "EUR", language) in text
    assert LINK in text
    assert ("12 invoices" if language == "en" else "12 factures") in text
    assert text.endswith(OPT_OUT_EN if language == "en" else OPT_OUT_FR)
    assert "Établissements" in text  # the start of the name survives, in whole words
    assert name.strip() not in text


def test_a_name_outside_gsm7_is_spelt_in_gsm7_rather_than_tripling_the_cost():
    text = render_sms(_row(customer_name="François Œuvray"), sender_name="Crédit Maître")
    assert segments(text)[0] == GSM7
    assert "Francois OEuvray" in text and "Crédit Maitre" in text


def test_unknown_tone_is_refused():
    with pytest.raises(ValueError, match="unknown tone"):
        render_sms(_row(tone="angry"), sender_name="S")


def test_invoice_count_falls_back_on_the_statement():
    statement = json.dumps([{"invoice_id": f"F-{i}", "open_amount": 10.0} for i in range(4)])
    row = _row(invoice_count=None, statement=statement)
    assert "4 factures" in render_sms(row, sender_name="S")


def test_payment_link_from_the_template_for_one_invoice_or_a_customer_page_for_several():
    per_invoice = "https://pay.example.com/{invoice_id}?amount={amount}&currency={currency}"
    single = render_sms(_row(open_amount=120.5), sender_name="S", payment_link_template=per_invoice)
    assert "Payer : https://pay.example.com/F-2026-000123?amount=120.50&currency=EUR" in single
    # one link per invoice does not fit in an SMS: none, rather than the lead invoice's for the total
    several = render_sms(_row(invoice_count=3), sender_name="S", payment_link_template=per_invoice)
    assert "https://" not in several
    per_customer = "https://pay.example.com/c/{customer_id}?amount={amount}"
    total = render_sms(_row(invoice_count=3, open_amount=300), sender_name="S", payment_link_template=per_customer)
    assert "https://pay.example.com/c/C-1?amount=300.00" in total
    # the row's own link wins over the template
    own = render_sms(_row(payment_link=LINK), sender_name="S", payment_link_template=per_invoice)
    assert LINK in own and "amount=120.50" not in own


def test_build_sms_normalises_the_recipient_and_counts_segments():
    sms = build_sms(_row(recipient="06 39 98 00 01"), sender_name="S")
    assert sms.to == "+33639980001"
    assert (sms.encoding, sms.segments) == segments(sms.body)
    phone_only = build_sms(_row(recipient=None, phone="+33 6 39 98 00 02"), sender_name="S")
    assert phone_only.to == "+33639980002"


def test_with_query_keeps_existing_parameters():
    assert with_query("https://h.example.com/webhooks/twilio/status", reminder_key="abc") == (
        "https://h.example.com/webhooks/twilio/status?reminder_key=abc"
    )
    assert (
        with_query("https://h.example.com/s?x=1", reminder_key="a b") == "https://h.example.com/s?x=1&reminder_key=a+b"
    )


# --- outbox and transport choice ----------------------------------------------------------------------------


def test_outbox_writes_the_sms_it_would_send(tmp_path: Path):
    outbox = SmsOutbox(tmp_path, sender_name="Service recouvrement")
    result = outbox.send(_row(), "key-1")
    assert result.provider_message_id is None
    assert result.outbox_path == tmp_path / "sms" / "key-1.json"
    written = json.loads(result.outbox_path.read_text(encoding="utf-8"))
    assert written["to"] == "+33639980001"
    assert written["body"] == render_sms(_row(), sender_name="Service recouvrement")
    assert (written["encoding"], written["segments"]) == segments(written["body"])
    assert written["reminder_key"] == "key-1"


def test_outbox_takes_a_prepared_message_as_is(tmp_path: Path):
    sms = SmsMessage(to="+33639980009", body="Bonjour", encoding=GSM7, segments=1)
    path = SmsOutbox(tmp_path).send(sms, "key-2").outbox_path
    assert json.loads(path.read_text(encoding="utf-8"))["to"] == "+33639980009"


def test_a_landline_is_refused_before_anything_is_written(tmp_path: Path):
    with pytest.raises(DeliveryError, match="not a mobile") as caught:
        SmsOutbox(tmp_path).send(_row(recipient="+33199001234"), "key-3")
    assert not caught.value.retryable
    assert not (tmp_path / "sms" / "key-3.json").exists()


def _router(tmp_path: Path, **kw):
    return make_transport_for(outbox_dir=tmp_path, as_of_date=date(2026, 3, 31), sender_name="S", **kw)


def test_without_twilio_credentials_sms_goes_to_the_outbox_and_other_channels_are_unchanged(tmp_path: Path):
    transport_for = _router(tmp_path, twilio_account_sid=ACCOUNT_SID)  # a SID alone is not enough
    assert isinstance(transport_for("sms"), SmsOutbox)
    assert isinstance(transport_for("email"), OutboxTransport)
    assert {transport_for(c).channel for c in ("letter", "call")} == {"letter", "call"}
    with pytest.raises(ValueError, match="no transport for channel"):
        transport_for("fax")


def test_with_twilio_credentials_sms_goes_to_twilio(tmp_path: Path):
    transport_for = _router(
        tmp_path,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token="secret-token-value",
        twilio_from_number="+33 6 39 98 00 00",
        twilio_host="http://127.0.0.1:9",
        twilio_status_callback="https://hooks.example.com" + TWILIO_STATUS_PATH,
    )
    transport = transport_for("sms")
    assert isinstance(transport, TwilioTransport)
    assert transport.from_number == "+33639980000"
    assert "secret-token-value" not in repr(transport)


def test_twilio_needs_a_sender(tmp_path: Path):
    with pytest.raises(ValueError, match="from number"):
        _router(tmp_path, twilio_account_sid=ACCOUNT_SID, twilio_auth_token="t")


def test_status_callback_path_is_the_webhook_services():
    twilio_webhooks = pytest.importorskip("relance.webhooks.twilio")
    assert TWILIO_STATUS_PATH == twilio_webhooks.STATUS_PATH


def test_transport_factory_reads_the_twilio_settings(tmp_path: Path):
    from relance.channels import transport_factory
    from relance.settings import Settings

    default = transport_factory(Settings(data_dir=tmp_path), date(2026, 3, 31))
    assert isinstance(default("sms"), SmsOutbox)
    settings = Settings(
        data_dir=tmp_path,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token="t0ken",
        twilio_messaging_service_sid="MG" + "1" * 32,
        twilio_host="http://127.0.0.1:9",
        webhook_public_url="https://hooks.example.com/",
        sms_default_region="GB",
    )
    transport = transport_factory(settings, date(2026, 3, 31))("sms")
    assert isinstance(transport, TwilioTransport)
    assert transport.messaging_service_sid == "MG" + "1" * 32
    assert transport.status_callback == "https://hooks.example.com/webhooks/twilio/status"
    assert transport.default_region == "GB"
