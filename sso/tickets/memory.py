"""In-process ticket registry: dictionaries behind one lock. For tests and single-process use.

Tickets vanish with the process and are not shared between processes: use the SQLite back-end
for several workers on one machine, Redis for several machines.
"""

from __future__ import annotations

import dataclasses
import threading

from sso.tickets.model import (
    GrantingTicket,
    Kind,
    Lifetimes,
    ProxyGrantingTicket,
    ServiceTicket,
    SessionService,
    Ticket,
)


class MemoryRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` in memory.

    :param lifetimes: gives the idle limit of sessions.
    """

    def __init__(self, lifetimes: Lifetimes) -> None:
        self._lifetimes = lifetimes
        self._lock = threading.Lock()
        self._tgts: dict[str, GrantingTicket] = {}
        self._sts: dict[str, ServiceTicket] = {}
        self._pgts: dict[str, ProxyGrantingTicket] = {}
        #: Session id → single-logout targets in issue order, each with the time after which
        #: its session cannot be alive any more (ticket expiry + ``tgt_max``).
        self._sessions: dict[str, list[tuple[SessionService, float]]] = {}
        #: Session id → its PGT ids.
        self._session_pgts: dict[str, set[str]] = {}

    def _alive(self, tgt: GrantingTicket, now: float) -> bool:
        return now < tgt.expires and now < tgt.last_used + self._lifetimes.tgt_idle

    def add(self, *tickets: Ticket) -> None:
        with self._lock:
            for ticket in tickets:
                self._add(ticket)

    def _add(self, ticket: Ticket) -> None:
        if isinstance(ticket, GrantingTicket):
            self._tgts[ticket.id] = ticket
        elif isinstance(ticket, ServiceTicket):
            if ticket.tgt_id not in self._tgts:
                return  # its session has ended: see TicketRegistry.add
            self._sts[ticket.id] = ticket
            record = SessionService(ticket.service, ticket.service_id, ticket.id)
            bound = ticket.expires + self._lifetimes.tgt_max
            self._sessions.setdefault(ticket.tgt_id, []).append((record, bound))
        else:
            self._pgts[ticket.id] = ticket
            self._session_pgts.setdefault(ticket.tgt_id, set()).add(ticket.id)

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        with self._lock:
            ticket = self._sts.pop(ticket_id, None)
        if ticket is None or now >= ticket.expires:
            return None
        return ticket

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        with self._lock:
            tgt = self._tgts.get(tgt_id)
        return tgt if tgt is not None and self._alive(tgt, now) else None

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        with self._lock:
            tgt = self._tgts.get(tgt_id)
            if tgt is not None and self._alive(tgt, now) and now > tgt.last_used:
                self._tgts[tgt_id] = dataclasses.replace(tgt, last_used=now)

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        with self._lock:
            pgt = self._pgts.get(pgt_id)
        return pgt if pgt is not None and now < pgt.expires else None

    def end_session(self, tgt_id: str) -> list[SessionService]:
        with self._lock:
            self._tgts.pop(tgt_id, None)
            for pgt_id in self._session_pgts.pop(tgt_id, ()):
                self._pgts.pop(pgt_id, None)
            services = [record for record, _ in self._sessions.pop(tgt_id, [])]
            for record in services:
                self._sts.pop(record.ticket_id, None)
        return services

    def purge(self, now: float) -> int:
        with self._lock:
            before = len(self._tgts) + len(self._sts) + len(self._pgts)
            for key in [key for key, tgt in self._tgts.items() if not self._alive(tgt, now)]:
                del self._tgts[key]
                # A dead session gets no single logout: its records and PGTs go with it.
                self._sessions.pop(key, None)
                for pgt_id in self._session_pgts.pop(key, ()):
                    self._pgts.pop(pgt_id, None)
            for key in [key for key, st in self._sts.items() if now >= st.expires]:
                del self._sts[key]
            for key in [key for key, pgt in self._pgts.items() if now >= pgt.expires]:
                self._session_pgts.get(self._pgts.pop(key).tgt_id, set()).discard(key)
            for tgt_id, records in list(self._sessions.items()):
                kept = [(record, bound) for record, bound in records if now < bound]
                if kept:
                    self._sessions[tgt_id] = kept
                else:
                    del self._sessions[tgt_id]
            for tgt_id in [key for key, ids in self._session_pgts.items() if not ids]:
                del self._session_pgts[tgt_id]
            return before - len(self._tgts) - len(self._sts) - len(self._pgts)

    def stats(self, now: float) -> dict[str, int]:
        with self._lock:
            counts = {kind.value: 0 for kind in (Kind.TGT, Kind.ST, Kind.PT, Kind.PGT)}
            counts["TGT"] = sum(1 for tgt in self._tgts.values() if self._alive(tgt, now))
            for st in self._sts.values():
                if now < st.expires:
                    counts[st.kind.value] += 1
            counts["PGT"] = sum(1 for pgt in self._pgts.values() if now < pgt.expires)
            return counts

    def ping(self) -> None:
        """Always answers."""

    def close(self) -> None:
        """Nothing to release."""
