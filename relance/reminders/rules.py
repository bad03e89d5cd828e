"""Contact rules checked just before every send: who may be contacted, on which channel, at what moment.

The reminder engine plans *what* to say; this module decides, at the last moment, whether a message may go now,
later or not at all. Pure Python (no database): the caller passes the customer's facts (from
``serving.customer_contact_state`` and the worklist) and the contact history (the delivery moments already
sent or scheduled), and gets a :class:`Verdict`. :func:`audit` is a second, independent checker of a whole set of
delivered contacts: the property tests and ``relance simulate`` use it to count violations.

Rules, in the order :func:`check_send` checks them (:data:`RULES`), and what each protects against:

=================  ==================================================================================================
rule               protects against
=================  ==================================================================================================
do_not_contact     contacting someone who asked not to be contacted at all (a call outcome, a manual flag).
suppressed         using a channel the debtor opted out of or that cannot reach them (unsubscribe, spam report,
                   SMS STOP, wrong number; ``'*'`` = every channel). Opting out of electronic channels is a
                   consumer right (US Regulation F) and good practice everywhere.
insolvency_stop    dunning a debtor under a collective procedure: from the opening judgment individual collection
                   is stopped (Code de commerce L622-21) and the debtor may not pay (L622-7); stop the same day.
promise_pause      chasing someone who promised to pay: no contact while the as-of date (the debtor's local date
                   of ``now``) is on or before ``promise_until``.
dispute_pause      dunning a customer whose every open invoice is disputed: a dispute is a human matter.
materiality        spending a contact (and goodwill) on a trivial balance: nothing below ``materiality_min``.
quiet_hours        contacting at an inconvenient moment. Open days are Monday-Friday (``weekdays_only``) that are
                   not public holidays in the debtor's country (``skip_public_holidays``, from the ``holidays``
                   package, national holidays, never a hand-written list). Consumers (B2C): email and SMS within
                   ``b2c_hours`` (8:00-20:00, inside US Regulation F's 8:00-21:00), calls within
                   ``b2c_call_hours`` (10:00-13:00 and 14:00-20:00: décret n° 2022-1313 on telephone prospecting,
                   which France applies to prospecting, not to a creditor's own collection; a prudent default).
                   Businesses (B2B): email, SMS and calls within ``b2b_hours`` (8:00-19:00, office hours).
                   Letters have no hours (they are posted). An email outside hours is *deferred* (``deliver_at``
                   = the next allowed moment, SendGrid ``send_at``); an SMS or a call is *blocked* and the detail
                   says when it may go.
frequency_cap      harassment by volume: at most ``max_contacts`` contacts per customer (all channels) in any
                   ``window_days`` window (2 per 7 days; Regulation F presumes harassment above 7 call attempts in
                   7 days about one debt, a ceiling far above this default).
min_gap            two messages in quick succession: at least ``min_gap_hours`` (48 h) between two contacts.
call_cap           repeated calls: at most ``max_calls_per_week`` calls (2) per customer in any 7-day window.
=================  ==================================================================================================

Every figure is a :class:`ContactRules` setting whose default comes from ``collections_law.md`` ("Contact hours
and frequency"); none is hard-coded in the checks. Time windows are local wall-clock times in the debtor's time
zone, half-open (``start <= t < end``) and within one day.

Time zones: the debtor's country maps to one IANA zone (:data:`COUNTRY_TIMEZONES`); a country with several zones
gets its most populous one as a documented approximation (US -> America/New_York, CA -> America/Toronto). A
missing or unmapped country is treated as a debtor in ``default_timezone`` with ``default_country``'s holidays.

Frequency, gap and call caps are evaluated at the delivery moment (``deliver_at``) against every history
contact of the same customer, past or already scheduled in the future (a deferred email counts from the moment
it will be delivered). The cap check is exact: a send is blocked only if, together with the history, it would
put ``max_contacts + 1`` contacts within less than ``window_days``.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

CHANNELS: tuple[str, ...] = ("email", "sms", "letter", "call")
CUSTOMER_TYPES: tuple[str, ...] = ("B2B", "B2C")

#: Rule names in the order :func:`check_send` checks them (stable strings: they go to ops.reminder_blocks.rule).
RULES: tuple[str, ...] = (
    "do_not_contact",
    "suppressed",
    "insolvency_stop",
    "promise_pause",
    "dispute_pause",
    "materiality",
    "quiet_hours",
    "frequency_cap",
    "min_gap",
    "call_cap",
)

#: Country (ISO 3166-1 alpha-2) -> the IANA time zone its debtors are contacted in. Countries spanning several
#: zones get the most populous one, an approximation (US: Eastern time; CA: Toronto).
COUNTRY_TIMEZONES: Mapping[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "CA": "America/Toronto",
    "CH": "Europe/Zurich",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "IE": "Europe/Dublin",
    "IT": "Europe/Rome",
    "LU": "Europe/Luxembourg",
    "MC": "Europe/Monaco",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "SE": "Europe/Stockholm",
    "US": "America/New_York",
}

#: How far ahead :func:`next_allowed_moment` looks for an open day (weekends plus holidays never close a month).
_SEARCH_DAYS = 31
_CALL_CAP_WINDOW = timedelta(days=7)

Window = tuple[time, time]


def _parse_time(value: object, what: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"{what}: expected a local wall-clock time without tzinfo, got {value!r}")
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{what}: expected a time such as '08:00', got {value!r}") from None
    raise ValueError(f"{what}: expected a datetime.time or 'HH:MM', got {value!r}")


def _parse_window(value: object, what: str) -> Window:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{what}: expected a (start, end) pair of times, got {value!r}")
    pair = tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{what}: expected a (start, end) pair of times, got {value!r}")
    start, end = _parse_time(pair[0], f"{what} start"), _parse_time(pair[1], f"{what} end")
    if not start < end:
        raise ValueError(f"{what}: start {start:%H:%M} must be before end {end:%H:%M} (windows cannot cross midnight)")
    return start, end


def _check_int(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what}: must be >= {minimum}, got {value}")
    return value


def _check_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what}: expected a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ContactRules:
    """Every figure the rules use, with its documented default (see the module docstring for the sources).

    Windows may be given as ``datetime.time`` or ``'HH:MM'`` strings; they are normalised to times, and
    ``b2c_call_hours`` to a sorted tuple of non-overlapping windows.
    """

    b2c_hours: tuple[time, time] = (time(8), time(20))
    b2b_hours: tuple[time, time] = (time(8), time(19))
    b2c_call_hours: tuple[tuple[time, time], ...] = ((time(10), time(13)), (time(14), time(20)))  # décret 2022-1313
    weekdays_only: bool = True
    skip_public_holidays: bool = True
    max_contacts: int = 2  # per customer, in any window_days window
    window_days: int = 7
    min_gap_hours: float = 48
    max_calls_per_week: int = 2  # per customer
    materiality_min: float = 15.0  # total due below this: no contact
    default_timezone: str = "Europe/Paris"
    default_country: str = "FR"  # whose public holidays apply when the debtor's country is missing or unmapped

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "b2c_hours", _parse_window(self.b2c_hours, "b2c_hours"))
        set_(self, "b2b_hours", _parse_window(self.b2b_hours, "b2b_hours"))
        raw_calls = self.b2c_call_hours
        if isinstance(raw_calls, str) or not isinstance(raw_calls, Iterable):
            raise ValueError(f"b2c_call_hours: expected a sequence of (start, end) windows, got {raw_calls!r}")
        calls = sorted(_parse_window(w, f"b2c_call_hours[{i}]") for i, w in enumerate(raw_calls))
        if not calls:
            raise ValueError("b2c_call_hours: at least one window is needed (set max_calls_per_week=0 to stop calls)")
        for (_, end), (start, _) in zip(calls, calls[1:], strict=False):
            if start < end:
                raise ValueError(f"b2c_call_hours: windows overlap ({start:%H:%M} is before {end:%H:%M})")
        set_(self, "b2c_call_hours", tuple(calls))
        for flag in ("weekdays_only", "skip_public_holidays"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}: expected True or False, got {getattr(self, flag)!r}")
        _check_int(self.max_contacts, "max_contacts", 1)
        _check_int(self.window_days, "window_days", 1)
        _check_int(self.max_calls_per_week, "max_calls_per_week", 0)
        set_(self, "min_gap_hours", _check_number(self.min_gap_hours, "min_gap_hours"))
        set_(self, "materiality_min", _check_number(self.materiality_min, "materiality_min"))
        try:
            ZoneInfo(str(self.default_timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"default_timezone: unknown IANA time zone {self.default_timezone!r}") from None
        country = _norm_country(self.default_country)
        if country is None or country not in holidays.list_supported_countries():
            raise ValueError(f"default_country: no public-holiday calendar for {self.default_country!r}")
        set_(self, "default_country", country)

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def min_gap(self) -> timedelta:
        return timedelta(hours=self.min_gap_hours)


def _as_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{what}: expected a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: naive datetime {value.isoformat()}; pass a timezone-aware UTC datetime")
    return value.astimezone(UTC)


def _check_channel(channel: object) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    return channel  # type: ignore[return-value]


def _check_customer_type(customer_type: object) -> str:
    norm = customer_type.strip().upper() if isinstance(customer_type, str) else customer_type
    if norm not in CUSTOMER_TYPES:
        raise ValueError(f"unknown customer_type {customer_type!r}; expected 'B2B' or 'B2C'")
    return norm  # type: ignore[return-value]


def _norm_country(country_code: object) -> str | None:
    if country_code is None:
        return None
    if not isinstance(country_code, str):
        raise ValueError(f"country_code: expected an ISO 3166-1 alpha-2 code or None, got {country_code!r}")
    return country_code.strip().upper() or None


@dataclass(frozen=True)
class Contact:
    """One contact with a customer, at its delivery moment (UTC-aware; a scheduled email counts at send_at)."""

    customer_id: str
    channel: str
    at: datetime

    def __post_init__(self) -> None:
        _check_channel(self.channel)
        object.__setattr__(self, "at", _as_utc(self.at, "Contact.at"))


def _norm_suppressed(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):  # the contact state's comma list, e.g. 'email,sms'
        value = value.split(",")
    if not isinstance(value, Iterable):
        raise ValueError(f"suppressed_channels: expected channel names, got {value!r}")
    names = frozenset(str(v).strip() for v in value) - {""}
    unknown = names - set(CHANNELS) - {"*"}
    if unknown:
        raise ValueError(f"suppressed_channels: unknown channel(s) {sorted(unknown)}; expected {CHANNELS} or '*'")
    return names


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules need to know about a customer at send time."""

    customer_id: str
    customer_type: str  # 'B2B' | 'B2C'
    country_code: str | None
    total_due: float
    do_not_contact: bool = False
    suppressed_channels: frozenset[str] = frozenset()  # may hold '*' (every channel)
    in_insolvency: bool = False
    promise_until: date | None = None  # pause while the as-of date <= promise_until
    all_disputed: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "customer_type", _check_customer_type(self.customer_type))
        set_(self, "country_code", _norm_country(self.country_code))
        set_(self, "suppressed_channels", _norm_suppressed(self.suppressed_channels))
        if isinstance(self.promise_until, datetime):
            set_(self, "promise_until", self.promise_until.date())
        elif self.promise_until is not None and not isinstance(self.promise_until, date):
            raise ValueError(f"promise_until: expected a date or None, got {self.promise_until!r}")
        if isinstance(self.total_due, bool) or not isinstance(self.total_due, numbers.Real):
            raise ValueError(f"total_due: expected a number, got {self.total_due!r}")


