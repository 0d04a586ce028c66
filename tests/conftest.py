"""Shared fixtures. Real-server fixtures skip without the binary (fail under SSO_REQUIRE_SERVERS=1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.slapd import Slapd, require_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One private slapd for the session, seeded with the demo directory.

    Shared: tests must not change its data (use ``slapd_factory`` for that).
    """
    require_slapd()
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.setup().start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def slapd_factory(tmp_path: Path) -> Iterator[Callable[..., Slapd]]:
    """Make fresh, started slapd instances for one test (to change data, kill, restart).

    ``slapd_factory(extra_ldif=(...), policy={"pwdMaxFailure": "3"})`` takes
    :class:`Slapd`'s arguments. All are stopped and removed after the test.
    """
    require_slapd()
    created: list[Slapd] = []

    def make(**kwargs: Any) -> Slapd:
        server = Slapd(tmp_path / f"slapd-{len(created)}", **kwargs)
        created.append(server)
        return server.setup().start()

    yield make
    for server in created:
        server.cleanup()
