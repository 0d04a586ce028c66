"""Fixtures of the activation tests: settings, a fake directory with one account per state, a flow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ldapdir.model import AccountState
from sso.activation.flow import ActivationFlow
from sso.activation.settings import ActivationSettings, AttributeSet
from sso.activation.tokens import LinkSigner

from .fakes import AuditLog, Clock, FakeDirectory, Outbox, account

KEY = "k" * 32
LINK_BASE = "https://sso.univ.fr/cas/compte/lien"


@pytest.fixture
def settings() -> ActivationSettings:
    return ActivationSettings(
        charter_url="https://univ.fr/charte-informatique.pdf",
        charter_version="2025-09",
        charter_attribute="univCharte",
        consent_attribute="univConsentAnnuaire",
        on_activation=(
            AttributeSet("univActivationDate", "{now:%Y%m%d%H%M%SZ}"),
            AttributeSet("supannRessourceEtatDate", "{COMPTE}A:SupannActif::{local:%Y%m%d}"),
        ),
    )


@pytest.fixture
def directory() -> FakeDirectory:
    d = FakeDirectory()
    d.add(account("jdupont", AccountState.ACTIVE, "jean.dupont@gmail.com"))
    d.add(account("mmartin", AccountState.NEVER_ACTIVATED, "marie.martin@free.fr", "Marie", "Martin"))
    d.add(account("pold", AccountState.EXPIRED, "paul.old@gmail.com", "Paul", "Old"))
    d.add(account("nomail", AccountState.ACTIVE, None, "Nora", "Mail"))
    d.add(account("locked", AccountState.LOCKED, "lou.locked@gmail.com", "Lou", "Locked"))
    d.add(account("pexp", AccountState.PASSWORD_EXPIRED, "pierre.exp@gmail.com", "Pierre", "Exp"))
    return d


@pytest.fixture
def clock() -> Clock:
    # 12:00 in Paris (summer time).
    return Clock(datetime(2026, 6, 15, 10, 0, 0, tzinfo=UTC))


@pytest.fixture
def signer(settings: ActivationSettings) -> LinkSigner:
    return LinkSigner([KEY], settings)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def make_flow(directory, outbox, audit, clock) -> Iterator:
    """Build flows (other settings allowed); every flow's workers are stopped afterwards."""
    flows: list[ActivationFlow] = []

    def make(settings: ActivationSettings, link_base: str = LINK_BASE, **kwargs) -> ActivationFlow:
        flow = ActivationFlow(
            directory,
            kwargs.pop("signer", None) or LinkSigner([KEY], settings),
            settings,
            outbox,
            link_base,
            audit=audit,
            clock=kwargs.pop("clock", clock),
            **kwargs,
        )
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.shutdown()


@pytest.fixture
def flow(make_flow, settings: ActivationSettings) -> ActivationFlow:
    return make_flow(settings)
