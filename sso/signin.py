"""What a sign-in attempt comes to, decided from the account and the directory's answer. Plain Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ldapdir import Account, AccountState, Authentication, PasswordCheck

#: Warn about an expiring password from this many seconds before (when the directory says so).
WARN_BEFORE = 14 * 86400


class Verdict(enum.Enum):
    """The outcome of one sign-in attempt; each has its own words on the page."""

    #: Signed in.
    OK = "ok"
    #: Unknown identifier or wrong password: one answer for both.
    INVALID = "invalid"
    #: No password yet: point to « 1ère connexion ».
    NEVER_ACTIVATED = "never_activated"
    #: Locked by the directory or an administrator.
    LOCKED = "locked"
    #: Past the account's end of life.
    EXPIRED = "expired"
    #: Right password, but it has expired or was reset by an administrator: choose a new one now.
    MUST_CHANGE = "must_change"


@dataclass(frozen=True)
class Attempt:
    """A decided sign-in attempt."""

    verdict: Verdict
    account: Account | None
    #: Seconds before the password expires, when it is time to warn.
    expires_in: int | None = None
    #: Grace sign-ins left (password expired).
    grace_remaining: int | None = None


def decide(account: Account | None, auth: Authentication) -> Attempt:
    """Decide an attempt. States that say more than "wrong" (expired, locked, must change) are only
    told after the right password, except "never activated", which has no password to check and
    must point to first connection. A directory that locks whatever the password (OpenLDAP
    ppolicy) answers LOCKED itself."""
    if account is None:
        return Attempt(Verdict.INVALID, None)
    if account.state is AccountState.NEVER_ACTIVATED:
        return Attempt(Verdict.NEVER_ACTIVATED, account)
    check = auth.check
    if check is PasswordCheck.INVALID:
        return Attempt(Verdict.INVALID, account)
    if check is PasswordCheck.LOCKED or account.state is AccountState.LOCKED:
        return Attempt(Verdict.LOCKED, account)
    if account.state is AccountState.EXPIRED:
        return Attempt(Verdict.EXPIRED, account)
    if check in (PasswordCheck.EXPIRED, PasswordCheck.MUST_CHANGE) or account.state in (
        AccountState.PASSWORD_EXPIRED,
        AccountState.MUST_CHANGE,
    ):
        return Attempt(Verdict.MUST_CHANGE, account, grace_remaining=auth.grace_remaining)
    warn = auth.expires_in if auth.expires_in is not None and auth.expires_in <= WARN_BEFORE else None
    return Attempt(Verdict.OK, account, expires_in=warn)
