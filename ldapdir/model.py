"""Value types of the directory layer: plain, frozen, Flask-free."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import NewType

#: A distinguished name, as the directory spells it.
DN = NewType("DN", str)


class AccountState(enum.Enum):
    """What the directory says about whether an account may sign in."""

    #: Activated and within its lifetime: may sign in.
    ACTIVE = "active"
    #: No password has ever been set (or the SUPANN state says not yet activated).
    NEVER_ACTIVATED = "never_activated"
    #: Past its end of life (e.g. 31/12 of the academic year its holder left).
    EXPIRED = "expired"
    #: Locked by an administrator or by the directory's password policy.
    LOCKED = "locked"
    #: The password itself has expired (ppolicy); a new one must be chosen.
    PASSWORD_EXPIRED = "password_expired"
    #: An administrator reset the password (ppolicy ``pwdReset``): must change.
    MUST_CHANGE = "must_change"


class PasswordCheck(enum.Enum):
    """The directory's answer to "is this the account's password?".

    "Can't tell" is not an answer: an unreachable directory raises
    :class:`ldapdir.errors.DirectoryUnavailable` instead.
    """

    VALID = "valid"
    INVALID = "invalid"
    #: Right password, but the directory refuses the bind: account locked (ppolicy).
    LOCKED = "locked"
    #: Right password, but it has expired (ppolicy); must be changed.
    EXPIRED = "expired"
    #: Right password, but the administrator reset it (ppolicy); must be changed.
    MUST_CHANGE = "must_change"


@dataclass(frozen=True)
class Authentication:
    """The full answer to a sign-in: the verdict, and the directory's warnings (ppolicy)."""

    check: PasswordCheck
    #: Seconds before the password expires, when the directory warns (``pwdExpireWarning``).
    expires_in: int | None = None
    #: Grace sign-ins left after this one: the password has expired (``pwdGraceAuthnLimit``).
    grace_remaining: int | None = None


@dataclass(frozen=True)
class Account:
    """One person's entry, as the rest of the server needs it."""

    #: The entry's DN.
    dn: DN
    #: The CAS user name (value of ``DirectorySettings.user_attribute``).
    user: str
    #: The login attribute whose value matched the identifier typed.
    found_by: str
    #: State computed from the entry and today's date.
    state: AccountState
    #: Last day the account may be used, when the directory says so.
    expires: date | None
    #: Personal e-mail address (for activation links), if any.
    personal_mail: str | None
    #: Opaque fingerprint of the password state; changes whenever a password is set.
    password_fingerprint: str
    #: Attributes read for release to services: name -> values (lower-case names
    #: are NOT forced; names are the configured spelling).
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def first(self, name: str, default: str = "") -> str:
        """First value of attribute ``name``, or ``default``."""
        values = self.attributes.get(name)
        return values[0] if values else default
