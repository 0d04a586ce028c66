"""Ticket validation (CAS 3.0 §2.4–§2.9): every failure code, single use, service binding, renew,
attribute release and the proxy chain."""

from __future__ import annotations

import dataclasses

import pytest

from sso.cas.errors import CasError, Code
from sso.cas.login import after_authentication, decide
from sso.cas.params import LoginRequest, ProxyRequest, ValidateRequest
from sso.cas.proxy import grant_proxy_ticket
from sso.cas.settings import CasSettings
from sso.cas.validation import Success, normalise_service, validate
from sso.tickets.ids import new_id
from sso.tickets.model import Kind
from sso.tickets.registry import RegistryUnavailable
from tests.cas.conftest import MAIL_URL, MOODLE_URL, NOW, PGT_URL, PORTAIL_URL

#: Every callback host "resolves" to a public address (no DNS in tests).
PUBLIC_RESOLVER = lambda host: ["8.8.8.8"]  # noqa: E731


class Callback:
    """A fake proxy callback: records deliveries, answers ``ok``."""

    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, url: str, pgt: str, iou: str) -> bool:
        self.calls.append((url, pgt, iou))
        return self.ok


@pytest.fixture
def callback() -> Callback:
    return Callback()


@pytest.fixture
def check(tickets, services, lifetimes, settings, callback):
    """validate() with the fixtures; keyword arguments override."""

    def check(ticket: str, service: str, *, proxy: bool = False, **kw) -> Success:
        request = ValidateRequest(
            ticket=ticket,
            service=service,
            renew=kw.pop("renew", False),
            pgt_url=kw.pop("pgt_url", None),
        )
        options = {
            "tickets": tickets,
            "services": services,
            "lifetimes": lifetimes,
            "settings": settings,
            "now": NOW,
            "allow_proxy_tickets": proxy,
            "deliver_pgt": callback,
            "resolve": PUBLIC_RESOLVER,
        } | kw
        return validate(request, **options)

    return check


@pytest.fixture
def issue(services, tickets, lifetimes, tgt):
    """Issue a ticket for ``url``: from SSO (``primary=False``) or a fresh login."""

    def issue(url: str = MOODLE_URL, primary: bool = False) -> str:
        request = LoginRequest(service=url)
        if primary:
            decision = after_authentication(request, tgt, services, tickets, lifetimes, NOW)
        else:
            decision = decide(request, tgt, services, tickets, lifetimes, NOW)
        return decision.ticket.id  # type: ignore[union-attr]

    return issue


def failure(code: Code, call, *args, **kw) -> CasError:
    with pytest.raises(CasError) as info:
        call(*args, **kw)
    assert info.value.code is code, info.value
    return info.value


def test_success(check, issue, tgt) -> None:
    ticket = issue()
    success = check(ticket, MOODLE_URL)
    assert success.user == "ada"
    assert success.attributes == {
        "uid": ("ada",),
        "mail": ("ada.lovelace@etu.univ-demo.fr",),
        "eduPersonAffiliation": ("student", "member"),
    }
    assert list(success.attributes) == ["uid", "mail", "eduPersonAffiliation"], "release order"
    assert success.pgt_iou is None and success.proxies == ()
    assert success.service.id == "moodle"
    assert success.primary is False
    assert success.auth_time == tgt.created
    assert success.ticket.id == ticket


def test_single_use(check, issue) -> None:
    ticket = issue()
    check(ticket, MOODLE_URL)
    error = failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL)
    assert ticket not in error.detail and ticket[:7] in error.detail


@pytest.mark.parametrize(
    "ticket",
    [
        "foo",
        "ST-",
        "ST-abc_def",
        "ST-abc def",
        "ST-abc\n",
        "st-abc",
        "LT-abc",
        "ST-" + "a" * 300,
        "PGTIOU-abc",
        "<script>",
    ],
)
def test_malformed_ticket(check, ticket) -> None:
    error = failure(Code.INVALID_TICKET_SPEC, check, ticket, MOODLE_URL)
    assert ticket not in error.detail


