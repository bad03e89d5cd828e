"""The demo never reaches anyone: its contacts are unroutable by construction, and it ignores provider keys.

Two guarantees, each checkable on its own:

* **Contact details nobody owns.** Every e-mail address the demo writes is at a domain reserved for
  documentation and testing (RFC 2606 and RFC 6761: ``example.com``, ``example.org``, ``example.net`` and the
  ``.example``, ``.test`` and ``.invalid`` top-level domains), and every phone number is in a range a regulator
  keeps for fiction, so it can never ring a subscriber:

  - France, ARCEP (plan national de numérotation): ``01 99 00 xx xx``, ``02 61 91 xx xx``, ``03 53 01 xx xx``,
    ``04 65 71 xx xx``, ``05 36 49 xx xx`` (one block per geographic zone) and ``06 39 98 xx xx`` (mobile),
    10,000 numbers each;
  - United Kingdom, Ofcom "numbers for drama": London ``020 7946 0000``-``0999`` and mobile
    ``07700 900000``-``900999``.

  Numbers are written in E.164 (``+33199001234``), like real ones, so the pipeline treats them as it would a
  real export. :func:`is_reserved_email` and :func:`is_fictional_phone` are the checks a test (or an operator
  worried about a demo data directory) runs over the files.

* **No provider credentials.** :func:`demo_settings` returns the settings with every provider credential
  cleared, so the transports fall back to the local outbox even when ``.env`` holds a real SendGrid key.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import SecretStr

from relance.settings import Settings

log = logging.getLogger(__name__)

# --- e-mail: RFC 2606 / RFC 6761 ------------------------------------------------------------------------
RESERVED_MAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net")
RESERVED_MAIL_TLDS: tuple[str, ...] = ("example", "test", "invalid")

# --- phones: E.164 prefix -> number of free digits after it --------------------------------------------
FR_GEOGRAPHIC_FICTION: tuple[str, ...] = ("+3319900", "+3326191", "+3335301", "+3346571", "+3353649")
"""ARCEP's fiction blocks for the geographic zones 01 to 05, in zone order (index = zone - 1)."""
FR_MOBILE_FICTION = "+3363998"
GB_LONDON_FICTION = "+442079460"
GB_MOBILE_FICTION = "+447700900"
FICTIONAL_PHONE_BLOCKS: dict[str, int] = {
    **dict.fromkeys(FR_GEOGRAPHIC_FICTION, 4),
    FR_MOBILE_FICTION: 4,
    GB_LONDON_FICTION: 3,
    GB_MOBILE_FICTION: 3,
}
_FICTIONAL_PHONE = re.compile(
    "|".join(f"{re.escape(prefix)}\\d{{{digits}}}" for prefix, digits in FICTIONAL_PHONE_BLOCKS.items())
)


def is_reserved_email(address: str) -> bool:
    """True when ``address`` is ``local@domain`` with a domain no one can receive mail at (RFC 2606/6761)."""
    local, sep, domain = str(address).strip().rpartition("@")
    if not sep or not local or not domain:
        return False
    domain = domain.lower().rstrip(".")
    if any(domain == d or domain.endswith("." + d) for d in RESERVED_MAIL_DOMAINS):
        return True
    return domain.rsplit(".", 1)[-1] in RESERVED_MAIL_TLDS


def is_fictional_phone(number: str) -> bool:
    """True when ``number`` is an E.164 number inside one of the fiction ranges above (no spaces)."""
    return _FICTIONAL_PHONE.fullmatch(str(number)) is not None


# --- provider credentials -------------------------------------------------------------------------------
CREDENTIAL_SUFFIXES: tuple[str, ...] = ("_api_key", "_auth_token")


def _is_secret_annotation(annotation: Any) -> bool:
    """``SecretStr``, ``SecretStr | None``, ``Optional[SecretStr]``...: any annotation that names SecretStr."""
    if annotation is SecretStr:
        return True
    return any(_is_secret_annotation(arg) for arg in getattr(annotation, "__args__", ()) or ())


def provider_credential_fields(settings_type: type[Settings] = Settings) -> tuple[str, ...]:
    """Names of the settings that are provider credentials: typed ``SecretStr`` or named ``*_api_key`` /
    ``*_auth_token``. Derived from the model, so a credential added later (a Twilio token) is covered."""
    return tuple(
        name
        for name, info in settings_type.model_fields.items()
        if _is_secret_annotation(info.annotation) or name.endswith(CREDENTIAL_SUFFIXES)
    )


def demo_settings(settings: Settings, *, use_provider_keys: bool = False) -> Settings:
    """A copy of ``settings`` with every provider credential back at its default (unset), unless
    ``use_provider_keys``.

    The demo sends reminders to made-up customers; with a real key in ``.env`` those would go to the provider.
    A warning names the keys that were ignored (names only, never values). ``settings`` is not changed.
    """
    defaults = {
        name: type(settings).model_fields[name].get_default(call_default_factory=True)
        for name in provider_credential_fields(type(settings))
    }
    present = [name for name, default in defaults.items() if getattr(settings, name) not in (None, default)]
    if use_provider_keys:
        if present:
            log.warning("demo uses provider credentials %s as asked: reminders may leave the machine", present)
        return settings
    if not present:
        return settings
    log.warning(
        "demo ignores provider credentials %s: everything goes to the local outbox "
        "(pass --use-provider-keys to use them)",
        present,
    )
    return settings.model_copy(update={name: defaults[name] for name in present})
