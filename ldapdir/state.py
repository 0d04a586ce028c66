"""Account states from directory attributes: pure functions, table-tested.

:func:`account_state` reads (attribute names from :class:`DirectorySettings`):

EXPIRED
    - the expiry attribute (``schacExpiryDate``: generalized time such as
      ``20241231225959Z``, or ``YYYYMMDD``) names a day before ``today``. The
      instant is converted to the university's time zone and the account stays
      usable through that whole day ("jusqu'au 31/12");
    - a SUPANN ``{COMPTE}`` resource state (``supannRessourceEtatDate``,
      ``{COMPTE}<état>:<sous-état>:<début>:<fin>``, dates ``YYYYMMDD``, either
      may be empty) whose end date is before ``today``, or whose state is ``I``
      (inactif: SupannInactif, SupannExpire, SupannSupprCompte… whatever the
      sub-state);
    - ``pwdEndTime`` (OpenLDAP 2.5 ppolicy) at or before ``now``: the directory
      refuses binds from that instant.
LOCKED
    - ``pwdAccountLockedTime`` (ppolicy): ``000001010000Z`` is an administrative,
      permanent lock; any other value locks for ``settings.lockout_duration``
      seconds, or until unlocked when that is 0 (the policy's
      ``pwdLockoutDuration``). An unreadable value counts as a lock;
    - a SUPANN ``{COMPTE}`` resource state ``S`` (suspendu, SupannVerrouille…).
NEVER_ACTIVATED
    - ``no_password`` rule: no ``userPassword`` value (the service account
      must be allowed to read it); ``attribute`` rule: no value in
      ``settings.activated_attribute``; ``never``: not used.
MUST_CHANGE
    - ``pwdReset: TRUE`` (an administrator set the password).

When several apply, the first in that order wins: EXPIRED > LOCKED >
NEVER_ACTIVATED > MUST_CHANGE > ACTIVE. An expired account is told so even if
it is also locked: renewing it is the person's next step. ``PASSWORD_EXPIRED``
is never computed here: only a bind's ppolicy response tells it.

Start dates (SUPANN ``<début>``, ``pwdStartTime``) are not checked. Expiry
values that cannot be read are logged and ignored.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from ldapdir.model import AccountState
from ldapdir.query import printable
from ldapdir.settings import DirectorySettings

logger = logging.getLogger(__name__)

#: ppolicy's value for a lock set by an administrator, never lifted by time.
PERMANENT_LOCK = "000001010000Z"

#: Generalized time (RFC 4517 §3.3.13): hours required, minutes and seconds
#: optional, fraction, then ``Z``, an offset, or nothing (local time).
_GENERALIZED_TIME = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:[.,]\d+)?(?P<tz>Z|[+-]\d{2}(?:\d{2})?)?$"
)
_DAY = re.compile(r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})$")
_RESOURCE_STATE = re.compile(r"^\{(?P<resource>[^}]*)\}(?P<state>[A-Za-z])(?::(?P<rest>.*))?$")


@dataclass(frozen=True)
class Verdict:
    """What the directory's attributes say about an account."""

    #: The state, by the precedence above.
    state: AccountState
    #: The earliest last day of use found (expiry, SUPANN end, ``pwdEndTime``).
    expires: date | None


@dataclass(frozen=True)
class ResourceState:
    """One parsed SUPANN ``supannRessourceEtatDate`` value."""

    #: ``COMPTE``, ``MAIL``… (upper case).
    resource: str
    #: ``A`` (actif), ``I`` (inactif), ``S`` (suspendu).
    state: str
    #: ``SupannActif``, ``SupannSursis``… (may be empty).
    sub_state: str
    start: date | None
    end: date | None


def parse_generalized_time(value: str, tz: zoneinfo.ZoneInfo) -> datetime | None:
    """An aware datetime from a generalized time; local times are read in ``tz``.

    :return: ``None`` when the value is not a valid generalized time.
    """
    match = _GENERALIZED_TIME.match(value.strip())
    if not match:
        return None
    parts = match.groupdict()
    offset = parts["tz"]
    zone: timezone | zoneinfo.ZoneInfo
    if offset is None:
        zone = tz
    elif offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        minutes = int(offset[1:3]) * 60 + int(offset[3:5] or 0)
        zone = timezone(sign * timedelta(minutes=minutes))
    try:
        return datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"]),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def parse_day(value: str) -> date | None:
    """A date from ``YYYYMMDD``, or ``None``."""
    match = _DAY.match(value.strip())
    if not match:
        return None
    try:
        return date(int(match["y"]), int(match["mo"]), int(match["d"]))
    except ValueError:
        return None