def test_session_and_pgt_ids_are_not_tickets(check, tgt, tickets) -> None:
    failure(Code.INVALID_TICKET_SPEC, check, tgt.id, MOODLE_URL)
    assert tickets.get_tgt(tgt.id, NOW) is not None, "presenting a TGT id must not consume the session"
    failure(Code.INVALID_TICKET_SPEC, check, new_id(Kind.PGT), MOODLE_URL)


def test_unknown_ticket(check) -> None:
    failure(Code.INVALID_TICKET, check, new_id(Kind.ST), MOODLE_URL)


def test_expired_ticket(check, issue, lifetimes) -> None:
    ticket = issue()
    failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL, now=NOW + lifetimes.service_ticket)


def test_wrong_service_consumes_the_ticket(check, issue) -> None:
    ticket = issue()
    failure(Code.INVALID_SERVICE, check, ticket, "https://moodle.univ-demo.fr/other")
    failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL)


def test_service_of_another_registered_service(check, issue) -> None:
    failure(Code.INVALID_SERVICE, check, issue(), PORTAIL_URL)


@pytest.mark.parametrize(
    "equivalent",
    [
        MOODLE_URL,
        "HTTPS://Moodle.Univ-Demo.FR/login/index.php?authCAS=CAS",
        "https://moodle.univ-demo.fr:443/login/index.php?authCAS=CAS",
        "https://moodle.univ-demo.fr/login/index%2Ephp?authCAS=CAS",
        "https://moodle.univ-demo.fr/login/index.php?authCAS=CAS#top",
    ],
)
def test_service_compared_after_normalisation(check, issue, equivalent) -> None:
    assert check(issue(), equivalent).user == "ada"


@pytest.mark.parametrize(
    "different",
    [
        "https://moodle.univ-demo.fr/login/index.php",
        "https://moodle.univ-demo.fr/login/index.php?authCAS=cas",
        "https://moodle.univ-demo.fr/LOGIN/index.php?authCAS=CAS",
        "https://moodle.univ-demo.fr/login/index.php?authCAS=CAS&x=1",
        "http://moodle.univ-demo.fr/login/index.php?authCAS=CAS",
        "https://moodle.univ-demo.fr:8443/login/index.php?authCAS=CAS",
        "https://moodle.univ-demo.fr.attacker.example/login/index.php?authCAS=CAS",
    ],
)
def test_service_mismatch(check, issue, different) -> None:
    failure(Code.INVALID_SERVICE, check, issue(), different)


def test_normalise_service() -> None:
    assert normalise_service("HTTPS://X.org") == "https://x.org/"
    assert normalise_service("http://x.org:80/a?") == "http://x.org/a"
    assert normalise_service("https://[::1]:443/") == "https://[::1]/"
    assert normalise_service("https://x.org:bad/") == "https://x.org:bad/"


def test_renew_refuses_sso_tickets(check, issue) -> None:
    ticket = issue(primary=False)
    failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL, renew=True)
    failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL)  # consumed by the failed attempt


def test_renew_accepts_tickets_from_a_new_login(check, issue) -> None:
    success = check(issue(primary=True), MOODLE_URL, renew=True)
    assert success.primary is True


def test_ended_session(check, issue, tickets, tgt) -> None:
    ticket = issue()
    tickets.end_session(tgt.id)
    failure(Code.INVALID_TICKET, check, ticket, MOODLE_URL)


def test_ticket_refused_from_its_session_hard_end(check, issue, tickets, tgt) -> None:
    """A ticket never outlives its session: even one that would (here made to expire later),
    checked against the session's end it carries."""
    first, second = issue(), issue()
    for ticket in (first, second):
        tickets._sts[ticket] = dataclasses.replace(tickets._sts[ticket], expires=tgt.expires + 10)
    assert check(first, MOODLE_URL, now=tgt.expires - 1).user == "ada"
    error = failure(Code.INVALID_TICKET, check, second, MOODLE_URL, now=tgt.expires)
    assert "session has ended" in error.detail


