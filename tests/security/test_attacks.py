"""Attacks on the running server over real HTTP (gunicorn + slapd). Each protection has a test that
fails if it is removed; the closing test reads every log line the server wrote during the run."""

from __future__ import annotations

import re
import socket
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import RECORDER_PORT

pytestmark = pytest.mark.integration
RECORDER = f"http://127.0.0.1:{RECORDER_PORT}"

STUDENT = ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")
STAFF = ("jean.dupont@univ-demo.fr", "Marche-Bleu-2026")
#: The account the injection attempts aim at (the directory locks it after 5 failures; that is fine).
TARGET = "nina.lambert@etu.univ-demo.fr"

OPEN_REDIRECTS = [
    "https://evil.example/",
    "https://other.univ-demo.fr.evil.example/",
    "https://other.univ-demo.fr@evil.example/",
    "https://evil.example@other.univ-demo.fr/",
    "//evil.example/",
    "///evil.example/",
    "https:/evil.example/",
    "https://other.univ-demo.fr\\@evil.example/",
    "https://other.univ-demo.fr%2F@evil.example/",
    "https://other.univ-demo.fr%40evil.example/",
    "https://evil.example%2Eother.univ-demo.fr/",
    "https://other.univ-demo.fr%0d%0aLocation:%20https://evil.example/",
    "https://other.univ-demo.fr/\r\nLocation: https://evil.example/",
    "javascript:alert(1)//https://other.univ-demo.fr/",
    "data:text/html,<script>alert(1)</script>",
    "https://other%2Euniv-demo%2Efr/",
    "HTTPS://EVIL.EXAMPLE/",
    "https://xn--other-univ-demo-fr.evil.example/",
    "https://other.univ-demo.fr:443@evil.example/",
    "\thttps://evil.example/",
    " https://evil.example/",
    "https://other.univ-demo.fr/..%2f..%2f@evil.example",
]


def location(response: requests.Response) -> str:
    return response.headers.get("Location", "")


