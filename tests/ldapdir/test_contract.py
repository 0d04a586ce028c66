"""One contract, two back-ends: the embedded (ldap3 MOCK) directory and LdapDirectory on a real slapd.

Every test here runs on both; a difference between them is a bug in one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from ldapdir import Account, AccountNotFound, AccountState, DirectoryError, PasswordCheck, PasswordRejected
from ldapdir.embedded import EmbeddedDirectory
from ldapdir.ldap import LdapDirectory
from ldapdir.passwords import password_fingerprint
from tests.support.slapd import DEMO_LDIF, Slapd, directory_settings

Directory = EmbeddedDirectory | LdapDirectory


@dataclass
class Backend:
    """A directory under test and a way to open a second instance on the same data."""

    directory: Directory
    reopen: Callable[[], Directory]


@pytest.fixture(params=["embedded", pytest.param("ldap", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[Directory] = []

    if request.param == "embedded":
        settings = directory_settings()

        def open_directory() -> Directory:
            return EmbeddedDirectory(settings, DEMO_LDIF, tmp_path / "state" / "directory.json")
    else:
        server: Slapd = request.getfixturevalue("slapd_factory")()
        settings = directory_settings(server)

        def open_directory() -> Directory:
            return LdapDirectory(settings)

    def reopen() -> Directory:
        opened.append(open_directory())
        return opened[-1]

    yield Backend(reopen(), reopen)
    for directory in opened:
        directory.close()


@pytest.fixture
def directory(backend: Backend) -> Directory:
    return backend.directory


def found(directory: Directory, identifier: str) -> Account:
    account = directory.find(identifier)
    assert account is not None, identifier
    return account


# -- find --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "user", "found_by"),
    [
        ("camille.durand@etu.univ-demo.fr", "cdurand", "mail"),
        ("Camille.Durand@ETU.Univ-Demo.FR", "cdurand", "mail"),
        ("  camille.durand@etu.univ-demo.fr\t", "cdurand", "mail"),
        ("cdurand", "cdurand", "uid"),
        ("CDURAND", "cdurand", "uid"),
        ("jean.dupont@univ-demo.fr", "jdupont", "mail"),
        ("x.ss@etu.univ-demo.fr", "xss", "mail"),
    ],
)
def test_find_by_mail_or_uid(directory: Directory, identifier: str, user: str, found_by: str) -> None:
    account = found(directory, identifier)
    assert (account.user, account.found_by) == (user, found_by)
    assert account.dn.lower() == f"uid={user},ou=people,dc=univ-demo,dc=fr"


@pytest.mark.parametrize(
    "identifier",
    [
        "nobody",
        "camille.durand",
        "*",
        "c*",
        "*)(uid=*",
        ")(uid=*",
        "cdurand)(|(uid=*",
        "*)(|(objectClass=*",
        "\\",
        "\\2a",
        "cdurand\x00",
        "",
        "   ",
        "x" * 10_000,
        "cdu\nrand",
        "supannMailPerso=camille.durand@perso.example",
        "camille.durand@perso.example",  # the personal mail is not a login attribute
        "sso",  # the service account is not under the people base
    ],
)
def test_find_refuses_what_names_nobody(directory: Directory, identifier: str) -> None:
    assert directory.find(identifier) is None


DEMO_STATES = [
    ("cdurand", AccountState.ACTIVE, date(2029, 12, 31), "camille.durand@perso.example"),
    ("jdupont", AccountState.ACTIVE, None, "jean.dupont@perso.example"),
    ("lpetit", AccountState.NEVER_ACTIVATED, None, "lea.petit@perso.example"),
    ("smoreau", AccountState.NEVER_ACTIVATED, None, "sophie.moreau@perso.example"),
    ("pbernard", AccountState.EXPIRED, date(2024, 12, 31), "paul.bernard@perso.example"),
    ("mleroy", AccountState.LOCKED, None, "marc.leroy@perso.example"),
    ("nlambert", AccountState.ACTIVE, None, None),
    ("xss", AccountState.ACTIVE, None, "x.ss@perso.example"),
]


@pytest.mark.parametrize(("user", "state", "expires", "personal_mail"), DEMO_STATES)
def test_demo_account_states(
    directory: Directory, user: str, state: AccountState, expires: date | None, personal_mail: str | None
) -> None:
    account = found(directory, user)
    assert (account.state, account.expires, account.personal_mail) == (state, expires, personal_mail)


def test_expiry_is_judged_by_the_given_day(directory: Directory) -> None:
    assert found(directory, "pbernard").state is AccountState.EXPIRED
    account = directory.find("pbernard", today=date(2024, 12, 31))
    assert account is not None and account.state is AccountState.ACTIVE


def test_released_attributes(directory: Directory) -> None:
    account = found(directory, "xss")
    assert account.first("displayName") == "Zoé <b>\"&'</b>"
    assert account.attributes["eduPersonAffiliation"] == ("student", "member")
    assert account.first("mail") == "x.ss@etu.univ-demo.fr"
    assert set(account.attributes) <= set(directory_settings().release_attributes)
    assert not {name.lower() for name in account.attributes} & {"userpassword", "pwdreset", "supannmailperso"}


def test_never_activated_account_has_the_empty_fingerprint(directory: Directory) -> None:
    assert found(directory, "lpetit").password_fingerprint == password_fingerprint([])
    assert found(directory, "cdurand").password_fingerprint != password_fingerprint([])


def test_ambiguous_identifier_names_nobody(directory: Directory, caplog: pytest.LogCaptureFixture) -> None:
    directory.update(found(directory, "nlambert"), {"mail": ["jdupont"]})
    with caplog.at_level(logging.WARNING):
        assert directory.find("jdupont") is None
    assert "several entries" in caplog.text
    assert found(directory, "nlambert").found_by == "uid"


# -- check_password ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "check"),
    [
        ("cdurand", "Soleil-Vert-2026", PasswordCheck.VALID),
        ("cdurand", "soleil-vert-2026", PasswordCheck.INVALID),
        ("cdurand", "Soleil-Vert-2026 ", PasswordCheck.INVALID),
        ("cdurand", "", PasswordCheck.INVALID),
        ("cdurand", "*", PasswordCheck.INVALID),
        ("jdupont", "Marche-Bleu-2026", PasswordCheck.VALID),
        ("jdupont", "Soleil-Vert-2026", PasswordCheck.INVALID),
        ("lpetit", "anything", PasswordCheck.INVALID),
        ("pbernard", "Ancien-Mot-2024", PasswordCheck.VALID),  # the directory does not know SCHAC expiry
        ("mleroy", "Verrou-Ferme-2026", PasswordCheck.LOCKED),
        ("xss", "Chevron-Test-2026", PasswordCheck.VALID),
    ],
)
def test_check_password(directory: Directory, user: str, password: str, check: PasswordCheck) -> None:
    assert directory.check_password(found(directory, user), password) is check


def test_empty_password_never_binds(directory: Directory) -> None:
    # An empty simple bind is an anonymous bind that succeeds (RFC 4513 §5.1.2).
    for user in ("cdurand", "lpetit", "mleroy"):
        assert directory.check_password(found(directory, user), "") is PasswordCheck.INVALID


def test_reset_password_must_be_changed(directory: Directory) -> None:
    account = found(directory, "jdupont")
    directory.update(account, {"pwdReset": ["TRUE"]})
    assert found(directory, "jdupont").state is AccountState.MUST_CHANGE
    assert directory.check_password(account, "Marche-Bleu-2026") is PasswordCheck.MUST_CHANGE
    assert directory.check_password(account, "wrong") is PasswordCheck.INVALID


# -- set_password ------------------------------------------------------------------------------


def test_set_password(directory: Directory) -> None:
    before = found(directory, "cdurand")
    directory.set_password(before, "Nouveau-Soleil-2026")
    after = found(directory, "cdurand")
    assert directory.check_password(after, "Nouveau-Soleil-2026") is PasswordCheck.VALID
    assert directory.check_password(after, "Soleil-Vert-2026") is PasswordCheck.INVALID
    assert after.password_fingerprint != before.password_fingerprint
    assert after.state is AccountState.ACTIVE


def test_first_password_activates_the_account(directory: Directory) -> None:
    before = found(directory, "lea.petit@etu.univ-demo.fr")
    directory.set_password(before, "Premier-Envol-2026")
    after = found(directory, "lpetit")
    assert after.state is AccountState.ACTIVE
    assert after.password_fingerprint != before.password_fingerprint
    assert directory.check_password(after, "Premier-Envol-2026") is PasswordCheck.VALID


def test_setting_the_same_password_again_changes_the_fingerprint(directory: Directory) -> None:
    account = found(directory, "lpetit")
    directory.set_password(account, "Premier-Envol-2026")
    first = found(directory, "lpetit").password_fingerprint
    directory.set_password(account, "Second-Envol-2026")
    assert found(directory, "lpetit").password_fingerprint != first


def test_password_change_clears_reset_and_lock(directory: Directory) -> None:
    # What OpenLDAP's ppolicy does; the embedded directory does the same.
    reset = found(directory, "jdupont")
    directory.update(reset, {"pwdReset": ["TRUE"]})
    directory.set_password(reset, "Marche-Neuve-2026")
    assert found(directory, "jdupont").state is AccountState.ACTIVE
    assert directory.check_password(reset, "Marche-Neuve-2026") is PasswordCheck.VALID

    locked = found(directory, "mleroy")
    directory.set_password(locked, "Verrou-Ouvert-2026")
    assert found(directory, "mleroy").state is AccountState.ACTIVE
    assert directory.check_password(locked, "Verrou-Ouvert-2026") is PasswordCheck.VALID


def test_empty_new_password_is_rejected(directory: Directory) -> None:
    with pytest.raises(PasswordRejected) as raised:
        directory.set_password(found(directory, "cdurand"), "")
    assert raised.value.reason == "too_short"


def test_set_password_on_a_vanished_account(directory: Directory) -> None:
    ghost = Account(
        dn="uid=ghost,ou=people,dc=univ-demo,dc=fr",  # type: ignore[arg-type]
        user="ghost",
        found_by="uid",
        state=AccountState.ACTIVE,
        expires=None,
        personal_mail=None,
        password_fingerprint="",
    )
    with pytest.raises(AccountNotFound):
        directory.set_password(ghost, "Fantome-Passe-2026")
    with pytest.raises(AccountNotFound):
        directory.update(ghost, {"displayName": ["Ghost"]})
    assert directory.check_password(ghost, "Fantome-Passe-2026") is PasswordCheck.INVALID


# -- update, search, ping -----------------------------------------------------------------------


def test_update_replaces_and_deletes(directory: Directory) -> None:
    account = found(directory, "cdurand")
    directory.update(account, {"displayName": ["Camille D."], "supannMailPerso": []})
    after = found(directory, "cdurand")
    assert after.first("displayName") == "Camille D."
    assert after.personal_mail is None
    directory.update(account, {})  # nothing to do


def test_update_never_writes_passwords(directory: Directory) -> None:
    with pytest.raises(ValueError):
        directory.update(found(directory, "cdurand"), {"userPassword": ["clear-text"]})
    assert directory.check_password(found(directory, "cdurand"), "Soleil-Vert-2026") is PasswordCheck.VALID


def test_search(directory: Directory) -> None:
    staff = {account.user for account in directory.search("(eduPersonAffiliation=staff)")}
    assert staff == {"jdupont", "smoreau", "mleroy"}
    everyone = list(directory.search("(uid=*)"))
    assert {account.user for account in everyone} == {user for user, *_ in DEMO_STATES}
    assert {account.found_by for account in everyone} == {""}
    states = {account.user: account.state for account in everyone}
    assert states == {user: state for user, state, *_ in DEMO_STATES}


def test_search_limit(directory: Directory) -> None:
    assert len(list(directory.search("(uid=*)", limit=3))) == 3
    assert len(list(directory.search("(uid=*)", limit=1))) == 1


@pytest.mark.parametrize("bad", ["(uid=*", "(&(uid=x)", "((uid=x))"])
def test_search_rejects_invalid_filters(directory: Directory, bad: str) -> None:
    with pytest.raises((ValueError, DirectoryError)):
        list(directory.search(bad))


def test_ping(directory: Directory) -> None:
    directory.ping()


# -- persistence ---------------------------------------------------------------------------------


def test_changes_survive_a_new_instance(backend: Backend) -> None:
    first = backend.directory
    first.set_password(found(first, "lpetit"), "Premier-Envol-2026")
    first.update(found(first, "cdurand"), {"displayName": ["Camille D."]})
    first.close()

    second = backend.reopen()
    account = found(second, "lpetit")
    assert account.state is AccountState.ACTIVE
    assert second.check_password(account, "Premier-Envol-2026") is PasswordCheck.VALID
    assert found(second, "cdurand").first("displayName") == "Camille D."


def test_passed_pwd_end_time(directory: Directory) -> None:
    # OpenLDAP 2.5 refuses the bind as locked from pwdEndTime on.
    account = found(directory, "xss")
    directory.update(account, {"pwdEndTime": ["20200101000000Z"]})
    after = found(directory, "xss")
    assert (after.state, after.expires) == (AccountState.EXPIRED, date(2020, 1, 1))
    assert directory.check_password(after, "Chevron-Test-2026") is PasswordCheck.LOCKED


@pytest.mark.parametrize(
    "hostile",
    ["\x00", "Soleil-Vert-2026\x00", "Soleil-Vert-2026\n", "\u200b", "\ue000secret", "\ufeff", " ", "\u00a0"],
)
def test_hostile_passwords_are_just_wrong(directory: Directory, hostile: str) -> None:
    account = found(directory, "cdurand")
    assert directory.check_password(account, hostile) is PasswordCheck.INVALID
    assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID


@pytest.mark.parametrize("refused", ["Soleil\x00Vert-2026", "Soleil-Vert-2026\x07", "\ue000-Prive-2026"])
def test_unprintable_new_passwords_are_refused(directory: Directory, refused: str) -> None:
    with pytest.raises(PasswordRejected) as raised:
        directory.set_password(found(directory, "cdurand"), refused)
    assert raised.value.reason == "quality"


@pytest.mark.parametrize(
    ("written", "typed"),
    [
        ("Ze\u0301phyr-Clair-2026", "Z\u00e9phyr-Clair-2026"),  # decomposed é, then composed
        ("Soleil\u00a0Vert\u00a02026", "Soleil Vert 2026"),  # no-break spaces (RFC 4013 maps them)
        ("Mot-De-Passe-Été-2026", "Mot-De-Passe-Été-2026"),
    ],
)
def test_passwords_are_prepared_alike(directory: Directory, written: str, typed: str) -> None:
    account = found(directory, "lpetit")
    directory.set_password(account, written)
    assert directory.check_password(account, written) is PasswordCheck.VALID
    assert directory.check_password(account, typed) is PasswordCheck.VALID
