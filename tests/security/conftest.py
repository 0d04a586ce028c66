"""The running server under attack: gunicorn on a private slapd (ppolicy loaded), over real HTTP.

Every line the server writes (application log, audit log) is kept, so the suite can check that
no password, link token or full ticket id ever reaches a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Browser, sso_stack
from tests.support.servers import Gunicorn, free_port
from tests.support.slapd import Slapd, require_slapd

pytestmark = pytest.mark.integration


#: The recording service's port, fixed per run so tests can name its URLs.
RECORDER_PORT = free_port()


class Secrets:
    """What must never appear in a log: every password typed, every full ticket id and token seen."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, *values: str) -> None:
        self.values.update(value for value in values if len(value) >= 8)

    def scan(self, text: str) -> list[str]:
        found = [value for value in self.values if value in text]
        # any full ticket id, even one the suite did not see
        found += re.findall(r"\b(?:ST|PT|PGT|PGTIOU|TGT)-[0-9a-f]{40}\b", text)
        return found


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory) -> Iterator[tuple[Gunicorn, Slapd]]:
    """A fresh slapd (its lockout policy will be exercised) and the SSO in front of it."""
    require_slapd()
    folder = tmp_path_factory.mktemp("attacked")
    slapd = Slapd(folder / "slapd").setup().start()
    changes = {
        # production defaults: https-only, public-only proxy callbacks
        "cas": {"allow_http_proxy_callback": False, "allow_private_proxy_callback": False},
        # Every request of the suite comes from 127.0.0.1: per-address throttling is tested on its own.
        "security": {"login_per_address": "10000 per minute", "link_per_address": "10000 per minute"},
    }
    try:
        with sso_stack(folder, slapd, changes, recorder_port=RECORDER_PORT) as stack:
            yield stack.sso, slapd
    finally:
        slapd.cleanup()


@pytest.fixture
def sso(attacked) -> Gunicorn:
    return attacked[0]


@pytest.fixture
def browser(sso) -> Iterator[Browser]:
    client = Browser(sso.url)
    yield client
    client.close()
