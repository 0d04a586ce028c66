"""Failover between two slapd with the same data: a dead or hung server is skipped,
"all down" is DirectoryUnavailable (never a wrong password), and recovery needs no restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from ldapdir import DirectoryUnavailable, PasswordCheck
from ldapdir.ldap import LdapDirectory
from tests.support.slapd import Slapd, directory_settings

pytestmark = pytest.mark.integration

#: Seconds per connect and per operation in these tests.
TIMEOUT = 1.0
#: An operation during a failover may try: the dead connection, a new one on each
#: server (connect + bind), then the operation: bounded well below this.
BOUND = 4 * (TIMEOUT + TIMEOUT) + 1


@pytest.fixture
def pair(slapd_factory: Callable[..., Slapd]) -> tuple[Slapd, Slapd]:
    return slapd_factory(), slapd_factory()


@pytest.fixture
def directory(pair: tuple[Slapd, Slapd]) -> Iterator[LdapDirectory]:
    # server_retry_after is long on purpose: recovery must not wait for it.
    settings = directory_settings(
        *pair, connect_timeout=TIMEOUT, receive_timeout=TIMEOUT, server_retry_after=300
    )
    with LdapDirectory(settings) as opened:
        yield opened


def login(
    directory: LdapDirectory, identifier: str = "cdurand", password: str = "Soleil-Vert-2026"
) -> PasswordCheck:
    account = directory.find(identifier)
    assert account is not None
    return directory.check_password(account, password)


def timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    value = action()
    return value, time.monotonic() - start


def serving_port(directory: LdapDirectory) -> int:
    connection = directory.service.connection
    assert connection is not None
    return int(connection.server.port)


def test_first_server_is_preferred(pair: tuple[Slapd, Slapd], directory: LdapDirectory) -> None:
    assert login(directory) is PasswordCheck.VALID
    assert serving_port(directory) == pair[0].port


def test_killed_server_is_skipped(pair: tuple[Slapd, Slapd], directory: LdapDirectory) -> None:
    first, second = pair
    assert login(directory) is PasswordCheck.VALID
    first.kill()
    result, elapsed = timed(lambda: login(directory))
    assert result is PasswordCheck.VALID
    assert elapsed < BOUND
    assert serving_port(directory) == second.port
    assert login(directory, "jdupont", "wrong") is PasswordCheck.INVALID  # answers still mean what they say


def test_hung_server_is_skipped(pair: tuple[Slapd, Slapd], directory: LdapDirectory) -> None:
    # A frozen slapd accepts TCP connections and never answers: only
    # receive_timeout gets us out, then the server is avoided.
    first, second = pair
    assert login(directory) is PasswordCheck.VALID
    first.freeze()
    try:
        result, elapsed = timed(lambda: login(directory))
        assert result is PasswordCheck.VALID
        assert elapsed < BOUND
        assert serving_port(directory) == second.port
        _, again = timed(lambda: login(directory))
        assert again < TIMEOUT  # the hung server is not tried again meanwhile
    finally:
        first.thaw()


def test_all_down_is_unavailable_never_invalid(pair: tuple[Slapd, Slapd], directory: LdapDirectory) -> None:
    account = directory.find("cdurand")
    assert account is not None
    for server in pair:
        server.kill()
    for action in (
        lambda: directory.find("cdurand"),
        lambda: directory.check_password(account, "Soleil-Vert-2026"),
        lambda: directory.check_password(account, "wrong"),
        lambda: directory.set_password(account, "Nouveau-Soleil-2026"),
        lambda: directory.update(account, {"displayName": ["x"]}),
        lambda: list(directory.search("(uid=*)")),
        directory.ping,
    ):
        _, elapsed = timed(lambda action=action: pytest.raises(DirectoryUnavailable, action))
        assert elapsed < BOUND


def test_recovers_by_itself_when_a_server_returns(
    pair: tuple[Slapd, Slapd], directory: LdapDirectory
) -> None:
    first, second = pair
    assert login(directory) is PasswordCheck.VALID
    first.kill()
    second.kill()
    with pytest.raises(DirectoryUnavailable):
        directory.find("cdurand")
    second.start()
    assert login(directory) is PasswordCheck.VALID  # no waiting for server_retry_after
    assert serving_port(directory) == second.port
    first.start()
    second.kill()
    assert login(directory) is PasswordCheck.VALID
    assert serving_port(directory) == first.port


def test_a_restarted_server_serves_the_existing_directory(pair: tuple[Slapd, Slapd]) -> None:
    first, _ = pair
    with LdapDirectory(
        directory_settings(first, connect_timeout=TIMEOUT, receive_timeout=TIMEOUT)
    ) as directory:
        assert login(directory) is PasswordCheck.VALID
        first.stop()
        with pytest.raises(DirectoryUnavailable):
            directory.ping()
        first.start()
        directory.ping()
        assert login(directory) is PasswordCheck.VALID