@dataclass(frozen=True)
class Verdict:
    """Whether a send may go. ``deliver_at`` (UTC) is set when allowed: ``now``, or later for a deferred email."""

    allowed: bool
    rule: str | None
    detail: str
    deliver_at: datetime | None


@dataclass(frozen=True)
class Violation:
    """A delivered contact that breaks a rule (found by :func:`audit`)."""

    contact: Contact
    rule: str
    detail: str


# --------------------------------------------------------------------------------------------------------------
# Places, days and hours


def debtor_timezone(country_code: str | None, default: str) -> ZoneInfo:
    """The time zone a debtor in ``country_code`` is contacted in; ``default`` when missing or unmapped."""
    country = _norm_country(country_code)
    return ZoneInfo(COUNTRY_TIMEZONES.get(country, default) if country else default)


def _location(country_code: str | None, rules: ContactRules) -> tuple[ZoneInfo, str]:
    """(time zone, holiday country) of a debtor: an unmapped country is treated as the default place."""
    country = _norm_country(country_code)
    if country in COUNTRY_TIMEZONES:
        return ZoneInfo(COUNTRY_TIMEZONES[country]), country
    return ZoneInfo(rules.default_timezone), rules.default_country


@lru_cache(maxsize=512)
def public_holidays(country_code: str, year: int) -> Mapping[date, str]:
    """National public holidays (with observed days) of a country in a year, from the ``holidays`` package."""
    return dict(holidays.country_holidays(country_code, years=year))


