"""Single logout (CAS 3.0 §2.3.3, Appendix C): the LogoutRequest, its targets, non-blocking dispatch."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import cas as python_cas
import pytest

from sso.cas.logout import LogoutDispatcher, logout_request, post_logout_request, slo_targets
from sso.tickets.model import SessionService
from tests.cas.conftest import MAIL_URL, MOODLE_URL, NOW, PORTAIL_URL
from tests.support.servers import serve

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def test_logout_request_document() -> None:
    root = ET.fromstring(logout_request("ST-abc123", NOW))
    assert root.tag == f"{{{SAMLP}}}LogoutRequest"
    assert root.get("Version") == "2.0" and root.get("IssueInstant") == "2025-06-15T15:06:40Z"
    assert root.get("ID", "").startswith("_") and len(root.get("ID", "")) > 20
    assert root.findtext(f"{{{SAML}}}NameID") == "@NOT_USED@"
    assert root.findtext(f"{{{SAMLP}}}SessionIndex") == "ST-abc123"
    assert logout_request("ST-abc123", NOW) != logout_request("ST-abc123", NOW), "fresh ID each time"


def test_python_cas_recognises_the_ticket() -> None:
    body = logout_request("ST-abc123", NOW)
    assert python_cas.CASClientV3.verify_logout_request(body, "ST-abc123")
    assert not python_cas.CASClientV3.verify_logout_request(body, "ST-other")


def test_slo_targets(services) -> None:
    session = [
        SessionService(MOODLE_URL, "moodle", "ST-1"),
        SessionService(PORTAIL_URL + "page", "portail", "ST-2"),
        SessionService(MAIL_URL, "mail", "ST-3"),  # single_logout: false
        SessionService("https://gone.example/", "removed-from-config", "ST-4"),
        SessionService(MOODLE_URL + "&x", "moodle", "PT-5"),
    ]
    assert slo_targets(session, services) == [
        (MOODLE_URL, "ST-1"),
        ("https://portail.univ-demo.fr/cas/slo", "ST-2"),  # its logout_url
        (MOODLE_URL + "&x", "PT-5"),
    ]


class Blocking:
    """A post() that blocks until released: proves dispatch does not wait for it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, form: dict[str, str]) -> None:
        with self.lock:
            self.calls.append((url, form))
        self.started.set()
        if not self.release.wait(timeout=30):
            raise AssertionError("never released")


@pytest.fixture
def blocking() -> Blocking:
    return Blocking()


def test_dispatch_returns_at_once_with_a_slow_target(blocking: Blocking) -> None:
    dispatcher = LogoutDispatcher(blocking, workers=1, timeout=5, clock=lambda: NOW)
    try:
        dispatcher.dispatch([("https://slow.example/slo", "ST-1"), ("https://other.example/slo", "ST-2")])
        # We are here while the first request is still being "sent".
        assert blocking.started.wait(timeout=10)
        assert not blocking.release.is_set()
        assert len(blocking.calls) == 1
        blocking.release.set()
        dispatcher.join()
        assert [url for url, _ in blocking.calls] == ["https://slow.example/slo", "https://other.example/slo"]
        form = blocking.calls[0][1]
        assert list(form) == ["logoutRequest"]
        assert python_cas.CASClientV3.verify_logout_request(form["logoutRequest"], "ST-1")
    finally:
        blocking.release.set()
        dispatcher.shutdown()


def test_full_queue_drops_and_logs(blocking: Blocking, caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = LogoutDispatcher(blocking, workers=1, timeout=5, queue_size=2)
    try:
        dispatcher.dispatch([("https://a/", "ST-first")])
        assert blocking.started.wait(timeout=10)  # the worker holds ST-first; the queue is empty
        targets = [("https://a/", f"ST-{n}abcdef") for n in range(5)]
        dispatcher.dispatch(targets)
        dropped = [r for r in caplog.records if "logout queue full" in r.getMessage()]
        assert len(dropped) == 3
        assert all("abcdef" not in r.getMessage() for r in dropped), "ticket ids are redacted"
        blocking.release.set()
        dispatcher.join()
        assert len(blocking.calls) == 3
    finally:
        blocking.release.set()
        dispatcher.shutdown()


def test_errors_do_not_stop_workers() -> None:
    calls: list[str] = []

    def flaky(url: str, form: dict[str, str]) -> None:
        calls.append(url)
        if "bad" in url:
            raise OSError("connection refused")

    dispatcher = LogoutDispatcher(flaky, workers=1, timeout=5)
    try:
        dispatcher.dispatch([("https://bad/", "ST-1"), ("https://good/", "ST-2")])
        dispatcher.join()
        assert calls == ["https://bad/", "https://good/"]
    finally:
        dispatcher.shutdown()


def test_shutdown_drops_pending_and_is_idempotent(blocking: Blocking) -> None:
    dispatcher = LogoutDispatcher(blocking, workers=1, timeout=5)
    dispatcher.dispatch([("https://a/", "ST-1"), ("https://a/", "ST-2"), ("https://a/", "ST-3")])
    assert blocking.started.wait(timeout=10)
    dispatcher.shutdown(wait=False)  # ST-2 and ST-3 are still queued: dropped
    blocking.release.set()
    for thread in dispatcher._threads:
        thread.join()
    dispatcher.shutdown()
    dispatcher.dispatch([("https://a/", "ST-4")])  # after shutdown: dropped, no error
    sent = [
        ET.fromstring(form["logoutRequest"]).findtext(f"{{{SAMLP}}}SessionIndex")
        for _, form in blocking.calls
    ]
    assert sent == ["ST-1"]


def test_nothing_to_send_starts_nothing() -> None:
    dispatcher = LogoutDispatcher(lambda url, form: None, workers=2, timeout=1)
    dispatcher.dispatch([])
    assert dispatcher._threads == []
    dispatcher.shutdown()


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError):
        LogoutDispatcher(None, workers=0, timeout=1)


class _Slo(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append((self.path, parse_qs(self.rfile.read(length).decode())))
        self.send_response(302 if self.path == "/redirect" else 200)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slo_server() -> Iterator[str]:
    _Slo.received = []
    with serve(_Slo) as url:
        yield url


def test_default_post_over_real_http(slo_server: str) -> None:
    dispatcher = LogoutDispatcher(None, workers=2, timeout=5)
    try:
        dispatcher.dispatch([(f"{slo_server}/slo", "ST-1"), (f"{slo_server}/redirect", "ST-2")])
        dispatcher.join()
    finally:
        dispatcher.shutdown()
    paths = sorted(path for path, _ in _Slo.received)
    assert paths == ["/redirect", "/slo"], "redirects are not followed"
    forms = {path: form for path, form in _Slo.received}
    assert python_cas.CASClientV3.verify_logout_request(forms["/slo"]["logoutRequest"][0], "ST-1")


def test_post_logout_request_timeout(slo_server: str) -> None:
    post_logout_request(5.0)(f"{slo_server}/slo", {"logoutRequest": "<x/>"})
    assert _Slo.received[-1][1] == {"logoutRequest": ["<x/>"]}
