"""Redis ticket registry: shared by every SSO node, each key expiring with its ticket.

Layout (``prefix`` is ``sso:`` by default; ids carry their kind, CAS 3.0 §3):

- ``sso:ST-…`` / ``sso:PT-…``: a string, the ticket as a compact JSON array, ``PX`` = the service
  ticket lifetime. :meth:`RedisRegistry.take` is one ``GETDEL`` (Redis ≥ 6.2): of concurrent
  callers on any node, exactly one gets the value (CAS 3.0 §3.1.2: single use). The array ends
  with the session's creation time and hard end, so validation reads nothing else; it is stored
  only while its session's hash is (checked in the same script), and the session's end deletes
  it. An array without them (stored before they were) is completed from the session.
- ``sso:PGT-…``: a string, the PGT as a JSON array, ``PX`` = the PGT lifetime.
- ``sso:TGT-…``: a hash, the session *and* its index in one key, so that both share one TTL and
  die together: ``u`` user, ``a`` attributes (JSON), ``c`` created, ``l`` last used, ``e`` hard
  end; ``#1``, ``#2``… the single-logout targets in issue order (JSON ``[service, service id,
  ticket id]``), ``n`` their counter; one field per PGT id of the session. Its ``PX`` is
  ``min(idle, hard end − last use)``, refreshed on every :meth:`~RedisRegistry.touch_tgt` (a Lua
  script: the check "alive and not rewound" and the update are one atomic step).

Expiry is decided from the times stored in the ticket and the caller's ``now``, as in the other
back-ends; the key TTLs only make Redis forget what no longer matters, so nothing needs purging
in production. :meth:`~RedisRegistry.purge` and :meth:`~RedisRegistry.stats` walk the keys with
``SCAN`` (administration, not the hot path).

Every Redis failure (refused, timed out, read-only replica during a failover, out of memory) is
:class:`~sso.tickets.registry.RegistryUnavailable`. Connections come from one pool per process
(redis-py checks the pid after a ``fork``); each has a connect and a read timeout, and a failed
command is retried once on a fresh connection (a Redis restart costs no request). Plain Redis or
Sentinel only: the Lua scripts and transactions touch a session and its tickets together, which
Redis Cluster would need hash tags for.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

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

#: Seconds to open a connection, and to wait for any answer, unless the URL says otherwise.
DEFAULT_TIMEOUT = 2.0
#: Query parameters accepted in a ``redis://`` URL (passed to redis-py); anything else is a typo.
URL_OPTIONS = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "health_check_interval",
        "max_connections",
        "client_name",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
    }
)
#: Keys read per round trip by :meth:`RedisRegistry.purge` and :meth:`RedisRegistry.stats`.
SCAN_BATCH = 500

#: Session hash fields.
_USER, _ATTRS, _CREATED, _LAST, _END, _COUNTER = b"u", b"a", b"c", b"l", b"e", b"n"
#: Prefix of a single-logout record's field (``#1``, ``#2``…).
_RECORD = b"#"

#: Store an ST/PT/PGT (``SET … NX PX``) and index it in its session's hash, in one step.
#: KEYS: ticket, session. ARGV: value, ttl ms, field ('' → next ``#n``: an ST/PT), field value,
#: ttl ms of a session hash that has none yet. Returns 0 if the id is taken, 2 if an ST/PT's
#: session is gone (nothing stored: see TicketRegistry.add).
_ADD_CHILD = """
if ARGV[3] == '' and redis.call('HEXISTS', KEYS[2], 'e') == 0 then return 2 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
local field = ARGV[3]
if field == '' then field = '#' .. redis.call('HINCRBY', KEYS[2], 'n', 1) end
redis.call('HSET', KEYS[2], field, ARGV[4])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return 1
"""

#: Record use of a live session: refuses to revive (dead hard or idle) or to rewind.
#: KEYS: session. ARGV: now, idle seconds (decimal strings). Returns 1 if touched.
_TOUCH = """
local v = redis.call('HMGET', KEYS[1], 'l', 'e')
if not v[1] or not v[2] then return 0 end
local last, hard = tonumber(v[1]), tonumber(v[2])
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
if now <= last or now >= hard or now >= last + idle then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((math.min(now + idle, hard) - now) * 1000)))
return 1
"""


def _ms(seconds: float) -> int:
    """A key TTL in whole milliseconds, at least 1 (Redis refuses 0)."""
    return max(1, math.ceil(seconds * 1000))


def _number(value: float) -> bytes:
    """A float as Redis keeps it: ``repr`` round-trips exactly, and Lua's ``tonumber`` reads it."""
    return repr(float(value)).encode()


