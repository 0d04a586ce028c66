"""Validation endpoints through the Flask client, driven by python-cas's own parsers (CAS 3.0 §2.4–2.9, §4)."""

from __future__ import annotations

import json
import threading

import pytest
from cas import CASClientV1, CASClientV2, CASClientV3, CASClientWithSAMLV1

from tests.support.casclient import FlaskSession
from tests.web.conftest import sign_in
from tests.web.test_login import PORTAL, STUDENT, ticket_of

SCOLARITE = "https://scolarite.univ-demo.fr/"


@pytest.fixture
def ticket(client) -> str:
    return ticket_of(sign_in(client, *STUDENT, query=f"?service={PORTAL}"))


def cas_client(client, cls, service=PORTAL, **kwargs):
    return cls(service_url=service, server_url="http://localhost/", session=FlaskSession(client), **kwargs)


@pytest.mark.parametrize("cls", [CASClientV1, CASClientV2, CASClientV3, CASClientWithSAMLV1])
def test_python_cas_clients_validate_once(client, ticket, cls):
    cas = cas_client(client, cls)
    user, attributes, _ = cas.verify_ticket(ticket)
    assert user == "cdurand"
    if cls in (CASClientV3, CASClientWithSAMLV1):
        assert attributes["displayName"] == "Camille Durand"
        assert attributes["mail"] == "camille.durand@etu.univ-demo.fr"
    assert cas.verify_ticket(ticket)[0] is None


def test_attributes_are_released_per_service(client):
    ticket = ticket_of(sign_in(client, *STUDENT, query=f"?service={SCOLARITE}"))
    user, attributes, _ = cas_client(client, CASClientV3, service=SCOLARITE).verify_ticket(ticket)
    assert user == "cdurand"
    assert set(attributes) - {
        "authenticationDate",
        "isFromNewLogin",
        "longTermAuthenticationRequestTokenUsed",
    } == {"uid", "mail", "displayName"}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "INVALID_REQUEST"),
        ("?ticket=ST-abc", "INVALID_REQUEST"),
        (f"?service={PORTAL}", "INVALID_REQUEST"),
        (f"?ticket=XX-abc&service={PORTAL}", "INVALID_TICKET_SPEC"),
        (f"?ticket=ST-abc_def&service={PORTAL}", "INVALID_TICKET_SPEC"),
        (f"?ticket=ST-{'a' * 40}&service={PORTAL}", "INVALID_TICKET"),
    ],
)
def test_failure_codes(client, query, code):
    body = client.get("/p3/serviceValidate" + query).get_data(as_text=True)
    assert f'code="{code}"' in body
    as_json = json.loads(
        client.get("/p3/serviceValidate" + query + ("&" if "?" in query else "?") + "format=JSON").get_data()
    )
    assert as_json["serviceResponse"]["authenticationFailure"]["code"] == code


def test_ticket_bound_to_its_service(client, ticket):
    body = client.get(f"/serviceValidate?ticket={ticket}&service={SCOLARITE}").get_data(as_text=True)
    assert 'code="INVALID_SERVICE"' in body
    again = client.get(f"/serviceValidate?ticket={ticket}&service={PORTAL}").get_data(as_text=True)
    assert 'code="INVALID_TICKET"' in again  # consumed by the failed attempt (CAS 3.0 §2.5.3)


def test_ticket_expires(client, ticket, clock):
    clock.advance(11)
    body = client.get(f"/serviceValidate?ticket={ticket}&service={PORTAL}").get_data(as_text=True)
    assert 'code="INVALID_TICKET"' in body


def test_cas1_failure_text(client):
    response = client.get(f"/validate?ticket=ST-{'0' * 40}&service={PORTAL}")
    assert response.get_data(as_text=True) == "no\n\n"
    assert response.mimetype == "text/plain"


def test_concurrent_validation_succeeds_once(app, ticket):
    results: list[str] = []
    barrier = threading.Barrier(8)

    def validate() -> None:
        local = app.test_client()
        barrier.wait()
        results.append(local.get(f"/serviceValidate?ticket={ticket}&service={PORTAL}").get_data(as_text=True))

    threads = [threading.Thread(target=validate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum("authenticationSuccess" in body for body in results) == 1


def test_hostile_display_name_is_escaped(client):
    ticket = ticket_of(
        sign_in(client, "x.ss@etu.univ-demo.fr", "Chevron-Test-2026", query=f"?service={PORTAL}")
    )
    body = client.get(f"/p3/serviceValidate?ticket={ticket}&service={PORTAL}").get_data(as_text=True)
    assert "<b>" not in body and "&lt;b&gt;" in body
    _, attributes, _ = CASClientV3.verify_response(body.encode())
    assert attributes["displayName"] == "Zoé <b>\"&'</b>"


def test_proxy_ticket_refused_at_service_validate_but_not_proxy_validate(client, rt):
    # a PT for the portal, made through the protocol core (the HTTP proxy callback is tested over real HTTP)
    from sso.cas import login as cas_login
    from sso.tickets.ids import new_id
    from sso.tickets.model import Kind, ProxyGrantingTicket

    now = rt.clock()
    tgt = cas_login.new_session("cdurand", {"uid": ("cdurand",)}, rt.settings.tickets.lifetimes, now)
    rt.tickets.add(tgt)
    pgt = ProxyGrantingTicket(
        new_id(Kind.PGT),
        "cdurand",
        {"uid": ("cdurand",)},
        tgt.id,
        "http://127.0.0.1:8001/pgt",
        (),
        now + 3600,
    )
    rt.tickets.add(pgt)
    proxy = client.get(f"/proxy?pgt={pgt.id}&targetService={PORTAL}").get_data(as_text=True)
    assert "<cas:proxyTicket>PT-" in proxy
    pt = proxy.split("<cas:proxyTicket>")[1].split("<")[0]
    refused = client.get(f"/serviceValidate?ticket={pt}&service={PORTAL}").get_data(as_text=True)
    assert "authenticationFailure" in refused
    proxy2 = client.get(f"/proxy?pgt={pgt.id}&targetService={PORTAL}").get_data(as_text=True)
    pt2 = proxy2.split("<cas:proxyTicket>")[1].split("<")[0]
    accepted = client.get(f"/proxyValidate?ticket={pt2}&service={PORTAL}").get_data(as_text=True)
    assert "<cas:user>cdurand</cas:user>" in accepted and "http://127.0.0.1:8001/pgt" in accepted


def test_proxy_failures(client):
    body = client.get(f"/proxy?pgt=PGT-{'0' * 40}&targetService={PORTAL}").get_data(as_text=True)
    assert "proxyFailure" in body and "INVALID_TICKET" in body
    body = client.get("/proxy").get_data(as_text=True)
    assert "INVALID_REQUEST" in body
