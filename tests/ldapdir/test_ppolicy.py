"""The password policy control: BER decoding and what each answer means."""

from __future__ import annotations

import logging

import pytest

from ldapdir import PasswordCheck
from ldapdir.ppolicy import (
    OID,
    PolicyError,
    PolicyResponse,
    RejectionReason,
    bind_check,
    decode,
    encode,
    from_result,
    rejection_reason,
)


@pytest.mark.parametrize(
    ("ber", "response"),
    [
        # As OpenLDAP sends them.
        ("3003810101", PolicyResponse(PolicyError.ACCOUNT_LOCKED)),
        ("3003810100", PolicyResponse(PolicyError.PASSWORD_EXPIRED)),
        ("3003810102", PolicyResponse(PolicyError.CHANGE_AFTER_RESET)),
        ("3003810106", PolicyResponse(PolicyError.PASSWORD_TOO_SHORT)),
        ("3005a003810102", PolicyResponse(None, None, 2)),
        ("3006a00480020e10", PolicyResponse(None, 3600, None)),
        ("3008a003810101810100", PolicyResponse(PolicyError.PASSWORD_EXPIRED, None, 1)),
        ("3000", PolicyResponse()),
    ],
)
def test_decode(ber: str, response: PolicyResponse) -> None:
    assert decode(bytes.fromhex(ber)) == response
    assert decode(encode(response)) == response


@pytest.mark.parametrize("ber", ["", "30", "0403616263", "3003810163", "300381010100"])
def test_decode_refuses_garbage(ber: str) -> None:
    with pytest.raises(ValueError):
        decode(bytes.fromhex(ber))


def test_from_result() -> None:
    control = {OID: {"value": bytes.fromhex("3003810101"), "criticality": False}}
    assert from_result({"controls": control}) == PolicyResponse(PolicyError.ACCOUNT_LOCKED)
    assert from_result({"controls": {}}) is None
    assert from_result({}) is None
    assert from_result(None) is None


def test_an_undecodable_control_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert from_result({"controls": {OID: {"value": b"\x04\x00"}}}) is None
    assert "password policy" in caplog.text


LOCKED = PolicyResponse(PolicyError.ACCOUNT_LOCKED)
EXPIRED = PolicyResponse(PolicyError.PASSWORD_EXPIRED)


@pytest.mark.parametrize(
    ("code", "response", "check"),
    [
        (0, None, PasswordCheck.VALID),
        (0, PolicyResponse(None, 3600, None), PasswordCheck.VALID),
        (0, PolicyResponse(None, None, 2), PasswordCheck.EXPIRED),
        (0, PolicyResponse(PolicyError.CHANGE_AFTER_RESET), PasswordCheck.MUST_CHANGE),
        (0, EXPIRED, PasswordCheck.EXPIRED),
        (49, None, PasswordCheck.INVALID),
        (49, LOCKED, PasswordCheck.LOCKED),
        (49, EXPIRED, PasswordCheck.EXPIRED),
        (49, PolicyResponse(PolicyError.PASSWORD_TOO_SHORT), PasswordCheck.INVALID),
        (51, None, None),
        (52, LOCKED, None),
        (53, None, None),
    ],
)
def test_bind_check(code: int, response: PolicyResponse | None, check: PasswordCheck | None) -> None:
    assert bind_check(code, response) is check


@pytest.mark.parametrize(
    ("code", "response", "message", "reason"),
    [
        (19, PolicyResponse(PolicyError.PASSWORD_TOO_SHORT), "", RejectionReason.TOO_SHORT),
        (19, PolicyResponse(PolicyError.PASSWORD_IN_HISTORY), "", RejectionReason.IN_HISTORY),
        (19, PolicyResponse(PolicyError.PASSWORD_TOO_YOUNG), "", RejectionReason.TOO_YOUNG),
        (19, PolicyResponse(PolicyError.INSUFFICIENT_PASSWORD_QUALITY), "", RejectionReason.QUALITY),
        (19, PolicyResponse(PolicyError.PASSWORD_TOO_LONG), "", RejectionReason.QUALITY),
        (50, PolicyResponse(PolicyError.PASSWORD_MOD_NOT_ALLOWED), "", RejectionReason.INSUFFICIENT_ACCESS),
        (50, None, "no write access", RejectionReason.INSUFFICIENT_ACCESS),
        (19, None, "Password is too young to change", RejectionReason.TOO_YOUNG),
        (19, None, "Password is in history of old passwords", RejectionReason.IN_HISTORY),
        (19, None, "Password fails quality checking policy", RejectionReason.QUALITY),
        (53, None, "unwilling", RejectionReason.OTHER),
    ],
)
def test_rejection_reason(
    code: int, response: PolicyResponse | None, message: str, reason: RejectionReason
) -> None:
    assert rejection_reason(code, response, message) is reason
    assert reason == reason.value  # a plain string for PasswordRejected.reason
