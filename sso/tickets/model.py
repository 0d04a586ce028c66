"""Ticket types (CAS 3.0 §3). Times are POSIX seconds (float), passed in by the caller."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

Attributes = Mapping[str, tuple[str, ...]]


class Kind(enum.Enum):
    """Ticket kinds and their id prefixes (CAS 3.0 §3.1–3.5)."""

    ST = "ST"
    PT = "PT"
    PGT = "PGT"
    PGTIOU = "PGTIOU"
    TGT = "TGT"

    @classmethod
    def of(cls, ticket_id: str) -> Kind | None:
        """The kind an id's prefix names, or ``None``."""
        prefix, sep, _ = ticket_id.partition("-")
        if not sep:
            return None
        try:
            return cls(prefix)
        except ValueError:
            return None


@dataclass(frozen=True)
class GrantingTicket:
    """Ticket-granting ticket: the server side of a signed-in browser (TGC cookie)."""

    id: str
    user: str
    attributes: Attributes
    created: float
    #: Last time the session was used (idle expiry is counted from here).
    last_used: float
    #: Hard end of the session (``created + tgt_max``).
    expires: float
    kind: Kind = field(default=Kind.TGT, init=False)


@dataclass(frozen=True)
class ServiceTicket:
    """Service ticket (``ST-``) or proxy ticket (``PT-``): single use, short-lived."""

    id: str
    #: The service URL exactly as the client gave it (validation compares it).
    service: str
    #: Id of the registry entry that matched ``service``.
    service_id: str
    user: str
    attributes: Attributes
    #: The session it came from (TGT id), for single logout.
    tgt_id: str
    #: Issued from the presentation of primary credentials (CAS 3.0 §2.5.1 renew).
    primary: bool
    expires: float
    #: When its session was created (the ``authenticationDate`` of a CAS 3 answer).
    auth_time: float
    #: Its session's hard end (``created + tgt_max``). Copied from the session, like
    #: :attr:`auth_time`, so that validation reads nothing but the ticket: a ticket is refused
    #: from this time on, and a PGT granted with it ends by then.
    session_expires: float
    #: For a PT: the proxies it went through, most recent first (CAS 3.0 §2.6.2).
    proxies: tuple[str, ...] = ()

    @property
    def kind(self) -> Kind:
        """``ST`` or ``PT``, from the id."""
        return Kind.PT if self.id.startswith("PT-") else Kind.ST


@dataclass(frozen=True)
class ProxyGrantingTicket:
    """Proxy-granting ticket: lets a service (the proxy) obtain PTs for others."""

    id: str
    user: str
    attributes: Attributes
    tgt_id: str
    #: The callback URL it was delivered to (the proxy's identity).
    pgt_url: str
    #: Proxies already in the chain before this one, most recent first.
    proxies: tuple[str, ...]
    expires: float
    kind: Kind = field(default=Kind.PGT, init=False)


@dataclass(frozen=True)
class SessionService:
    """A service that received a ticket in a session: a single-logout target."""

    service: str
    service_id: str
    ticket_id: str


Ticket = GrantingTicket | ServiceTicket | ProxyGrantingTicket


@dataclass(frozen=True)
class Lifetimes:
    """Ticket lifetimes in seconds (DESIGN.md defaults)."""

    __pydantic_config__ = {"extra": "forbid"}

    #: Service and proxy tickets.
    service_ticket: float = 10.0
    #: Hard maximum of a session.
    tgt_max: float = 8 * 3600.0
    #: Idle maximum of a session.
    tgt_idle: float = 2 * 3600.0
    #: Proxy-granting tickets (bounded by the session's own end).
    pgt: float = 2 * 3600.0
