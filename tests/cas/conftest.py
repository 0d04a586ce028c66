"""Fixtures for the protocol core: services, a ticket store, a signed-in session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sso.cas.login import new_session
from sso.cas.settings import CasSettings
from sso.services import ServiceRegistry, ServiceSettings
from sso.tickets.memory import MemoryRegistry
from sso.tickets.model import GrantingTicket, Lifetimes

NOW = 1_750_000_000.0
MOODLE_URL = "https://moodle.univ-demo.fr/login/index.php?authCAS=CAS"
PORTAIL_URL = "https://portail.univ-demo.fr/"
PGT_URL = "https://portail.univ-demo.fr/cas/pgt"
MAIL_URL = "https://mail.univ-demo.fr/"
ATTRIBUTES = {
    "uid": ("ada",),
    "mail": ("ada.lovelace@etu.univ-demo.fr",),
    "displayName": ("Ada Lovelace",),
    "eduPersonAffiliation": ("student", "member"),
    "secret": ("not for services",),
}

SERVICES = (
    ServiceSettings(
        id="moodle",
        name="Cours en ligne",
        url_pattern=r"https://moodle\.univ-demo\.fr(/.*)?",
        attributes=("uid", "mail", "eduPersonAffiliation"),
    ),
    ServiceSettings(
        id="portail",
        name="Portail",
        url_pattern=r"https://portail\.univ-demo\.fr(/.*)?",
        attributes=("uid", "displayName"),
        proxy=True,
        proxy_callback_pattern=r"https://portail\.univ-demo\.fr/cas/pgt(\?.*)?",
        logout_url="https://portail.univ-demo.fr/cas/slo",
    ),
    ServiceSettings(
        id="mail",
        name="Messagerie",
        url_pattern=r"https://mail\.univ-demo\.fr(/.*)?",
        proxy=True,  # may proxy, but no callback allowed
        single_logout=False,
    ),
)


@pytest.fixture
def lifetimes() -> Lifetimes:
    return Lifetimes()


@pytest.fixture
def settings() -> CasSettings:
    return CasSettings()


@pytest.fixture
def services() -> ServiceRegistry:
    return ServiceRegistry(SERVICES)


@pytest.fixture
def tickets(lifetimes: Lifetimes) -> Iterator[MemoryRegistry]:
    store = MemoryRegistry(lifetimes)
    yield store
    store.close()


@pytest.fixture
def tgt(tickets: MemoryRegistry, lifetimes: Lifetimes) -> GrantingTicket:
    session = new_session("ada", ATTRIBUTES, lifetimes, NOW - 60)
    tickets.add(session)
    return session
