"""The password policy control (draft-behera-ldap-password-policy-10, OpenLDAP ppolicy).

Sent with binds and password changes; the server's response control says why
a bind or a change was refused (locked, expired, too short…). The value is
BER, decoded with pyasn1 (an ldap3 dependency)::

    PasswordPolicyResponseValue ::= SEQUENCE {
        warning [0] CHOICE {
            timeBeforeExpiration [0] INTEGER (0 .. maxInt),
            graceAuthNsRemaining [1] INTEGER (0 .. maxInt) } OPTIONAL,
        error   [1] ENUMERATED { passwordExpired (0), accountLocked (1), … } OPTIONAL }
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ

from ldapdir.model import PasswordCheck

logger = logging.getLogger(__name__)

#: OID of the request and response control (draft-behera §6.1).
OID = "1.3.6.1.4.1.42.2.27.8.5.1"

#: The request control, in ldap3's ``(oid, criticality, value)`` form: no value.
REQUEST = (OID, False, None)

#: LDAP result codes (RFC 4511 §4.1.9) used below.
SUCCESS = 0
CONSTRAINT_VIOLATION = 19
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS_RIGHTS = 50
UNWILLING_TO_PERFORM = 53


class PolicyError(enum.IntEnum):
    """The ``error`` field of the response (draft-behera §6.2)."""

    PASSWORD_EXPIRED = 0
    ACCOUNT_LOCKED = 1
    CHANGE_AFTER_RESET = 2
    PASSWORD_MOD_NOT_ALLOWED = 3
    MUST_SUPPLY_OLD_PASSWORD = 4
    INSUFFICIENT_PASSWORD_QUALITY = 5
    PASSWORD_TOO_SHORT = 6
    PASSWORD_TOO_YOUNG = 7
    PASSWORD_IN_HISTORY = 8
    PASSWORD_TOO_LONG = 9


class RejectionReason(enum.StrEnum):
    """Stable codes of :attr:`ldapdir.errors.PasswordRejected.reason`."""

    TOO_SHORT = "too_short"
    IN_HISTORY = "in_history"
    TOO_YOUNG = "too_young"
    QUALITY = "quality"
    INSUFFICIENT_ACCESS = "insufficient_access"
    OTHER = "other"


class _Warning(univ.Choice):  # type: ignore[misc,unused-ignore]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType(
            "timeBeforeExpiration",
            univ.Integer().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0)),
        ),
        namedtype.NamedType(
            "graceAuthNsRemaining",
            univ.Integer().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 1)),
        ),
    )


class _ResponseValue(univ.Sequence):  # type: ignore[misc,unused-ignore]
    componentType = namedtype.NamedTypes(
        # A tag on a CHOICE is always explicit (X.680), whatever the module's default.
        namedtype.OptionalNamedType(
            "warning",
            _Warning().subtype(  # type: ignore[no-untyped-call,unused-ignore]
                explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0)
            ),
        ),
        namedtype.OptionalNamedType(
            "error",
            univ.Enumerated().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 1)),
        ),
    )


@dataclass(frozen=True)
class PolicyResponse:
    """A decoded response control."""

    error: PolicyError | None = None
    #: Seconds before the password expires (a warning on a successful bind).
    time_before_expiration: int | None = None
    #: Grace binds left: the password has expired, this bind used one.
    grace_remaining: int | None = None


#: What OpenLDAP answers to a bind that has nothing to report: an empty SEQUENCE.
_NOTHING = b"\x30\x00"
#: Its decoded form (no error, no warning).
NOTHING_TO_REPORT = PolicyResponse()


def decode(value: bytes) -> PolicyResponse:
    """Decode a response control value.

    :raises ValueError: not a valid PasswordPolicyResponseValue.
    """
    if value == _NOTHING:  # nearly every sign-in: no need for the ASN.1 decoder
        return NOTHING_TO_REPORT
    try:
        decoded, rest = decoder.decode(value, asn1Spec=_ResponseValue())
    except PyAsn1Error as error:
        raise ValueError(f"bad password policy response: {error}") from error
    if rest:
        raise ValueError("bad password policy response: trailing bytes")
    error_code = None
    if decoded["error"].isValue:
        try:
            error_code = PolicyError(int(decoded["error"]))
        except ValueError as error:
            raise ValueError(f"unknown password policy error {int(decoded['error'])}") from error
    expiration = grace = None
    warning = decoded["warning"]
    if warning.isValue:
        name = warning.getName()
        if name == "timeBeforeExpiration":
            expiration = int(warning[name])
        else:
            grace = int(warning[name])
    return PolicyResponse(error_code, expiration, grace)


def encode(response: PolicyResponse) -> bytes:
    """Encode a response control value (the inverse of :func:`decode`; for tests)."""
    value = _ResponseValue()
    if response.time_before_expiration is not None or response.grace_remaining is not None:
        warning = value.getComponentByName("warning")
        if response.time_before_expiration is not None:
            warning.setComponentByName("timeBeforeExpiration", response.time_before_expiration)
        else:
            warning.setComponentByName("graceAuthNsRemaining", response.grace_remaining)
    if response.error is not None:
        value.setComponentByName("error", int(response.error))
    return bytes(encoder.encode(value))


def from_result(result: Mapping[str, Any] | None) -> PolicyResponse | None:
    """The response control of an ldap3 operation result, if the server sent one.

    An undecodable control is logged and ignored (the result code still counts).
    """
    controls = (result or {}).get("controls") or {}
    control = controls.get(OID)
    if not control or not control.get("value"):
        return None
    try:
        return decode(bytes(control["value"]))
    except ValueError as error:
        logger.warning("ignoring password policy control: %s", error)
        return None


def bind_check(result_code: int, response: PolicyResponse | None) -> PasswordCheck | None:
    """The answer a user bind gives, or ``None`` if the result code is not an
    answer about the credentials (the caller decides: unavailable, or invalid).

    Success with ``changeAfterReset`` is MUST_CHANGE; success with a grace
    login or ``passwordExpired`` is EXPIRED; invalidCredentials with
    ``accountLocked`` is LOCKED (OpenLDAP says so whatever the password) and
    with ``passwordExpired`` is EXPIRED.
    """
    error = response.error if response else None
    if result_code == SUCCESS:
        if error is PolicyError.CHANGE_AFTER_RESET:
            return PasswordCheck.MUST_CHANGE
        if error is PolicyError.PASSWORD_EXPIRED or (response and response.grace_remaining is not None):
            return PasswordCheck.EXPIRED
        return PasswordCheck.VALID
    if result_code == INVALID_CREDENTIALS:
        if error is PolicyError.ACCOUNT_LOCKED:
            return PasswordCheck.LOCKED
        if error is PolicyError.PASSWORD_EXPIRED:
            return PasswordCheck.EXPIRED
        return PasswordCheck.INVALID
    return None


_REASON_BY_ERROR = {
    PolicyError.PASSWORD_TOO_SHORT: RejectionReason.TOO_SHORT,
    PolicyError.PASSWORD_IN_HISTORY: RejectionReason.IN_HISTORY,
    PolicyError.PASSWORD_TOO_YOUNG: RejectionReason.TOO_YOUNG,
    PolicyError.INSUFFICIENT_PASSWORD_QUALITY: RejectionReason.QUALITY,
    PolicyError.PASSWORD_TOO_LONG: RejectionReason.QUALITY,
    PolicyError.PASSWORD_MOD_NOT_ALLOWED: RejectionReason.INSUFFICIENT_ACCESS,
    PolicyError.MUST_SUPPLY_OLD_PASSWORD: RejectionReason.INSUFFICIENT_ACCESS,
}

#: OpenLDAP's diagnostic texts, for servers that refuse without the control.
_REASON_BY_MESSAGE = (
    ("too short", RejectionReason.TOO_SHORT),
    ("in history", RejectionReason.IN_HISTORY),
    ("too young", RejectionReason.TOO_YOUNG),
    ("quality", RejectionReason.QUALITY),
)


def rejection_reason(result_code: int, response: PolicyResponse | None, message: str) -> RejectionReason:
    """Why the directory refused a new password, as a stable code."""
    if response and response.error in _REASON_BY_ERROR:
        return _REASON_BY_ERROR[response.error]
    if result_code == INSUFFICIENT_ACCESS_RIGHTS:
        return RejectionReason.INSUFFICIENT_ACCESS
    lowered = message.lower()
    for needle, reason in _REASON_BY_MESSAGE:
        if needle in lowered:
            return reason
    return RejectionReason.OTHER
