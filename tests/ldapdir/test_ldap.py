"""LdapDirectory on a real slapd: connection reuse, password policy, password writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from ldapdir import AccountState, DirectoryUnavailable, PasswordCheck, PasswordRejected
from ldapdir.ldap import LdapDirectory
from tests.support.slapd import Slapd, directory_settings

pytestmark = pytest.mark.integration

TOTAL_CONNECTIONS = "cn=Total,cn=Connections,cn=Monitor"


@pytest.fixture
def server(slapd_factory: Callable[..., Slapd]) -> Slapd:
    return slapd_factory()


@pytest.fixture
def directory(server: Slapd) -> Iterator[LdapDirectory]:
    with LdapDirectory(directory_settings(server)) as opened:
        yield opened


def read_operational(server: Slapd, dn: str, *names: str) -> dict[str, list[str]]:
    connection = server.root_connection()
    try:
        connection.search(dn, "(objectClass=*)", search_scope="BASE", attributes=list(names))
        return {name: list(connection.response[0]["attributes"].get(name) or []) for name in names}
    finally:
        connection.unbind()


def root_modify(server: Slapd, dn: str, changes: dict[str, list[str]]) -> None:
    connection = server.root_connection()
    try:
        connection.modify(dn, {name: [(MODIFY_REPLACE, values)] for name, values in changes.items()})
    finally:
        connection.unbind()


# -- connections -----------------------------------------------------------------------------------


def test_one_service_connection_and_a_reused_bind_connection(server: Slapd, directory: LdapDirectory) -> None:
    before = server.monitor_counter(TOTAL_CONNECTIONS)
    account = directory.find("cdurand")
    assert account is not None
    service = directory.service.connection
    for _ in range(25):
        assert directory.find("camille.durand@etu.univ-demo.fr") is not None
        assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
        assert directory.check_password(account, "wrong-password") is PasswordCheck.INVALID
    directory.ping()
    assert directory.service.connection is service
    assert (directory.service.opened, directory.binds.opened) == (1, 1)
    # The server agrees: one service connection, one bind connection, and this count's own.
    assert server.monitor_counter(TOTAL_CONNECTIONS) - before == 3


def test_service_identity_never_changes(directory: LdapDirectory) -> None:
    account = directory.find("jdupont")
    assert account is not None
    directory.check_password(account, "Marche-Bleu-2026")
    connection = directory.service.connection
    assert connection is not None
    assert connection.extend.standard.who_am_i() == f"dn:{Slapd.service_dn}"


def test_a_refused_service_bind_is_unavailable_not_unknown(server: Slapd) -> None:
    settings = directory_settings(server, bind_password="wrong-secret")
    with LdapDirectory(settings) as directory:
        with pytest.raises(DirectoryUnavailable):
            directory.find("cdurand")


def test_no_urls_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        LdapDirectory(directory_settings())


# -- password policy on bind ---------------------------------------------------------------------


def test_lockout_after_max_failures(server: Slapd, directory: LdapDirectory) -> None:
    account = directory.find("nlambert")
    assert account is not None
    checks = [directory.check_password(account, f"wrong-{attempt}") for attempt in range(5)]
    assert checks == [PasswordCheck.INVALID] * 5
    assert directory.check_password(account, "Riviere-Calme-2026") is PasswordCheck.LOCKED
    relocated = directory.find("nlambert")
    assert relocated is not None and relocated.state is AccountState.LOCKED
    assert read_operational(server, account.dn, "pwdAccountLockedTime")["pwdAccountLockedTime"]


def test_without_the_control_a_locked_account_is_just_refused(server: Slapd) -> None:
    with LdapDirectory(directory_settings(server, use_ppolicy=False)) as directory:
        account = directory.find("mleroy")
        assert account is not None and account.state is AccountState.LOCKED  # still known from the entry
        assert directory.check_password(account, "Verrou-Ferme-2026") is PasswordCheck.INVALID


OLD_PASSWORD_LDIF = """dn: uid=vieux,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: vieux
cn: Victor Vieux
sn: Vieux
mail: victor.vieux@univ-demo.fr
userPassword: {password}
pwdChangedTime: 20200101000000Z
"""


@pytest.mark.parametrize(
    ("policy", "check"),
    [
        ({"pwdMaxAge": "86400", "pwdGraceAuthNLimit": "0"}, PasswordCheck.EXPIRED),  # refused: expired
        ({"pwdMaxAge": "86400", "pwdGraceAuthNLimit": "3"}, PasswordCheck.EXPIRED),  # grace bind
        ({"pwdMaxAge": "0"}, PasswordCheck.VALID),
    ],
)
def test_expired_password(
    slapd_factory: Callable[..., Slapd], tmp_path: Path, policy: dict[str, str], check: PasswordCheck
) -> None:
    extra = tmp_path / "old.ldif"
    from ldapdir.passwords import hash_password

    extra.write_text(OLD_PASSWORD_LDIF.format(password=hash_password("Vieux-Passe-2020", "{SSHA}")))
    server = slapd_factory(extra_ldif=(extra,), policy=policy)
    with LdapDirectory(directory_settings(server)) as directory:
        account = directory.find("vieux")
        assert account is not None
        assert directory.check_password(account, "Vieux-Passe-2020") is check
        assert directory.check_password(account, "wrong") is PasswordCheck.INVALID


def test_pwd_end_time_locks_the_bind(server: Slapd, directory: LdapDirectory) -> None:
    account = directory.find("xss")
    assert account is not None
    root_modify(server, account.dn, {"pwdEndTime": ["20200101000000Z"]})
    assert directory.check_password(account, "Chevron-Test-2026") is PasswordCheck.LOCKED
    after = directory.find("xss")
    assert after is not None and after.state is AccountState.EXPIRED


# -- password writes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "first", "second", "reason"),
    [
        ({}, None, "Court-1", "too_short"),
        ({}, "Premier-Passe-2026", "Premier-Passe-2026", "in_history"),
        ({}, "Premier-Passe-2026", "Second-Passe-2026", None),
        ({"pwdMinAge": "3600"}, "Premier-Passe-2026", "Second-Passe-2026", "too_young"),
        ({"pwdMaxLength": "12"}, None, "Beaucoup-Trop-Long-2026", "quality"),
    ],
)
def test_password_refusals_have_stable_reasons(
    slapd_factory: Callable[..., Slapd],
    policy: dict[str, str],
    first: str | None,
    second: str,
    reason: str | None,
) -> None:
    server = slapd_factory(policy=policy)
    with LdapDirectory(directory_settings(server)) as directory:
        account = directory.find("jdupont")
        assert account is not None
        if first:
            directory.set_password(account, first)
        if reason is None:
            directory.set_password(account, second)
            assert directory.check_password(account, second) is PasswordCheck.VALID
            return
        with pytest.raises(PasswordRejected) as raised:
            directory.set_password(account, second)
        assert raised.value.reason == reason
        assert raised.value.message  # the server's diagnostic, for logs


def test_a_service_account_without_rights_gets_insufficient_access(
    server: Slapd, directory: LdapDirectory
) -> None:
    target = directory.find("jdupont")
    assert target is not None
    # A "service account" that is just a person: it may not write others' passwords.
    settings = directory_settings(
        server, bind_dn="uid=cdurand,ou=people,dc=univ-demo,dc=fr", bind_password="Soleil-Vert-2026"
    )
    with LdapDirectory(settings) as weak:
        with pytest.raises(PasswordRejected) as raised:
            weak.set_password(target, "Vol-De-Compte-2026")
    assert raised.value.reason == "insufficient_access"
    assert directory.check_password(target, "Marche-Bleu-2026") is PasswordCheck.VALID


def test_password_modify_runs_as_the_service_and_clears_the_reset_flag(
    server: Slapd, directory: LdapDirectory
) -> None:
    # The test policy has pwdMustChange: TRUE, so slapd marks a password set by
    # someone else than its owner as reset; set_password clears the mark.
    account = directory.find("jdupont")
    assert account is not None
    directory.set_password(account, "Marche-Neuve-2026")
    state = read_operational(
        server, account.dn, "pwdReset", "pwdChangedTime", "modifiersName", "userPassword"
    )
    assert state["pwdReset"] == []
    assert state["pwdChangedTime"]
    assert state["userPassword"][0].startswith("{SSHA}")  # hashed by the server
    assert directory.check_password(account, "Marche-Neuve-2026") is PasswordCheck.VALID


@pytest.mark.parametrize("scheme", ["{SSHA}"])
def test_salted_hash_replace_path(server: Slapd, scheme: str) -> None:
    with LdapDirectory(
        directory_settings(server, use_password_modify=False, password_hash=scheme)
    ) as directory:
        account = directory.find("lpetit")
        assert account is not None and account.state is AccountState.NEVER_ACTIVATED
        directory.set_password(account, "Premier-Envol-2026")
        stored = read_operational(server, account.dn, "userPassword", "pwdReset")
        assert stored["userPassword"][0].startswith(scheme)
        assert stored["pwdReset"] == []
        assert directory.check_password(account, "Premier-Envol-2026") is PasswordCheck.VALID
        after = directory.find("lpetit")
        assert after is not None and after.state is AccountState.ACTIVE


def test_paged_search_across_pages(server: Slapd) -> None:
    with LdapDirectory(directory_settings(server, search_page_size=2)) as directory:
        users = [account.user for account in directory.search("(uid=*)")]
        assert sorted(users) == sorted(
            ["cdurand", "jdupont", "lpetit", "smoreau", "pbernard", "mleroy", "nlambert", "xss"]
        )
        assert len(list(directory.search("(uid=*)", limit=5))) == 5


def test_a_hostile_password_does_not_blame_the_server(server: Slapd, directory: LdapDirectory) -> None:
    account = directory.find("cdurand")
    assert account is not None
    assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
    for hostile in ("\x00", "a\nb", "\ue000"):
        assert directory.check_password(account, hostile) is PasswordCheck.INVALID
    assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
    assert directory.binds.opened == 1


class FakeClock:
    """Monotonic seconds moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_connections_are_replaced_not_reused(server: Slapd) -> None:
    clock = FakeClock()
    with LdapDirectory(directory_settings(server, max_idle=60), clock=clock) as directory:
        account = directory.find("cdurand")
        assert account is not None
        assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
        clock.now += 59
        assert directory.find("cdurand") is not None
        assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
        assert (directory.service.opened, directory.binds.opened) == (1, 1)
        clock.now += 61  # idle since the last use: replaced
        assert directory.find("cdurand") is not None
        assert directory.check_password(account, "Soleil-Vert-2026") is PasswordCheck.VALID
        assert (directory.service.opened, directory.binds.opened) == (2, 2)
        assert directory.service.connection is not None
        assert directory.service.connection.server.port == server.port  # the server was not blamed


def test_concurrent_searches_do_not_wait_for_each_other(directory: LdapDirectory) -> None:
    # Two operations that can only finish together: on a single shared connection they would
    # deadlock (the barrier times out); the service pool runs them side by side.
    import threading

    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def operation(connection: object) -> None:
        barrier.wait()

    def run() -> None:
        try:
            directory.service.run(operation)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not errors
    assert directory.service.opened == 2  # and sequential use keeps to one (test above)
