"""Tickets (CAS 3.0 §3): their types, ids, and the registries that keep them.

:func:`open_registry` picks a back-end from the configured URL (memory, SQLite; Redis later).
"""

from sso.tickets.ids import new_id, redact, well_formed
from sso.tickets.model import (
    Attributes,
    GrantingTicket,
    Kind,
    Lifetimes,
    ProxyGrantingTicket,
    ServiceTicket,
    SessionService,
    Ticket,
)
from sso.tickets.registry import RegistryUnavailable, TicketRegistry, open_registry

__all__ = [
    "Attributes",
    "GrantingTicket",
    "Kind",
    "Lifetimes",
    "ProxyGrantingTicket",
    "RegistryUnavailable",
    "ServiceTicket",
    "SessionService",
    "Ticket",
    "TicketRegistry",
    "new_id",
    "open_registry",
    "redact",
    "well_formed",
]
