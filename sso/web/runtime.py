"""The running server's parts, built once per app and kept in ``app.extensions["sso"]``."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from flask import Flask, current_app

from ldapdir import DN, Account, AccountState, Directory
from sso.activation.flow import ActivationFlow
from sso.activation.tokens import LinkSigner
from sso.audit import Audit
from sso.cas.logout import LogoutDispatcher
from sso.config import Settings
from sso.mailqueue import MailQueue
from sso.services import ServiceRegistry
from sso.throttle import Throttle
from sso.tickets.registry import TicketRegistry
from sso.web.pages import PageCache

#: Live password checks (as the person types) allowed per address.
PASSWORD_CHECKS = "120 per minute"


@dataclass
class Runtime:
    """Everything a view needs, built from the settings by :func:`sso.app.create_app`."""

    settings: Settings
    directory: Directory
    tickets: TicketRegistry
    services: ServiceRegistry
    logout: LogoutDispatcher
    mail: MailQueue
    activation: ActivationFlow
    audit: Audit
    #: Signs the password-page links (also used after a sign-in with an expired password).
    signer: LinkSigner
    #: Delivers a PGT to a proxy callback (CAS 3.0 §2.5.4): (pgt_url, pgt, pgtiou) -> delivered.
    deliver_pgt: Callable[[str, str, str], bool]
    #: POSIX time source; tests replace it.
    clock: Callable[[], float] = time.time
    #: Rendered blank sign-in forms (see :func:`sso.web.cas._login_page`).
    form_pages: PageCache = field(default_factory=PageCache)

    @cached_property
    def exempt_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``security.exempt_networks``, parsed once."""
        return tuple(
            ipaddress.ip_network(net, strict=False) for net in self.settings.security.exempt_networks
        )

    @cached_property
    def throttle(self) -> Throttle:
        """The throttling windows, on ``security.rate_limit_storage``."""
        uri = self.settings.security.rate_limit_storage
        # A frozen Redis must cost a second, not a hung worker.
        redis = uri.startswith(("redis://", "rediss://", "redis+unix://"))
        return Throttle(uri, {"socket_timeout": 1, "socket_connect_timeout": 1} if redis else None)

    @cached_property
    def limits(self) -> dict[str, tuple[Any, ...]]:
        """The limits of ``security`` (``login_per_identifier``…), parsed once."""
        security = self.settings.security
        return {
            name: Throttle.limits(getattr(security, name))
            for name in (
                "login_per_identifier",
                "login_per_address",
                "link_per_identifier",
                "link_per_address",
            )
        } | {"password_check": Throttle.limits(PASSWORD_CHECKS)}

    @cached_property
    def decoy(self) -> Account:
        """An account that does not exist, bound against for unknown identifiers (equal timing)."""
        base = self.settings.directory.people_base
        user = "decoy-" + secrets.token_hex(8)
        return Account(DN(f"uid={user},{base}"), user, "uid", AccountState.ACTIVE, None, None, "")

    def close(self) -> None:
        """Stop background workers and release connections."""
        self.activation.shutdown()
        self.mail.shutdown()
        self.logout.shutdown()
        self.tickets.close()
        self.directory.close()


def runtime(app: Flask | None = None) -> Runtime:
    """The runtime of ``app`` (default: the current app)."""
    return (app or current_app).extensions["sso"]  # type: ignore[no-any-return]
