"""Identifier normalisation and filter escaping: hostile input never changes a filter's shape."""

from __future__ import annotations

import pytest
from ldap3.utils.conv import escape_filter_chars

from ldapdir.query import (
    MAX_IDENTIFIER_LENGTH,
    equality,
    login_filter,
    normalise_identifier,
    person_dn,
    printable,
    search_filter,
)
from ldapdir.settings import DirectorySettings

SETTINGS = DirectorySettings(people_base="ou=people,dc=univ-demo,dc=fr")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cdurand", "cdurand"),
        ("  CDurand\t", "cdurand"),
        ("Camille.Durand@ETU.univ-demo.fr", "camille.durand@etu.univ-demo.fr"),
        ("\u00a0jdupont\u3000", "jdupont"),  # no-break and ideographic spaces are trimmed
        ("Ze\u0301phyr", "z\u00e9phyr"),  # decomposed é composed (NFC)
        ("ÉLODIE", "élodie"),
        ("*", "*"),  # kept: escaped in the filter, never a wildcard
        (")(uid=*", ")(uid=*"),
        ("a\\b", "a\\b"),
        ("x" * MAX_IDENTIFIER_LENGTH, "x" * MAX_IDENTIFIER_LENGTH),
        ("prenom nom", "prenom nom"),
    ],
)
def test_normalise_identifier(raw: str, expected: str) -> None:
    assert normalise_identifier(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "x" * (MAX_IDENTIFIER_LENGTH + 1),
        "x" * 10_000,
        "cdu\x00rand",
        "cdurand\nmail=x",
        "cdu\rrand",
        "cd\x1burand",
        "cdu\u202erand",  # right-to-left override
        "cdu\u200brand",  # zero-width space
        "cdu\u2028rand",  # line separator
        "cdu\ud800rand",  # lone surrogate
    ],
)
def test_unusable_identifiers_are_refused(raw: str) -> None:
    assert normalise_identifier(raw) is None


def test_length_is_judged_after_trimming() -> None:
    assert normalise_identifier("  " + "x" * MAX_IDENTIFIER_LENGTH + "  ") == "x" * MAX_IDENTIFIER_LENGTH


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("*", r"\2a"),
        (")(uid=*", r"\29\28uid=\2a"),
        ("a\\b", r"a\5cb"),
        ("a\x00b", r"a\00b"),
        ("(|(objectClass=*))", r"\28|\28objectClass=\2a\29\29"),
    ],
)
def test_equality_escapes_every_special_character(value: str, escaped: str) -> None:
    assert equality("uid", value) == f"(uid={escaped})"


@pytest.mark.parametrize("hostile", ["*", ")(uid=*", "*)(|(objectClass=*", "\\", "a\\2a", "é*(", "x)" * 50])
def test_login_filter_keeps_its_shape(hostile: str) -> None:
    built = login_filter(hostile, SETTINGS)
    escaped = escape_filter_chars(hostile)
    assert built == f"(&(objectClass=inetOrgPerson)(|(mail={escaped})(uid={escaped})))"
    # Only the filter's own parentheses are left unescaped.
    assert built.count("(") == built.count(")") == 5


def test_login_filter_follows_the_configured_attributes() -> None:
    settings = DirectorySettings(login_attributes=("uid",), account_filter="")
    assert login_filter("cdurand", settings) == "(uid=cdurand)"
    settings = DirectorySettings(login_attributes=("supannAliasLogin", "mail", "uid"))
    assert login_filter("a", settings) == (
        "(&(objectClass=inetOrgPerson)(|(supannAliasLogin=a)(mail=a)(uid=a)))"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(uid=*)", "(&(objectClass=inetOrgPerson)(uid=*))"),
        ("uid=c*", "(&(objectClass=inetOrgPerson)(uid=c*))"),
        ("", "(&(objectClass=inetOrgPerson)(objectClass=*))"),
    ],
)
def test_search_filter_restricts_to_accounts(raw: str, expected: str) -> None:
    assert search_filter(raw, SETTINGS) == expected


@pytest.mark.parametrize(
    ("user", "dn"),
    [
        ("cdurand", "uid=cdurand,ou=people,dc=univ-demo,dc=fr"),
        ("a,b", "uid=a\\,b,ou=people,dc=univ-demo,dc=fr"),
        ("x+cn=y", "uid=x\\+cn\\=y,ou=people,dc=univ-demo,dc=fr"),
        (" lead", "uid=\\ lead,ou=people,dc=univ-demo,dc=fr"),
        ("#hash", "uid=\\#hash,ou=people,dc=univ-demo,dc=fr"),
    ],
)
def test_person_dn_escapes_the_value(user: str, dn: str) -> None:
    assert person_dn(user, SETTINGS) == dn


def test_person_dn_refuses_an_empty_name() -> None:
    with pytest.raises(ValueError):
        person_dn("", SETTINGS)


def test_printable_strips_newlines_and_bounds_length() -> None:
    assert printable("a\nb\rc") == "a?b?c"
    assert printable("x" * 100, limit=10) == "x" * 10 + "…"
