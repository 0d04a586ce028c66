"""The demo ENT portal, a python-cas service, driven through Flask test clients (the same journey
over real HTTP is in tests/test_cli.py and tests/browser/)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from sso.cas.logout import logout_request
from sso.demo_portal import PortalNotConfigured, create_app, portal_service, session_index
from sso.web.runtime import runtime
from tests.support.appconfig import demo_settings
from tests.web import conftest as web
from tests.web.conftest import csrf_token

#: The endpoint-test fixtures of tests/web/conftest.py.
app, clock, config_overrides, rt = web.app, web.clock, web.config_overrides, web.rt

STUDENT = ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")
CALLBACK = "http://127.0.0.1:8001/cas/callback"


class _Page:
    """What python-cas reads of a ``requests`` response."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def close(self) -> None:
        pass


class ThroughTestClient:
    """A ``requests.Session`` stand-in for python-cas that calls the SSO's Flask test client."""

    def __init__(self, sso: FlaskClient) -> None:
        self.sso = sso
        self.calls: list[str] = []

    def get(self, url: str, params: dict | None = None, verify: bool = True, **_: object) -> _Page:
        path = urlsplit(url).path
        self.calls.append(path)
        with self.sso.get(path, query_string=params or {}) as response:
            return _Page(response.data)


@pytest.fixture
def sso(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def portal(app, sso) -> Iterator[FlaskClient]:
    portal_app = create_app(runtime(app).settings, http=ThroughTestClient(sso))
    portal_app.config["TESTING"] = True
    yield portal_app.test_client()


def ticket_from_sso(sso: FlaskClient) -> str:
    page = sso.get(f"/login?service={CALLBACK}")
    response = sso.post(
        f"/login?service={CALLBACK}",
        data={
            "username": STUDENT[0],
            "password": STUDENT[1],
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?ticket=ST-")
    return parse_qs(urlsplit(location).query)["ticket"][0]


def sign_in(sso: FlaskClient, portal: FlaskClient) -> str:
    ticket = ticket_from_sso(sso)
    response = portal.get(f"/cas/callback?ticket={ticket}")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    return ticket


def test_anonymous_visitors_are_offered_the_sso(portal):
    html = portal.get("/").get_data(as_text=True)
    assert "Se connecter avec l'ENT" in html and "Bonjour" not in html
    response = portal.get("/login")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert response.headers["Location"].startswith("http://127.0.0.1:8000/login?")
    assert query["service"] == [CALLBACK] and query["lang"] == ["fr"]


def test_the_journey_portal_sso_portal(sso, portal):
    sign_in(sso, portal)
    html = portal.get("/").get_data(as_text=True)
    assert "Bonjour Camille" in html and "cdurand" in html
    assert "camille.durand@etu.univ-demo.fr" in html and "eduPersonAffiliation" in html  # released attributes
    assert "Se déconnecter" in html


def test_the_ticket_is_validated_with_cas3_and_only_once(sso, portal):
    ticket = sign_in(sso, portal)
    http = portal.application.extensions["demo_portal"][2]
    assert http.calls == ["/p3/serviceValidate"]
    replay = portal.get(f"/cas/callback?ticket={ticket}")
    assert replay.status_code == 403 and "confirmé votre connexion" in replay.get_data(as_text=True)


@pytest.mark.parametrize("ticket", ["", "ST-forged", "x" * 300, "ST-1<script>", "TGT-abc"])
def test_bad_tickets_open_no_session(portal, ticket):
    response = portal.get("/cas/callback", query_string={"ticket": ticket})
    assert response.status_code in (303, 403)
    assert "Bonjour" not in portal.get("/").get_data(as_text=True)


def test_single_logout_from_the_sso_ends_the_portal_session(sso, portal, clock):
    ticket = sign_in(sso, portal)
    response = portal.post("/cas/logout-callback", data={"logoutRequest": logout_request(ticket, clock())})
    assert response.status_code == 200
    assert "Bonjour" not in portal.get("/").get_data(as_text=True)


HOSTILE = [
    "",
    "not xml",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    "<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>",
    "<a>" * 5000,
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_logout_requests_end_nothing(sso, portal, body):
    sign_in(sso, portal)
    assert portal.post("/cas/logout-callback", data={"logoutRequest": body}).status_code == 200
    assert "Bonjour Camille" in portal.get("/").get_data(as_text=True)


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_session_index_refuses_what_is_not_a_logout_request(body):
    assert session_index(body) is None


def test_session_index_of_a_real_logout_request():
    assert session_index(logout_request("ST-abc-123", 1_790_000_000.0)) == "ST-abc-123"


def test_logout_ends_the_portal_session_then_the_sso_one(sso, portal):
    sign_in(sso, portal)
    with portal.session_transaction() as cookie:
        assert "sid" in cookie
    page = portal.get("/").get_data(as_text=True)
    assert 'action="/logout"' in page
    response = portal.post("/logout")
    assert response.status_code == 303
    assert (
        response.headers["Location"]
        == "http://127.0.0.1:8000/logout?service=http%3A%2F%2F127.0.0.1%3A8001%2F"
    )
    assert "Bonjour" not in portal.get("/").get_data(as_text=True)


def test_the_portal_speaks_english_too(portal):
    html = portal.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Welcome to the demonstration portal" in html
    assert "Sign in with the ENT" in html


def test_the_portal_sends_strict_headers(portal):
    headers = portal.get("/").headers
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "services",
    [
        [],
        [{"id": "portail", "name": "Portail", "url_pattern": "http://x/.*"}],
        [{"id": "autre", "name": "Autre", "url_pattern": "http://x/.*", "home_url": "http://x/"}],
    ],
)
def test_a_configuration_without_the_portal_service_is_refused(tmp_path, services):
    settings = demo_settings(tmp_path, {"services": services})
    with pytest.raises(PortalNotConfigured):
        portal_service(settings)
