"""Integration fixtures: the SSO under a real gunicorn on the real slapd, a recording service, an SMTP sink."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.appconfig import merge, write_config
from tests.support.servers import Gunicorn, RecordingService, SmtpSink, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def recorder() -> Iterator[RecordingService]:
    service = RecordingService().start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def ldap_config(slapd, recorder: RecordingService, smtp: SmtpSink, port: int, prefix: str = "") -> dict:
    """A production-like configuration on the test servers."""
    return {
        "site": {"base_url": f"http://127.0.0.1:{port}{prefix}"},
        "embedded_directory": None,
        "directory": {
            "urls": [slapd.url],
            "bind_dn": "cn=sso,ou=services,dc=univ-demo,dc=fr",
            "bind_password": "sso-service-secret",
        },
        "mail": {"outbox": None, "server": "127.0.0.1", "port": smtp.port},
        "services": [
            {
                "id": "recorder",
                "name": "Service de test",
                "url_pattern": re.escape(recorder.url) + r"(/.*)?",
                "attributes": ["uid", "mail", "displayName", "eduPersonAffiliation"],
                "logout_url": recorder.url + "/slo",
                "proxy": True,
                "proxy_callback_pattern": re.escape(recorder.url) + r"/pgt.*",
            },
            {
                "id": "other",
                "name": "Autre service",
                "url_pattern": r"https://other\.univ-demo\.fr(/.*)?",
                "attributes": ["uid"],
            },
        ],
        "cas": {"allow_http_proxy_callback": True, "allow_private_proxy_callback": True},
    }


def start_sso(tmp: Path, overrides: dict, port: int) -> Gunicorn:
    return Gunicorn(write_config(tmp, overrides), port).start()


@dataclass
class Stack:
    """The SSO under gunicorn on a slapd, with its own recording service and SMTP sink."""

    sso: Gunicorn
    recorder: RecordingService
    smtp: SmtpSink


@contextmanager
def sso_stack(
    folder: Path, slapd, changes: dict | None = None, recorder_port: int | None = None
) -> Iterator[Stack]:
    """Start a recording service, an SMTP sink and the SSO (configured by :func:`ldap_config`, then
    ``changes`` merged in); stop them all afterwards."""
    recorder, smtp = RecordingService(port=recorder_port).start(), SmtpSink().start()
    port = free_port()
    server = None
    try:
        overrides = merge(ldap_config(slapd, recorder, smtp, port), changes or {})
        server = start_sso(folder, overrides, port)
        yield Stack(server, recorder, smtp)
    finally:
        if server is not None:
            server.stop()
        recorder.stop()
        smtp.stop()


@pytest.fixture(scope="module")
def sso(tmp_path_factory, slapd, recorder, smtp) -> Iterator[Gunicorn]:
    port = free_port()
    server = start_sso(tmp_path_factory.mktemp("sso"), ldap_config(slapd, recorder, smtp, port), port)
    yield server
    server.stop()


class Browser:
    """A browser-like client: its own cookie jar, no automatic redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def login_form(self, query: str = "") -> requests.Response:
        return self.http.get(f"{self.base}/login{query}", allow_redirects=False, timeout=10)

    def sign_in(self, username: str, password: str, query: str = "") -> requests.Response:
        page = self.login_form(query)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        return self.http.post(
            f"{self.base}/login{query}",
            data={"username": username, "password": password, "csrf_token": token.group(1)},
            allow_redirects=False,
            timeout=10,
        )

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser(sso) -> Iterator[Browser]:
    client = Browser(sso.url)
    yield client
    client.close()
