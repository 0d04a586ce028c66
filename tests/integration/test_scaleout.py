"""Two SSO nodes (real gunicorn processes on their own ports) sharing one Redis and one slapd
behave as one server: sign in on A, validate on B, log out on B and the session is gone on A;
a ticket validated on both at once succeeds once; throttling counts across nodes; /metrics adds
up the worker processes of a node."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote_plus, urlsplit

import pytest
import requests

from tests.integration.conftest import Browser, ldap_config
from tests.support.appconfig import merge, write_config
from tests.support.redis import RedisServer
from tests.support.servers import Gunicorn, free_port

pytestmark = pytest.mark.integration

STUDENT = ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")
STAFF = ("jean.dupont@univ-demo.fr", "Marche-Bleu-2026")
#: Failed sign-ins allowed per identifier in this module (limits syntax: "5 per 5 minutes;20 per day").
IDENTIFIER_LIMIT = 3


class Nodes:
    """The two nodes and what they share."""

    def __init__(self, a: Gunicorn, b: Gunicorn, redis_server: RedisServer) -> None:
        self.a, self.b, self.redis = a, b, redis_server


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def node_config(slapd, recorder, smtp, redis_server: RedisServer, port: int) -> dict:  # type: ignore[no-untyped-def]
    return merge(
        ldap_config(slapd, recorder, smtp, port),
        {
            "tickets": {"url": f"{redis_server.url}/0?socket_timeout=2"},
            "security": {
                "rate_limit_storage": f"{redis_server.url}/1",
                "login_per_identifier": f"{IDENTIFIER_LIMIT} per 5 minutes",
            },
        },
    )


def start_node(folder: Path, config: dict, port: int, workers: int, metrics_dir: Path | None) -> Gunicorn:
    node = Gunicorn(write_config(folder, config), port, workers=workers)
    with pytest.MonkeyPatch.context() as patch:  # the environment the gunicorn process inherits
        if metrics_dir is not None:
            metrics_dir.mkdir()
            patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        else:
            patch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        return node.start()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, slapd, recorder, smtp, redis_server) -> Iterator[Nodes]:  # type: ignore[no-untyped-def]
    started: list[Gunicorn] = []
    try:
        for name, workers in (("a", 2), ("b", 1)):
            folder = tmp_path_factory.mktemp(f"node-{name}")
            port = free_port()
            config = node_config(slapd, recorder, smtp, redis_server, port)
            # Node A runs two worker processes: its metrics are added up in a shared folder.
            metrics_dir = folder / "metrics" if workers > 1 else None
            started.append(start_node(folder, config, port, workers, metrics_dir))
        yield Nodes(started[0], started[1], redis_server)
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def browser(nodes: Nodes) -> Iterator[Browser]:
    client = Browser(nodes.a.url)
    yield client
    client.close()


def ticket_from(response: requests.Response, service: str) -> str:
    assert response.status_code == 302, response.text[:400]
    location = response.headers["Location"]
    assert location.startswith(service)
    return parse_qs(urlsplit(location).query)["ticket"][0]


def validate(node: Gunicorn, ticket: str, service: str) -> str:
    response = requests.get(
        f"{node.url}/p3/serviceValidate", params={"ticket": ticket, "service": service}, timeout=10
    )
    assert response.status_code == 200
    return response.text


def metric(node: Gunicorn, name: str, **labels: str) -> float:
    """A sample of a node's /metrics (0 when absent)."""
    text = requests.get(f"{node.url}/metrics", timeout=10).text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
            return float(match.group(3))
    return 0.0