def test_validation_reads_the_ticket_alone(check, issue, tickets, tgt, callback, lifetimes) -> None:
    """One store query per validation (take): the session's creation time and end come with
    the ticket."""
    ticket = issue(PORTAIL_URL)

    def no_session(*args: object) -> None:
        raise AssertionError("validation read the session")

    tickets.get_tgt = no_session
    success = check(ticket, PORTAIL_URL, pgt_url=PGT_URL)
    assert success.auth_time == tgt.created
    pgt = tickets.get_pgt(callback.calls[0][1], NOW)
    assert pgt is not None and pgt.expires == min(NOW + lifetimes.pgt, tgt.expires)


class DownRegistry:
    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RegistryUnavailable("disk full")

        return fail


def test_store_down_is_internal_error(check) -> None:
    error = failure(Code.INTERNAL_ERROR, check, new_id(Kind.ST), MOODLE_URL, tickets=DownRegistry())
    assert "disk full" not in error.detail


# Proxy tickets and pgtUrl (CAS 3.0 §2.5.4, §2.6, §2.7)


def test_pgt_delivered_and_stored(check, issue, callback, tickets, tgt, lifetimes) -> None:
    success = check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL)
    [(url, pgt_id, iou)] = callback.calls
    assert url == PGT_URL and pgt_id.startswith("PGT-") and iou.startswith("PGTIOU-")
    assert success.pgt_iou == iou
    pgt = tickets.get_pgt(pgt_id, NOW)
    assert pgt is not None
    assert (pgt.user, pgt.tgt_id, pgt.pgt_url, pgt.proxies) == ("ada", tgt.id, PGT_URL, ())
    assert pgt.expires == min(NOW + lifetimes.pgt, tgt.expires)


def test_pgt_never_outlives_the_session(check, issue, callback, tickets, tgt, lifetimes) -> None:
    long = dataclasses.replace(lifetimes, pgt=lifetimes.tgt_max * 2)
    check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL, lifetimes=long)
    pgt = tickets.get_pgt(callback.calls[0][1], NOW)
    assert pgt is not None and pgt.expires == tgt.expires


@pytest.mark.parametrize(("url", "service"), [(MOODLE_URL, "moodle"), (MAIL_URL, "mail")])
def test_service_not_allowed_to_proxy(check, issue, callback, url, service) -> None:
    ticket = issue(url)
    failure(Code.UNAUTHORIZED_SERVICE_PROXY, check, ticket, url, pgt_url=PGT_URL)
    assert callback.calls == []
    failure(Code.INVALID_TICKET, check, ticket, url)


@pytest.mark.parametrize(
    "pgt_url",
    [
        "http://portail.univ-demo.fr/cas/pgt",
        "https://portail.univ-demo.fr/cas/pgt2",
        "https://portail.univ-demo.fr.attacker.example/cas/pgt",
        "https://attacker.example/cas/pgt",
        "https://x@portail.univ-demo.fr/cas/pgt",
        "javascript:alert(1)",
        "https://portail.univ-demo.fr/cas/pgt\n",
    ],
)
def test_refused_callback(check, issue, callback, tickets, pgt_url) -> None:
    ticket = issue(PORTAIL_URL)
    failure(Code.INVALID_PROXY_CALLBACK, check, ticket, PORTAIL_URL, pgt_url=pgt_url)
    assert callback.calls == [] and tickets.stats(NOW)["PGT"] == 0
    failure(Code.INVALID_TICKET, check, ticket, PORTAIL_URL)


def test_private_callback_refused(check, issue, callback) -> None:
    ticket = issue(PORTAIL_URL)
    failure(
        Code.INVALID_PROXY_CALLBACK,
        check,
        ticket,
        PORTAIL_URL,
        pgt_url=PGT_URL,
        resolve=lambda host: ["10.0.0.5"],
    )
    assert callback.calls == []


