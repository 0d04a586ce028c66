"""SQLite ticket registry: shared by the worker processes of one machine, kept across restarts.

- WAL journal (readers never wait for the writer). Writers of this registry take turns at a
  :class:`_WriteGate` before SQLite sees them (SQLite's own busy handler sleeps 1, 2, 5, 10… ms
  between tries, long for transactions of tens of microseconds); other programs writing the file
  meet SQLite's busy timeout.
- One connection per thread and per process, opened on first use: a connection is never used by
  two threads, nor across a ``fork`` (gunicorn's workers each open their own).
- Every statement on the hot path goes through a primary key or an index (``expires``,
  ``last_used``, ``tgt_id``): the cost stays flat as the store grows; a test checks the plans.
- :meth:`SqliteRegistry.take` is one ``DELETE … RETURNING`` statement (SQLite ≥ 3.35): of
  concurrent callers, in any process, exactly one gets the ticket.
- Expired rows are purged every ``purge_every`` additions, a bounded batch at a time.
- Any SQLite failure (locked past the timeout, disk full, not a database) is
  :class:`~sso.tickets.registry.RegistryUnavailable`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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
from sso.tickets.registry import RegistryUnavailable

logger = logging.getLogger(__name__)

#: Version of the schema below, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS tgt (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, attributes TEXT NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tgt_expires ON tgt (expires);
CREATE INDEX IF NOT EXISTS tgt_last_used ON tgt (last_used);
CREATE TABLE IF NOT EXISTS st (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, service_id TEXT NOT NULL, user TEXT NOT NULL,
    attributes TEXT NOT NULL, tgt_id TEXT NOT NULL, is_primary INTEGER NOT NULL,
    expires REAL NOT NULL, proxies TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS st_expires ON st (expires);
CREATE INDEX IF NOT EXISTS st_tgt ON st (tgt_id);
CREATE TABLE IF NOT EXISTS pgt (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, attributes TEXT NOT NULL, tgt_id TEXT NOT NULL,
    pgt_url TEXT NOT NULL, proxies TEXT NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pgt_expires ON pgt (expires);
CREATE INDEX IF NOT EXISTS pgt_tgt ON pgt (tgt_id);
CREATE TABLE IF NOT EXISTS logout (
    tgt_id TEXT NOT NULL, ticket_id TEXT NOT NULL, service TEXT NOT NULL,
    service_id TEXT NOT NULL, bound REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS logout_tgt ON logout (tgt_id);
CREATE INDEX IF NOT EXISTS logout_bound ON logout (bound);
"""

_ST_COLUMNS = "id, service, service_id, user, attributes, tgt_id, is_primary, expires, proxies"
#: The statements of the hot path (checked for index use by the tests).
SQL = {
    "add_tgt": "INSERT INTO tgt (id, user, attributes, created, last_used, expires) VALUES (?,?,?,?,?,?)",
    "add_st": f"INSERT INTO st ({_ST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "add_logout": "INSERT INTO logout (tgt_id, ticket_id, service, service_id, bound) VALUES (?, ?, ?, ?, ?)",
    "add_pgt": "INSERT INTO pgt (id, user, attributes, tgt_id, pgt_url, proxies, expires) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "take": f"DELETE FROM st WHERE id = ? RETURNING {_ST_COLUMNS}",
    "get_tgt": "SELECT id, user, attributes, created, last_used, expires FROM tgt WHERE id = ?",
    "touch_tgt": "UPDATE tgt SET last_used = ? "
    "WHERE id = ? AND last_used < ? AND last_used > ? AND expires > ?",
    "get_pgt": "SELECT id, user, attributes, tgt_id, pgt_url, proxies, expires FROM pgt WHERE id = ?",
    "end_tgt": "DELETE FROM tgt WHERE id = ?",
    "end_pgts": "DELETE FROM pgt WHERE tgt_id = ?",
    "end_sts": "DELETE FROM st WHERE tgt_id = ?",
    "session_services": "SELECT service, service_id, ticket_id FROM logout WHERE tgt_id = ? ORDER BY rowid",
    "end_logout": "DELETE FROM logout WHERE tgt_id = ?",
    "purge_tgt_hard": "DELETE FROM tgt WHERE id IN (SELECT id FROM tgt WHERE expires <= ? LIMIT ?) "
    "RETURNING id",
    "purge_tgt_idle": "DELETE FROM tgt WHERE id IN (SELECT id FROM tgt WHERE last_used <= ? LIMIT ?) "
    "RETURNING id",
    "purge_st": "DELETE FROM st WHERE id IN (SELECT id FROM st WHERE expires <= ? LIMIT ?)",
    "purge_pgt": "DELETE FROM pgt WHERE id IN (SELECT id FROM pgt WHERE expires <= ? LIMIT ?)",
    "purge_logout": "DELETE FROM logout WHERE rowid IN (SELECT rowid FROM logout WHERE bound <= ? LIMIT ?)",
    "count_tgt": "SELECT COUNT(*) FROM tgt WHERE expires > ? AND last_used > ?",
    "count_st": "SELECT substr(id, 1, 2), COUNT(*) FROM st WHERE expires > ? GROUP BY 1",
    "count_pgt": "SELECT COUNT(*) FROM pgt WHERE expires > ?",
}
#: Rows deleted per table and purge when purging in passing (keeps an ``add`` fast).
PURGE_BATCH = 2000
#: Connections a forked child inherited: kept referenced, never closed there (SQLite forbids
#: using a connection across fork, closing included).
_INHERITED: list[sqlite3.Connection] = []


