"""account_state: every rule, the precedence between them, and the date boundaries (Europe/Paris)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ldapdir.model import AccountState
from ldapdir.settings import DirectorySettings
from ldapdir.state import (
    ResourceState,
    account_state,
    last_day,
    parse_generalized_time,
    parse_resource_state,
)

PARIS = ZoneInfo("Europe/Paris")
SETTINGS = DirectorySettings()
PASSWORD = {"userPassword": ["{SSHA}x"]}


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)


def state_of(attrs: dict[str, list[str]], today: date, now: datetime | None = None, **settings: object):
    configured = DirectorySettings(**settings) if settings else SETTINGS  # type: ignore[arg-type]
    return account_state(attrs, today, now or noon(today), configured)


D = date
CASES = [
    # (id, attributes, today, expected state, expected expires)
    ("active", PASSWORD, D(2025, 3, 1), AccountState.ACTIVE, None),
    ("no password", {}, D(2025, 3, 1), AccountState.NEVER_ACTIVATED, None),
    ("empty password value", {"userPassword": [""]}, D(2025, 3, 1), AccountState.NEVER_ACTIVATED, None),
    ("pwdReset", {**PASSWORD, "pwdReset": ["TRUE"]}, D(2025, 3, 1), AccountState.MUST_CHANGE, None),
    (
        "pwdReset lower case",
        {**PASSWORD, "pwdReset": ["true"]},
        D(2025, 3, 1),
        AccountState.MUST_CHANGE,
        None,
    ),
    ("pwdReset FALSE", {**PASSWORD, "pwdReset": ["FALSE"]}, D(2025, 3, 1), AccountState.ACTIVE, None),
    (
        "admin lock",
        {**PASSWORD, "pwdAccountLockedTime": ["000001010000Z"]},
        D(2025, 3, 1),
        AccountState.LOCKED,
        None,
    ),
    (
        "ppolicy lock",
        {**PASSWORD, "pwdAccountLockedTime": ["20250301090000Z"]},
        D(2025, 3, 1),
        AccountState.LOCKED,
        None,
    ),
    (
        "unreadable lock",
        {**PASSWORD, "pwdAccountLockedTime": ["soon"]},
        D(2025, 3, 1),
        AccountState.LOCKED,
        None,
    ),
    # schacExpiryDate: usable through the whole day, in Paris.
    (
        "expiry day itself",
        {**PASSWORD, "schacExpiryDate": ["20241231225959Z"]},
        D(2024, 12, 31),
        AccountState.ACTIVE,
        D(2024, 12, 31),
    ),
    (
        "day after expiry",
        {**PASSWORD, "schacExpiryDate": ["20241231225959Z"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    (
        "midnight Paris is the next day",
        {**PASSWORD, "schacExpiryDate": ["20241231230000Z"]},
        D(2025, 1, 1),
        AccountState.ACTIVE,
        D(2025, 1, 1),
    ),
    (
        "summer time",
        {**PASSWORD, "schacExpiryDate": ["20250630215959Z"]},
        D(2025, 6, 30),
        AccountState.ACTIVE,
        D(2025, 6, 30),
    ),
    (
        "summer time, next day",
        {**PASSWORD, "schacExpiryDate": ["20250630220000Z"]},
        D(2025, 6, 30),
        AccountState.ACTIVE,
        D(2025, 7, 1),
    ),
    (
        "YYYYMMDD",
        {**PASSWORD, "schacExpiryDate": ["20241231"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    (
        "offset",
        {**PASSWORD, "schacExpiryDate": ["20241231235959+0100"]},
        D(2024, 12, 31),
        AccountState.ACTIVE,
        D(2024, 12, 31),
    ),
    (
        "local time",
        {**PASSWORD, "schacExpiryDate": ["2024123123"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    (
        "fraction",
        {**PASSWORD, "schacExpiryDate": ["20241231225959.5Z"]},
        D(2024, 12, 31),
        AccountState.ACTIVE,
        D(2024, 12, 31),
    ),
    (
        "unreadable expiry ignored",
        {**PASSWORD, "schacExpiryDate": ["31/12/2024"]},
        D(2025, 1, 1),
        AccountState.ACTIVE,
        None,
    ),
    # SUPANN {COMPTE} resource state.
    (
        "SUPANN end day",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}A:SupannActif::20241231"]},
        D(2024, 12, 31),
        AccountState.ACTIVE,
        D(2024, 12, 31),
    ),
    (
        "SUPANN past end",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}A:SupannActif::20241231"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    (
        "SUPANN open end",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}A:SupannActif:20230901:"]},
        D(2025, 1, 1),
        AccountState.ACTIVE,
        None,
    ),
    (
        "SUPANN inactive",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}I:SupannExpire"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        None,
    ),
    (
        "SUPANN suspended",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}S:SupannVerrouille::"]},
        D(2025, 1, 1),
        AccountState.LOCKED,
        None,
    ),
    (
        "SUPANN other resource",
        {**PASSWORD, "supannRessourceEtatDate": ["{MAIL}I:SupannExpire::20200101"]},
        D(2025, 1, 1),
        AccountState.ACTIVE,
        None,
    ),
    (
        "SUPANN grace period",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}A:SupannSursis::20250131"]},
        D(2025, 1, 15),
        AccountState.ACTIVE,
        D(2025, 1, 31),
    ),
    (
        "earliest end wins",
        {
            **PASSWORD,
            "schacExpiryDate": ["20261231225959Z"],
            "supannRessourceEtatDate": ["{COMPTE}A:SupannActif::20250831"],
        },
        D(2025, 9, 1),
        AccountState.EXPIRED,
        D(2025, 8, 31),
    ),
    # Precedence: EXPIRED > LOCKED > NEVER_ACTIVATED > MUST_CHANGE > ACTIVE.
    (
        "expired beats locked",
        {**PASSWORD, "schacExpiryDate": ["20241231"], "pwdAccountLockedTime": ["000001010000Z"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    (
        "locked beats never activated",
        {"pwdAccountLockedTime": ["000001010000Z"]},
        D(2025, 1, 1),
        AccountState.LOCKED,
        None,
    ),
    (
        "never activated beats must change",
        {"pwdReset": ["TRUE"]},
        D(2025, 1, 1),
        AccountState.NEVER_ACTIVATED,
        None,
    ),
    (
        "locked beats must change",
        {**PASSWORD, "pwdReset": ["TRUE"], "pwdAccountLockedTime": ["000001010000Z"]},
        D(2025, 1, 1),
        AccountState.LOCKED,
        None,
    ),
    (
        "suspended and expired",
        {**PASSWORD, "supannRessourceEtatDate": ["{COMPTE}S:SupannVerrouille::20241231"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
    # Attribute names are case-insensitive, as in LDAP.
    (
        "name case",
        {"USERPASSWORD": ["x"], "SchacExpiryDate": ["20241231"]},
        D(2025, 1, 1),
        AccountState.EXPIRED,
        D(2024, 12, 31),
    ),
]


@pytest.mark.parametrize(
    ("attrs", "today", "state", "expires"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_account_state(
    attrs: dict[str, list[str]], today: date, state: AccountState, expires: date | None
) -> None:
    verdict = state_of(attrs, today)
    assert (verdict.state, verdict.expires) == (state, expires)


def test_unreadable_expiry_is_logged_without_newlines(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ldapdir.state"):
        state_of({**PASSWORD, "schacExpiryDate": ["bad\nvalue"]}, D(2025, 1, 1))
    assert "schacExpiryDate" in caplog.text
    assert "bad\nvalue" not in caplog.text


@pytest.mark.parametrize(
    ("minutes_ago", "state"),
    [(1, AccountState.LOCKED), (4, AccountState.LOCKED), (5, AccountState.ACTIVE), (60, AccountState.ACTIVE)],
)
def test_lockout_duration(minutes_ago: int, state: AccountState) -> None:
    now = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    locked_at = (now - timedelta(minutes=minutes_ago)).strftime("%Y%m%d%H%M%SZ")
    attrs = {**PASSWORD, "pwdAccountLockedTime": [locked_at]}
    assert state_of(attrs, D(2025, 3, 1), now, lockout_duration=300).state is state


def test_administrative_lock_ignores_the_lockout_duration() -> None:
    attrs = {**PASSWORD, "pwdAccountLockedTime": ["000001010000Z"]}
    assert state_of(attrs, D(2025, 3, 1), lockout_duration=1).state is AccountState.LOCKED


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (datetime(2025, 1, 1, 11, 59, 59, tzinfo=UTC), AccountState.ACTIVE),
        (datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC), AccountState.EXPIRED),
    ],
)
def test_pwd_end_time_is_an_instant(now: datetime, state: AccountState) -> None:
    verdict = state_of({**PASSWORD, "pwdEndTime": ["20250101120000Z"]}, D(2025, 1, 1), now)
    assert (verdict.state, verdict.expires) == (state, D(2025, 1, 1))


@pytest.mark.parametrize(
    ("rule", "attrs", "state"),
    [
        ("attribute", {**PASSWORD}, AccountState.NEVER_ACTIVATED),
        ("attribute", {"supannActivationDate": ["20240901"]}, AccountState.ACTIVE),
        ("never", {}, AccountState.ACTIVE),
        ("no_password", {"supannActivationDate": ["20240901"]}, AccountState.NEVER_ACTIVATED),
    ],
)
def test_never_activated_rules(rule: str, attrs: dict[str, list[str]], state: AccountState) -> None:
    settings = {"never_activated_rule": rule}
    if rule == "attribute":
        settings["activated_attribute"] = "supannActivationDate"
    assert state_of(attrs, D(2025, 1, 1), **settings).state is state


def test_disabled_expiry_attributes_are_not_read() -> None:
    attrs = {
        **PASSWORD,
        "schacExpiryDate": ["20200101"],
        "supannRessourceEtatDate": ["{COMPTE}I:SupannExpire"],
    }
    verdict = state_of(attrs, D(2025, 1, 1), expiry_attribute="", resource_state_attribute="")
    assert (verdict.state, verdict.expires) == (AccountState.ACTIVE, None)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (
            "{COMPTE}A:SupannActif:20230901:20261231",
            ResourceState("COMPTE", "A", "SupannActif", D(2023, 9, 1), D(2026, 12, 31)),
        ),
        ("{compte}a:SupannActif::", ResourceState("COMPTE", "A", "SupannActif", None, None)),
        ("{COMPTE}I", ResourceState("COMPTE", "I", "", None, None)),
        ("{COMPTE}S:SupannVerrouille", ResourceState("COMPTE", "S", "SupannVerrouille", None, None)),
        ("{COMPTE}A:SupannActif::20261331", None),
        ("COMPTE:A", None),
        ("", None),
    ],
)
def test_parse_resource_state(value: str, parsed: ResourceState | None) -> None:
    assert parse_resource_state(value) == parsed


@pytest.mark.parametrize(
    "value", ["", "2024", "20241301000000Z", "20240230000000Z", "20241231250000Z", "2024-12-31"]
)
def test_invalid_generalized_times(value: str) -> None:
    assert parse_generalized_time(value, PARIS) is None


def test_last_day_of_a_generalized_time_is_taken_in_the_time_zone() -> None:
    assert last_day("20241231230000Z", PARIS) == D(2025, 1, 1)
    assert last_day("20241231230000Z", ZoneInfo("UTC")) == D(2024, 12, 31)