def _dump(value: object) -> bytes:
    # Compact, UTF-8 as such (é is 2 bytes, not 6); surrogatepass keeps any str LDAP gave us.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "surrogatepass") if isinstance(data, bytes) else data


def _load(data: bytes | str) -> Any:
    return json.loads(_text(data))


def _attributes(raw: dict[str, list[str]]) -> Attributes:
    return {name: tuple(values) for name, values in raw.items()}


def _plain(attributes: Attributes) -> dict[str, list[str]]:
    return {name: list(values) for name, values in attributes.items()}


def check_url(url: str) -> None:
    """Refuse a Redis URL redis-py would misread.

    :raises ValueError: not ``redis://``, ``rediss://`` or ``unix://``; a database that is not a
        number; an unknown query parameter. The message never repeats the URL (it may hold a
        password).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed only to refuse a port that is not a number
    except ValueError:
        raise ValueError("tickets url: not a valid Redis URL (redis://[user:pw@]host[:port][/db])") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("tickets url: a Redis URL starts with redis://, rediss:// or unix://")
    if parts.scheme != "unix" and parts.path not in ("", "/") and not parts.path[1:].isdigit():
        raise ValueError("tickets url: the Redis database is a number (redis://host:6379/0)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("tickets url: the Redis URL names no host (redis://host:6379/0)")
    unknown = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)} - URL_OPTIONS)
    if unknown:
        raise ValueError(f"tickets url: unknown Redis option(s) {', '.join(n[:30] for n in unknown)}")


def _expiry_reader(position: int, now: float) -> Callable[[bytes | None], bool | None]:
    """Reads a string ticket whose JSON array has its ``expires`` at ``position``."""

    def read(data: bytes | None) -> bool | None:
        return None if data is None else bool(now < _load(data)[position])

    return read


class RedisRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` in Redis (≥ 6.2, for ``GETDEL``).

    :param client: a redis-py client (binary: ``decode_responses`` off). The registry closes it.
    :param lifetimes: give the key TTLs and the idle limit of sessions.
    :param prefix: put before every key (several deployments may share one database).
    """

    def __init__(self, client: redis.Redis, lifetimes: Lifetimes, *, prefix: str = "sso:") -> None:
        self._client = client
        self._lifetimes = lifetimes
        self._prefix = prefix.encode()
        self._add_child = client.register_script(_ADD_CHILD)
        self._touch = client.register_script(_TOUCH)

    @classmethod
    def from_url(
        cls,
        url: str,
        lifetimes: Lifetimes,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "sso:",
    ) -> RedisRegistry:
        """A registry on the server a URL names; nothing is connected yet.

        ``timeout`` is both the connect and the read timeout, unless the URL sets
        ``socket_connect_timeout`` / ``socket_timeout``.

        :raises ValueError: see :func:`check_url`.
        """
        check_url(url)
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One retry on a new connection after a connection error: a pooled socket that died
            # with a Redis restart is replaced at no cost. No retry after a timeout: a hung
            # server costs one timeout, then RegistryUnavailable.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1, supported_errors=(redis.ConnectionError,)),
            health_check_interval=30,
        )
        return cls(client, lifetimes, prefix=prefix)

    # Helpers

    def _key(self, ticket_id: str) -> bytes:
        return self._prefix + ticket_id.encode()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            # The message names the error, at most host and port: never the URL (password).
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            raise RegistryUnavailable(f"ticket store (Redis): {problem}") from exc

    def _session_ttl(self, tgt: GrantingTicket) -> int:
        return _ms(min(self._lifetimes.tgt_idle, tgt.expires - tgt.last_used))

    def _alive(self, last_used: float, expires: float, now: float) -> bool:
        return now < expires and now < last_used + self._lifetimes.tgt_idle

    # The contract

    def add(self, *tickets: Ticket) -> None:
        """See :meth:`TicketRegistry.add`: one round trip per ticket (a session's hash, then each
        ticket's script, which checks the session it names).

        :raises ValueError: an ST/PT/PGT with this id is already stored.
        """
        for ticket in tickets:
            self._add(ticket)

    def _add(self, ticket: Ticket) -> None:
        if isinstance(ticket, GrantingTicket):
            self._add_tgt(ticket)
            return
        if isinstance(ticket, ServiceTicket):
            value = _dump(
                [
                    ticket.service,
                    ticket.service_id,
                    ticket.user,
                    _plain(ticket.attributes),
                    ticket.tgt_id,
                    int(ticket.primary),
                    ticket.expires,
                    list(ticket.proxies),
                    ticket.auth_time,
                    ticket.session_expires,
                ]
            )
            ttl, field = self._lifetimes.service_ticket, b""
            record = _dump([ticket.service, ticket.service_id, ticket.id])
        else:
            value = _dump(
                [
                    ticket.user,
                    _plain(ticket.attributes),
                    ticket.tgt_id,
                    ticket.pgt_url,
                    list(ticket.proxies),
                    ticket.expires,
                ]
            )
            ttl, field, record = self._lifetimes.pgt, ticket.id.encode(), b""
        with self._errors():
            stored = self._add_child(
                keys=[self._key(ticket.id), self._key(ticket.tgt_id)],
                args=[value, _ms(ttl), field, record, _ms(self._lifetimes.tgt_max)],
            )
        if not stored:
            raise ValueError(f"ticket already stored: {ticket.kind.value}")
        if stored == 2:
            logger.debug("ticket not stored: its session is not in the store")

    def _add_tgt(self, tgt: GrantingTicket) -> None:
        key = self._key(tgt.id)
        fields = {
            _USER: tgt.user.encode("utf-8", "surrogatepass"),
            _ATTRS: _dump(_plain(tgt.attributes)),
            _CREATED: _number(tgt.created),
            _LAST: _number(tgt.last_used),
            _END: _number(tgt.expires),
        }
        with self._errors():
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(key, self._session_ttl(tgt))
            pipe.execute()

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        """See :meth:`TicketRegistry.take`: one ``GETDEL``, atomic across nodes."""
        if Kind.of(ticket_id) not in (Kind.ST, Kind.PT):
            return None  # never consume a session or a PGT
        with self._errors():
            data = self._client.getdel(self._key(ticket_id))
        if data is None:
            return None
        values = _load(data)
        service, service_id, user, attributes, tgt_id, primary, expires, proxies = values[:8]
        if now >= expires:
            return None
        if len(values) >= 10:
            auth_time, session_expires = values[8], values[9]
        else:
            auth_time, session_expires = self._session_times(tgt_id, now)
        return ServiceTicket(
            id=ticket_id,
            service=service,
            service_id=service_id,
            user=user,
            attributes=_attributes(attributes),
            tgt_id=tgt_id,
            primary=bool(primary),
            expires=expires,
            auth_time=auth_time,
            session_expires=session_expires,
            proxies=tuple(proxies),
        )

    def _session_times(self, tgt_id: str, now: float) -> tuple[float, float]:
        """Creation time and hard end of a live session, for a ticket stored without them (by a
        version that had validation read the session: the few seconds of tickets alive at an
        upgrade). A session that is gone gives ``(0, 0)``: the ticket is refused, as then."""
        tgt = self.get_tgt(tgt_id, now)
        return (tgt.created, tgt.expires) if tgt is not None else (0.0, 0.0)

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        """See :meth:`TicketRegistry.get_tgt`."""
        if Kind.of(tgt_id) is not Kind.TGT:
            return None
        with self._errors():
            user, attributes, created, last_used, expires = self._client.hmget(
                self._key(tgt_id), [_USER, _ATTRS, _CREATED, _LAST, _END]
            )
        if user is None or attributes is None or created is None or last_used is None or expires is None:
            return None  # unknown, expired by Redis, or an index whose session is gone
        if not self._alive(float(last_used), float(expires), now):
            return None
        return GrantingTicket(
            id=tgt_id,
            user=_text(user),
            attributes=_attributes(_load(attributes)),
            created=float(created),
            last_used=float(last_used),
            expires=float(expires),
        )

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        """See :meth:`TicketRegistry.touch_tgt`; also pushes the key's TTL to the new idle end."""
        if Kind.of(tgt_id) is not Kind.TGT:
            return
        with self._errors():
            self._touch(keys=[self._key(tgt_id)], args=[_number(now), _number(self._lifetimes.tgt_idle)])

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        """See :meth:`TicketRegistry.get_pgt`."""
        if Kind.of(pgt_id) is not Kind.PGT:
            return None
        with self._errors():
            data = self._client.get(self._key(pgt_id))
        if data is None:
            return None
        user, attributes, tgt_id, pgt_url, proxies, expires = _load(data)
        if now >= expires:
            return None
        return ProxyGrantingTicket(
            id=pgt_id,
            user=user,
            attributes=_attributes(attributes),
            tgt_id=tgt_id,
            pgt_url=pgt_url,
            proxies=tuple(proxies),
            expires=expires,
        )

    def end_session(self, tgt_id: str) -> list[SessionService]:
        """See :meth:`TicketRegistry.end_session`: read the session's hash and delete it with its
        outstanding tickets and PGTs in one ``MULTI`` (``WATCH``ed: retried if a ticket was
        issued in between)."""
        if Kind.of(tgt_id) is not Kind.TGT:
            return []
        fields, _ = self._drop_session(tgt_id, outstanding_tickets=True)
        records = sorted(
            (int(name[1:]), _load(value)) for name, value in fields.items() if name.startswith(_RECORD)
        )
        return [
            SessionService(service, service_id, ticket_id) for _, (service, service_id, ticket_id) in records
        ]

    def _drop_session(self, tgt_id: str, *, outstanding_tickets: bool) -> tuple[dict[bytes, bytes], int]:
        """Delete a session hash, its PGTs and (if asked) its STs/PTs.

        :returns: the hash's fields, and how many keys were deleted.
        """
        key = self._key(tgt_id)
        seen: dict[bytes, bytes] = {}

        def transaction(pipe: redis.client.Pipeline) -> None:
            fields: dict[bytes, bytes] = pipe.hgetall(key)  # type: ignore[assignment]
            seen.clear()  # run again after a concurrent change (WATCH)
            seen.update(fields)
            children = [self._prefix + name for name in fields if name.startswith(b"PGT-")]
            if outstanding_tickets:
                children += [
                    self._key(_load(value)[2]) for name, value in fields.items() if name.startswith(_RECORD)
                ]
            pipe.multi()
            pipe.delete(key, *children)

        with self._errors():
            results = cast(list[int], self._client.transaction(transaction, key))
        return seen, int(results[0])

    def purge(self, now: float) -> int:
        """See :meth:`TicketRegistry.purge`. Redis already forgets expired keys by their TTL:
        this removes what is dead by the times stored in it (``now`` from the caller) and not yet
        by its TTL. A dead session takes its PGTs with it, as in the other back-ends."""
        removed = 0
        for batch in self._scan():
            for ticket_id, alive in self._liveness(batch, now):
                if alive is not False:
                    continue
                kind = Kind.of(ticket_id)
                with self._errors():
                    if kind is Kind.TGT:
                        removed += self._drop_session(ticket_id, outstanding_tickets=False)[1]
                    elif kind is Kind.PGT:
                        data = self._client.getdel(self._key(ticket_id))
                        if data is not None:
                            removed += 1
                            self._client.hdel(self._key(_load(data)[2]), ticket_id.encode())
                    else:
                        removed += self._client.delete(self._key(ticket_id))
        return removed

    def stats(self, now: float) -> dict[str, int]:
        """See :meth:`TicketRegistry.stats` (walks every key: for administration)."""
        counts = {kind.value: 0 for kind in (Kind.TGT, Kind.ST, Kind.PT, Kind.PGT)}
        for batch in self._scan():
            for ticket_id, alive in self._liveness(batch, now):
                kind = Kind.of(ticket_id)
                if alive and kind is not None and kind.value in counts:
                    counts[kind.value] += 1
        return counts

    def _scan(self) -> Iterator[list[str]]:
        """The ticket ids under our prefix, a batch at a time."""
        pattern = self._prefix.replace(b"*", b"\\*").replace(b"?", b"\\?") + b"*"
        batch: list[str] = []
        with self._errors():
            for key in self._client.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(key[len(self._prefix) :].decode("ascii", "replace"))
                if len(batch) >= SCAN_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _liveness(self, ids: list[str], now: float) -> list[tuple[str, bool | None]]:
        """Each id with ``True`` (alive), ``False`` (dead by its stored times) or ``None`` (gone,
        or a session index without its session: left to its TTL)."""
        readers: list[tuple[str, Callable[[Any], bool | None]]] = []
        with self._errors():
            pipe = self._client.pipeline(transaction=False)
            for ticket_id in ids:
                kind = Kind.of(ticket_id)
                if kind is Kind.TGT:
                    pipe.hmget(self._key(ticket_id), [_USER, _LAST, _END])
                    readers.append((ticket_id, self._tgt_alive(now)))
                elif kind in (Kind.ST, Kind.PT, Kind.PGT):
                    pipe.get(self._key(ticket_id))
                    readers.append((ticket_id, _expiry_reader(6 if kind is not Kind.PGT else 5, now)))
            values = pipe.execute()
        return [(ticket_id, read(value)) for (ticket_id, read), value in zip(readers, values, strict=True)]

    def _tgt_alive(self, now: float) -> Callable[[Any], bool | None]:
        """Reads ``HMGET u l e`` of a session hash."""

        def read(values: list[bytes | None]) -> bool | None:
            user, last_used, expires = values
            if user is None or last_used is None or expires is None:
                return None
            return self._alive(float(last_used), float(expires), now)

        return read

    def ping(self) -> None:
        """See :meth:`TicketRegistry.ping`."""
        with self._errors():
            self._client.ping()

    def close(self) -> None:
        """Close this process's connections."""
        self._client.close()