def test_sign_in_on_a_validate_on_b_log_out_on_b_and_the_session_is_gone_on_a(nodes, browser, recorder):  # type: ignore[no-untyped-def]
    first_service, second_service = recorder.url + "/scaleout/one", recorder.url + "/scaleout/two"
    browser.base = nodes.a.url
    first = ticket_from(
        browser.sign_in(*STUDENT, query=f"?service={quote(first_service, safe='')}"), first_service
    )
    assert "<cas:user>cdurand</cas:user>" in validate(nodes.b, first, first_service)
    assert "INVALID_TICKET" in validate(nodes.a, first, first_service), "single use, whichever node"

    browser.base = nodes.b.url  # the load balancer sends the same browser to B: SSO, no password
    second = ticket_from(browser.login_form(f"?service={quote(second_service, safe='')}"), second_service)
    assert "<cas:user>cdurand</cas:user>" in validate(nodes.a, second, second_service)

    cookie = browser.http.cookies.get("TGC")
    assert cookie and cookie.startswith("TGT-")
    before = len(recorder.posts)
    assert browser.http.get(f"{nodes.b.url}/logout", timeout=10).status_code == 200

    # The old cookie, replayed on A: no session any more, the sign-in form is shown.
    again = requests.get(
        f"{nodes.a.url}/login",
        params={"service": first_service},
        cookies={"TGC": cookie},
        allow_redirects=False,
        timeout=10,
    )
    assert again.status_code == 200 and 'name="password"' in again.text
    # Single logout reached the service for both tickets, though B issued only one of them.
    recorder.wait(lambda: len(recorder.posts) >= before + 2)
    notified = {unquote_plus(body.decode()) for _, body in recorder.posts[before:]}
    assert any(first in body for body in notified) and any(second in body for body in notified)


def test_one_ticket_validated_at_once_on_both_nodes_succeeds_once(nodes, browser, recorder):  # type: ignore[no-untyped-def]
    service = recorder.url + "/scaleout/race"
    ticket = ticket_from(browser.sign_in(*STUDENT, query=f"?service={quote(service, safe='')}"), service)
    barrier = threading.Barrier(20)
    answers: list[str] = []
    lock = threading.Lock()

    def attempt(node: Gunicorn) -> None:
        barrier.wait()
        body = validate(node, ticket, service)
        with lock:
            answers.append(body)

    threads = [threading.Thread(target=attempt, args=((nodes.a, nodes.b)[i % 2],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 20
    assert sum("authenticationSuccess" in body for body in answers) == 1
    assert sum('code="INVALID_TICKET"' in body for body in answers) == 19


def test_failed_sign_ins_are_throttled_across_nodes(nodes):  # type: ignore[no-untyped-def]
    identifier = STAFF[0]
    statuses = []
    for attempt in range(IDENTIFIER_LIMIT):
        node = (nodes.a, nodes.b)[attempt % 2]
        client = Browser(node.url)
        try:
            statuses.append(client.sign_in(identifier, "not-the-password").status_code)
        finally:
            client.close()
    assert statuses == [401] * IDENTIFIER_LIMIT
    for node in (nodes.a, nodes.b):  # the limit is reached on both, whichever node counted
        client = Browser(node.url)
        try:
            response = client.sign_in(*STAFF)
            assert response.status_code == 429, node.url
            assert "Trop de tentatives" in response.text
        finally:
            client.close()


def test_metrics_add_up_the_worker_processes_of_a_node(nodes, recorder):  # type: ignore[no-untyped-def]
    service = recorder.url + "/scaleout/metrics"
    before = metric(nodes.a, "sso_logins_total", outcome="success")
    issued = metric(nodes.a, "sso_tickets_issued_total", kind="ST")
    for _ in range(6):  # separate connections: the kernel spreads them over A's two workers
        client = Browser(nodes.a.url)
        try:
            ticket_from(client.sign_in(*STUDENT, query=f"?service={quote(service, safe='')}"), service)
        finally:
            client.close()
    # Whichever worker answers the scrape, it reports the node's total.
    seen = {metric(nodes.a, "sso_logins_total", outcome="success") for _ in range(6)}
    assert seen == {before + 6}
    assert metric(nodes.a, "sso_tickets_issued_total", kind="ST") == issued + 6
    assert (
        metric(nodes.a, "sso_request_duration_seconds_count", endpoint="cas.login_post", method="POST") >= 6
    )


def test_both_nodes_are_ready(nodes):  # type: ignore[no-untyped-def]
    for node in (nodes.a, nodes.b):
        body = requests.get(f"{node.url}/health/ready", timeout=10).json()
        assert body["checks"] == {"directory": "ok", "tickets": "ok"}
