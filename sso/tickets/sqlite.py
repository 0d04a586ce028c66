"""SQLite ticket registry: shared by the worker processes of one machine, kept across restarts.

- WAL journal (readers never wait for the writer). Writers of this registry take turns at a
  :class:`_WriteGate` before SQLite sees them (SQLite's own busy handler sleeps 1, 2, 5, 10… ms
  between tries, long for transactions of tens of microseconds); other programs writing the file
  meet SQLite's busy timeout.
- One connection per thread and per process, opened on first use: a connection is never used by
  two threads, nor across a ``fork`` (gunicorn's workers each open their own).
- :meth:`SqliteRegistry.take` is one ``DELETE … RETURNING`` statement (SQLite ≥ 3.35): of
  concurrent callers, in any process, exactly one gets the ticket.
- Expired rows are purged every ``purge_every`` additions, a bounded batch at a time.
- The WAL is folded back into the database by a thread of each process (:class:`_Checkpointer`),
  not by SQLite inside a commit, where the write gate would make every writer wait for it.
- Any SQLite failure (locked past the timeout, disk full, not a database) is
  :class:`~sso.tickets.registry.RegistryUnavailable`.

Schema (version 2, in ``PRAGMA user_version``). A commit writes each B-tree page it changed to the
WAL, so the cost of a write follows the number of tables and indexes it touches; a sign-in touches
six, a ticket from an existing session three, a validation two:

- ``tgt``: sessions, keyed by id; indexes on ``expires`` and ``last_used`` for the purges of dead
  sessions (hard and idle).
- ``st``: service and proxy tickets, keyed by id; an index on ``expires`` for their purge. A ticket
  carries its session's creation time and hard end (``auth_time``, ``session_expires``), so that
  validation reads nothing else. No index on ``tgt_id``: ending a session finds its outstanding
  tickets through its single-logout records, since every stored ticket has one.
- ``pgt``: proxy-granting tickets, keyed by id; indexes on ``expires`` (purge) and ``tgt_id`` (a
  session ends with its PGTs).
- ``logout``: the single-logout records, ``WITHOUT ROWID`` and keyed by ``(tgt_id, ticket_id)``:
  clustered by session, so the primary key serves the session's look-ups and no other index is
  kept. A record leaves with its session (:meth:`~SqliteRegistry.end_session`, or the purge of a
  dead session), and a ticket is stored only with its record, only while its session is stored:
  no record outlives its session, so none needs purging on its own. ``bound`` (the ticket's
  expiry plus ``tgt_max``: the issue time plus a constant) orders the records.

Every statement on the hot path and in the purges goes through a primary key or an index: the cost
stays flat as the store grows; a test checks the plans. A version-1 file (three more indexes, the
logout records in a rowid table) is migrated in place when opened, in one transaction.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
SCHEMA_VERSION = 2
_LOGOUT_TABLE = """(
    tgt_id TEXT NOT NULL, ticket_id TEXT NOT NULL, service TEXT NOT NULL,
    service_id TEXT NOT NULL, bound REAL NOT NULL,
    PRIMARY KEY (tgt_id, ticket_id)
) WITHOUT ROWID"""
#: The tables of a new file, a statement at a time (run in one transaction).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tgt (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, attributes TEXT NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS tgt_expires ON tgt (expires)",
    "CREATE INDEX IF NOT EXISTS tgt_last_used ON tgt (last_used)",
    # The two session columns come last with a default, as version 1's migration adds them (see
    # MIGRATION): both kinds of file have the same table.
    """CREATE TABLE IF NOT EXISTS st (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, service_id TEXT NOT NULL, user TEXT NOT NULL,
    attributes TEXT NOT NULL, tgt_id TEXT NOT NULL, is_primary INTEGER NOT NULL,
    expires REAL NOT NULL, proxies TEXT NOT NULL,
    auth_time REAL NOT NULL DEFAULT 0, session_expires REAL NOT NULL DEFAULT 0
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS st_expires ON st (expires)",
    """CREATE TABLE IF NOT EXISTS pgt (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, attributes TEXT NOT NULL, tgt_id TEXT NOT NULL,
    pgt_url TEXT NOT NULL, proxies TEXT NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS pgt_expires ON pgt (expires)",
    "CREATE INDEX IF NOT EXISTS pgt_tgt ON pgt (tgt_id)",
    f"CREATE TABLE IF NOT EXISTS logout {_LOGOUT_TABLE}",
)
#: Version 1 to 2, in one transaction with the version change.
MIGRATION = (
    # Records clustered by session. Those of sessions already gone are left behind: version 1
    # purged them by their bound, version 2 only with their session.
    f"CREATE TABLE logout_v2 {_LOGOUT_TABLE}",
    "INSERT OR IGNORE INTO logout_v2 (tgt_id, ticket_id, service, service_id, bound) "
    "SELECT tgt_id, ticket_id, service, service_id, bound FROM logout WHERE tgt_id IN (SELECT id FROM tgt)",
    "DROP TABLE logout",  # and its indexes logout_tgt and logout_bound
    "ALTER TABLE logout_v2 RENAME TO logout",
    "DROP INDEX IF EXISTS st_tgt",
    # Tickets issued before the upgrade take their session's times. One whose session is gone
    # keeps the defaults: a session_expires of 0 is refused at validation, as version 1 (which
    # read the session) refused it.
    "ALTER TABLE st ADD COLUMN auth_time REAL NOT NULL DEFAULT 0",
    "ALTER TABLE st ADD COLUMN session_expires REAL NOT NULL DEFAULT 0",
    "UPDATE st SET auth_time = tgt.created, session_expires = tgt.expires FROM tgt WHERE tgt.id = st.tgt_id",
)

_ST_COLUMNS = (
    "id, service, service_id, user, attributes, tgt_id, is_primary, expires, proxies, "
    "auth_time, session_expires"
)
#: The statements of the hot path and of the purges (checked for index use by the tests).
SQL = {
    "add_tgt": "INSERT INTO tgt (id, user, attributes, created, last_used, expires) VALUES (?,?,?,?,?,?)",
    "add_st": f"INSERT INTO st ({_ST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    # Only while the session is stored (rowcount 0 otherwise: the ticket is not stored either).
    "add_logout": "INSERT INTO logout (tgt_id, ticket_id, service, service_id, bound) "
    "SELECT id, ?2, ?3, ?4, ?5 FROM tgt WHERE id = ?1",
    "add_pgt": "INSERT INTO pgt (id, user, attributes, tgt_id, pgt_url, proxies, expires) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "take": f"DELETE FROM st WHERE id = ? RETURNING {_ST_COLUMNS}",
    "get_tgt": "SELECT id, user, attributes, created, last_used, expires FROM tgt WHERE id = ?",
    "touch_tgt": "UPDATE tgt SET last_used = ? "
    "WHERE id = ? AND last_used < ? AND last_used > ? AND expires > ?",
    "get_pgt": "SELECT id, user, attributes, tgt_id, pgt_url, proxies, expires FROM pgt WHERE id = ?",
    "end_tgt": "DELETE FROM tgt WHERE id = ?",
    "end_pgts": "DELETE FROM pgt WHERE tgt_id = ?",
    # Before end_logout: the session's outstanding tickets are found through its records.
    "end_sts": "DELETE FROM st WHERE id IN (SELECT ticket_id FROM logout WHERE tgt_id = ?)",
    # In issue order (ticket id for tickets issued at the same instant).
    "session_services": "SELECT service, service_id, ticket_id FROM logout WHERE tgt_id = ? "
    "ORDER BY bound, ticket_id",
    "end_logout": "DELETE FROM logout WHERE tgt_id = ?",
    "purge_tgt_hard": "DELETE FROM tgt WHERE id IN (SELECT id FROM tgt WHERE expires <= ? LIMIT ?) "
    "RETURNING id",
    "purge_tgt_idle": "DELETE FROM tgt WHERE id IN (SELECT id FROM tgt WHERE last_used <= ? LIMIT ?) "
    "RETURNING id",
    "purge_st": "DELETE FROM st WHERE id IN (SELECT id FROM st WHERE expires <= ? LIMIT ?)",
    "purge_pgt": "DELETE FROM pgt WHERE id IN (SELECT id FROM pgt WHERE expires <= ? LIMIT ?)",
    "count_tgt": "SELECT COUNT(*) FROM tgt WHERE expires > ? AND last_used > ?",
    "count_st": "SELECT substr(id, 1, 2), COUNT(*) FROM st WHERE expires > ? GROUP BY 1",
    "count_pgt": "SELECT COUNT(*) FROM pgt WHERE expires > ?",
}
_ADD_TGT, _ADD_ST, _ADD_LOGOUT, _ADD_PGT = SQL["add_tgt"], SQL["add_st"], SQL["add_logout"], SQL["add_pgt"]
_TAKE, _GET_TGT = SQL["take"], SQL["get_tgt"]
#: Bytes a checkpointed WAL file is truncated to (SQLite's ``journal_size_limit``).
WAL_SIZE_LIMIT = 64 * 2**20
#: Rows deleted per table and purge when purging in passing (keeps an ``add`` fast).
PURGE_BATCH = 2000
#: Connections a forked child inherited: kept referenced, never closed there (SQLite forbids
#: using a connection across fork, closing included).
_INHERITED: list[sqlite3.Connection] = []

#: One encoder for every row (``json.dumps`` with options builds a new one per call).
_encode = json.JSONEncoder(separators=(",", ":")).encode


class _StoredAttributes(Mapping[str, tuple[str, ...]]):
    """A session's attributes as stored (JSON), decoded when first read. A ticket issued from the
    session stores them again as they are: an SSO redirect neither decodes nor encodes them."""

    __slots__ = ("text", "_decoded")

    def __init__(self, text: str) -> None:
        self.text = text
        self._decoded: Mapping[str, tuple[str, ...]] | None = None

    def _values(self) -> Mapping[str, tuple[str, ...]]:
        if self._decoded is None:
            self._decoded = _load_attributes(self.text)
        return self._decoded

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __repr__(self) -> str:
        return repr(dict(self._values()))


def _dump_attributes(attributes: Attributes) -> str:
    if isinstance(attributes, _StoredAttributes):
        return attributes.text
    # The encoder writes tuples as arrays; it needs a dict, which attributes nearly always are.
    return _encode(attributes if type(attributes) is dict else dict(attributes))


def _load_attributes(text: str) -> Mapping[str, tuple[str, ...]]:
    return {name: tuple(values) for name, values in json.loads(text).items()}


def _dump_proxies(proxies: tuple[str, ...]) -> str:
    return _encode(proxies) if proxies else "[]"


def _load_proxies(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text != "[]" else ()


def _st(row: tuple[Any, ...]) -> ServiceTicket:
    id_, service, service_id, user, attributes, tgt_id, primary, expires, proxies, auth_time, ends = row
    return ServiceTicket(
        id=id_,
        service=service,
        service_id=service_id,
        user=user,
        attributes=_load_attributes(attributes),
        tgt_id=tgt_id,
        primary=bool(primary),
        expires=expires,
        auth_time=auth_time,
        session_expires=ends,
        proxies=_load_proxies(proxies),
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
    as SQLite's own busy timeout would.

    :meth:`acquire` and :meth:`release` rather than a context manager: every write passes here,
    and a generator-based one costs more than the uncontended lock and ``flock`` themselves.
    """

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

    def acquire(self) -> None:
        """Wait for this writer's turn; every successful call is paired with :meth:`release`."""
        if not self._lock.acquire(timeout=self._timeout):
            raise sqlite3.OperationalError("waited too long for the other writers of this process")
        try:
            try:
                fd = self._file()
            except OSError as error:  # no folder, no permission: as SQLite itself would say
                raise sqlite3.OperationalError(f"unable to open the writers' lock file: {error}") from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._wait(fd)
        except BaseException:
            self._lock.release()
            raise

    def _wait(self, fd: int) -> None:
        deadline, pause = time.monotonic() + self._timeout, 50e-6
        while True:
            time.sleep(pause)
            pause = min(2 * pause, 0.001)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("waited too long for the other writer processes") from None

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class _Checkpointer:
    """Folds the WAL back into the database, from a thread of its own in each process.

    SQLite checkpoints on its own in the connection whose commit takes the WAL past 1,000 pages,
    inside that commit, while the write gate is held: every writer of the machine then waited for
    the copy and its ``fsync`` (up to 9 ms measured; under a storm of writes, several times a
    second). Request connections turn that off; this thread runs a PASSIVE checkpoint (it never
    blocks writers or readers) every ``interval`` seconds, and larger, less frequent checkpoints
    copy a page changed by many commits once.
    """

    def __init__(self, open_connection: Callable[[], sqlite3.Connection], interval: float) -> None:
        self._open = open_connection
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running (a forked child starts its own)."""
        if self._pid == os.getpid() or self._interval <= 0:
            return
        with self._lock:
            if self._pid == os.getpid() or self._stop.is_set():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            conn = self._open()
        except sqlite3.Error as error:
            logger.warning("no WAL checkpoints from this process: %s", error)
            return
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # busy, or the disk: the next round tries again
                    logger.debug("WAL checkpoint skipped: %s", error)
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the thread (it finishes the checkpoint in progress)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout=5)


class SqliteRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` in an SQLite file.

    :param path: database file (created with its tables if missing, migrated if of schema
        version 1; its folder must exist).
    :param lifetimes: gives the idle limit of sessions.
    :param timeout: seconds to wait for a lock before :class:`RegistryUnavailable`.
    :param purge_every: purge expired rows every this many additions (0: never in passing).
    :param clock: time used for purges in passing.
    :param checkpoint_every: seconds between WAL checkpoints (0: SQLite checkpoints in the commits).
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
        checkpoint_every: float = 0.25,
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
        # next() on a count is atomic under the GIL: no lock per addition.
        self._adds = itertools.count(1)
        self._closed = False
        self._checkpoint_every = checkpoint_every
        self._checkpointer = _Checkpointer(self._open, checkpoint_every)
        self._ready = False
        with self._errors():
            # The workers of a server open the file together: one at a time at the write gate,
            # the first creates the tables and turns WAL on (SQLite refuses that journal change,
            # without waiting, to a process while another one reads).
            self._gate.acquire()
            try:
                self._create_schema(self._conn())
            finally:
                self._gate.release()
        self._ready = True
        self._checkpointer.ensure_running()

    # Connections

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            if self._checkpoint_every > 0:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _Checkpointer
            # A WAL that grew during a storm is cut back to this size once checkpointed.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
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
        if self._ready:  # not before the file is in WAL mode (see __init__)
            self._checkpointer.ensure_running()
        self._local.holder = holder
        with self._lock:
            self._holders.add(holder)
        return holder.conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Create the tables of a new file, or migrate a version-1 file; refuse other versions."""
        version = self._version(conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(conn)  # again: another process may have been first
            statements: Sequence[str] = {0: SCHEMA, 1: MIGRATION, SCHEMA_VERSION: ()}[version]
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        if version == 1:
            logger.info("ticket database %s migrated from schema 1 to %d", self._path, SCHEMA_VERSION)

    def _version(self, conn: sqlite3.Connection) -> int:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            raise RegistryUnavailable(f"{self._path}: ticket database schema {version} is not supported")
        return version

    # Errors and transactions. The hot paths (add, take, get_tgt) spell out their try blocks
    # instead of using the context managers below: each generator-based one costs a few
    # microseconds per call.

    def _error(self, exc: sqlite3.Error) -> Exception:
        """What a SQLite failure is raised as: an id already stored, or the store unavailable."""
        if isinstance(exc, sqlite3.IntegrityError):
            return ValueError(f"ticket already stored: {exc}")
        return RegistryUnavailable(f"ticket database {self._path}: {exc}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.warning("rollback failed on the ticket database")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors(), self._gate():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    def _write(self, statement: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Run one writing statement to completion once this writer's turn has come; its rows."""
        gate = self._gate
        try:
            gate.acquire()
            try:
                # fetchall: the statement must run to completion, ending its write transaction.
                return self._conn().execute(statement, parameters).fetchall()
            finally:
                gate.release()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # The contract

    def add(self, *tickets: Ticket) -> None:
        gate = self._gate
        try:
            gate.acquire()
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._insert(conn, tickets)
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback(conn)
                    raise
            finally:
                gate.release()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if self._purge_every > 0 and next(self._adds) % self._purge_every == 0:
            removed = self._purge(self._clock(), PURGE_BATCH)
            logger.debug("purged %d expired tickets", removed)

    def _insert(self, conn: sqlite3.Connection, tickets: tuple[Ticket, ...]) -> None:
        # A session and its first ticket share their attributes: encoded once.
        shared: Attributes | None = None
        encoded = ""
        for ticket in tickets:
            if ticket.attributes is not shared:
                shared, encoded = ticket.attributes, _dump_attributes(ticket.attributes)
            if isinstance(ticket, GrantingTicket):
                row: tuple[object, ...] = (
                    ticket.id,
                    ticket.user,
                    encoded,
                    ticket.created,
                    ticket.last_used,
                    ticket.expires,
                )
                conn.execute(_ADD_TGT, row)
            elif isinstance(ticket, ServiceTicket):
                bound = ticket.expires + self._lifetimes.tgt_max
                record = (ticket.tgt_id, ticket.id, ticket.service, ticket.service_id, bound)
                if conn.execute(_ADD_LOGOUT, record).rowcount == 0:
                    # Its session has ended (or was never stored): validation no longer reads
                    # the session, so a ticket is kept only with a record that ends with it.
                    logger.debug("ticket not stored: its session is not in the store")
                    continue
                row = (
                    ticket.id,
                    ticket.service,
                    ticket.service_id,
                    ticket.user,
                    encoded,
                    ticket.tgt_id,
                    int(ticket.primary),
                    ticket.expires,
                    _dump_proxies(ticket.proxies),
                    ticket.auth_time,
                    ticket.session_expires,
                )
                conn.execute(_ADD_ST, row)
            else:
                row = (
                    ticket.id,
                    ticket.user,
                    encoded,
                    ticket.tgt_id,
                    ticket.pgt_url,
                    _dump_proxies(ticket.proxies),
                    ticket.expires,
                )
                conn.execute(_ADD_PGT, row)

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        rows = self._write(_TAKE, (ticket_id,))
        if not rows or now >= rows[0][7]:  # unknown, or expired (consumed all the same)
            return None
        return _st(rows[0])

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        try:
            row = self._conn().execute(_GET_TGT, (tgt_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if row is None:
            return None
        id_, user, attributes, created, last_used, expires = row
        if now >= expires or now >= last_used + self._lifetimes.tgt_idle:
            return None
        return GrantingTicket(
            id=id_,
            user=user,
            attributes=_StoredAttributes(attributes),
            created=created,
            last_used=last_used,
            expires=expires,
        )

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        self._write(SQL["touch_tgt"], (now, tgt_id, now, now - self._lifetimes.tgt_idle, now))

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
            proxies=_load_proxies(proxies),
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
            # A dead session gets no single logout: its records and PGTs go with it (its
            # tickets expire on their own, refused meanwhile past their session's end).
            for statement in ("end_pgts", "end_logout"):
                cursor = conn.executemany(SQL[statement], [(tgt_id,) for tgt_id in dead])
                removed += cursor.rowcount if statement == "end_pgts" else 0
            for statement in ("purge_st", "purge_pgt"):
                removed += conn.execute(SQL[statement], (now, limit)).rowcount
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
        self._checkpointer.stop()
        with self._lock:
            self._holders = weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()
        self._gate.close()
