"""Salted hashes (interoperable with OpenLDAP's slappasswd) and the password-state fingerprint."""

from __future__ import annotations

import hashlib

import pytest

from ldapdir.passwords import (
    SALTED_SCHEMES,
    hash_password,
    matches_any,
    password_fingerprint,
    verify_password,
)

PASSWORD = "Soleil-Vert-2026"

#: Made by OpenLDAP's slappasswd (an independent implementation), for this password.
SLAPPASSWD = [
    "{SSHA}ifMh0Qm66/BUiS6h2V63mW9zaVoVk3fX",
    "{SSHA256}tzvnIyhcsx03BGwMTAxx5ZfQfxQF0jDkEnzS1d2/EVj/QuCYDu7Fxg==",
    "{SSHA512}7Xxcb4G21MXTlHRsI0WH053SsncQKNB7sjYvorpbcaZI6EU308dmwQT5guvhijVaR5OJ3q1H5dE/2HJad8JHLUCcA+Ba1GfB",
]


@pytest.mark.parametrize("stored", SLAPPASSWD)
def test_verifies_slappasswd_hashes(stored: str) -> None:
    assert verify_password(PASSWORD, stored)
    assert verify_password(PASSWORD, stored.encode())
    assert not verify_password(PASSWORD + "x", stored)
    assert not verify_password(PASSWORD.lower(), stored)


@pytest.mark.parametrize("scheme", sorted(SALTED_SCHEMES))
def test_hash_round_trip(scheme: str) -> None:
    stored = hash_password("Zoé <b>\"&'</b> 2026", scheme)
    assert stored.startswith(scheme)
    assert verify_password("Zoé <b>\"&'</b> 2026", stored)
    assert not verify_password("Zoe <b>\"&'</b> 2026", stored)


def test_hashes_are_salted() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_scheme_name_is_case_insensitive() -> None:
    assert verify_password(PASSWORD, "{ssha}" + SLAPPASSWD[0].removeprefix("{SSHA}"))


@pytest.mark.parametrize(
    "stored",
    [
        PASSWORD,  # clear text: never accepted
        "{CLEARTEXT}" + PASSWORD,
        "{cleartext}" + PASSWORD,
        "{CRYPT}HWNCsFhXQjJFkn2tXHZNYZ5A",  # crypt(3): not supported (deprecated module)
        "{SHA}oPn7xZvUDMb0u3/URWapi/WzdVY=",  # unsalted
        "{SSHA}",
        "{SSHA}not base64!",
        "{SSHA}AAAA",  # shorter than a digest
        "{SSHA",
        "",
        b"\xff\xfe",
    ],
)
def test_refuses_anything_but_salted_hashes(stored: str | bytes) -> None:
    assert not verify_password(PASSWORD, stored)


def test_matches_any_value() -> None:
    assert matches_any(PASSWORD, [b"{SSHA}garbage", SLAPPASSWD[0].encode()])
    assert not matches_any(PASSWORD, [])
    assert not matches_any(PASSWORD, [PASSWORD.encode()])


def test_unknown_scheme_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        hash_password(PASSWORD, "{MD5}")


def test_fingerprint_of_no_password_state_is_the_digest_of_nothing() -> None:
    assert password_fingerprint([]) == hashlib.sha256(b"").digest()[:16].hex()


def test_fingerprint_shape_and_stability() -> None:
    first = password_fingerprint([b"{SSHA}a", b"{SSHA}b"], "20250101000000Z")
    assert len(first) == 32 and int(first, 16) >= 0
    assert first == password_fingerprint([b"{SSHA}b", b"{SSHA}a"], "20250101000000Z")


@pytest.mark.parametrize(
    "changed",
    [
        ([b"{SSHA}other"], "20250101000000Z", ""),
        ([b"{SSHA}a"], "20250102000000Z", ""),
        ([b"{SSHA}a"], "20250101000000Z", "TRUE"),
        ([b"{SSHA}a"], "", ""),
        ([], "20250101000000Z", ""),
    ],
)
def test_fingerprint_changes_with_the_password_state(changed: tuple[list[bytes], str, str]) -> None:
    assert password_fingerprint([b"{SSHA}a"], "20250101000000Z") != password_fingerprint(*changed)
