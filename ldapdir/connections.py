"""Connections to real LDAP servers: failover, one reused service connection, a bind pool.

Failover is ours rather than ldap3's ``ServerPool``: the pool only notices
servers that refuse TCP connections (a frozen server that accepts them but
never answers is picked again and again), and when every server is out it
sleeps ``POOLING_LOOP_TIMEOUT`` (a process-wide 10 s) before giving up.
:class:`ServerList` marks a server down on *any* failure, including a
``receive_timeout``, prefers the others for ``server_retry_after`` seconds,
and still tries it last, so a restarted directory is used again at once.

Each new connection gets a new ldap3 ``Server`` object: a ``Server`` that
failed to connect refuses every address for ``RESET_AVAILABILITY_TIMEOUT``
(5 s, process-wide) with "invalid server address", which would delay the
recovery. Connections are reused, so this costs nothing per operation.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPCommunicationError,
    LDAPStartTLSError,
)
from ldap3.protocol.sasl.sasl import validate_simple_password

from ldapdir.errors import DirectoryUnavailable
from ldapdir.settings import DirectorySettings
from ldapdir.wire import SimpleBind

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ldap3 errors that mean "this server cannot be used now" (socket closed,
#: refused, timed out, TLS failure). ldap3's ``rebind`` turns a receive error
#: into ``LDAPBindError``.
NETWORK_ERRORS: tuple[type[Exception], ...] = (LDAPCommunicationError, LDAPBindError, LDAPStartTLSError)

#: Result codes a server answers when it cannot serve (busy, unavailable):
#: another server may.
UNAVAILABLE_CODES = frozenset({51, 52})


class ServerDown(Exception):
    """Internal: the server behind a connection failed; try another one."""


#: Failures after which an operation is retried on another server.
RETRYABLE: tuple[type[Exception], ...] = (ServerDown, *NETWORK_ERRORS)


class VerifiedTls(Tls):  # type: ignore[misc,unused-ignore]
    """TLS with the standard library's verification: CA chain and host name.

    ldap3's own ``Tls`` turns the context's host name check off and checks
    with ``ssl.match_hostname``, deprecated since Python 3.7 (a warning on
    every connection, an error under ``-W error``). Here the default context
    checks both during the handshake, as for HTTPS.
    """

    def __init__(self, ca_file: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(cafile=self.ca_certs_file)
        connection.socket = context.wrap_socket(
            connection.socket, server_hostname=connection.server.host, do_handshake_on_connect=do_handshake
        )
        connection.tls_started = True


@dataclass(frozen=True)
class Target:
    """One configured server."""

    #: Position in ``settings.urls``.
    index: int
    url: str


class ServerList:
    """The configured servers in order, those that failed recently moved last.

    Thread safe. ``clock`` is injectable for tests.
    """

    def __init__(self, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.urls:
            raise ValueError("urls: name at least one LDAP server")
        self._targets = [Target(index, url) for index, url in enumerate(settings.urls)]
        self._down_until = [0.0] * len(self._targets)
        self._retry_after = settings.server_retry_after
        self._clock = clock
        self._lock = threading.Lock()

    def candidates(self) -> list[Target]:
        """Servers to try now, in order: healthy ones first, then the others."""
        now = self._clock()
        with self._lock:
            states = list(zip(self._targets, self._down_until, strict=True))
        return [target for target, until in states if until <= now] + [
            target for target, until in states if until > now
        ]

    def mark_down(self, target: Target) -> None:
        """Prefer other servers for ``server_retry_after`` seconds."""
        with self._lock:
            self._down_until[target.index] = self._clock() + self._retry_after

    def mark_up(self, target: Target) -> None:
        """The server answered: no longer avoid it."""
        with self._lock:
            self._down_until[target.index] = 0.0


def open_connection(
    target: Target, user: str | None, password: str | None, settings: DirectorySettings
) -> Connection:
    """An open connection to ``target``, bound as ``user`` if given.

    :raises ServerDown: the server could not be reached, or refused the bind
        (the service account's credentials are the same on every server, but
        a replica may lack the entry: the next server may accept it).
    """
    tls = VerifiedTls(settings.tls_ca_file or None)
    # get_info=NONE: no schema read on every connection; values are read raw.
    server = Server(target.url, connect_timeout=settings.connect_timeout, get_info=NONE, tls=tls)
    connection = Connection(
        server,
        user=user,
        password=password,
        authentication=SIMPLE if user else None,
        client_strategy=SYNC,
        # ldap3 packs it into SO_RCVTIMEO as whole seconds: a float breaks open().
        receive_timeout=math.ceil(settings.receive_timeout),
        raise_exceptions=False,
        auto_referrals=False,
        check_names=False,
        read_only=False,
    )
    try:
        connection.open(read_server_info=False)
        if settings.start_tls and not server.ssl:
            connection.start_tls(read_server_info=False)
        if user and not connection.bind(read_server_info=False):
            description = connection.result.get("description") if connection.result else "no answer"
            connection.unbind()
            logger.error("LDAP server %s refused the service bind: %s", target.url, description)
            raise ServerDown(f"service bind refused by {target.url}: {description}")
    except NETWORK_ERRORS as error:
        _close_quietly(connection)
        raise ServerDown(f"{target.url}: {error}") from error
    except ssl.SSLError as error:
        _close_quietly(connection)
        raise ServerDown(f"{target.url}: TLS: {error}") from error
    connection.password = None  # kept only as long as needed
    return connection


def _close_quietly(connection: Connection) -> None:
    """Unbind if possible, and close the socket whatever happened (ldap3 leaves
    it open after a failed connect or a broken session)."""
    try:
        if not connection.closed:
            connection.unbind()
    except (LDAPCommunicationError, OSError):
        pass
    finally:
        sock = getattr(connection, "socket", None)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def check_answer(connection: Connection) -> None:
    """Raise :class:`ServerDown` if the last result says the server cannot serve."""
    result = connection.result or {}
    if result.get("result") in UNAVAILABLE_CODES:
        raise ServerDown(f"{connection.server.host}: {result.get('description')}")


def _connect(
    servers: ServerList, user: str | None, password: str | None, settings: DirectorySettings, now: float
) -> Pooled:
    """A connection to the first server (in failover order) that takes it.

    :raises DirectoryUnavailable: none did.
    """
    failures = []
    for target in servers.candidates():
        try:
            connection = open_connection(target, user, password, settings)
        except ServerDown as error:
            servers.mark_down(target)
            failures.append(str(error))
            continue
        servers.mark_up(target)
        return Pooled(connection, target, now)
    raise DirectoryUnavailable("no LDAP server answered: " + "; ".join(failures))


@dataclass
class Pooled:
    """A connection, the server it goes to, and when it was last used."""

    connection: Connection
    target: Target
    last_used: float

    def stale(self, now: float, max_idle: float) -> bool:
        """Closed, or unused for longer than ``max_idle`` seconds (0: never stale)."""
        return self.connection.closed or (max_idle > 0 and now - self.last_used > max_idle)


class ServiceConnection:
    """ONE connection bound as the service account, reused for every search.

    Operations run under a lock (ldap3's SYNC connection is not meant for
    concurrent use). After a network failure the connection is re-opened on
    the next server and the operation retried once; if that fails too,
    :class:`DirectoryUnavailable`.
    """

    def __init__(
        self, servers: ServerList, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._servers = servers
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Pooled | None = None
        #: How many times a connection was opened (for tests and metrics).
        self.opened = 0

    @property
    def connection(self) -> Connection | None:
        """The current connection, if one is open (for tests)."""
        return self._current.connection if self._current else None

    def _ensure(self) -> Pooled:
        now = self._clock()
        if self._current is not None and self._current.stale(now, self._settings.max_idle):
            _close_quietly(self._current.connection)  # idle too long: not the server's fault
            self._current = None
        if self._current is None:
            settings = self._settings
            self._current = _connect(self._servers, settings.bind_dn, settings.bind_password, settings, now)
            self.opened += 1
            logger.info("service connection opened to %s", self._current.target.url)
        return self._current

    def _drop(self) -> None:
        if self._current is not None:
            self._servers.mark_down(self._current.target)
            _close_quietly(self._current.connection)
            self._current = None

    def run(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation(connection)`` on the service connection.

        ``operation`` must raise :class:`ServerDown` (or let ldap3's network
        errors through) when the server failed; anything else it raises or
        returns is passed on.

        :raises DirectoryUnavailable: no server could run it.
        """
        last: Exception | None = None
        with self._lock:
            for attempt in (1, 2):
                current = self._ensure()
                try:
                    value = operation(current.connection)
                    check_answer(current.connection)
                    current.last_used = self._clock()
                    return value
                except RETRYABLE as error:
                    logger.warning(
                        "LDAP server %s failed (attempt %d): %s", current.target.url, attempt, error
                    )
                    self._drop()
                    last = error
            raise DirectoryUnavailable(f"LDAP operation failed twice: {last}")

    def close(self) -> None:
        """Unbind the connection (a later :meth:`run` opens a new one)."""
        with self._lock:
            if self._current is not None:
                _close_quietly(self._current.connection)
                self._current = None


