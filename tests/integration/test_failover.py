"""Failures of the parts a node depends on, on real servers: the first LDAP server killed mid-run,
every LDAP server down, Redis killed or hung. People get a 503 page, services INTERNAL_ERROR,
never a 500; /health says which part is down; everything recovers without restarting the SSO."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.integration.conftest import Browser, ldap_config
from tests.integration.test_scaleout import STUDENT, metric, ticket_from, validate
from tests.support.appconfig import merge, write_config
from tests.support.redis import RedisServer
from tests.support.servers import Gunicorn, free_port
from tests.support.slapd import Slapd

pytestmark = pytest.mark.integration

#: Seconds per LDAP connect and operation, and per Redis connect and read, in these tests.
TIMEOUT = 1
#: A sign-in during a failover may wait on: a dead connection, a new one on each server (connect
#: and bind), then the search and the bind themselves, each at most TIMEOUT; then Redis.
BOUND = 8 * TIMEOUT + 2
UNAVAILABLE = "Service momentanément indisponible"


@pytest.fixture
def pair(slapd_factory: Callable[..., Slapd]) -> tuple[Slapd, Slapd]:
    return slapd_factory(), slapd_factory()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def node(tmp_path, pair, redis_server, recorder, smtp) -> Iterator[Gunicorn]:  # type: ignore[no-untyped-def]
    port = free_port()
    timeouts = f"socket_timeout={TIMEOUT}&socket_connect_timeout={TIMEOUT}"
    config = merge(
        ldap_config(pair[0], recorder, smtp, port),
        {
            "directory": {
                "urls": [server.url for server in pair],
                "connect_timeout": TIMEOUT,
                "receive_timeout": TIMEOUT,
                # Long on purpose: coming back must not wait for it.
                "server_retry_after": 300,
            },
            "tickets": {"url": f"{redis_server.url}/0?{timeouts}"},
            "security": {"rate_limit_storage": f"{redis_server.url}/1"},
        },
    )
    (tmp_path / "sso").mkdir()
    server = Gunicorn(write_config(tmp_path / "sso", config), port, threads=8).start()
    yield server
    server.stop()


@pytest.fixture
def service(recorder) -> str:  # type: ignore[no-untyped-def]
    return recorder.url + "/failover"


def sign_in(
    node: Gunicorn, service: str, credentials: tuple[str, str] = STUDENT
) -> tuple[requests.Response, float]:
    """A sign-in by a new browser: the answer and how long it took."""
    browser = Browser(node.url)
    try:
        start = time.monotonic()
        response = browser.sign_in(*credentials, query=f"?service={quote(service, safe='')}")
        return response, time.monotonic() - start
    finally:
        browser.close()


def health(node: Gunicorn) -> tuple[int, dict]:
    response = requests.get(f"{node.url}/health/ready", timeout=30)
    return response.status_code, response.json()


# LDAP


def test_first_ldap_server_killed_mid_run_sign_ins_continue_on_the_second(node, pair, service):  # type: ignore[no-untyped-def]
    outcomes: list[tuple[int, float, bool]] = []  # status, seconds, after the kill
    killed = threading.Event()
    enough = threading.Event()

    def sign_ins() -> None:
        while not enough.is_set():
            response, elapsed = sign_in(node, service)
            after = killed.is_set()
            outcomes.append((response.status_code, elapsed, after))
            if after and sum(1 for *_, late in outcomes if late) >= 5:
                enough.set()

    worker = threading.Thread(target=sign_ins)
    worker.start()
    try:
        while len(outcomes) < 3 and worker.is_alive():
            time.sleep(0.05)
        pair[0].kill()
        killed.set()
        worker.join(120)
    finally:
        enough.set()
        worker.join(10)
    assert outcomes and all(status == 302 for status, _, _ in outcomes), outcomes
    assert max(elapsed for _, elapsed, _ in outcomes) < BOUND, outcomes
    response, _ = sign_in(node, service)
    assert "<cas:user>cdurand</cas:user>" in validate(node, ticket_from(response, service), service)
    status, body = health(node)
    assert status == 200 and body["checks"] == {"directory": "ok", "tickets": "ok"}


def test_all_ldap_servers_down_gives_a_503_page_then_recovers(node, pair, service):  # type: ignore[no-untyped-def]
    signed_in = Browser(node.url)
    try:
        ticket_from(signed_in.sign_in(*STUDENT, query=f"?service={quote(service, safe='')}"), service)
        for server in pair:
            server.kill()

        response, elapsed = sign_in(node, service)
        assert response.status_code == 503
        assert UNAVAILABLE in response.text and "Traceback" not in response.text
        assert response.headers.get("Retry-After")
        assert elapsed < BOUND
        status, body = health(node)
        assert status == 503 and body["checks"] == {"directory": "unavailable", "tickets": "ok"}
        assert requests.get(f"{node.url}/health/live", timeout=10).status_code == 200

        # People already signed in still reach their services: tickets and validation need no LDAP.
        ticket = ticket_from(signed_in.login_form(f"?service={quote(service, safe='')}"), service)
        assert "<cas:user>cdurand</cas:user>" in validate(node, ticket, service)

        pair[1].start()  # the second one comes back first: no restart of the SSO
        response, elapsed = sign_in(node, service)
        assert response.status_code == 302, response.text[:300]
        assert elapsed < BOUND
        assert health(node)[0] == 200
        pair[0].start()
        assert sign_in(node, service)[0].status_code == 302
    finally:
        signed_in.close()


# Redis


def test_redis_killed_gives_503_and_internal_error_then_recovers(node, redis_server, service):  # type: ignore[no-untyped-def]
    browser = Browser(node.url)
    try:
        ticket = ticket_from(browser.sign_in(*STUDENT, query=f"?service={quote(service, safe='')}"), service)
        errors = metric(node, "sso_ticket_store_errors_total", operation="add")
        redis_server.kill()

        page = browser.login_form(f"?service={quote(service, safe='')}")  # the session cannot be read
        assert page.status_code == 503 and UNAVAILABLE in page.text
        response, elapsed = sign_in(node, service)
        assert response.status_code == 503 and UNAVAILABLE in response.text
        assert elapsed < BOUND
        # Throttling storage down too: a wrong password is still a plain 401 (counted in memory).
        assert sign_in(node, service, (STUDENT[0], "wrong-password"))[0].status_code == 401
        assert 'code="INTERNAL_ERROR"' in validate(node, ticket, service)
        status, body = health(node)
        assert status == 503 and body["checks"] == {"directory": "ok", "tickets": "unavailable"}
        assert metric(node, "sso_ticket_store_errors_total", operation="add") == errors + 1
        logout = browser.http.get(f"{node.url}/logout", allow_redirects=False, timeout=10)
        assert logout.status_code == 503 and "TGC=;" in logout.headers.get("Set-Cookie", "")

        redis_server.start()  # empty: sessions and tickets are gone, consistently
        assert health(node)[0] == 200
        page = browser.login_form(f"?service={quote(service, safe='')}")
        assert page.status_code == 200 and 'name="password"' in page.text, "the old cookie names no session"
        assert 'code="INVALID_TICKET"' in validate(node, ticket, service)
        response, _ = sign_in(node, service)
        assert "<cas:user>cdurand</cas:user>" in validate(node, ticket_from(response, service), service)
    finally:
        browser.close()


def test_a_hung_redis_costs_a_timeout_not_a_hung_server(node, redis_server, service):  # type: ignore[no-untyped-def]
    assert sign_in(node, service)[0].status_code == 302
    redis_server.freeze()
    try:
        response, elapsed = sign_in(node, service)
        assert response.status_code == 503 and UNAVAILABLE in response.text
        assert elapsed < BOUND
        status, body = health(node)
        assert status == 503 and body["checks"]["tickets"] == "unavailable"
    finally:
        redis_server.thaw()
    assert sign_in(node, service)[0].status_code == 302
    assert health(node)[0] == 200