def _dump_attributes(attributes: Attributes) -> str:
    return json.dumps({name: list(values) for name, values in attributes.items()}, separators=(",", ":"))


def _load_attributes(text: str) -> Mapping[str, tuple[str, ...]]:
    return {name: tuple(values) for name, values in json.loads(text).items()}


def _st(row: tuple) -> ServiceTicket:  # type: ignore[type-arg]
    id_, service, service_id, user, attributes, tgt_id, primary, expires, proxies = row
    return ServiceTicket(
        id=id_,
        service=service,
        service_id=service_id,
        user=user,
        attributes=_load_attributes(attributes),
        tgt_id=tgt_id,
        primary=bool(primary),
        expires=expires,
        proxies=tuple(json.loads(proxies)),
    )


class _Holder:
    """One thread's connection; closed when the thread's local storage goes away."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():
            self.conn.close()
        else:
            _INHERITED.append(self.conn)

    def __del__(self) -> None:
        self.close()


class _WriteGate:
    """The writers of one database file take turns here: the threads of a process on a lock (each
    woken as soon as it is free), the processes on an advisory ``flock`` of ``<database>-writer``
    (tried every 50 µs to 1 ms). Waiting past ``timeout`` raises :class:`sqlite3.OperationalError`,
    as SQLite's own busy timeout would."""

    def __init__(self, database: Path, timeout: float) -> None:
        self._path = database.with_name(database.name + "-writer")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=self._timeout):
            raise sqlite3.OperationalError("waited too long for the other writers of this process")
        try:
            fd = self._file()
            deadline, pause = time.monotonic() + self._timeout, 50e-6
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise sqlite3.OperationalError(
                            "waited too long for the other writer processes"
                        ) from None
                    time.sleep(pause)
                    pause = min(2 * pause, 0.001)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class SqliteRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` in an SQLite file.

    :param path: database file (created with its tables if missing; its folder must exist).
    :param lifetimes: gives the idle limit of sessions.
    :param timeout: seconds to wait for a lock before :class:`RegistryUnavailable`.
    :param purge_every: purge expired rows every this many additions (0: never in passing).
    :param clock: time used for purges in passing.
    :raises RegistryUnavailable: the file cannot be opened or is not a ticket database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        lifetimes: Lifetimes,
        *,
        timeout: float = 5.0,
        purge_every: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sqlite3.sqlite_version_info < (3, 35, 0):
            raise RuntimeError(
                f"SQLite >= 3.35 is needed (DELETE … RETURNING), found {sqlite3.sqlite_version}"
            )
        self._path = Path(path)
        self._lifetimes = lifetimes
        self._timeout = timeout
        self._purge_every = purge_every
        self._clock = clock
        self._local = threading.local()
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._gate = _WriteGate(self._path, timeout)
        self._adds = 0
        self._closed = False
        with self._errors():
            self._create_schema(self._conn())

    # Connections

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is not None and holder.pid == os.getpid():
            return holder.conn
        if self._closed:
            raise RegistryUnavailable("the ticket registry is closed")
        holder = _Holder(self._open())
        self._local.holder = holder
        with self._lock:
            self._holders.add(holder)
        return holder.conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RegistryUnavailable(f"{self._path}: ticket database schema {version} is not supported")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"ticket already stored: {exc}") from exc
        except sqlite3.Error as exc:
            raise RegistryUnavailable(f"ticket database {self._path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection, for one writing statement, once this writer's turn has come."""
        with self._errors(), self._gate():
            yield self._conn()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors(), self._gate():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    logger.warning("rollback failed on the ticket database")
                raise
            conn.execute("COMMIT")

    # The contract

    def add(self, *tickets: Ticket) -> None:
        with self._transaction() as conn:
            for ticket in tickets:
                self._insert(conn, ticket)
        self._purge_in_passing()

    def _insert(self, conn: sqlite3.Connection, ticket: Ticket) -> None:
        if isinstance(ticket, GrantingTicket):
            conn.execute(
                SQL["add_tgt"],
                (
                    ticket.id,
                    ticket.user,
                    _dump_attributes(ticket.attributes),
                    ticket.created,
                    ticket.last_used,
                    ticket.expires,
                ),
            )
        elif isinstance(ticket, ServiceTicket):
            conn.execute(
                SQL["add_st"],
                (
                    ticket.id,
                    ticket.service,
                    ticket.service_id,
                    ticket.user,
                    _dump_attributes(ticket.attributes),
                    ticket.tgt_id,
                    int(ticket.primary),
                    ticket.expires,
                    json.dumps(list(ticket.proxies)),
                ),
            )
            bound = ticket.expires + self._lifetimes.tgt_max
            conn.execute(
                SQL["add_logout"], (ticket.tgt_id, ticket.id, ticket.service, ticket.service_id, bound)
            )
        else:
            conn.execute(
                SQL["add_pgt"],
                (
                    ticket.id,
                    ticket.user,
                    _dump_attributes(ticket.attributes),
                    ticket.tgt_id,
                    ticket.pgt_url,
                    json.dumps(list(ticket.proxies)),
                    ticket.expires,
                ),
            )

    def _purge_in_passing(self) -> None:
        if self._purge_every <= 0:
            return
        with self._lock:
            self._adds += 1
            due = self._adds % self._purge_every == 0
        if due:
            removed = self._purge(self._clock(), PURGE_BATCH)
            logger.debug("purged %d expired tickets", removed)

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        with self._write() as conn:
            # fetchall: the statement must run to completion, ending its write transaction.
            rows = conn.execute(SQL["take"], (ticket_id,)).fetchall()
        if not rows:
            return None
        ticket = _st(rows[0])
        return ticket if now < ticket.expires else None

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        with self._errors():
            row = self._conn().execute(SQL["get_tgt"], (tgt_id,)).fetchone()
        if row is None:
            return None
        id_, user, attributes, created, last_used, expires = row
        if now >= expires or now >= last_used + self._lifetimes.tgt_idle:
            return None
        return GrantingTicket(
            id=id_,
            user=user,
            attributes=_load_attributes(attributes),
            created=created,
            last_used=last_used,
            expires=expires,
        )

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        with self._write() as conn:
            conn.execute(SQL["touch_tgt"], (now, tgt_id, now, now - self._lifetimes.tgt_idle, now))

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        with self._errors():
            row = self._conn().execute(SQL["get_pgt"], (pgt_id,)).fetchone()
        if row is None:
            return None
        id_, user, attributes, tgt_id, pgt_url, proxies, expires = row
        if now >= expires:
            return None
        return ProxyGrantingTicket(
            id=id_,
            user=user,
            attributes=_load_attributes(attributes),
            tgt_id=tgt_id,
            pgt_url=pgt_url,
            proxies=tuple(json.loads(proxies)),
            expires=expires,
        )

    def end_session(self, tgt_id: str) -> list[SessionService]:
        with self._transaction() as conn:
            rows = conn.execute(SQL["session_services"], (tgt_id,)).fetchall()
            for statement in ("end_tgt", "end_pgts", "end_sts", "end_logout"):
                conn.execute(SQL[statement], (tgt_id,))
        return [SessionService(service=s, service_id=sid, ticket_id=tid) for s, sid, tid in rows]

    def purge(self, now: float) -> int:
        return self._purge(now, None)

    def _purge(self, now: float, batch: int | None) -> int:
        limit = -1 if batch is None else batch  # LIMIT -1: no limit
        removed = 0
        with self._transaction() as conn:
            dead: list[str] = []
            for statement, bound in (
                ("purge_tgt_hard", now),
                ("purge_tgt_idle", now - self._lifetimes.tgt_idle),
            ):
                dead.extend(row[0] for row in conn.execute(SQL[statement], (bound, limit)).fetchall())
            removed += len(dead)
            # A dead session gets no single logout: its records and PGTs go with it.
            for statement in ("end_pgts", "end_logout"):
                cursor = conn.executemany(SQL[statement], [(tgt_id,) for tgt_id in dead])
                removed += cursor.rowcount if statement == "end_pgts" else 0
            for statement in ("purge_st", "purge_pgt"):
                removed += conn.execute(SQL[statement], (now, limit)).rowcount
            conn.execute(SQL["purge_logout"], (now, limit))
        return removed

    def stats(self, now: float) -> dict[str, int]:
        with self._errors():
            conn = self._conn()
            counts = {kind.value: 0 for kind in (Kind.TGT, Kind.ST, Kind.PT, Kind.PGT)}
            counts["TGT"] = conn.execute(SQL["count_tgt"], (now, now - self._lifetimes.tgt_idle)).fetchone()[
                0
            ]
            for prefix, count in conn.execute(SQL["count_st"], (now,)).fetchall():
                counts[prefix] = count
            counts["PGT"] = conn.execute(SQL["count_pgt"], (now,)).fetchone()[0]
        return counts

    def ping(self) -> None:
        with self._errors():
            self._conn().execute("SELECT 1 FROM tgt LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every connection this process opened; the registry is unusable afterwards."""
        with self._lock:
            self._closed = True
            holders = list(self._holders)
            self._holders = weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()
        self._gate.close()