def closed_day_reason(day: date, holiday_country: str, rules: ContactRules) -> str | None:
    """Why ``day`` is closed for contacts ('Saturday', 'public holiday (Christmas Day)'), or None when open."""
    if rules.weekdays_only and day.weekday() >= 5:
        return day.strftime("%A")
    if rules.skip_public_holidays:
        name = public_holidays(holiday_country, day.year).get(day)
        if name is not None:
            return f"public holiday ({name})"
    return None


def allowed_windows(channel: str, customer_type: str, rules: ContactRules) -> tuple[Window, ...] | None:
    """Local windows in which ``channel`` may reach a debtor of ``customer_type``; None = no hours (letters)."""
    channel, customer_type = _check_channel(channel), _check_customer_type(customer_type)
    if channel == "letter":
        return None
    if customer_type == "B2B":
        return (rules.b2b_hours,)
    if channel == "call":
        return rules.b2c_call_hours
    return (rules.b2c_hours,)


def _in_windows(wall: time, windows: Sequence[Window]) -> bool:
    return any(start <= wall < end for start, end in windows)


def is_allowed_moment(
    at: datetime, *, channel: str, customer_type: str, country_code: str | None, rules: ContactRules
) -> bool:
    """True when ``at`` is on an open day, within the channel's local window for this debtor (letters: always)."""
    at = _as_utc(at, "at")
    windows = allowed_windows(channel, customer_type, rules)
    if windows is None:
        return True
    zone, holiday_country = _location(country_code, rules)
    local = at.astimezone(zone)
    return closed_day_reason(local.date(), holiday_country, rules) is None and _in_windows(
        local.time().replace(tzinfo=None), windows
    )


