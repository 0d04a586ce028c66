"""The whole CAS protocol over real HTTP (gunicorn) on a real slapd, driven by python-cas's clients."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from cas import CASClientV1, CASClientV2, CASClientV3, CASClientWithSAMLV1

from tests.integration.conftest import Browser, ldap_config, start_sso
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

STUDENT = ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")


def service_url(recorder, path: str = "/app") -> str:
    return recorder.url + path


def ticket_for(browser: Browser, service: str, *credentials: str) -> str:
    query = f"?service={quote(service, safe='')}"
    response = browser.sign_in(*credentials, query=query) if credentials else browser.login_form(query)
    assert response.status_code == 302, response.text[:400]
    location = response.headers["Location"]
    assert location.startswith(service)
    return parse_qs(urlsplit(location).query)["ticket"][0]


@pytest.mark.parametrize("client_class", [CASClientV1, CASClientV2, CASClientV3, CASClientWithSAMLV1])
def test_each_protocol_version_validates_a_ticket(sso, browser, recorder, client_class):
    service = service_url(recorder)
    ticket = ticket_for(browser, service, *STUDENT)
    client = client_class(service_url=service, server_url=sso.url + "/")
    user, attributes, _ = client.verify_ticket(ticket)
    assert user == "cdurand"
    if client_class in (CASClientV3, CASClientWithSAMLV1):
        assert attributes["mail"] == "camille.durand@etu.univ-demo.fr"
        assert attributes["displayName"] == "Camille Durand"
    # single use, whatever the client
    assert client.verify_ticket(ticket)[0] is None


def test_json_format(sso, browser, recorder):
    service = service_url(recorder)
    ticket = ticket_for(browser, service, *STUDENT)
    body = requests.get(
        f"{sso.url}/p3/serviceValidate",
        params={"ticket": ticket, "service": service, "format": "JSON"},
        timeout=10,
    ).json()
    success = body["serviceResponse"]["authenticationSuccess"]
    assert success["user"] == "cdurand"
    assert "camille.durand@etu.univ-demo.fr" in str(success["attributes"]["mail"])


def test_ticket_for_another_service_is_refused(sso, browser, recorder):
    ticket = ticket_for(browser, service_url(recorder), *STUDENT)
    response = requests.get(
        f"{sso.url}/p3/serviceValidate",
        params={"ticket": ticket, "service": "https://other.univ-demo.fr/"},
        timeout=10,
    )
    assert "INVALID_SERVICE" in response.text


def test_sso_on_a_second_service_without_password(sso, browser, recorder):
    ticket_for(browser, service_url(recorder, "/one"), *STUDENT)
    second = ticket_for(browser, service_url(recorder, "/two"))
    client = CASClientV3(service_url=service_url(recorder, "/two"), server_url=sso.url + "/")
    assert client.verify_ticket(second)[0] == "cdurand"


def test_renew_refuses_a_ticket_from_the_session(sso, browser, recorder):
    ticket_for(browser, service_url(recorder, "/one"), *STUDENT)
    sso_ticket = ticket_for(browser, service_url(recorder, "/two"))
    response = requests.get(
        f"{sso.url}/p3/serviceValidate",
        params={"ticket": sso_ticket, "service": service_url(recorder, "/two"), "renew": "true"},
        timeout=10,
    )
    assert "INVALID_TICKET" in response.text
    # with renew, the login page asks for the password again and the new ticket passes renew
    page = browser.login_form(f"?service={quote(service_url(recorder, '/two'), safe='')}&renew=true")
    assert page.status_code == 200 and 'name="password"' in page.text
    response = browser.sign_in(
        *STUDENT, query=f"?service={quote(service_url(recorder, '/two'), safe='')}&renew=true"
    )
    fresh = parse_qs(urlsplit(response.headers["Location"]).query)["ticket"][0]
    ok = requests.get(
        f"{sso.url}/p3/serviceValidate",
        params={"ticket": fresh, "service": service_url(recorder, "/two"), "renew": "true"},
        timeout=10,
    )
    assert "authenticationSuccess" in ok.text


def test_gateway(sso, browser, recorder):
    service = service_url(recorder)
    response = browser.login_form(f"?service={quote(service, safe='')}&gateway=true")
    assert response.status_code == 302 and response.headers["Location"] == service
    ticket_for(browser, service, *STUDENT)
    again = browser.login_form(f"?service={quote(service, safe='')}&gateway=true")
    assert "ticket=ST-" in again.headers["Location"]


def test_proxy_granting_and_proxy_tickets(sso, browser, recorder):
    service = service_url(recorder)
    ticket = ticket_for(browser, service, *STUDENT)
    client = CASClientV3(service_url=service, server_url=sso.url + "/", proxy_callback=recorder.url + "/pgt")
    user, _, pgtiou = client.verify_ticket(ticket)
    assert user == "cdurand" and pgtiou.startswith("PGTIOU-")
    recorder.wait(lambda: any("pgtId=" in path for path in recorder.gets))
    callback = next(path for path in recorder.gets if "pgtId=" in path)
    pgt = parse_qs(urlsplit(callback).query)["pgtId"][0]
    assert parse_qs(urlsplit(callback).query)["pgtIou"][0] == pgtiou
    target = service_url(recorder, "/backend")
    proxy = CASClientV3(service_url=target, server_url=sso.url + "/")
    pt = proxy.get_proxy_ticket(pgt)
    assert pt.startswith("PT-")
    response = requests.get(
        f"{sso.url}/p3/proxyValidate", params={"ticket": pt, "service": target}, timeout=10
    )
    assert "<cas:user>cdurand</cas:user>" in response.text and "<cas:proxy>" in response.text
    refused = requests.get(
        f"{sso.url}/p3/serviceValidate", params={"ticket": pt, "service": target}, timeout=10
    )
    assert "authenticationFailure" in refused.text


def test_logout_sends_single_logout_to_the_service(sso, browser, recorder):
    service = service_url(recorder)
    ticket = ticket_for(browser, service, *STUDENT)
    assert CASClientV3(service_url=service, server_url=sso.url + "/").verify_ticket(ticket)[0] == "cdurand"
    before = len(recorder.posts)
    response = browser.http.get(f"{sso.url}/logout", allow_redirects=False, timeout=10)
    assert response.status_code == 200
    recorder.wait(lambda: len(recorder.posts) > before)
    path, body = recorder.posts[-1]
    assert path == "/slo"
    logout_request = parse_qs(body.decode())["logoutRequest"][0]
    assert CASClientV3.verify_logout_request(logout_request, ticket)
    assert browser.login_form(f"?service={quote(service, safe='')}").status_code == 200  # signed out


def test_served_under_a_path_prefix(tmp_path, slapd, recorder, smtp):
    port = free_port()
    server = start_sso(tmp_path, ldap_config(slapd, recorder, smtp, port, prefix="/cas"), port)
    try:
        browser = Browser(server.url + "/cas")
        service = service_url(recorder)
        ticket = ticket_for(browser, service, *STUDENT)
        cookie = next(c for c in browser.http.cookies if c.name == "TGC")
        assert cookie.path == "/cas/"
        client = CASClientV2(service_url=service, server_url=server.url + "/cas/")
        assert client.verify_ticket(ticket)[0] == "cdurand"
        browser.close()
    finally:
        server.stop()