def test_private_callback_allowed_by_settings(check, issue) -> None:
    settings = CasSettings(allow_private_proxy_callback=True)
    success = check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL, settings=settings, resolve=lambda h: [])
    assert success.pgt_iou is not None


def test_failed_delivery_fails_validation_and_stores_nothing(check, issue, tickets) -> None:
    ticket = issue(PORTAIL_URL)
    failure(
        Code.INVALID_PROXY_CALLBACK,
        check,
        ticket,
        PORTAIL_URL,
        pgt_url=PGT_URL,
        deliver_pgt=Callback(ok=False),
    )
    assert tickets.stats(NOW)["PGT"] == 0
    failure(Code.INVALID_TICKET, check, ticket, PORTAIL_URL)


def test_proxy_ticket_refused_at_service_validate(
    check, issue, tickets, services, lifetimes, callback
) -> None:
    check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL)
    pgt_id = callback.calls[0][1]
    pt = grant_proxy_ticket(
        ProxyRequest(pgt=pgt_id, target_service=MOODLE_URL),
        tickets=tickets,
        services=services,
        lifetimes=lifetimes,
        now=NOW,
    )
    error = failure(Code.INVALID_TICKET_SPEC, check, pt.id, MOODLE_URL, proxy=False)
    assert "/proxyValidate" in error.detail
    failure(Code.INVALID_TICKET, check, pt.id, MOODLE_URL, proxy=True)


def test_proxy_chain(check, issue, tickets, services, lifetimes, callback) -> None:
    """portail gets a PGT, proxies to itself (a back end) which gets a PGT and proxies to moodle."""
    check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL)
    first_pgt = callback.calls[-1][1]

    def proxy_to(pgt: str, target: str):  # type: ignore[no-untyped-def]
        request = ProxyRequest(pgt=pgt, target_service=target)
        return grant_proxy_ticket(request, tickets=tickets, services=services, lifetimes=lifetimes, now=NOW)

    backend = "https://portail.univ-demo.fr/backend"
    pt = proxy_to(first_pgt, backend)
    assert pt.id.startswith("PT-") and pt.primary is False
    second_url = PGT_URL + "?hop=2"
    success = check(pt.id, backend, proxy=True, pgt_url=second_url)
    assert success.proxies == (PGT_URL,)
    assert success.pgt_iou == callback.calls[-1][2]
    assert success.attributes == {"uid": ("ada",), "displayName": ("Ada Lovelace",)}

    final = proxy_to(callback.calls[-1][1], MOODLE_URL)
    success = check(final.id, MOODLE_URL, proxy=True)
    assert success.proxies == (second_url, PGT_URL), "most recent proxy first"
    assert success.user == "ada" and success.service.id == "moodle"


def test_proxy_chain_depth_limit(check, issue, tickets, services, lifetimes, callback) -> None:
    settings = CasSettings(max_proxy_depth=1)
    check(issue(PORTAIL_URL), PORTAIL_URL, pgt_url=PGT_URL, settings=settings)
    request = ProxyRequest(pgt=callback.calls[-1][1], target_service=PORTAIL_URL)
    pt = grant_proxy_ticket(request, tickets=tickets, services=services, lifetimes=lifetimes, now=NOW)
    failure(
        Code.UNAUTHORIZED_SERVICE_PROXY,
        check,
        pt.id,
        PORTAIL_URL,
        proxy=True,
        pgt_url=PGT_URL,
        settings=settings,
    )


def test_attribute_release_default(check, issue, services, tickets, lifetimes, tgt) -> None:
    settings = CasSettings(attribute_release_default=("uid", "secret", "missing"))
    success = check(issue(MAIL_URL), MAIL_URL, settings=settings)
    assert success.attributes == {"uid": ("ada",), "secret": ("not for services",)}
    assert check(issue(MAIL_URL), MAIL_URL).attributes == {}, "nothing by default"
