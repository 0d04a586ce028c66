"""Signed link tokens: purposes, deadlines, tampering, key rotation, password-state fingerprint."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from ldapdir.model import AccountState
from sso.activation.settings import ActivationSettings
from sso.activation.tokens import (
    MAX_TOKEN_LENGTH,
    LinkSigner,
    Purpose,
    TokenError,
    TokenProblem,
    state_digest,
)

from .fakes import account

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # 12:00 in Paris
END = datetime(2026, 6, 15, 23, 59, 59, tzinfo=PARIS)
SETTINGS = ActivationSettings()
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(["new-key-" + "n" * 24, "old-key-" + "o" * 24], SETTINGS)


@pytest.fixture
def person():
    return account("jdupont", AccountState.ACTIVE, "jean.dupont@gmail.com")


def problem(call) -> TokenError:
    with pytest.raises(TokenError) as info:
        call()
    return info.value


def test_round_trip(signer, person):
    link = signer.make(person, Purpose.RESET, NOW)
    assert (link.purpose, link.user, link.expires) == (Purpose.RESET, "jdupont", END)
    assert link.expires.tzinfo is PARIS
    claims = signer.load(link.token, Purpose.RESET, NOW)
    assert (claims.user, claims.purpose, claims.expires) == ("jdupont", Purpose.RESET, END)
    assert claims.issued == NOW and claims.issued.tzinfo is PARIS
    assert claims.fingerprint == state_digest(person)
    signer.check(claims, person)
    assert signer.load(link.token, None, NOW) == claims


def test_tokens_are_url_safe_and_bounded(signer, person):
    token = signer.make(replace(person, user="x" * 256), Purpose.INVITATION, NOW).token
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)
    assert len(token) <= MAX_TOKEN_LENGTH


def test_each_purpose_has_its_own_deadline_rule(signer, person):
    assert signer.make(person, Purpose.ACTIVATION, NOW).expires == END
    assert signer.make(person, Purpose.INVITATION, NOW).expires == END + timedelta(days=1)


def test_a_promised_deadline_is_kept(signer, person):
    promised = datetime(2026, 6, 16, 23, 59, 59, tzinfo=PARIS)
    link = signer.make(person, Purpose.ACTIVATION, NOW, expires=promised)
    assert link.expires == promised
    assert signer.load(link.token, None, NOW).expires == promised
    with pytest.raises(ValueError):
        signer.make(person, Purpose.ACTIVATION, NOW, expires=NOW - timedelta(seconds=1))


def test_the_raw_fingerprint_never_leaves_the_server(signer, person):
    secret = replace(person, password_fingerprint="{SSHA}c2VjcmV0LWhhc2gtb2YtdGhlLXBhc3N3b3Jk")
    token = signer.make(secret, Purpose.RESET, NOW).token
    _, payload = URLSafeSerializer("any").loads_unsafe(token)
    assert "c2VjcmV0" not in json.dumps(payload)
    assert set(payload) == {"u", "f", "i", "e"}


def flip(token: str, index: int) -> str:
    """Change one character so that its decoded bits change (not only base64 padding bits)."""
    char = token[index]
    if char == ".":
        return token[:index] + "A" + token[index + 1 :]
    swapped = B64[(B64.index(char) + 32) % 64]
    return token[:index] + swapped + token[index + 1 :]


@pytest.mark.parametrize("where", ["first", "payload", "dot", "signature", "last"])
def test_a_tampered_token_is_invalid(signer, person, where):
    token = signer.make(person, Purpose.RESET, NOW).token
    dot = token.rindex(".")
    index = {"first": 0, "payload": dot // 2, "dot": dot, "signature": (dot + len(token)) // 2, "last": -1}[
        where
    ]
    tampered = flip(token, index if index >= 0 else len(token) - 1)
    assert tampered != token
    error = problem(lambda: signer.load(tampered, None, NOW))
    assert error.reason is TokenProblem.INVALID and error.purpose is None
    assert tampered not in str(error) and token not in str(error)
    # itsdangerous' own errors quote the signature: they are never chained.
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "abc",
        "a.b",
        "a.b.c",
        "x" * (MAX_TOKEN_LENGTH + 1),
        "é.é",
        "\x00",
        "eyJ1IjoiYSJ9.sig",
        " " * 10,
    ],
)
def test_garbage_is_invalid(signer, garbage):
    assert problem(lambda: signer.load(garbage, None, NOW)).reason is TokenProblem.INVALID


def test_not_a_string_is_invalid(signer):
    assert problem(lambda: signer.load(None, None, NOW)).reason is TokenProblem.INVALID  # type: ignore[arg-type]


def test_a_token_of_another_purpose_says_which(signer, person):
    token = signer.make(person, Purpose.RESET, NOW).token
    error = problem(lambda: signer.load(token, Purpose.ACTIVATION, NOW))
    assert (error.reason, error.purpose) == (TokenProblem.WRONG_PURPOSE, Purpose.RESET)


@pytest.mark.parametrize(
    ("salt", "expected"),
    [("sso.activation", Purpose.ACTIVATION), ("sso.invitation", Purpose.INVITATION), ("sso.other", None)],
)
def test_the_salt_decides_the_purpose(salt, expected):
    serializer = URLSafeSerializer(["k" * 32], salt=salt, signer_kwargs={"digest_method": hashlib.sha256})
    token = serializer.dumps({"u": "jdupont", "f": "x", "i": 1, "e": 2**31})
    signer = LinkSigner(["k" * 32], SETTINGS)
    if expected is None:
        assert problem(lambda: signer.load(token, None, NOW)).reason is TokenProblem.INVALID
    else:
        assert signer.load(token, None, NOW).purpose is expected


@pytest.mark.parametrize(
    "payload",
    [
        ["jdupont"],
        {"u": "", "f": "x", "i": 1, "e": 2**31},
        {"u": "a", "f": "x", "i": True, "e": 2**31},
        {"u": "a", "f": 3, "i": 1, "e": 2**31},
        {"u": "a", "f": "x", "i": 1, "e": "tomorrow"},
        {"u": "a"},
    ],
)
def test_a_well_signed_but_malformed_payload_is_invalid(payload):
    serializer = URLSafeSerializer(
        ["k" * 32], salt="sso.reset", signer_kwargs={"digest_method": hashlib.sha256}
    )
    signer = LinkSigner(["k" * 32], SETTINGS)
    assert problem(lambda: signer.load(serializer.dumps(payload), None, NOW)).reason is TokenProblem.INVALID


def test_expired_by_one_second(signer, person):
    with freeze_time("2026-06-15 10:00:00") as frozen:
        link = signer.make(person, Purpose.RESET, datetime.now(UTC))
        frozen.move_to(END.astimezone(UTC))  # 23:59:59 Paris: still valid
        assert signer.load(link.token, Purpose.RESET, datetime.now(UTC)).user == "jdupont"
        frozen.tick(timedelta(seconds=1))
        error = problem(lambda: signer.load(link.token, Purpose.RESET, datetime.now(UTC)))
    assert (error.reason, error.purpose) == (TokenProblem.EXPIRED, Purpose.RESET)


def test_key_rotation(person):
    old = LinkSigner(["old-key-" + "o" * 24], SETTINGS)
    rotated = LinkSigner(["new-key-" + "n" * 24, "old-key-" + "o" * 24], SETTINGS)
    new_only = LinkSigner(["new-key-" + "n" * 24], SETTINGS)
    before = old.make(person, Purpose.RESET, NOW).token
    after = rotated.make(person, Purpose.RESET, NOW).token
    assert rotated.load(before, None, NOW).user == "jdupont"  # the old key still verifies
    assert new_only.load(after, None, NOW).user == "jdupont"  # the new key signs
    assert problem(lambda: old.load(after, None, NOW)).reason is TokenProblem.INVALID
    assert problem(lambda: new_only.load(before, None, NOW)).reason is TokenProblem.INVALID


def test_a_changed_password_state_makes_the_link_used(signer, person):
    claims = signer.load(signer.make(person, Purpose.RESET, NOW).token, None, NOW)
    changed = replace(person, password_fingerprint="v1")
    error = problem(lambda: signer.check(claims, changed))
    assert (error.reason, error.purpose) == (TokenProblem.USED, Purpose.RESET)


def test_another_account_is_not_the_one_named(signer, person):
    claims = signer.load(signer.make(person, Purpose.RESET, NOW).token, None, NOW)
    other = replace(person, user="jdupont2")
    assert problem(lambda: signer.check(claims, other)).reason is TokenProblem.INVALID


@pytest.mark.parametrize("keys", [[], [""], ["k" * 32, ""]])
def test_keys_are_required(keys):
    with pytest.raises(ValueError, match="secret_keys"):
        LinkSigner(keys, SETTINGS)


def test_a_single_string_key_is_one_key(person):
    signer = LinkSigner("k" * 32, SETTINGS)
    assert LinkSigner(["k" * 32], SETTINGS).load(signer.make(person, Purpose.RESET, NOW).token, None, NOW)


def test_naive_times_are_refused(signer, person):
    with pytest.raises(ValueError, match="aware"):
        signer.make(person, Purpose.RESET, datetime(2026, 6, 15, 10, 0))
    token = signer.make(person, Purpose.RESET, NOW).token
    with pytest.raises(ValueError, match="aware"):
        signer.load(token, None, datetime(2026, 6, 15, 10, 0))


@given(st.text(max_size=300))
def test_random_text_never_loads(text):
    signer = LinkSigner(["k" * 32], SETTINGS)
    with pytest.raises(TokenError) as info:
        signer.load(text, None, NOW)
    assert info.value.reason is TokenProblem.INVALID