def off_site(url: str, sso_url: str) -> bool:
    if not url or url.startswith("/"):
        return False
    host = urlsplit(url.strip()).hostname or ""
    return host not in ("127.0.0.1", "other.univ-demo.fr") and not url.startswith(sso_url)


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_no_open_redirect_through_service(sso, browser, target):
    for response in (
        browser.login_form(f"?service={quote(target, safe='')}"),
        browser.login_form(f"?service={quote(target, safe='')}&gateway=true"),
        browser.http.get(f"{sso.url}/logout", params={"service": target}, allow_redirects=False, timeout=10),
        browser.http.get(f"{sso.url}/logout", params={"url": target}, allow_redirects=False, timeout=10),
    ):
        assert response.status_code < 500
        assert not off_site(location(response), sso.url), (target, location(response))


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:8])
def test_no_open_redirect_after_sign_in(sso, browser, secrets, target):
    secrets.add(STUDENT[1])
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.login_form().text).group(1)
    response = browser.http.post(
        f"{sso.url}/login?service={quote(target, safe='')}",
        data={"username": STUDENT[0], "password": STUDENT[1], "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 403 and not location(response)


def ticket_for(browser, service: str) -> str:
    query = f"?service={quote(service, safe='')}"
    response = browser.login_form(query)  # signed in already: SSO answers with a ticket at once
    if response.status_code != 302:
        response = browser.sign_in(*STAFF, query=query)
    return parse_qs(urlsplit(location(response)).query)["ticket"][0]


def test_ticket_replay_and_cross_service(sso, browser, secrets):
    secrets.add(STAFF[1])
    ticket = ticket_for(browser, "https://other.univ-demo.fr/a")
    secrets.add(ticket)
    crossed = requests.get(
        f"{sso.url}/serviceValidate",
        params={"ticket": ticket, "service": "https://evil.example/"},
        timeout=10,
    )
    assert "INVALID_SERVICE" in crossed.text
    replay = requests.get(
        f"{sso.url}/serviceValidate",
        params={"ticket": ticket, "service": "https://other.univ-demo.fr/a"},
        timeout=10,
    )
    assert "INVALID_TICKET" in replay.text
    assert ticket not in replay.text and ticket not in crossed.text  # never echoed in full


def test_guessed_tickets_fail(sso):
    for guess in ("ST-1", "ST-" + "0" * 40, "ST-" + "f" * 40, "TGT-" + "a" * 40, "PGT-" + "1" * 40):
        body = requests.get(
            f"{sso.url}/p3/serviceValidate",
            params={"ticket": guess, "service": "https://other.univ-demo.fr/"},
            timeout=10,
        ).text
        assert "authenticationFailure" in body


def test_proxy_callbacks_are_refused_unless_allowed_public_https(sso, browser):
    """Production defaults: https only, no loopback/private address, only the service's own pattern."""
    cases = [
        ("https://other.univ-demo.fr/", "https://other.univ-demo.fr/pgt"),  # service may not proxy
        (f"{RECORDER}/app", f"{RECORDER}/pgt"),  # allowed pattern, but http and loopback
        (f"{RECORDER}/app", "https://127.0.0.1/pgt"),  # https, but loopback and not the pattern
        (f"{RECORDER}/app", "https://evil.example/pgt"),  # not the pattern
    ]
    for service, callback in cases:
        ticket = ticket_for(browser, service)
        body = requests.get(
            f"{sso.url}/p3/serviceValidate",
            params={"ticket": ticket, "service": service, "pgtUrl": callback},
            timeout=10,
        ).text
        assert "authenticationFailure" in body and "proxyGrantingTicket" not in body, (
            service,
            callback,
            body,
        )
        assert re.search(r'code="(INVALID_PROXY_CALLBACK|UNAUTHORIZED_SERVICE_PROXY)"', body), body


def test_csrf_without_token_is_refused(sso, browser):
    browser.login_form()
    response = browser.http.post(
        f"{sso.url}/login",
        data={"username": STUDENT[0], "password": STUDENT[1]},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400 and "TGC" not in response.cookies
    forged = browser.http.post(
        f"{sso.url}/login",
        data={"username": STUDENT[0], "password": STUDENT[1], "csrf_token": "forged"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400
    account = browser.http.post(f"{sso.url}/compte/reset", data={"username": STUDENT[0]}, timeout=10)
    assert account.status_code == 400


@pytest.mark.parametrize(
    "value", ["*", "*)(uid=*", "cdurand)(|(uid=*", "\\2a", "x\x00", "(objectClass=*)", "*)(userPassword=*"]
)
def test_ldap_injection_in_every_field(sso, browser, value):
    assert browser.sign_in(value, "anything").status_code in (400, 401)
    assert browser.sign_in(TARGET, value).status_code in (400, 401, 429)
    page = browser.http.get(f"{sso.url}/compte/reset", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = browser.http.post(
        f"{sso.url}/compte/reset", data={"username": value, "csrf_token": token}, timeout=10
    )
    assert response.status_code in (200, 400, 429)


def test_oversized_bodies_and_headers(sso):
    big = requests.post(f"{sso.url}/login", data={"username": "x" * 300_000, "password": "y"}, timeout=10)
    assert big.status_code == 413
    saml = requests.post(
        f"{sso.url}/samlValidate",
        params={"TARGET": "https://other.univ-demo.fr/"},
        data=b"<a>" * 100_000,
        timeout=10,
    )
    assert saml.status_code in (200, 413) and "Success" not in saml.text
    huge_header = requests.get(f"{sso.url}/login", headers={"X-Big": "a" * 20_000}, timeout=10)
    assert huge_header.status_code in (200, 400, 431)
    long_url = requests.get(
        f"{sso.url}/login", params={"service": "https://other.univ-demo.fr/" + "a" * 6000}, timeout=10
    )
    assert long_url.status_code < 500


def test_raw_garbage_request_line(sso):
    with socket.create_connection(("127.0.0.1", sso.port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03GARBAGE\r\n\r\n")
        answer = raw.recv(200)
    assert not answer.startswith(b"HTTP/1.1 5")


def test_xxe_and_billion_laughs_in_saml(sso):
    payloads = [
        b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><a>&x;</a>",
        b"<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
        b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'><!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>]><l>&d;</l>",
    ]
    for body in payloads:
        response = requests.post(
            f"{sso.url}/samlValidate", params={"TARGET": "https://other.univ-demo.fr/"}, data=body, timeout=10
        )
        assert (
            response.status_code < 500
            and "root:" not in response.text
            and "aaaaaaaaaaaaaaaaaaaa" not in response.text
        )


def test_headers_and_cookies_on_the_wire(sso, browser):
    page = browser.login_form()
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp and "script-src 'self'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    response = browser.sign_in(*STUDENT)
    cookie = next(value for value in response.headers.get("Set-Cookie", "").split(", ") if "TGC=" in value)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_fresh_session_each_sign_in(sso, browser):
    browser.sign_in(*STUDENT)
    first = browser.http.cookies.get("TGC")
    browser.sign_in(*STUDENT, query="?renew=true")
    second = browser.http.cookies.get("TGC")
    assert first and second and first != second
    # the old session is dead: its cookie does not sign anybody in any more
    stale = requests.get(
        f"{sso.url}/login",
        params={"service": "https://other.univ-demo.fr/"},
        cookies={"TGC": first},
        allow_redirects=False,
        timeout=10,
    )
    assert stale.status_code == 200 and "ticket=" not in location(stale)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(
        [
            "/login",
            "/logout",
            "/validate",
            "/serviceValidate",
            "/proxyValidate",
            "/p3/serviceValidate",
            "/p3/proxyValidate",
            "/proxy",
            "/compte/activation",
            "/compte/lien",
        ]
    ),
    name=st.sampled_from(
        [
            "service",
            "ticket",
            "renew",
            "gateway",
            "method",
            "pgtUrl",
            "format",
            "pgt",
            "targetService",
            "t",
            "lang",
        ]
    ),
    value=st.binary(max_size=200),
)
def test_random_bytes_in_every_parameter(sso, path, name, value):
    query = f"{name}={quote(value, safe='')}"
    response = requests.get(f"{sso.url}{path}?{query}", allow_redirects=False, timeout=10)
    assert response.status_code < 500
    assert not off_site(location(response), sso.url)


def test_no_secret_in_any_log_line(sso, secrets):
    """Runs last in this module: everything the server wrote so far."""
    log = sso.log.read_text(encoding="utf-8", errors="replace")
    assert "login.failure" in log  # the audit stream really is in this file
    leaks = secrets.scan(log)
    assert not leaks, leaks[:5]
    assert "Traceback" not in log
