"""Ways a reminder leaves the building: email (SendGrid or the local outbox), paper letter, call list.

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
from relance.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "CallListOutbox",
    "DeliveryError",
    "LetterOutbox",
    "OutboxTransport",
    "SendGridTransport",
    "SendResult",
    "Transport",
    "build_mail",
    "make_transport_for",
    "transport_factory",
]


def make_transport_for(
    *,
    outbox_dir: Path,
    as_of_date: date,
    sender_name: str,
    sendgrid_api_key: SecretStr | str | None = None,
    sendgrid_host: str = "https://api.sendgrid.com",
) -> Callable[[str], Transport]:
    """A channel -> transport function; one transport instance per channel for the whole run.

    Email goes to SendGrid only when an API key is configured, otherwise to the outbox: the safe default is
    that a demo or a test never emails a real customer.
    """
    key = sendgrid_api_key.get_secret_value() if isinstance(sendgrid_api_key, SecretStr) else sendgrid_api_key
    email: Transport = SendGridTransport(key, sendgrid_host) if key else OutboxTransport(outbox_dir)
    log.info("email transport: %s", "SendGrid at " + sendgrid_host if key else f"outbox {outbox_dir}")
    transports: dict[str, Transport] = {
        "email": email,
        "letter": LetterOutbox(outbox_dir, sender_name=sender_name, as_of_date=as_of_date),
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
    )
