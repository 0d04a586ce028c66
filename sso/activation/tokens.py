"""Signed links for first connection, password reset and invitations.

A token is an itsdangerous signature (one salt per purpose, so a token made for one purpose never
verifies as another) over ``{"u": user, "f": state digest, "i": issued, "e": expires}``. The deadline
is an absolute local time (23:59:59 Europe/Paris on the day of sending), not a maximum age, so it
travels in the payload rather than in itsdangerous' timestamp. The state digest is a one-way hash
of the account's password fingerprint: once a password is set the fingerprint changes and the link
stops working (as flask-security does with its password hash in reset tokens).

Tokens are bearer secrets: never log them (itsdangerous' own exceptions quote the signature, so
they are never chained into :class:`TokenError`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from itsdangerous import BadData, URLSafeSerializer

from ldapdir.model import Account
from sso.activation.settings import ActivationSettings, LinkRule

#: Longest token accepted from a link (ours are about 200 characters).
MAX_TOKEN_LENGTH = 1024
#: What :meth:`LinkSigner._unsign` returns for a signature that does not verify.
_BAD = object()
#: The local time at which day-based links end.
END_OF_DAY = time(23, 59, 59)


class Purpose(enum.Enum):
    """What a link is for; each purpose signs with its own salt."""

    #: First connection of a never-activated account (« 1ère connexion »).
    ACTIVATION = "activation"
    #: Forgotten password (« Problème de connexion »).
    RESET = "reset"
    #: Sent by an administrator (``sso invite``); leads through the activation steps.
    INVITATION = "invitation"

    @property
    def salt(self) -> str:
        """The itsdangerous salt of this purpose."""
        return f"sso.{self.value}"


class TokenProblem(enum.Enum):
    """Why a link does not work; each gets its own page (and a button to ask for a new link)."""

    #: Past its deadline.
    EXPIRED = "expired"
    #: Tampered with, truncated, signed with an unknown key, or not a token at all.
    INVALID = "invalid"
    #: A valid token of another purpose than the one expected.
    WRONG_PURPOSE = "wrong_purpose"
    #: A password was set since it was sent (the state fingerprint no longer matches).
    USED = "used"
    #: The account is gone, expired or locked: a new link would not help.
    ACCOUNT_CLOSED = "account_closed"


class TokenError(Exception):
    """A link that cannot be used. Carries data, never the token."""

    def __init__(self, reason: TokenProblem, purpose: Purpose | None = None) -> None:
        super().__init__(reason.value)
        #: What is wrong.
        self.reason = reason
        #: The purpose the token names, when it could be read (for the wording of the page).
        self.purpose = purpose


@dataclass(frozen=True)
class LinkToken:
    """A freshly made token, to be put in a link."""

    #: The URL-safe token itself (a secret: never log it).
    token: str
    purpose: Purpose
    user: str
    #: Deadline, aware, in the configured time zone.
    expires: datetime


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    user: str
    purpose: Purpose
    #: Digest of the password state when the link was made (see :func:`state_digest`).
    fingerprint: str
    #: When the link was made, aware, in the configured time zone.
    issued: datetime
    #: Deadline, aware, in the configured time zone.
    expires: datetime


def deadline(sent_at: datetime, rule: LinkRule, tz: ZoneInfo) -> datetime:
    """Until when a link sent at ``sent_at`` works, in ``tz``, to the second.

    ``end_of_day`` is 23:59:59 local time on the day of sending, ``end_of_next_day`` the day after,
    ``hours`` a fixed duration. The link always works at least ``rule.min_validity_minutes``: when
    the end of the day is nearer than that, the deadline moves to the end of the next day (a link
    sent at 23:58 works until 23:59:59 the next day). Durations are counted in real time (UTC), so a
    daylight-saving change shortens or lengthens the local day, never the promise.

    :param sent_at: aware datetime.
    :raises ValueError: ``sent_at`` is naive.
    """
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise ValueError("sent_at must be an aware datetime")
    sent = sent_at.astimezone(UTC)
    minimum = sent + timedelta(minutes=rule.min_validity_minutes)
    if rule.valid_until == "hours":
        end = max(sent + timedelta(hours=rule.hours), minimum)
        return end.replace(microsecond=0).astimezone(tz)
    day = sent.astimezone(tz).date() + timedelta(days=1 if rule.valid_until == "end_of_next_day" else 0)
    while True:
        end_local = datetime.combine(day, END_OF_DAY, tzinfo=tz)
        if end_local.astimezone(UTC) >= minimum:
            return end_local
        day += timedelta(days=1)


def state_digest(account: Account) -> str:
    """A one-way digest of the account's password fingerprint, bound to its user name.

    The token is signed, not encrypted: the raw fingerprint never leaves the server.
    """
    data = b"sso.password-state\0" + account.user.encode() + b"\0" + account.password_fingerprint.encode()
    return hashlib.sha256(data).hexdigest()[:32]


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now


class LinkSigner:
    """Makes and checks link tokens.

    :param secret_keys: the first key signs, every key verifies (rotation: put the new key first,
        keep the old one until its links have expired).
    :param settings: the activation settings (time zone and link rules).
    """

    def __init__(self, secret_keys: Sequence[str], settings: ActivationSettings) -> None:
        keys = [secret_keys] if isinstance(secret_keys, str) else list(secret_keys)
        if not keys or any(not key for key in keys):
            raise ValueError("secret_keys: give at least one non-empty key")
        self._settings = settings
        self._zone = settings.zone
        # itsdangerous wants the newest key last.
        self._serializers = {
            purpose: URLSafeSerializer(
                list(reversed(keys)), salt=purpose.salt, signer_kwargs={"digest_method": hashlib.sha256}
            )
            for purpose in Purpose
        }

    def make(
        self, account: Account, purpose: Purpose, now: datetime, expires: datetime | None = None
    ) -> LinkToken:
        """A token for ``account`` and ``purpose``, sent at ``now``.

        :param expires: the deadline, when the caller already promised one (it must be after
            ``now``); default: :func:`deadline` with the purpose's rule.
        """
        now = _aware(now)
        end = expires or deadline(now, self._settings.link_rule(purpose.value), self._zone)
        end = _aware(end).astimezone(self._zone)
        if end <= now:
            raise ValueError("expires must be after now")
        payload = {
            "u": account.user,
            "f": state_digest(account),
            "i": int(now.timestamp()),
            "e": int(end.timestamp()),
        }
        token = self._serializers[purpose].dumps(payload)
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("the user name is too long for a link")
        return LinkToken(token=token, purpose=purpose, user=account.user, expires=end)

    def load(self, token: str, purpose: Purpose | None, now: datetime) -> TokenClaims:
        """Check a token's signature, purpose and deadline (not the account: see :meth:`check`).

        :param purpose: the purpose expected, or ``None`` for any.
        :raises TokenError: ``INVALID``, ``WRONG_PURPOSE`` (with the purpose it names) or
            ``EXPIRED`` (with its purpose).
        """
        now = _aware(now)
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise TokenError(TokenProblem.INVALID)
        order = [purpose] if purpose else []
        order += [other for other in Purpose if other is not purpose]
        for candidate in order:
            payload = self._unsign(candidate, token)
            if payload is _BAD:
                continue
            claims = self._claims(candidate, payload)
            if purpose is not None and candidate is not purpose:
                raise TokenError(TokenProblem.WRONG_PURPOSE, candidate)
            if now.timestamp() > claims.expires.timestamp():
                raise TokenError(TokenProblem.EXPIRED, candidate)
            return claims
        raise TokenError(TokenProblem.INVALID)

    def check(self, claims: TokenClaims, account: Account) -> None:
        """Check that ``account`` (freshly read) is the one the token names, in the same password
        state (constant-time compare).

        :raises TokenError: ``INVALID`` (another account), ``USED`` (a password was set since).
        """
        if not hmac.compare_digest(account.user.encode(), claims.user.encode()):
            raise TokenError(TokenProblem.INVALID, claims.purpose)
        if not hmac.compare_digest(state_digest(account).encode(), claims.fingerprint.encode()):
            raise TokenError(TokenProblem.USED, claims.purpose)

    def _unsign(self, purpose: Purpose, token: str) -> Any:
        try:
            return self._serializers[purpose].loads(token)
        except BadData:
            return _BAD

    def _claims(self, purpose: Purpose, payload: Any) -> TokenClaims:
        if not isinstance(payload, dict):
            raise TokenError(TokenProblem.INVALID)
        user, digest, issued, expires = (payload.get(key) for key in ("u", "f", "i", "e"))
        if not (isinstance(user, str) and user and isinstance(digest, str)):
            raise TokenError(TokenProblem.INVALID)
        if not (_timestamp(issued) and _timestamp(expires)):
            raise TokenError(TokenProblem.INVALID)
        return TokenClaims(
            user=user,
            purpose=purpose,
            fingerprint=digest,
            issued=datetime.fromtimestamp(issued, self._zone),
            expires=datetime.fromtimestamp(expires, self._zone),
        )


def _timestamp(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 < value < 2**40
