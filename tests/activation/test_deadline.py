"""Link deadlines: 23:59:59 Europe/Paris on the day of sending, a minimum validity, both DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from sso.activation.settings import LinkRule
from sso.activation.tokens import deadline

PARIS = ZoneInfo("Europe/Paris")
DAY = LinkRule()  # end_of_day, 60 minutes at least
NEXT_DAY = LinkRule(valid_until="end_of_next_day")


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (paris(2026, 6, 15, 0, 0, 1), paris(2026, 6, 15, 23, 59, 59)),
        (paris(2026, 6, 15, 0, 0, 0), paris(2026, 6, 15, 23, 59, 59)),
        (paris(2026, 6, 15, 12, 0), paris(2026, 6, 15, 23, 59, 59)),
        # Exactly the minimum validity left: still that day.
        (paris(2026, 6, 15, 22, 59, 59), paris(2026, 6, 15, 23, 59, 59)),
        # Less than the minimum left: the end of the next day (the promise stays "until 23:59").
        (paris(2026, 6, 15, 23, 0, 0), paris(2026, 6, 16, 23, 59, 59)),
        (paris(2026, 6, 15, 23, 58), paris(2026, 6, 16, 23, 59, 59)),
        (paris(2026, 6, 15, 23, 59, 59), paris(2026, 6, 16, 23, 59, 59)),
        # Around midnight at the end of a year.
        (paris(2026, 12, 31, 23, 59, 30), paris(2027, 1, 1, 23, 59, 59)),
        (paris(2027, 1, 1, 0, 0, 30), paris(2027, 1, 1, 23, 59, 59)),
        # Spring forward (29 March 2026, 02:00 CET -> 03:00 CEST).
        (paris(2026, 3, 29, 1, 30), paris(2026, 3, 29, 23, 59, 59)),
        (paris(2026, 3, 29, 3, 30), paris(2026, 3, 29, 23, 59, 59)),
        (paris(2026, 3, 28, 23, 30), paris(2026, 3, 29, 23, 59, 59)),
        # Fall back (25 October 2026, 03:00 CEST -> 02:00 CET): 02:30 happens twice.
        (paris(2026, 10, 25, 2, 30, fold=0), paris(2026, 10, 25, 23, 59, 59)),
        (paris(2026, 10, 25, 2, 30, fold=1), paris(2026, 10, 25, 23, 59, 59)),
        (paris(2026, 10, 24, 23, 30), paris(2026, 10, 25, 23, 59, 59)),
    ],
)
def test_end_of_day(sent, expected):
    end = deadline(sent, DAY, PARIS)
    assert end == expected
    assert (end.hour, end.minute, end.second, end.microsecond) == (23, 59, 59, 0)
    assert end.tzinfo is PARIS


def test_dst_days_are_counted_in_real_time():
    # Spring forward: from 00:00:00 the day lasts 23 hours; fall back: 25 hours.
    spring = deadline(paris(2026, 3, 29, 0, 0), DAY, PARIS) - paris(2026, 3, 29, 0, 0).astimezone(UTC)
    autumn = deadline(paris(2026, 10, 25, 0, 0), DAY, PARIS) - paris(2026, 10, 25, 0, 0).astimezone(UTC)
    assert spring == timedelta(hours=23, seconds=-1)
    assert autumn == timedelta(hours=25, seconds=-1)
    assert deadline(paris(2026, 3, 29, 0, 0), DAY, PARIS).utcoffset() == timedelta(hours=2)
    assert deadline(paris(2026, 10, 25, 0, 0), DAY, PARIS).utcoffset() == timedelta(hours=1)


@freeze_time("2026-06-15 21:58:00")  # 23:58 in Paris
def test_a_link_sent_at_2358_is_still_usable_for_the_minimum():
    now = datetime.now(UTC)
    end = deadline(now, DAY, PARIS)
    assert end - now >= timedelta(minutes=60)
    assert end == paris(2026, 6, 16, 23, 59, 59)
    # Without a minimum validity the promise is the same day's 23:59:59.
    assert deadline(now, LinkRule(min_validity_minutes=0), PARIS) == paris(2026, 6, 15, 23, 59, 59)


@freeze_time("2026-06-15 10:00:00")
def test_frozen_noon_in_paris():
    assert deadline(datetime.now(UTC), DAY, PARIS) == paris(2026, 6, 15, 23, 59, 59)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (paris(2026, 6, 15, 10, 0), paris(2026, 6, 16, 23, 59, 59)),
        (paris(2026, 6, 15, 23, 58), paris(2026, 6, 16, 23, 59, 59)),
        (paris(2026, 3, 28, 12, 0), paris(2026, 3, 29, 23, 59, 59)),
        (paris(2026, 10, 24, 12, 0), paris(2026, 10, 25, 23, 59, 59)),
    ],
)
def test_invitations_last_until_the_next_day(sent, expected):
    assert deadline(sent, NEXT_DAY, PARIS) == expected


@pytest.mark.parametrize(
    ("rule", "sent", "expected"),
    [
        # 2 real hours across the spring change: 01:30 CET + 2 h = 04:30 CEST.
        (LinkRule("hours", 2), paris(2026, 3, 29, 1, 30), paris(2026, 3, 29, 4, 30)),
        # Across the autumn change: 01:30 CEST + 2 h = 02:30 CET (the second 02:30).
        (LinkRule("hours", 2), paris(2026, 10, 25, 1, 30), paris(2026, 10, 25, 2, 30, fold=1)),
        # The minimum validity wins over a shorter duration.
        (
            LinkRule("hours", 1, min_validity_minutes=90),
            paris(2026, 6, 15, 10, 0),
            paris(2026, 6, 15, 11, 30),
        ),
    ],
)
def test_hours_rule(rule, sent, expected):
    end = deadline(sent, rule, PARIS)
    assert end.astimezone(UTC) == expected.astimezone(UTC)
    assert (end.hour, end.minute, end.fold) == (expected.hour, expected.minute, expected.fold)


def test_hours_rule_truncates_to_the_second():
    end = deadline(datetime(2026, 6, 15, 10, 0, 0, 750_000, tzinfo=UTC), LinkRule("hours", 1), PARIS)
    assert end.microsecond == 0


def test_a_minimum_validity_beyond_one_day_skips_days():
    rule = LinkRule(min_validity_minutes=2 * 24 * 60)
    assert deadline(paris(2026, 6, 15, 10, 0), rule, PARIS) == paris(2026, 6, 17, 23, 59, 59)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        deadline(datetime(2026, 6, 15, 10, 0), DAY, PARIS)


@given(
    sent=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=3 * 24 * 60),
    next_day=st.booleans(),
)
def test_deadline_properties(sent, minutes, next_day):
    rule = LinkRule("end_of_next_day" if next_day else "end_of_day", min_validity_minutes=minutes)
    end = deadline(sent, rule, PARIS)
    assert (end.hour, end.minute, end.second) == (23, 59, 59)
    assert end - sent >= timedelta(minutes=minutes)
    # Never more than one day beyond what the rule and the minimum require.
    assert end - sent < timedelta(minutes=minutes) + timedelta(days=2 if next_day else 1, hours=1)
    local_day = sent.astimezone(PARIS).date()
    assert end.date() >= local_day + timedelta(days=1 if next_day else 0)