def next_allowed_moment(
    at: datetime, *, channel: str, customer_type: str, country_code: str | None, rules: ContactRules
) -> datetime:
    """The first allowed moment at or after ``at`` (UTC): ``at`` itself when allowed, else a window's start.

    Candidates are window starts on open local days, read in both DST folds; inside a spring-forward gap the
    start reads as the later wall time (still allowed, possibly a little after the gap ends).
    """
    at = _as_utc(at, "at")
    windows = allowed_windows(channel, customer_type, rules)
    kwargs = dict(channel=channel, customer_type=customer_type, country_code=country_code, rules=rules)
    if windows is None or is_allowed_moment(at, **kwargs):
        return at
    zone, holiday_country = _location(country_code, rules)
    first_day = at.astimezone(zone).date()
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if closed_day_reason(day, holiday_country, rules) is not None:
            continue
        found = [
            moment
            for start, _ in windows
            for fold in (0, 1)
            if (moment := datetime.combine(day, start, tzinfo=zone).replace(fold=fold).astimezone(UTC)) > at
            and is_allowed_moment(moment, **kwargs)
        ]
        if found:
            return min(found)
    raise ValueError(f"no allowed {channel} moment within {_SEARCH_DAYS} days of {at.isoformat()}")


def _local_label(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"


def _windows_label(windows: Sequence[Window]) -> str:
    return ", ".join(f"{start:%H:%M}-{end:%H:%M}" for start, end in windows)


# --------------------------------------------------------------------------------------------------------------
# The check before each send


def _crowded_run(others: Sequence[datetime], t: datetime, size: int, span: timedelta) -> list[datetime] | None:
    """A run of ``size`` consecutive moments (sorted, ``t`` among them) spanning less than ``span``, or None.

    Any ``size`` moments within less than ``span`` that include ``t`` contain such a consecutive run, so this is
    exactly "adding ``t`` puts ``size`` contacts inside one window".
    """
    merged = sorted([*others, t])
    i = bisect.bisect_left(merged, t)
    for first in range(max(0, i - size + 1), i + 1):
        last = first + size - 1
        if last < len(merged) and merged[last] - merged[first] < span:
            return merged[first : last + 1]
    return None


def _blocked(rule: str, detail: str) -> Verdict:
    return Verdict(allowed=False, rule=rule, detail=detail, deliver_at=None)


def _stop_rule(channel: str, facts: CustomerFacts, as_of: date, rules: ContactRules) -> tuple[str, str] | None:
    """The first customer-level rule (before hours and caps) that stops this send, with its detail."""
    if facts.do_not_contact:
        return "do_not_contact", "the customer asked not to be contacted"
    hit = facts.suppressed_channels & {channel, "*"}
    if hit:
        which = "every channel" if "*" in hit else channel
        return "suppressed", f"{which} suppressed for this customer"
    if facts.in_insolvency:
        return "insolvency_stop", "collective procedure opened: individual collection is stopped (L622-21)"
    if facts.promise_until is not None and as_of <= facts.promise_until:
        return "promise_pause", f"promise to pay until {facts.promise_until.isoformat()} (as of {as_of.isoformat()})"
    if facts.all_disputed:
        return "dispute_pause", "every open invoice is disputed"
    if not facts.total_due >= rules.materiality_min:  # an unknown (NaN) balance is not worth a contact either
        return (
            "materiality",
            f"total due {facts.total_due:.2f} below the materiality threshold {rules.materiality_min:.2f}",
        )
    return None


def check_send(
    channel: str, now: datetime, facts: CustomerFacts, history: Sequence[Contact], rules: ContactRules
) -> Verdict:
    """May ``channel`` reach this customer now? Rules are checked in :data:`RULES` order; the first that fails
    blocks. An email outside hours is allowed with a later ``deliver_at``; caps are evaluated at ``deliver_at``.
    """
    channel = _check_channel(channel)
    now = _as_utc(now, "now")
    zone, holiday_country = _location(facts.country_code, rules)
    stop = _stop_rule(channel, facts, now.astimezone(zone).date(), rules)
    if stop is not None:
        return _blocked(*stop)

    where = dict(customer_type=facts.customer_type, country_code=facts.country_code, rules=rules)
    t = next_allowed_moment(now, channel=channel, **where)
    detail = ""
    if t != now:
        windows = allowed_windows(channel, facts.customer_type, rules) or ()
        closed = closed_day_reason(now.astimezone(zone).date(), holiday_country, rules)
        why = closed or f"outside {facts.customer_type} {channel} hours {_windows_label(windows)}"
        when = f"{_local_label(now, zone)}: {why}"
        if channel != "email":
            return _blocked("quiet_hours", f"{when}; may go from {_local_label(t, zone)}")
        detail = f"{when}; deferred to {_local_label(t, zone)}"

    mine = [h for h in history if h.customer_id == facts.customer_id]
    run = _crowded_run([h.at for h in mine], t, rules.max_contacts + 1, rules.window)
    if run is not None:
        return _blocked(
            "frequency_cap",
            f"would be contact {len(run)} between {_local_label(run[0], zone)} and {_local_label(run[-1], zone)}"
            f" (at most {rules.max_contacts} in any {rules.window_days} days)",
        )
    if mine:
        nearest = min(mine, key=lambda h: abs(h.at - t))
        if abs(nearest.at - t) < rules.min_gap:
            gap_h = abs(nearest.at - t).total_seconds() / 3600
            return _blocked(
                "min_gap",
                f"{gap_h:.1f} h from the {nearest.channel} at {_local_label(nearest.at, zone)}"
                f" (at least {rules.min_gap_hours:g} h between contacts)",
            )
    if channel == "call":
        calls = [h.at for h in mine if h.channel == "call"]
        if _crowded_run(calls, t, rules.max_calls_per_week + 1, _CALL_CAP_WINDOW) is not None:
            return _blocked("call_cap", f"at most {rules.max_calls_per_week} calls in any 7 days")
    return Verdict(allowed=True, rule=None, detail=detail, deliver_at=t)


# --------------------------------------------------------------------------------------------------------------
# The independent audit of delivered contacts


def _micros_of_day(hour: int, minute: int, second: int = 0, micro: int = 0) -> int:
    return ((hour * 60 + minute) * 60 + second) * 1_000_000 + micro


def _hours_problem(contact: Contact, facts: CustomerFacts, rules: ContactRules) -> str | None:
    """Why a contact's delivery moment was not allowed, recomputed from the local wall clock, or None."""
    if contact.channel == "letter":
        return None
    if facts.customer_type == "B2B":
        spans = [rules.b2b_hours]
    elif contact.channel == "call":
        spans = list(rules.b2c_call_hours)
    else:
        spans = [rules.b2c_hours]
    zone, holiday_country = _location(facts.country_code, rules)
    local = contact.at.astimezone(zone)
    if rules.weekdays_only and local.isoweekday() in (6, 7):
        return f"{contact.channel} on a weekend ({local:%A %Y-%m-%d %H:%M} {zone.key})"
    if rules.skip_public_holidays:
        holiday = public_holidays(holiday_country, local.year).get(local.date())
        if holiday:
            return f"{contact.channel} on a public holiday in {holiday_country}: {holiday} ({local:%Y-%m-%d})"
    now_us = _micros_of_day(local.hour, local.minute, local.second, local.microsecond)
    for start, end in spans:
        if (
            _micros_of_day(start.hour, start.minute, start.second, start.microsecond)
            <= now_us
            < _micros_of_day(end.hour, end.minute, end.second, end.microsecond)
        ):
            return None
    return f"{contact.channel} to a {facts.customer_type} debtor at {local:%H:%M} {zone.key}, outside its hours"


def _facts_problems(contact: Contact, facts: CustomerFacts, rules: ContactRules) -> list[tuple[str, str]]:
    """Every customer-level rule the contact breaks (all of them, unlike the first-fail check before sending)."""
    found: list[tuple[str, str]] = []
    if facts.do_not_contact:
        found.append(("do_not_contact", "customer flagged do-not-contact"))
    if "*" in facts.suppressed_channels or contact.channel in facts.suppressed_channels:
        found.append(("suppressed", f"{contact.channel} was suppressed"))
    if facts.in_insolvency:
        found.append(("insolvency_stop", "customer in a collective procedure"))
    if facts.promise_until is not None:
        local_day = contact.at.astimezone(_location(facts.country_code, rules)[0]).date()
        if not local_day > facts.promise_until:
            found.append(("promise_pause", f"contacted on {local_day} during a promise until {facts.promise_until}"))
    if facts.all_disputed:
        found.append(("dispute_pause", "all open invoices disputed"))
    if not facts.total_due >= rules.materiality_min:
        found.append(("materiality", f"total due {facts.total_due} under {rules.materiality_min}"))
    return found


def _over_limit(ordered: Sequence[Contact], limit: int, span: timedelta) -> list[tuple[Contact, int]]:
    """Sliding window ending at each contact (time order): the contacts whose window holds more than ``limit``."""
    out: list[tuple[Contact, int]] = []
    lo = 0
    for hi, contact in enumerate(ordered):
        while contact.at - ordered[lo].at >= span:
            lo += 1
        count = hi - lo + 1
        if count > limit:
            out.append((contact, count))
    return out


def audit(contacts: Sequence[tuple[Contact, CustomerFacts]], rules: ContactRules) -> list[Violation]:
    """Every rule broken by a set of delivered contacts, each paired with the customer's facts when it was sent.

    Independent of :func:`check_send`: hours are recomputed from the local wall clock, and the caps by sorting
    each customer's contacts and sliding a window over them. Sorted by moment, customer and rule order.
    """
    found: list[Violation] = []
    per_customer: dict[str, list[Contact]] = defaultdict(list)
    for contact, facts in contacts:
        if contact.customer_id != facts.customer_id:
            raise ValueError(f"contact for {contact.customer_id!r} paired with facts of {facts.customer_id!r}")
        per_customer[contact.customer_id].append(contact)
        for rule, detail in _facts_problems(contact, facts, rules):
            found.append(Violation(contact, rule, detail))
        problem = _hours_problem(contact, facts, rules)
        if problem is not None:
            found.append(Violation(contact, "quiet_hours", problem))

    for timeline in per_customer.values():
        timeline.sort(key=lambda c: c.at)
        for contact, count in _over_limit(timeline, rules.max_contacts, timedelta(days=rules.window_days)):
            found.append(
                Violation(
                    contact,
                    "frequency_cap",
                    f"{count} contacts within {rules.window_days} days (max {rules.max_contacts})",
                )
            )
        for before, after in zip(timeline, timeline[1:], strict=False):
            gap = after.at - before.at
            if gap < timedelta(hours=rules.min_gap_hours):
                found.append(
                    Violation(
                        after,
                        "min_gap",
                        f"{gap.total_seconds() / 3600:.2f} h after the previous contact"
                        f" (min {rules.min_gap_hours:g} h)",
                    )
                )
        calls = [c for c in timeline if c.channel == "call"]
        for contact, count in _over_limit(calls, rules.max_calls_per_week, timedelta(days=7)):
            found.append(
                Violation(contact, "call_cap", f"{count} calls within 7 days (max {rules.max_calls_per_week})")
            )

    order = {rule: i for i, rule in enumerate(RULES)}
    found.sort(key=lambda v: (v.contact.at, v.contact.customer_id, order[v.rule], v.contact.channel))
    return found


__all__ = [
    "CHANNELS",
    "COUNTRY_TIMEZONES",
    "CUSTOMER_TYPES",
    "RULES",
    "Contact",
    "ContactRules",
    "CustomerFacts",
    "Verdict",
    "Violation",
    "allowed_windows",
    "audit",
    "check_send",
    "closed_day_reason",
    "debtor_timezone",
    "is_allowed_moment",
    "next_allowed_moment",
    "public_holidays",
]