def last_day(value: str, tz: zoneinfo.ZoneInfo) -> date | None:
    """The last day an expiry value allows, in ``tz``: ``YYYYMMDD`` as is, a
    generalized time as the day (in ``tz``) holding that instant."""
    day = parse_day(value)
    if day is not None:
        return day
    instant = parse_generalized_time(value, tz)
    return instant.astimezone(tz).date() if instant else None


def parse_resource_state(value: str) -> ResourceState | None:
    """Parse ``{COMPTE}A:SupannActif:20230901:20261231`` (SUPANN 2021); the
    sub-state and dates may be missing or empty. ``None`` if unreadable."""
    match = _RESOURCE_STATE.match(value.strip())
    if not match:
        return None
    rest = (match["rest"] or "").split(":")
    rest += [""] * (3 - len(rest))
    sub_state, start, end = rest[0], rest[1], rest[2]
    start_day = parse_day(start) if start else None
    end_day = parse_day(end) if end else None
    if (start and start_day is None) or (end and end_day is None):
        return None
    return ResourceState(match["resource"].upper(), match["state"].upper(), sub_state, start_day, end_day)


def is_locked(value: str, now: datetime, lockout_duration: int, tz: zoneinfo.ZoneInfo) -> bool:
    """Whether a ``pwdAccountLockedTime`` value still locks the account at ``now``."""
    if value.strip() == PERMANENT_LOCK or lockout_duration == 0:
        return True
    locked_at = parse_generalized_time(value, tz)
    if locked_at is None:
        return True
    return now < locked_at + timedelta(seconds=lockout_duration)


def _values(attrs: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """Values of ``name``, looked up case-insensitively, empty ones dropped."""
    if not name:
        return []
    wanted = name.lower()
    return [value for key, values in attrs.items() if key.lower() == wanted for value in values if value]


def _warn_unreadable(attribute: str, value: str) -> None:
    logger.warning("ignoring unreadable %s value %r", attribute, printable(value, 40))


def _expiry(
    attrs: Mapping[str, Sequence[str]],
    today: date,
    now: datetime,
    settings: DirectorySettings,
    tz: zoneinfo.ZoneInfo,
) -> tuple[bool, date | None, bool]:
    """(expired, earliest last day, suspended) from the lifetime attributes."""
    days: list[date] = []
    expired = suspended = False
    for value in _values(attrs, settings.expiry_attribute):
        day = last_day(value, tz)
        if day is None:
            _warn_unreadable(settings.expiry_attribute, value)
            continue
        days.append(day)
        expired = expired or today > day
    for value in _values(attrs, settings.resource_state_attribute):
        parsed = parse_resource_state(value)
        if parsed is None:
            _warn_unreadable(settings.resource_state_attribute, value)
            continue
        if parsed.resource != "COMPTE":
            continue
        if parsed.end is not None:
            days.append(parsed.end)
            expired = expired or today > parsed.end
        expired = expired or parsed.state == "I"
        suspended = suspended or parsed.state == "S"
    for value in _values(attrs, "pwdEndTime"):
        instant = parse_generalized_time(value, tz)
        if instant is None:
            _warn_unreadable("pwdEndTime", value)
            continue
        days.append(instant.astimezone(tz).date())
        expired = expired or instant <= now
    return expired, min(days) if days else None, suspended


def _never_activated(attrs: Mapping[str, Sequence[str]], settings: DirectorySettings) -> bool:
    if settings.never_activated_rule == "no_password":
        return not _values(attrs, "userPassword")
    if settings.never_activated_rule == "attribute":
        return not _values(attrs, settings.activated_attribute)
    return False


def account_state(
    attrs: Mapping[str, Sequence[str]], today: date, now: datetime, settings: DirectorySettings
) -> Verdict:
    """The state of an account from its attributes (rules and precedence in the module doc).

    :param attrs: attribute name (any case) -> values, as text.
    :param today: the day to judge expiry dates by, in ``settings.time_zone``.
    :param now: the aware instant to judge lockouts and ``pwdEndTime`` by.
    """
    tz = zoneinfo.ZoneInfo(settings.time_zone)
    expired, expires, suspended = _expiry(attrs, today, now, settings, tz)
    locked = suspended or any(
        is_locked(value, now, settings.lockout_duration, tz)
        for value in _values(attrs, "pwdAccountLockedTime")
    )
    if expired:
        state = AccountState.EXPIRED
    elif locked:
        state = AccountState.LOCKED
    elif _never_activated(attrs, settings):
        state = AccountState.NEVER_ACTIVATED
    elif any(value.strip().upper() == "TRUE" for value in _values(attrs, "pwdReset")):
        state = AccountState.MUST_CHANGE
    else:
        state = AccountState.ACTIVE
    return Verdict(state, expires)
