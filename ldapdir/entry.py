"""From a directory entry to an :class:`Account`: one conversion for every back-end.

Both :class:`ldapdir.ldap.LdapDirectory` and
:class:`ldapdir.embedded.EmbeddedDirectory` read raw attribute values (bytes)
and hand them here, so they agree on states, ``found_by``, fingerprints and
released attributes.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Literal

from ldapdir.model import DN, Account
from ldapdir.passwords import password_fingerprint
from ldapdir.query import printable, same_identifier
from ldapdir.settings import DirectorySettings
from ldapdir.state import account_state

logger = logging.getLogger(__name__)

#: Operational attributes of the password policy (ppolicy) read on every account.
PPOLICY_ATTRIBUTES = ("pwdAccountLockedTime", "pwdChangedTime", "pwdReset", "pwdEndTime")

#: Attributes never released, whatever the settings say.
SECRET_ATTRIBUTES = frozenset({"userpassword"})

#: ldap3's search scopes.
Scope = Literal["BASE", "LEVEL", "SUBTREE"]

#: Raw attributes as LDAP returns them: name -> values (bytes).
RawAttributes = Mapping[str, Sequence[bytes]]


class Entry:
    """An entry's raw attributes, looked up case-insensitively (LDAP names are)."""

    def __init__(self, dn: str, raw: RawAttributes) -> None:
        #: The entry's DN, as the directory spells it.
        self.dn = dn
        self._values: dict[str, list[bytes]] = {}
        self._names: dict[str, str] = {}
        for name, values in raw.items():
            self._names.setdefault(name.lower(), name)
            self._values.setdefault(name.lower(), []).extend(bytes(value) for value in values)

    def raw(self, name: str) -> tuple[bytes, ...]:
        """The raw values of ``name`` (empty if absent)."""
        return tuple(self._values.get(name.lower(), ()))

    def texts(self, name: str) -> tuple[str, ...]:
        """The values of ``name`` as text (UTF-8; undecodable bytes replaced)."""
        return tuple(value.decode("utf-8", errors="replace") for value in self.raw(name))

    def first(self, name: str) -> str:
        """The first value of ``name`` as text, or ``""``."""
        values = self.texts(name)
        return values[0] if values else ""

    def as_texts(self) -> dict[str, tuple[str, ...]]:
        """Every attribute as text, under the directory's spelling of its name."""
        return {self._names[key]: self.texts(key) for key in self._values}


def requested_attributes(settings: DirectorySettings) -> list[str]:
    """The attributes to read for an account (operational ones named explicitly)."""
    names = [
        *settings.login_attributes,
        settings.user_attribute,
        settings.personal_mail_attribute,
        settings.expiry_attribute,
        settings.resource_state_attribute,
        settings.activated_attribute,
        "userPassword",
        *PPOLICY_ATTRIBUTES,
        *settings.release_attributes,
    ]
    seen: set[str] = set()
    unique = []
    for name in names:
        if name and name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return unique


def found_by(entry: Entry, identifier: str, settings: DirectorySettings) -> str:
    """The first login attribute (in the configured order) whose value names
    ``identifier``; ``""`` without an identifier (searches)."""
    if not identifier:
        return ""
    for name in settings.login_attributes:
        if any(same_identifier(value, identifier) for value in entry.texts(name)):
            return name
    # The server matched by its own rules (e.g. a different case folding).
    return next((name for name in settings.login_attributes if entry.raw(name)), settings.login_attributes[0])


def fingerprint(entry: Entry) -> str:
    """The password-state fingerprint of an entry (see :func:`password_fingerprint`)."""
    return password_fingerprint(
        entry.raw("userPassword"), entry.first("pwdChangedTime"), entry.first("pwdReset")
    )


def to_account(
    entry: Entry, identifier: str, today: date, now: datetime, settings: DirectorySettings
) -> Account | None:
    """The account an entry describes, or ``None`` if it has no user name.

    :param identifier: the normalised identifier that found it (``""`` for a search).
    :param today: the day to judge expiry by; ``now``: the instant for lockouts.
    """
    user = entry.first(settings.user_attribute)
    if not user:
        logger.warning("entry %s has no %s value: ignored", printable(entry.dn, 200), settings.user_attribute)
        return None
    verdict = account_state(entry.as_texts(), today, now, settings)
    released = {
        name: entry.texts(name)
        for name in settings.release_attributes
        if entry.raw(name) and name.lower() not in SECRET_ATTRIBUTES
    }
    return Account(
        dn=DN(entry.dn),
        user=user,
        found_by=found_by(entry, identifier, settings),
        state=verdict.state,
        expires=verdict.expires,
        personal_mail=entry.first(settings.personal_mail_attribute) or None,
        password_fingerprint=fingerprint(entry),
        attributes=released,
    )


def pick(
    entries: Sequence[Entry], identifier: str, today: date, now: datetime, settings: DirectorySettings
) -> Account | None:
    """The account a login search found: ``None`` for no entry, or for several
    (an ambiguous identifier names nobody; logged)."""
    if len(entries) > 1:
        logger.warning("identifier %r matches several entries: refused", printable(identifier))
        return None
    if not entries:
        return None
    return to_account(entries[0], identifier, today, now, settings)


def clock(today: date | None, settings: DirectorySettings) -> tuple[date, datetime]:
    """``(today, now)`` in the university's time zone; ``today`` given overrides
    the date expiry is judged by (lockouts and ``pwdEndTime`` use the real time)."""
    now = datetime.now(zoneinfo.ZoneInfo(settings.time_zone))
    return (today if today is not None else now.date()), now
