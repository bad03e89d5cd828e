"""The contact rules checked before every send: examples from the calendar, and properties proving that whatever
``check_send`` lets through, the independent ``audit`` finds no violation in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relance.reminders.rules import (
    CHANNELS,
    RULES,
    Contact,
    ContactRules,
    CustomerFacts,
    audit,
    check_send,
    debtor_timezone,
    is_allowed_moment,
    next_allowed_moment,
)

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
DEFAULT = ContactRules()


def paris(*args: int) -> datetime:
    """A Paris wall-clock moment as the UTC-aware datetime the rules take."""
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def facts(customer_id: str = "c1", customer_type: str = "B2C", country: str | None = "FR", **kw) -> CustomerFacts:
    return CustomerFacts(customer_id, customer_type, country, kw.pop("total_due", 250.0), **kw)


def allowed(channel: str, at: datetime, fx: CustomerFacts, rules: ContactRules = DEFAULT) -> bool:
    return is_allowed_moment(
        at, channel=channel, customer_type=fx.customer_type, country_code=fx.country_code, rules=rules
    )


# ---------------------------------------------------------------------------------------------------------------
# Calendar examples


def test_christmas_and_armistice_are_closed_in_france_but_11_november_is_open_in_britain():
    fr, gb = facts(country="FR"), facts(country="GB")
    assert not allowed("email", paris(2026, 12, 25, 10), fr)
    assert not allowed("email", paris(2026, 11, 11, 10), fr)  # a Wednesday: Armistice
    assert allowed("email", paris(2026, 11, 12, 10), fr)
    assert allowed("email", datetime(2026, 11, 11, 10, tzinfo=LONDON).astimezone(UTC), gb)
    assert not allowed("email", datetime(2026, 12, 25, 10, tzinfo=LONDON).astimezone(UTC), gb)

    verdict = check_send("email", paris(2026, 11, 11, 10), fr, [], DEFAULT)
    assert verdict.allowed and verdict.deliver_at == datetime(2026, 11, 12, 7, 0, tzinfo=UTC)
    assert "Armistice" in verdict.detail
    # Christmas 2026 is a Friday; Britain also observes Boxing Day on Monday 28th, France does not.
    assert check_send("email", paris(2026, 12, 25, 10), fr, [], DEFAULT).deliver_at == paris(2026, 12, 28, 8)
    london_xmas = datetime(2026, 12, 25, 10, tzinfo=LONDON).astimezone(UTC)
    assert check_send("email", london_xmas, gb, [], DEFAULT).deliver_at == datetime(2026, 12, 29, 8, tzinfo=UTC)


def test_holidays_can_be_switched_off_and_unmapped_countries_use_the_default_place():
    assert allowed("email", paris(2026, 12, 25, 10), facts(), ContactRules(skip_public_holidays=False))
    assert not allowed("email", paris(2026, 7, 14, 10), facts(country="JP"))  # Bastille Day, default place FR
    assert allowed("email", paris(2026, 7, 14, 10), facts(country="JP"), ContactRules(default_country="GB"))
    assert debtor_timezone("US", "Europe/Paris") == ZoneInfo("America/New_York")
    assert debtor_timezone("fr", "UTC") == PARIS
    assert debtor_timezone(None, "Europe/Lisbon") == ZoneInfo("Europe/Lisbon")
    assert debtor_timezone("XX", "Europe/Lisbon") == ZoneInfo("Europe/Lisbon")


@pytest.mark.parametrize(
    ("saturday", "monday_utc"),
    [
        # summer time ends on Sunday 2026-10-25: Saturday is UTC+2, Monday UTC+1
        (paris(2026, 10, 24, 10), datetime(2026, 10, 26, 7, 0, tzinfo=UTC)),
        # summer time starts on Sunday 2026-03-29: Saturday is UTC+1, Monday UTC+2
        (paris(2026, 3, 28, 10), datetime(2026, 3, 30, 6, 0, tzinfo=UTC)),
    ],
)
def test_a_saturday_email_is_deferred_to_monday_8_paris_across_dst(saturday, monday_utc):
    assert saturday.astimezone(PARIS).weekday() == 5
    verdict = check_send("email", saturday, facts(), [], DEFAULT)
    assert verdict.allowed and verdict.rule is None
    assert verdict.deliver_at == monday_utc
    assert verdict.deliver_at.astimezone(PARIS).time() == time(8)
    assert "Saturday" in verdict.detail and "deferred" in verdict.detail


def test_b2c_call_at_lunchtime_or_at_night_is_blocked_and_says_when_it_may_go():
    lunch = check_send("call", paris(2026, 3, 10, 13, 30), facts(), [], DEFAULT)
    assert (lunch.allowed, lunch.rule, lunch.deliver_at) == (False, "quiet_hours", None)
    assert "may go from Tue 2026-03-10 14:00 Europe/Paris" in lunch.detail
    night = check_send("call", paris(2026, 3, 10, 22), facts(), [], DEFAULT)
    assert night.rule == "quiet_hours" and "Wed 2026-03-11 10:00" in night.detail
    # a business is called in office hours, lunchtime included; an SMS at night is blocked, not deferred
    assert check_send("call", paris(2026, 3, 10, 13, 30), facts(customer_type="B2B"), [], DEFAULT).allowed
    assert check_send("sms", paris(2026, 3, 10, 21), facts(), [], DEFAULT).rule == "quiet_hours"
    sms_b2b = check_send("sms", paris(2026, 3, 10, 19, 30), facts(customer_type="B2B"), [], DEFAULT)
    assert sms_b2b.rule == "quiet_hours"


def test_a_letter_has_no_hours():
    sunday_night = paris(2026, 3, 8, 23)
    verdict = check_send("letter", sunday_night, facts(), [], DEFAULT)
    assert verdict.allowed and verdict.deliver_at == sunday_night


def test_third_contact_within_seven_days_is_blocked_but_day_seven_is_a_new_window():
    fx = facts()
    history = [Contact("c1", "email", paris(2026, 3, 9, 10)), Contact("c1", "sms", paris(2026, 3, 11, 10))]
    third = check_send("email", paris(2026, 3, 13, 10), fx, history, DEFAULT)
    assert (third.allowed, third.rule) == (False, "frequency_cap")
    assert check_send("email", paris(2026, 3, 16, 10), fx, history, DEFAULT).allowed  # exactly 7 days after
    # another customer's contacts do not count
    other = [Contact("c2", c.channel, c.at) for c in history]
    assert check_send("email", paris(2026, 3, 13, 10), fx, other, DEFAULT).allowed


def test_a_contact_scheduled_in_the_future_counts():
    scheduled = [Contact("c1", "email", paris(2026, 3, 13, 8))]  # a deferred email, not delivered yet
    verdict = check_send("email", paris(2026, 3, 10, 10), facts(), scheduled, ContactRules(max_contacts=1))
    assert verdict.rule == "frequency_cap"
    assert check_send("email", paris(2026, 3, 12, 10), facts(), scheduled, DEFAULT).rule == "min_gap"


def test_contact_47_hours_after_the_previous_is_blocked_48_is_not():
    history = [Contact("c1", "email", paris(2026, 3, 9, 10))]
    verdict = check_send("sms", paris(2026, 3, 11, 9), facts(), history, DEFAULT)
    assert (verdict.allowed, verdict.rule) == (False, "min_gap")
    assert "47.0 h" in verdict.detail
    assert check_send("sms", paris(2026, 3, 11, 10), facts(), history, DEFAULT).allowed


def test_a_deferred_email_is_capped_at_its_delivery_moment():
    # Friday evening email would leave on Monday 08:00; a contact on Sunday's letter is 9 h earlier
    history = [Contact("c1", "letter", paris(2026, 3, 15, 23))]
    verdict = check_send("email", paris(2026, 3, 13, 21), facts(), history, DEFAULT)
    assert verdict.rule == "min_gap"


def test_third_call_in_a_week_is_blocked_by_the_call_cap():
    rules = ContactRules(max_contacts=5, min_gap_hours=24)
    history = [Contact("c1", "call", paris(2026, 3, 9, 10)), Contact("c1", "call", paris(2026, 3, 10, 10))]
    assert check_send("call", paris(2026, 3, 11, 10), facts(), history, rules).rule == "call_cap"
    assert check_send("email", paris(2026, 3, 11, 10), facts(), history, rules).allowed


@pytest.mark.parametrize(
    ("changes", "channel", "rule"),
    [
        ({"do_not_contact": True, "in_insolvency": True}, "email", "do_not_contact"),
        ({"suppressed_channels": frozenset({"email"}), "in_insolvency": True}, "email", "suppressed"),
        ({"suppressed_channels": "sms, *"}, "letter", "suppressed"),
        ({"in_insolvency": True, "all_disputed": True}, "email", "insolvency_stop"),
        ({"promise_until": date(2026, 3, 10), "total_due": 1.0}, "email", "promise_pause"),
        ({"all_disputed": True, "total_due": 1.0}, "call", "dispute_pause"),
        ({"total_due": 14.99}, "call", "materiality"),
        ({"total_due": float("nan")}, "email", "materiality"),
    ],
)
def test_customer_level_rules_stop_in_order(changes, channel, rule):
    verdict = check_send(channel, paris(2026, 3, 10, 22), facts(**changes), [], DEFAULT)
    assert (verdict.allowed, verdict.rule, verdict.deliver_at) == (False, rule, None)
    assert verdict.detail


def test_promise_pause_uses_the_debtors_local_date():
    promise = facts(promise_until=date(2026, 3, 10))
    late_evening_utc = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # already 11 March in Paris
    verdict = check_send("email", late_evening_utc, promise, [], DEFAULT)
    assert verdict.allowed and verdict.deliver_at == paris(2026, 3, 11, 8)
    assert check_send("email", paris(2026, 3, 10, 12), promise, [], DEFAULT).rule == "promise_pause"
    assert check_send("email", paris(2026, 3, 10, 12), facts(total_due=15.0), [], DEFAULT).allowed


def test_bad_settings_and_naive_datetimes_are_rejected_clearly():
    with pytest.raises(ValueError, match="naive"):
        check_send("email", datetime(2026, 3, 10, 10), facts(), [], DEFAULT)
    with pytest.raises(ValueError, match="naive"):
        Contact("c1", "email", datetime(2026, 3, 10, 10))
    with pytest.raises(ValueError, match="naive"):
        next_allowed_moment(
            datetime(2026, 3, 10), channel="email", customer_type="B2C", country_code="FR", rules=DEFAULT
        )
    with pytest.raises(ValueError, match="unknown channel"):
        check_send("fax", paris(2026, 3, 10, 10), facts(), [], DEFAULT)
    with pytest.raises(ValueError, match="customer_type"):
        facts(customer_type="B2X")
    with pytest.raises(ValueError, match="suppressed_channels"):
        facts(suppressed_channels={"pigeon"})
    with pytest.raises(ValueError, match="paired"):
        audit([(Contact("c2", "email", paris(2026, 3, 10, 10)), facts())], DEFAULT)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"b2c_hours": (time(20), time(8))}, "b2c_hours: start 20:00 must be before end 08:00"),
        ({"b2b_hours": (time(8),)}, "b2b_hours"),
        ({"b2c_call_hours": ()}, "at least one window"),
        ({"b2c_call_hours": ((time(10), time(14)), (time(13), time(20)))}, "overlap"),
        ({"b2c_hours": ("08:00", "late")}, "b2c_hours end"),
        ({"max_contacts": 0}, "max_contacts: must be >= 1"),
        ({"max_contacts": 2.5}, "max_contacts: expected an integer"),
        ({"window_days": 0}, "window_days"),
        ({"max_calls_per_week": -1}, "max_calls_per_week"),
        ({"min_gap_hours": -1}, "min_gap_hours"),
        ({"min_gap_hours": float("nan")}, "min_gap_hours"),
        ({"materiality_min": float("inf")}, "materiality_min"),
        ({"weekdays_only": "yes"}, "weekdays_only"),
        ({"default_timezone": "Europe/Atlantis"}, "default_timezone"),
        ({"default_country": "ZZ"}, "default_country"),
    ],
)
def test_contact_rules_validate(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ContactRules(**kwargs)


def test_contact_rules_accept_strings_and_sort_call_windows():
    rules = ContactRules(b2c_hours=["08:30", "19:00"], b2c_call_hours=[("14:00", "18:00"), ("09:00", "12:00")])
    assert rules.b2c_hours == (time(8, 30), time(19))
    assert rules.b2c_call_hours == ((time(9), time(12)), (time(14), time(18)))


# ---------------------------------------------------------------------------------------------------------------
# The audit is not vacuous: each rule, broken on purpose, is reported (and only that rule)

MON = (2026, 3, 9)  # an ordinary Monday in France


def _at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    return paris(*MON, hour, minute) + timedelta(days=day_offset)


@pytest.mark.parametrize(
    ("rule", "contacts", "rules"),
    [
        ("do_not_contact", [("email", _at(0, 10), {"do_not_contact": True})], DEFAULT),
        ("suppressed", [("sms", _at(0, 10), {"suppressed_channels": frozenset({"sms"})})], DEFAULT),
        ("suppressed", [("letter", _at(0, 10), {"suppressed_channels": frozenset({"*"})})], DEFAULT),
        ("insolvency_stop", [("letter", _at(0, 10), {"in_insolvency": True})], DEFAULT),
        ("promise_pause", [("email", _at(0, 10), {"promise_until": date(*MON)})], DEFAULT),
        ("dispute_pause", [("call", _at(0, 10), {"all_disputed": True})], DEFAULT),
        ("materiality", [("email", _at(0, 10), {"total_due": 14.5})], DEFAULT),
        ("quiet_hours", [("email", _at(-2, 10), {})], DEFAULT),  # Saturday
        ("quiet_hours", [("email", _at(0, 20), {})], DEFAULT),  # 20:00 is already closed
        ("quiet_hours", [("call", _at(0, 13, 15), {})], DEFAULT),  # B2C lunch break
        ("quiet_hours", [("sms", _at(0, 7, 59), {"customer_type": "B2B"})], DEFAULT),
        ("quiet_hours", [("email", paris(2026, 5, 1, 10), {})], DEFAULT),  # Labour Day
        ("frequency_cap", [("email", _at(0, 10), {}), ("sms", _at(2, 10), {}), ("email", _at(4, 10), {})], DEFAULT),
        ("min_gap", [("email", _at(0, 10), {}), ("letter", _at(1, 10), {})], DEFAULT),
        (
            "call_cap",
            [("call", _at(0, 10), {}), ("call", _at(1, 10), {}), ("call", _at(2, 10), {})],
            ContactRules(max_contacts=5, min_gap_hours=24),
        ),
    ],
)
def test_audit_reports_each_broken_rule(rule, contacts, rules):
    delivered = [(Contact("c1", channel, at), facts(**changes)) for channel, at, changes in contacts]
    violations = audit(delivered, rules)
    assert {v.rule for v in violations} == {rule}
    assert all(v.detail and v.contact in [c for c, _ in delivered] for v in violations)


def test_audit_of_a_clean_schedule_is_empty_and_windows_are_per_customer():
    delivered = [
        (Contact(cid, channel, at), facts(cid))
        for cid in ("c1", "c2")
        for channel, at in (("email", _at(0, 10)), ("call", _at(2, 10)), ("email", _at(7, 10)))
    ]
    assert audit(delivered, DEFAULT) == []
    # a call at 11:00 on the same Wednesday for c1 breaks both caps of c1, never c2's
    extra = (Contact("c1", "call", _at(2, 11)), facts("c1"))
    violations = audit([*delivered, extra], DEFAULT)
    assert {v.rule for v in violations} == {"frequency_cap", "min_gap"}
    assert {v.contact.customer_id for v in violations} == {"c1"}


# ---------------------------------------------------------------------------------------------------------------
# Properties

COUNTRIES = ("FR", "GB", "BE", "DE", "ES", "IT", "NL", "LU", "CH", "IE", "PT", "US", "MC", None, "JP", "gb")
ZONES = ("Europe/Paris", "Europe/London", "America/Los_Angeles", "Asia/Tokyo", "UTC")
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)


def rarely(p_true: int = 8) -> st.SearchStrategy[bool]:
    """True about once in ``p_true`` draws."""
    return st.integers(0, p_true - 1).map(lambda n: n == 0)


@st.composite
def windows(draw, earliest: int = 5 * 60, latest: int = 23 * 60 + 30) -> tuple[time, time]:
    start = draw(st.integers(earliest // 30, latest // 30 - 1)) * 30
    end = draw(st.integers(start // 30 + 1, min(latest // 30, start // 30 + 26))) * 30
    return time(start // 60, start % 60), time(end // 60, end % 60)


@st.composite
def contact_rules(draw) -> ContactRules:
    first = draw(windows(latest=20 * 60))
    calls = [first]
    if draw(st.booleans()):
        begin = first[1].hour * 60 + first[1].minute
        calls.append(draw(windows(earliest=begin, latest=max(begin + 30, 23 * 60 + 30))))
    return ContactRules(
        b2c_hours=draw(windows()),
        b2b_hours=draw(windows()),
        b2c_call_hours=tuple(calls),
        weekdays_only=draw(st.booleans()),
        skip_public_holidays=draw(st.booleans()),
        max_contacts=draw(st.integers(1, 4)),
        window_days=draw(st.integers(1, 10)),
        min_gap_hours=draw(st.one_of(st.sampled_from([0, 24, 48]), st.floats(0, 96))),
        max_calls_per_week=draw(st.integers(0, 3)),
        materiality_min=draw(st.sampled_from([0.0, 15.0, 100.0])),
        default_timezone=draw(st.sampled_from(ZONES)),
        default_country=draw(st.sampled_from(["FR", "GB", "US", "DE"])),
    )


@st.composite
def customer_facts(draw, customer_id: str) -> CustomerFacts:
    promise = draw(st.one_of(st.none(), st.dates(date(2025, 1, 1), date(2027, 12, 31)))) if draw(rarely(4)) else None
    suppressed = draw(st.frozensets(st.sampled_from([*CHANNELS, "*"]), max_size=2)) if draw(rarely(5)) else frozenset()
    return CustomerFacts(
        customer_id=customer_id,
        customer_type=draw(st.sampled_from(["B2B", "B2C"])),
        country_code=draw(st.sampled_from(COUNTRIES)),
        total_due=draw(st.floats(0, 5000)),
        do_not_contact=draw(rarely(10)),
        suppressed_channels=suppressed,
        in_insolvency=draw(rarely(10)),
        promise_until=promise,
        all_disputed=draw(rarely(10)),
    )


@st.composite
def schedules(draw) -> tuple[ContactRules, list[CustomerFacts], list[tuple[int, str, datetime]]]:
    rules = draw(contact_rules())
    customers = [draw(customer_facts(f"c{i}")) for i in range(draw(st.integers(1, 3)))]
    now = draw(st.datetimes(START.replace(tzinfo=None), END.replace(tzinfo=None), timezones=st.just(UTC)))
    attempts = []
    for _ in range(draw(st.integers(1, 30))):
        step = draw(st.one_of(st.integers(0, 6 * 3600), st.integers(0, 4 * 86400)))
        now += timedelta(seconds=step, microseconds=draw(st.sampled_from([0, 0, 1, 999_999])))
        who = draw(st.integers(0, len(customers) - 1))
        attempts.append((who, draw(st.sampled_from(CHANNELS)), now))
    return rules, customers, attempts


def first_stop_rule(channel: str, fx: CustomerFacts, now: datetime, rules: ContactRules) -> str | None:
    """The customer-level rule that must stop the send, by the order written in the design."""
    local_day = now.astimezone(debtor_timezone(fx.country_code, rules.default_timezone)).date()
    conditions = [
        ("do_not_contact", fx.do_not_contact),
        ("suppressed", bool({channel, "*"} & fx.suppressed_channels)),
        ("insolvency_stop", fx.in_insolvency),
        ("promise_pause", fx.promise_until is not None and local_day <= fx.promise_until),
        ("dispute_pause", fx.all_disputed),
        ("materiality", fx.total_due < rules.materiality_min),
    ]
    return next((rule for rule, hit in conditions if hit), None)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_whatever_check_send_accepts_the_audit_finds_no_violation(schedule):
    rules, customers, attempts = schedule
    history: list[Contact] = []
    accepted: list[tuple[Contact, CustomerFacts]] = []
    for who, channel, now in attempts:
        fx = customers[who]
        verdict = check_send(channel, now, fx, history, rules)
        stop = first_stop_rule(channel, fx, now, rules)
        if stop is not None:
            assert (verdict.allowed, verdict.rule) == (False, stop)
            continue
        assert verdict.rule in RULES[6:] or verdict.allowed
        where = {"customer_type": fx.customer_type, "country_code": fx.country_code, "rules": rules}
        if verdict.allowed:
            assert verdict.rule is None and verdict.deliver_at is not None
            assert verdict.deliver_at >= now
            assert is_allowed_moment(verdict.deliver_at, channel=channel, **where)
            if channel != "email":
                assert verdict.deliver_at == now
            contact = Contact(fx.customer_id, channel, verdict.deliver_at)
            history.append(contact)
            accepted.append((contact, fx))
            continue
        if verdict.rule == "quiet_hours":
            assert channel in ("sms", "call") and not is_allowed_moment(now, channel=channel, **where)
            continue
        # the caps are exact, not merely conservative: the blocked contact really would have broken that rule
        t = next_allowed_moment(now, channel=channel, **where)
        would_be = audit([*accepted, (Contact(fx.customer_id, channel, t), fx)], rules)
        assert verdict.rule in {v.rule for v in would_be}
    assert audit(accepted, rules) == []


@settings(max_examples=200, deadline=None)
@given(
    rules=contact_rules(),
    at=st.datetimes(START.replace(tzinfo=None), END.replace(tzinfo=None), timezones=st.just(UTC)),
    channel=st.sampled_from(CHANNELS),
    customer_type=st.sampled_from(["B2B", "B2C"]),
    country=st.sampled_from(COUNTRIES),
)
def test_next_allowed_moment_is_allowed_not_earlier_and_idempotent(rules, at, channel, customer_type, country):
    where = {"channel": channel, "customer_type": customer_type, "country_code": country, "rules": rules}
    moment = next_allowed_moment(at, **where)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert moment >= at
    assert is_allowed_moment(moment, **where)
    assert next_allowed_moment(moment, **where) == moment
    if moment > at:
        # nothing allowed was skipped: not ``at``, not the microsecond before (windows here avoid DST gaps)
        assert not is_allowed_moment(at, **where)
        assert not is_allowed_moment(moment - timedelta(microseconds=1), **where)
        assert channel != "letter"
    # an email there is deferred exactly to that moment
    if channel == "email":
        fx = CustomerFacts("c", customer_type, country, total_due=1e6)
        assert check_send("email", at, fx, [], rules).deliver_at == moment
