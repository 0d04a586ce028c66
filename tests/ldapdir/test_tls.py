"""TLS to the directory: ldaps:// and StartTLS, certificates always verified."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ldapdir import DirectoryUnavailable, PasswordCheck
from ldapdir.ldap import LdapDirectory
from tests.support.slapd import Slapd, directory_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def server(slapd_factory: Callable[..., Slapd]) -> Slapd:
    return slapd_factory(tls=True)


def login(directory: LdapDirectory) -> PasswordCheck:
    account = directory.find("cdurand")
    assert account is not None
    return directory.check_password(account, "Soleil-Vert-2026")


def test_ldaps_with_the_configured_ca(server: Slapd) -> None:
    settings = directory_settings(server, urls=(server.ldaps_url,), tls_ca_file=str(server.ca_file))
    with LdapDirectory(settings) as directory:
        assert login(directory) is PasswordCheck.VALID


def test_start_tls_with_the_configured_ca(server: Slapd) -> None:
    settings = directory_settings(server, start_tls=True, tls_ca_file=str(server.ca_file))
    with LdapDirectory(settings) as directory:
        assert login(directory) is PasswordCheck.VALID
        connection = directory.service.connection
        assert connection is not None and connection.tls_started


@pytest.mark.parametrize("start_tls", [False, True])
def test_an_unknown_certificate_is_refused(server: Slapd, start_tls: bool) -> None:
    url = server.url if start_tls else server.ldaps_url
    # No tls_ca_file: the system's CAs, which never signed this test CA.
    with LdapDirectory(directory_settings(server, urls=(url,), start_tls=start_tls)) as directory:
        with pytest.raises(DirectoryUnavailable):
            directory.find("cdurand")
