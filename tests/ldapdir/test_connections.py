"""Failover order, without servers (a fake clock)."""

from __future__ import annotations

import pytest

from ldapdir.connections import ServerList
from tests.support.slapd import directory_settings


class FakeClock:
    """Monotonic seconds moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recently_failed_server_is_avoided_until_retry_after() -> None:
    clock = FakeClock()
    servers = ServerList(directory_settings(urls=("ldap://a", "ldap://b"), server_retry_after=30), clock)
    first, second = servers.candidates()
    servers.mark_down(first)
    assert servers.candidates() == [second, first]  # still tried, last
    clock.now += 31
    assert servers.candidates() == [first, second]
    servers.mark_down(second)
    servers.mark_up(second)
    assert servers.candidates() == [first, second]


def test_no_server_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="urls"):
        ServerList(directory_settings())
