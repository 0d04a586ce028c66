"""/proxy (CAS 3.0 §2.7), callback URL rules and the HTTP delivery of PGTs (§2.5.4)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sso.cas.errors import CasError, Code
from sso.cas.params import ProxyRequest
from sso.cas.proxy import (
    check_callback,
    deliver_pgt_http,
    grant_proxy_ticket,
    is_public,
    make_deliver_pgt,
    resolve_host,
)
from sso.cas.settings import CasSettings
from sso.tickets.ids import new_id
from sso.tickets.model import Kind, ProxyGrantingTicket
from sso.tickets.registry import RegistryUnavailable
from tests.cas.conftest import MOODLE_URL, NOW, PGT_URL
from tests.support.servers import serve


@pytest.fixture
def pgt(tickets, tgt) -> ProxyGrantingTicket:
    ticket = ProxyGrantingTicket(
        id=new_id(Kind.PGT),
        user=tgt.user,
        attributes=tgt.attributes,
        tgt_id=tgt.id,
        pgt_url=PGT_URL,
        proxies=("https://earlier.univ-demo.fr/pgt",),
        expires=NOW + 3600,
    )
    tickets.add(ticket)
    return ticket


@pytest.fixture
def grant(tickets, services, lifetimes):
    def grant(pgt: str, target: str = MOODLE_URL, **kw):  # type: ignore[no-untyped-def]
        options = {"tickets": tickets, "services": services, "lifetimes": lifetimes, "now": NOW} | kw
        return grant_proxy_ticket(ProxyRequest(pgt=pgt, target_service=target), **options)

    return grant


def code_of(call, *args, **kw) -> Code:  # type: ignore[no-untyped-def]
    with pytest.raises(CasError) as info:
        call(*args, **kw)
    return info.value.code


def test_grant(grant, pgt, tickets, lifetimes, tgt) -> None:
    pt = grant(pgt.id)
    assert pt.kind is Kind.PT and pt.service == MOODLE_URL and pt.service_id == "moodle"
    assert pt.user == "ada" and pt.tgt_id == tgt.id and pt.primary is False
    assert pt.proxies == (PGT_URL, "https://earlier.univ-demo.fr/pgt")
    assert pt.expires == NOW + lifetimes.service_ticket
    assert (pt.auth_time, pt.session_expires) == (tgt.created, tgt.expires), "the session's, for validation"
    assert tickets.take(pt.id, NOW) == pt
    assert grant(pgt.id).id != pt.id, "a PGT is reusable"
    live = tickets.get_tgt(tgt.id, NOW)
    assert live is not None and live.last_used == NOW


@pytest.mark.parametrize(
    "value", ["", "PGT-", "PGT-a_b", "ST-abc", "TGT-abc", "PGTIOU-abc", "PGT-" + "a" * 300]
)
def test_malformed_pgt(grant, value) -> None:
    assert code_of(grant, value) is Code.INVALID_TICKET


def test_unknown_pgt(grant) -> None:
    assert code_of(grant, new_id(Kind.PGT)) is Code.INVALID_TICKET


def test_expired_pgt(grant, pgt) -> None:
    assert code_of(grant, pgt.id, now=pgt.expires) is Code.INVALID_TICKET


def test_pgt_of_an_ended_session(grant, pgt, tickets, tgt) -> None:
    tickets.end_session(tgt.id)
    assert code_of(grant, pgt.id) is Code.INVALID_TICKET


@pytest.mark.parametrize(
    "target",
    [
        "https://unknown.example/",
        "https://moodle.univ-demo.fr.attacker.example/",
        "javascript:alert(1)",
        "not a url",
    ],
)
def test_unregistered_target(grant, pgt, target, tickets) -> None:
    assert code_of(grant, pgt.id, target) is Code.UNAUTHORIZED_SERVICE
    assert tickets.stats(NOW)["PT"] == 0


class DownRegistry:
    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RegistryUnavailable("locked")

        return fail


def test_store_down(grant, pgt) -> None:
    assert code_of(grant, pgt.id, tickets=DownRegistry()) is Code.INTERNAL_ERROR


# Callback rules


@pytest.fixture
def portail(services):  # type: ignore[no-untyped-def]
    return services.get("portail")


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["172.16.0.1"],
        ["192.168.1.1"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["::1"],
        ["fe80::1"],
        ["fc00::1"],
        ["::ffff:127.0.0.1"],
        ["8.8.8.8", "10.0.0.1"],
        [],
    ],
)
def test_non_public_callback_refused(portail, addresses) -> None:
    settings = CasSettings()
    assert code_of(check_callback, PGT_URL, portail, settings, resolve=lambda host: addresses) is (
        Code.INVALID_PROXY_CALLBACK
    )
    check_callback(
        PGT_URL, portail, CasSettings(allow_private_proxy_callback=True), resolve=lambda host: addresses
    )


def test_public_callback_accepted(portail) -> None:
    seen: list[str] = []

    def resolve(host: str) -> list[str]:
        seen.append(host)
        return ["8.8.8.8", "2001:4860:4860::8888"]

    check_callback(PGT_URL, portail, CasSettings(), resolve=resolve)
    assert seen == ["portail.univ-demo.fr"]


def test_http_callback(services) -> None:
    from sso.services import ServiceRegistry, ServiceSettings

    registry = ServiceRegistry(
        [
            ServiceSettings(
                id="demo",
                name="Demo",
                url_pattern=r"http://127\.0\.0\.1:8001(/.*)?",
                proxy=True,
                proxy_callback_pattern=r"http://127\.0\.0\.1:8001/pgt",
            )
        ]
    )
    demo = registry.get("demo")
    url = "http://127.0.0.1:8001/pgt"
    assert code_of(check_callback, url, demo, CasSettings(allow_private_proxy_callback=True)) is (
        Code.INVALID_PROXY_CALLBACK
    )
    check_callback(url, demo, CasSettings(allow_http_proxy_callback=True, allow_private_proxy_callback=True))
    assert code_of(check_callback, url, demo, CasSettings(allow_http_proxy_callback=True)) is (
        Code.INVALID_PROXY_CALLBACK
    ), "loopback stays refused unless allowed"


def test_unauthorized_service(services) -> None:
    assert (
        code_of(check_callback, PGT_URL, services.get("moodle"), CasSettings())
        is Code.UNAUTHORIZED_SERVICE_PROXY
    )
    assert (
        code_of(check_callback, PGT_URL, services.get("mail"), CasSettings())
        is Code.UNAUTHORIZED_SERVICE_PROXY
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("x", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_resolve_ip_literals_without_dns() -> None:
    assert resolve_host("127.0.0.1") == ["127.0.0.1"]
    assert resolve_host("::1") == ["::1"]
    assert resolve_host("no-such-host.invalid") == []


# HTTP delivery


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status_code = status

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeSession:
    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status, self.error = status, error
        self.calls: list[tuple[str, dict]] = []

    def get(self, url: str, **kw) -> FakeResponse:  # type: ignore[no-untyped-def]
        self.calls.append((url, kw))
        if self.error is not None:
            raise self.error
        return FakeResponse(self.status)


def test_delivery_request_shape() -> None:
    session = FakeSession()
    assert deliver_pgt_http(PGT_URL, "PGT-1", "PGTIOU-1", 3.0, False, session=session)  # type: ignore[arg-type]
    [(url, kw)] = session.calls
    assert url == PGT_URL
    assert kw["params"] == {"pgtId": "PGT-1", "pgtIou": "PGTIOU-1"}
    assert kw["timeout"] == 3.0 and kw["allow_redirects"] is False and kw["verify"] is True


@pytest.mark.parametrize("status", [201, 204, 301, 302, 400, 404, 500])
def test_delivery_needs_200(status: int) -> None:
    assert not deliver_pgt_http(PGT_URL, "PGT-1", "PGTIOU-1", 3.0, False, session=FakeSession(status))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [requests.ConnectionError("refused"), requests.Timeout("slow"), requests.exceptions.SSLError("bad cert")],
)
def test_delivery_network_errors(error: Exception) -> None:
    assert not deliver_pgt_http(PGT_URL, "PGT-1", "PGTIOU-1", 3.0, False, session=FakeSession(error=error))  # type: ignore[arg-type]


def test_delivery_refuses_http_unless_allowed() -> None:
    session = FakeSession()
    assert not deliver_pgt_http("http://x/pgt", "PGT-1", "PGTIOU-1", 3.0, False, session=session)  # type: ignore[arg-type]
    assert not deliver_pgt_http("ftp://x/pgt", "PGT-1", "PGTIOU-1", 3.0, True, session=session)  # type: ignore[arg-type]
    assert session.calls == []


class _Callback(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/pgt?x=1")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def callback_server() -> Iterator[str]:
    _Callback.seen = []
    with serve(_Callback) as url:
        yield url


def test_delivery_over_real_http(callback_server: str) -> None:
    deliver = make_deliver_pgt(CasSettings(allow_http_proxy_callback=True, proxy_callback_timeout=5.0))
    assert deliver(f"{callback_server}/pgt?keep=me", "PGT-abc", "PGTIOU-def")
    query = parse_qs(urlsplit(_Callback.seen[-1]).query)
    assert query == {"keep": ["me"], "pgtId": ["PGT-abc"], "pgtIou": ["PGTIOU-def"]}, (
        "own parameters preserved"
    )
    assert not deliver(f"{callback_server}/redirect", "PGT-abc", "PGTIOU-def")
    assert _Callback.seen[-1].startswith("/redirect"), "redirect not followed"
