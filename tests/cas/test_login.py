"""/login decisions (CAS 3.0 §2.1, §2.2): never redirect to an unknown service; renew; gateway; warn."""

from __future__ import annotations

import pytest

from sso.cas.login import (
    ConfirmWarn,
    IssueTicket,
    Redirect,
    ShowForm,
    ShowSignedIn,
    UnknownService,
    after_authentication,
    decide,
    new_session,
    service_url_with_ticket,
)
from sso.cas.params import LoginRequest
from sso.tickets.ids import well_formed
from sso.tickets.model import Kind
from tests.cas.conftest import ATTRIBUTES, MOODLE_URL, NOW

EVIL = "https://moodle.univ-demo.fr.attacker.example/"


def login(service: str | None = MOODLE_URL, **flags) -> LoginRequest:
    return LoginRequest(service=service, **flags)


@pytest.fixture
def run(services, tickets, lifetimes):
    def run(request: LoginRequest, tgt):
        return decide(request, tgt, services, tickets, lifetimes, NOW)

    return run


def test_no_session_shows_form(run, services) -> None:
    decision = run(login(), None)
    assert decision == ShowForm(services.get("moodle"), login())


def test_no_service_no_session_shows_form(run) -> None:
    assert run(login(None), None) == ShowForm(None, login(None))


def test_no_service_with_session_shows_signed_in(run, tgt) -> None:
    assert run(login(None), tgt) == ShowSignedIn(tgt)


@pytest.mark.parametrize(
    "flags", [{}, {"gateway": True}, {"renew": True}, {"warn": True}, {"method": "POST"}]
)
@pytest.mark.parametrize("with_session", [False, True])
@pytest.mark.parametrize(
    "url", [EVIL, "javascript:alert(1)", "https://unknown.example/", "https://a@moodle.univ-demo.fr/"]
)
def test_unknown_service_is_never_a_redirect(run, tgt, tickets, flags, with_session, url) -> None:
    decision = run(login(url, **flags), tgt if with_session else None)
    assert decision == UnknownService(url)
    assert tickets.stats(NOW)["ST"] == 0


def test_session_issues_ticket_at_once(run, tgt, tickets, lifetimes) -> None:
    decision = run(login(), tgt)
    assert isinstance(decision, IssueTicket)
    ticket = decision.ticket
    assert well_formed(ticket.id) and ticket.kind is Kind.ST
    assert ticket.service == MOODLE_URL and ticket.service_id == "moodle"
    assert ticket.user == "ada" and ticket.attributes == ATTRIBUTES and ticket.tgt_id == tgt.id
    assert ticket.primary is False, "SSO tickets do not satisfy renew"
    assert ticket.expires == NOW + lifetimes.service_ticket
    assert (ticket.auth_time, ticket.session_expires) == (tgt.created, tgt.expires), "for validation"
    assert decision.url == f"{MOODLE_URL}&ticket={ticket.id}"
    assert decision.method == "GET"
    assert tickets.take(ticket.id, NOW) == ticket
    live = tickets.get_tgt(tgt.id, NOW)
    assert live is not None and live.last_used == NOW, "SSO use touches the session"


def test_the_idle_clock_has_a_one_minute_grain(run, tgt, tickets) -> None:
    """A session used again less than a minute after its last recorded use is not written to."""
    assert isinstance(run(login(), tgt), IssueTicket)  # used 60 s after sign-in: recorded
    again = tickets.get_tgt(tgt.id, NOW)
    assert again is not None and again.last_used == NOW
    calls = []
    tickets.touch_tgt = lambda *args: calls.append(args)  # type: ignore[method-assign]
    assert isinstance(run(login(), again), IssueTicket)
    assert calls == [], "used again within the minute: no write"


def test_method_post(run, tgt) -> None:
    decision = run(login(method="POST"), tgt)
    assert isinstance(decision, IssueTicket)
    assert decision.method == "POST" and decision.url == MOODLE_URL
    assert decision.post_fields == {"ticket": decision.ticket.id}


def test_renew_asks_again_even_with_session(run, tgt, tickets, services) -> None:
    assert run(login(renew=True), tgt) == ShowForm(services.get("moodle"), login(renew=True))
    assert tickets.stats(NOW)["ST"] == 0


def test_gateway_without_session_goes_back_without_ticket(run) -> None:
    assert run(login(gateway=True), None) == Redirect(MOODLE_URL)


def test_gateway_with_session_issues_ticket(run, tgt) -> None:
    assert isinstance(run(login(gateway=True), tgt), IssueTicket)


def test_gateway_without_service_asks_for_credentials(run) -> None:
    assert run(login(None, gateway=True), None) == ShowForm(None, login(None, gateway=True))


def test_renew_wins_over_gateway(run, tgt, services) -> None:
    request = login(renew=True, gateway=True)
    assert run(request, None) == ShowForm(services.get("moodle"), request)
    assert run(request, tgt) == ShowForm(services.get("moodle"), request)


def test_warn_asks_before_sso_and_issues_nothing(run, tgt, tickets, services) -> None:
    decision = run(login(warn=True), tgt)
    assert decision == ConfirmWarn(services.get("moodle"), MOODLE_URL, login())
    assert tickets.stats(NOW)["ST"] == 0
    assert isinstance(run(decision.continue_request, tgt), IssueTicket)


def test_warn_without_session_shows_form(run, services) -> None:
    assert run(login(warn=True), None) == ShowForm(services.get("moodle"), login(warn=True))


def test_after_authentication_issues_primary_ticket(services, tickets, lifetimes, tgt) -> None:
    decision = after_authentication(login(warn=True, renew=True), tgt, services, tickets, lifetimes, NOW)
    assert isinstance(decision, IssueTicket)
    assert decision.ticket.primary is True
    assert (decision.ticket.auth_time, decision.ticket.session_expires) == (tgt.created, tgt.expires)
    assert tickets.take(decision.ticket.id, NOW) == decision.ticket


def test_after_authentication_without_service(services, tickets, lifetimes, tgt) -> None:
    assert after_authentication(login(None), tgt, services, tickets, lifetimes, NOW) == ShowSignedIn(tgt)


def test_after_authentication_rechecks_the_service(services, tickets, lifetimes, tgt) -> None:
    decision = after_authentication(login(EVIL), tgt, services, tickets, lifetimes, NOW)
    assert decision == UnknownService(EVIL)


def test_new_session(lifetimes) -> None:
    session = new_session("ada", ATTRIBUTES, lifetimes, NOW)
    assert well_formed(session.id) and session.kind is Kind.TGT
    assert (session.created, session.last_used, session.expires) == (NOW, NOW, NOW + lifetimes.tgt_max)
    assert new_session("ada", ATTRIBUTES, lifetimes, NOW).id != session.id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s/", "https://s/?ticket=ST-1"),
        ("https://s", "https://s?ticket=ST-1"),
        ("https://s/p?a=1", "https://s/p?a=1&ticket=ST-1"),
        ("https://s/p?", "https://s/p?ticket=ST-1"),
        ("https://s/p?a=1&", "https://s/p?a=1&ticket=ST-1"),
        ("https://s/p#/route?x", "https://s/p?ticket=ST-1#/route?x"),
        ("https://s/p?a=%2F&b=c%20d#f", "https://s/p?a=%2F&b=c%20d&ticket=ST-1#f"),
    ],
)
def test_service_url_with_ticket(url: str, expected: str) -> None:
    assert service_url_with_ticket(url, "ST-1") == expected
