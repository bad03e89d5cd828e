"""Ways a reminder leaves the building: email (SendGrid or the local outbox), SMS (Twilio or the local outbox),
paper letter, call list.

Every transport has one method, ``send(message, reminder_key) -> SendResult``, and raises ``DeliveryError``
when nothing went out; ``relance.delivery`` picks a transport per channel through :func:`transport_factory`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from relance.channels.email import (
    DeliveryError,
    OutboxTransport,
    SendGridTransport,
    SendResult,
    Transport,
    build_mail,
)
from relance.channels.outbox import CallListOutbox, LetterOutbox
from relance.channels.sms import (
    InvalidPhoneNumber,
    SmsMessage,
    SmsOutbox,
    TwilioDeliveryError,
    TwilioTransport,
    build_sms,
    normalize_phone,
    segments,
)
from relance.settings import Settings

log = logging.getLogger(__name__)

#: Where the webhook service takes Twilio's status callbacks (``relance.webhooks.twilio.STATUS_PATH``; not
#: imported: the channels do not need the web stack). Each SMS adds ``?reminder_key=<key>``.
TWILIO_STATUS_PATH = "/webhooks/twilio/status"

__all__ = [
    "CallListOutbox",
    "DeliveryError",
    "InvalidPhoneNumber",
    "LetterOutbox",
    "OutboxTransport",
    "SendGridTransport",
    "SendResult",
    "SmsMessage",
    "SmsOutbox",
    "Transport",
    "TwilioDeliveryError",
    "TwilioTransport",
    "build_mail",
    "build_sms",
    "make_transport_for",
    "normalize_phone",
    "segments",
    "transport_factory",
]


def make_transport_for(
    *,
    outbox_dir: Path,
    as_of_date: date,
    sender_name: str,
    sendgrid_api_key: SecretStr | str | None = None,
    sendgrid_host: str = "https://api.sendgrid.com",
    twilio_account_sid: str | None = None,
    twilio_auth_token: SecretStr | str | None = None,
    twilio_from_number: str | None = None,
    twilio_messaging_service_sid: str | None = None,
    twilio_host: str = "https://api.twilio.com",
    twilio_status_callback: str | None = None,
    sms_default_region: str = "FR",
    payment_link_template: str | None = None,
    sender_address: str = "",
    late_penalty_margin_points: float = 10.0,
    recovery_indemnity_eur: float = 40.0,
) -> Callable[[str], Transport]:
    """A channel -> transport function; one transport instance per channel for the whole run.

    Email goes to SendGrid only when an API key is configured, SMS to Twilio only when an account SID and an
    auth token are, otherwise both go to the outbox: the safe default is that a demo or a test never emails or
    texts a real customer. Twilio also needs a from number or a messaging service (``ValueError`` otherwise).
    """
    key = sendgrid_api_key.get_secret_value() if isinstance(sendgrid_api_key, SecretStr) else sendgrid_api_key
    email: Transport = SendGridTransport(key, sendgrid_host) if key else OutboxTransport(outbox_dir)
    log.info("email transport: %s", "SendGrid at " + sendgrid_host if key else f"outbox {outbox_dir}")
    token = twilio_auth_token.get_secret_value() if isinstance(twilio_auth_token, SecretStr) else twilio_auth_token
    sms: Transport
    if twilio_account_sid and token:
        sms = TwilioTransport(
            twilio_account_sid,
            token,
            from_number=twilio_from_number,
            messaging_service_sid=twilio_messaging_service_sid,
            host=twilio_host,
            status_callback=twilio_status_callback,
            sender_name=sender_name,
            default_region=sms_default_region,
            payment_link_template=payment_link_template,
        )
        log.info("sms transport: Twilio at %s", twilio_host)
    else:
        sms = SmsOutbox(
            outbox_dir,
            sender_name=sender_name,
            default_region=sms_default_region,
            payment_link_template=payment_link_template,
        )
        log.info("sms transport: outbox %s", outbox_dir)
    transports: dict[str, Transport] = {
        "email": email,
        "sms": sms,
        "letter": LetterOutbox(
            outbox_dir,
            sender_name=sender_name,
            as_of_date=as_of_date,
            sender_address=sender_address,
            margin_points=late_penalty_margin_points,
            indemnity_eur=recovery_indemnity_eur,
        ),
        "call": CallListOutbox(outbox_dir, as_of_date),
    }

    def transport_for(channel: str) -> Transport:
        try:
            return transports[channel]
        except KeyError:
            raise ValueError(f"no transport for channel {channel!r}; known: {sorted(transports)}") from None

    return transport_for


def transport_factory(
    settings: Settings, as_of_date: date, outbox_dir: Path | None = None
) -> Callable[[str], Transport]:
    """:func:`make_transport_for` wired from :class:`~relance.settings.Settings` (what the flows call);
    ``outbox_dir`` defaults to the customers' outbox (finance's own emails pass ``settings.finance_outbox``)."""
    return make_transport_for(
        outbox_dir=outbox_dir or settings.outbox,
        as_of_date=as_of_date,
        sender_name=settings.sender_name,
        sendgrid_api_key=settings.sendgrid_api_key,
        sendgrid_host=settings.sendgrid_host,
        twilio_account_sid=settings.twilio_account_sid,
        twilio_auth_token=settings.twilio_auth_token,
        twilio_from_number=settings.twilio_from_number,
        twilio_messaging_service_sid=settings.twilio_messaging_service_sid,
        twilio_host=settings.twilio_host,
        sms_default_region=settings.sms_default_region,
        payment_link_template=settings.payment_link_template,
        sender_address=settings.sender_address,
        late_penalty_margin_points=settings.late_penalty_margin_points,
        recovery_indemnity_eur=settings.recovery_indemnity_eur,
        twilio_status_callback=(
            settings.webhook_public_url.rstrip("/") + TWILIO_STATUS_PATH if settings.webhook_public_url else None
        ),
    )