class ServicePool:
    """A few :class:`ServiceConnection` s, opened as needed, each running one operation at a time;
    the most recently used is reused first, so a quiet process keeps a single connection."""

    def __init__(
        self, servers: ServerList, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._servers, self._settings, self._clock = servers, settings, clock
        self._members: list[ServiceConnection] = []
        self._idle: list[ServiceConnection] = []
        self._available = threading.Condition()

    @property
    def opened(self) -> int:
        """How many connections were opened, over all members (for tests and metrics)."""
        return sum(member.opened for member in self._members)

    @property
    def connection(self) -> Connection | None:
        """The connection of the member used last, if open (for tests)."""
        with self._available:
            member = self._idle[-1] if self._idle else (self._members[0] if self._members else None)
        return member.connection if member is not None else None

    def _take(self) -> ServiceConnection:
        wait = self._settings.connect_timeout + self._settings.receive_timeout
        with self._available:
            if not self._idle and len(self._members) < self._settings.service_pool_size:
                member = ServiceConnection(self._servers, self._settings, self._clock)
                self._members.append(member)
                return member
            if not self._available.wait_for(lambda: bool(self._idle), timeout=wait):
                raise DirectoryUnavailable("all LDAP service connections stayed busy")
            return self._idle.pop()

    def run(self, operation: Callable[[Connection], T]) -> T:
        """:meth:`ServiceConnection.run` on a free member."""
        member = self._take()
        try:
            return member.run(operation)
        finally:
            with self._available:
                self._idle.append(member)
                self._available.notify()

    def close(self) -> None:
        """Unbind every member's connection."""
        with self._available:
            members = list(self._members)
        for member in members:
            member.close()


class BindPool:
    """Connections for binding as users, reused (a rebind, not a new TCP
    connection, per login), at most ``bind_pool_size`` of them.

    Keeps user binds off the service connection, whose identity must not change.
    """

    def __init__(
        self, servers: ServerList, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._servers = servers
        self._settings = settings
        self._clock = clock
        self._slots = threading.BoundedSemaphore(settings.bind_pool_size)
        self._idle: list[Pooled] = []
        self._idle_lock = threading.Lock()
        #: The bind request of each set of controls, encoded once (see :mod:`ldapdir.wire`).
        self._requests: dict[tuple[Any, ...], SimpleBind] = {}
        #: How many connections were opened (for tests and metrics).
        self.opened = 0

    @contextmanager
    def _borrow(self) -> Iterator[Connection]:
        wait = self._settings.connect_timeout + self._settings.receive_timeout
        if not self._slots.acquire(timeout=wait):
            raise DirectoryUnavailable("all LDAP bind connections stayed busy")
        try:
            now = self._clock()
            with self._idle_lock:
                pooled = self._idle.pop() if self._idle else None
            if pooled is not None and pooled.stale(now, self._settings.max_idle):
                _close_quietly(pooled.connection)
                pooled = None
            if pooled is None:
                pooled = _connect(self._servers, None, None, self._settings, now)
                self.opened += 1
            try:
                yield pooled.connection
            except ServerDown:
                self._servers.mark_down(pooled.target)
                _close_quietly(pooled.connection)
                raise
            except BaseException:
                _close_quietly(pooled.connection)  # state unknown: not reused, server not blamed
                raise
            if pooled.connection.closed:
                self._servers.mark_down(pooled.target)
            else:
                pooled.last_used = self._clock()
                with self._idle_lock:
                    self._idle.append(pooled)
        finally:
            self._slots.release()

    def bind(self, dn: str, password: str | bytes, controls: list[Any] | None) -> dict[str, Any]:
        """Bind as ``dn`` and return ldap3's result (code, controls…). A ``str`` password is
        SASLprepped (RFC 4013) as ldap3 would; ``bytes`` are sent as they are.

        Retries once on another connection (and server) after a network failure.

        :raises ValueError: an empty password (it would be an unauthenticated bind).
        :raises DirectoryUnavailable: no server answered, or all connections busy.
        """
        secret = validate_simple_password(password) if isinstance(password, str) else password
        key = tuple(controls or ())
        request = self._requests.get(key)
        if request is None:
            request = self._requests[key] = SimpleBind(controls)
        last: Exception | None = None
        for attempt in (1, 2):
            try:
                with self._borrow() as connection:
                    try:
                        result = request.run(connection, dn, secret)
                        check_answer(connection)
                    except RETRYABLE as error:
                        _close_quietly(connection)  # not returned to the pool
                        raise ServerDown(str(error)) from error
                    return dict(result)
            except ServerDown as error:
                logger.warning("LDAP bind failed on the network (attempt %d): %s", attempt, error)
                last = error
        raise DirectoryUnavailable(f"LDAP bind failed twice: {last}")

    def close(self) -> None:
        """Unbind the idle connections."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            _close_quietly(pooled.connection)
