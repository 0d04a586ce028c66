"""The ticket registry contract, and :func:`open_registry` to pick a back-end by URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from sso.tickets.model import (
    GrantingTicket,
    Lifetimes,
    ProxyGrantingTicket,
    ServiceTicket,
    SessionService,
    Ticket,
)


class RegistryUnavailable(Exception):
    """The ticket store cannot be reached (a 503 for people, INTERNAL_ERROR for services)."""


class TicketRegistry(Protocol):
    """Where tickets live. Every method may raise :class:`RegistryUnavailable`.

    Expired tickets are never returned. ``now`` is POSIX seconds.
    """

    def add(self, *tickets: Ticket) -> None:
        """Store tickets until their ``expires`` (a new session and its first service ticket
        together: one transaction where the store has them). Adding an ST/PT also records its service as a
        single-logout target of the ticket's session (``tgt_id``).

        An ST/PT whose session is not stored (ended or purged since the caller read it, or never
        added) is silently not stored either: validation reads the ticket alone, and would accept
        a ticket kept after its session was logged out.
        """

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        """Atomically fetch and delete a service/proxy ticket: of concurrent
        callers with the same id, at most one gets it. An expired ticket is deleted and ``None``.

        Ending a session deletes its outstanding tickets (:meth:`end_session`), so a ticket taken
        belongs to a session that was not logged out; it carries the session's creation time and
        hard end for the rest (:class:`~sso.tickets.model.ServiceTicket`)."""

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        """The live session, or ``None`` (expired hard or idle, or unknown)."""

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        """Record use of a session (resets its idle clock)."""

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        """A live proxy-granting ticket, or ``None``."""

    def end_session(self, tgt_id: str) -> list[SessionService]:
        """Delete the session, its PGTs and its ticket records; return the
        services that received a ticket in it (for single logout)."""

    def purge(self, now: float) -> int:
        """Delete expired entries; return how many."""

    def stats(self, now: float) -> dict[str, int]:
        """Live entries by kind (``TGT``, ``ST``, ``PT``, ``PGT``)."""

    def ping(self) -> None:
        """Raise :class:`RegistryUnavailable` unless the store answers."""

    def close(self) -> None:
        """Release connections/files."""


def open_registry(
    url: str, lifetimes: Lifetimes, *, base_dir: str | os.PathLike[str] | None = None
) -> TicketRegistry:
    """The ticket registry a URL names.

    - ``memory://``: in this process only (tests, a single-process demo);
    - ``sqlite:///abs/path/tickets.db``: an absolute path (three slashes);
    - ``sqlite:relative/tickets.db``: relative to ``base_dir`` (default: the current directory);
    - ``redis://[user:password@]host:6379/0``, ``rediss://…`` (TLS), ``unix:///path.sock?db=0``:
      Redis, shared by several nodes (nothing is connected until the first use, so a node starts
      while Redis is down and answers 503 until it is back).

    :raises ValueError: an unknown or malformed URL (the message never repeats the URL, which
        may hold a password).
    :raises RegistryUnavailable: the store cannot be opened.
    """
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("tickets url must start with memory://, sqlite: or redis://")
    if scheme == "memory":
        if rest not in ("", "//"):
            raise ValueError("tickets url: use memory:// with nothing after it")
        from sso.tickets.memory import MemoryRegistry

        return MemoryRegistry(lifetimes)
    if scheme == "sqlite":
        return _open_sqlite(rest, lifetimes, base_dir)
    if scheme in ("redis", "rediss", "unix"):
        return _open_redis(url, lifetimes)
    raise ValueError(f"tickets url: unknown scheme {scheme[:20]!r} (use memory://, sqlite: or redis://)")


def _open_redis(url: str, lifetimes: Lifetimes) -> TicketRegistry:
    try:
        from sso.tickets.redis import RedisRegistry
    except ModuleNotFoundError as exc:
        if exc.name != "redis":
            raise
        problem = "tickets url: the Redis back-end needs redis-py (pip install 'ent-sso[redis]')"
        raise ValueError(problem) from None
    return RedisRegistry.from_url(url, lifetimes)


def _open_sqlite(rest: str, lifetimes: Lifetimes, base_dir: str | os.PathLike[str] | None) -> TicketRegistry:
    from sso.tickets.sqlite import SqliteRegistry

    if rest.startswith("///"):
        path = Path(rest[2:])
    elif rest.startswith("//"):
        raise ValueError("tickets url: use sqlite:///absolute/path.db or sqlite:relative/path.db (no host)")
    elif rest and not rest.startswith("/"):
        path = Path(base_dir if base_dir is not None else Path.cwd()) / rest
    else:
        raise ValueError("tickets url: use sqlite:///absolute/path.db or sqlite:relative/path.db")
    if "?" in rest or "#" in rest:
        raise ValueError("tickets url: sqlite URLs take no query or fragment")
    return SqliteRegistry(path, lifetimes)
