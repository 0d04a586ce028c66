"""The Redis registry beyond the contract: key TTLs, atomic single use across nodes, memory per
ticket, outages and recovery, URLs. On a real redis-server (see tests/support/redis.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sso.tickets.ids import new_id
from sso.tickets.model import GrantingTicket, Kind, Lifetimes, ProxyGrantingTicket, ServiceTicket
from sso.tickets.redis import RedisRegistry, check_url
from sso.tickets.registry import RegistryUnavailable, open_registry
from tests.support.redis import RedisServer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

LIFETIMES = Lifetimes(service_ticket=10.0, tgt_max=8 * 3600.0, tgt_idle=2 * 3600.0, pgt=2 * 3600.0)
#: What a directory typically releases for a student (SUPANN/eduPerson names).
ATTRIBUTES = {
    "uid": ("cdurand",),
    "mail": ("camille.durand@etu.univ-demo.fr",),
    "cn": ("Camille Durand",),
    "displayName": ("Camille Durand",),
    "givenName": ("Camille",),
    "sn": ("Durand",),
    "eduPersonAffiliation": ("student", "member"),
}
#: Bytes Redis may spend (``MEMORY USAGE``) on one session and on one service ticket, as measured
#: with the attributes above (752 and 488 with Redis 7.0 on x86-64); the margin absorbs allocator
#: differences, not a change of layout.
SESSION_BUDGET = 1000
TICKET_BUDGET = 640
#: Seconds per connect and read in the outage tests.
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture
def client(server: RedisServer):  # type: ignore[no-untyped-def]
    if not server.running:
        server.start()
    with server.client() as opened:
        opened.flushdb()
        yield opened


@pytest.fixture
def registry(server: RedisServer, client) -> Iterator[RedisRegistry]:  # type: ignore[no-untyped-def]
    store = RedisRegistry.from_url(server.url + "/0", LIFETIMES, timeout=TIMEOUT)
    yield store
    store.close()


def session(now: float | None = None, user: str = "cdurand") -> GrantingTicket:
    now = time.time() if now is None else now
    return GrantingTicket(
        id=new_id(Kind.TGT),
        user=user,
        attributes=ATTRIBUTES,
        created=now,
        last_used=now,
        expires=now + LIFETIMES.tgt_max,
    )


def service_ticket(tgt: GrantingTicket, service: str = "https://moodle.univ-demo.fr/login/index.php"):  # type: ignore[no-untyped-def]
    return ServiceTicket(
        id=new_id(Kind.ST),
        service=service,
        service_id="moodle",
        user=tgt.user,
        attributes=tgt.attributes,
        tgt_id=tgt.id,
        primary=True,
        expires=time.time() + LIFETIMES.service_ticket,
        auth_time=tgt.created,
        session_expires=tgt.expires,
    )


def pgt_of(tgt: GrantingTicket) -> ProxyGrantingTicket:
    return ProxyGrantingTicket(
        id=new_id(Kind.PGT),
        user=tgt.user,
        attributes=tgt.attributes,
        tgt_id=tgt.id,
        pgt_url="https://portail.univ-demo.fr/pgt",
        proxies=(),
        expires=time.time() + LIFETIMES.pgt,
    )


def test_server_has_getdel(client) -> None:  # type: ignore[no-untyped-def]
    version = tuple(int(part) for part in client.info("server")["redis_version"].split(".")[:2])
    assert version >= (6, 2), "GETDEL (atomic take) needs Redis 6.2"


# Key TTLs come from the lifetimes


def test_ttls_follow_the_lifetimes(registry: RedisRegistry, client) -> None:  # type: ignore[no-untyped-def]
    tgt = session()
    st = service_ticket(tgt)
    pgt = pgt_of(tgt)
    for ticket in (tgt, st, pgt):
        registry.add(ticket)
    assert 0 < client.pttl(f"sso:{st.id}") <= LIFETIMES.service_ticket * 1000
    assert LIFETIMES.tgt_idle * 1000 - 5000 < client.pttl(f"sso:{tgt.id}") <= LIFETIMES.tgt_idle * 1000
    assert LIFETIMES.pgt * 1000 - 5000 < client.pttl(f"sso:{pgt.id}") <= LIFETIMES.pgt * 1000


def test_touch_pushes_the_ttl_to_the_idle_end_but_never_past_the_hard_end(
    registry: RedisRegistry,
    client,  # type: ignore[no-untyped-def]
) -> None:
    now = time.time()
    created = now - LIFETIMES.tgt_max + 600  # 10 minutes of its 8 hours left, used a minute ago
    tgt = GrantingTicket(
        new_id(Kind.TGT), "cdurand", ATTRIBUTES, created, now - 60, created + LIFETIMES.tgt_max
    )
    registry.add(tgt)
    registry.touch_tgt(tgt.id, now)
    assert 590_000 < client.pttl(f"sso:{tgt.id}") <= 600_000, "bounded by the hard end"

    young = session(now - 3600)
    registry.add(young)
    first = client.pttl(f"sso:{young.id}")
    registry.touch_tgt(young.id, now)
    refreshed = client.pttl(f"sso:{young.id}")
    assert first <= LIFETIMES.tgt_idle * 1000 and refreshed > LIFETIMES.tgt_idle * 1000 - 5000
    assert registry.get_tgt(young.id, now).last_used == now  # type: ignore[union-attr]


def test_tickets_expire_in_redis(server: RedisServer, client) -> None:  # type: ignore[no-untyped-def]
    short = Lifetimes(service_ticket=0.2, tgt_max=0.6, tgt_idle=0.3, pgt=0.2)
    store = RedisRegistry.from_url(server.url, short)
    try:
        now = time.time()
        tgt = GrantingTicket(new_id(Kind.TGT), "cdurand", ATTRIBUTES, now, now, now + short.tgt_max)
        st = ServiceTicket(
            new_id(Kind.ST), "https://a.fr/", "a", "cdurand", {}, tgt.id, True, now + 0.2, now, tgt.expires
        )
        store.add(tgt)
        store.add(st)
        assert client.exists(f"sso:{tgt.id}", f"sso:{st.id}") == 2
        wait_until(lambda: client.exists(f"sso:{st.id}") == 0, 10, "ST key expiry")
        wait_until(lambda: client.exists(f"sso:{tgt.id}") == 0, 10, "session key expiry")
        assert store.take(st.id, now) is None, "gone from Redis, whatever the caller's clock"
        assert store.get_tgt(tgt.id, now) is None
        assert client.dbsize() == 0, "nothing left behind (index included)"
    finally:
        store.close()


# Single use, across nodes


def test_one_ticket_validated_from_many_threads_on_two_nodes_succeeds_once(
    server: RedisServer, client
) -> None:  # type: ignore[no-untyped-def]
    nodes = [RedisRegistry.from_url(server.url, LIFETIMES) for _ in range(2)]
    try:
        tgt = session()
        nodes[0].add(tgt)
        tickets = [service_ticket(tgt) for _ in range(25)]
        lock = threading.Lock()
        for ticket in tickets:
            nodes[0].add(ticket)
        for ticket in tickets:
            barrier = threading.Barrier(16)
            wins: list[ServiceTicket] = []

            def validate(
                node: RedisRegistry, ticket: ServiceTicket = ticket, barrier=barrier, wins=wins
            ) -> None:  # type: ignore[no-untyped-def]
                barrier.wait()
                got = node.take(ticket.id, time.time())
                if got is not None:
                    with lock:
                        wins.append(got)

            threads = [threading.Thread(target=validate, args=(nodes[i % 2],)) for i in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert wins == [ticket]
    finally:
        for node in nodes:
            node.close()


def test_session_seen_and_ended_from_another_node(server: RedisServer, client) -> None:  # type: ignore[no-untyped-def]
    node_a = RedisRegistry.from_url(server.url, LIFETIMES)
    node_b = RedisRegistry.from_url(server.url, LIFETIMES)
    try:
        tgt = session()
        node_a.add(tgt)
        first, second = (
            service_ticket(tgt, "https://a.univ-demo.fr/"),
            service_ticket(tgt, "https://b.univ-demo.fr/"),
        )
        node_a.add(first)
        node_b.add(second)
        pgt = pgt_of(tgt)
        node_a.add(pgt)
        assert node_b.get_tgt(tgt.id, time.time()) == tgt
        assert node_b.take(first.id, time.time()) == first
        ended = node_b.end_session(tgt.id)
        assert [record.ticket_id for record in ended] == [first.id, second.id]
        assert node_a.get_tgt(tgt.id, time.time()) is None
        assert node_a.get_pgt(pgt.id, time.time()) is None
        assert client.dbsize() == 0, "the session, its index, its outstanding ticket and its PGT are gone"
    finally:
        node_a.close()
        node_b.close()


def test_keys_stay_under_the_prefix(server: RedisServer, client) -> None:  # type: ignore[no-untyped-def]
    mine = RedisRegistry(client, LIFETIMES, prefix="ent-a:")
    theirs = RedisRegistry.from_url(server.url, LIFETIMES, prefix="ent-b:")
    try:
        tgt = session()
        mine.add(tgt)
        mine.add(service_ticket(tgt))
        assert all(key.startswith(b"ent-a:") for key in client.keys("*"))
        assert theirs.get_tgt(tgt.id, time.time()) is None
        assert theirs.stats(time.time()) == {"TGT": 0, "ST": 0, "PT": 0, "PGT": 0}
        assert mine.stats(time.time()) == {"TGT": 1, "ST": 1, "PT": 0, "PGT": 0}
    finally:
        theirs.close()


#: Ids of other kinds than a method expects (each would be a WRONGTYPE error if sent as is).
WRONG_KINDS = {
    "take": ("TGT", "PGT"),
    "get_tgt": ("ST", "PGT"),
    "touch_tgt": ("ST", "PGT"),
    "end_session": ("ST", "PGT"),
    "get_pgt": ("TGT", "ST"),
}
HOSTILE_IDS = ("ST-*", "TGT-?", "PGT-[a]", "", "-", "sso:TGT-x", "TGT-" + "a" * 300)


@pytest.mark.parametrize("method", list(WRONG_KINDS))
def test_ids_of_the_wrong_kind_or_hostile_are_unknown_not_errors(
    registry: RedisRegistry, client, method: str
) -> None:  # type: ignore[no-untyped-def]
    tgt = session()
    st = service_ticket(tgt)
    pgt = pgt_of(tgt)
    for ticket in (tgt, st, pgt):
        registry.add(ticket)
    by_kind = {"TGT": tgt.id, "ST": st.id, "PGT": pgt.id}
    before = sorted(client.keys("*"))
    call = getattr(registry, method)
    for wrong in (*(by_kind[kind] for kind in WRONG_KINDS[method]), *HOSTILE_IDS):
        result = call(wrong) if method == "end_session" else call(wrong, time.time())
        assert result in (None, []), wrong
    assert sorted(client.keys("*")) == before, "nothing consumed or created"


def test_duplicate_ids_are_refused(registry: RedisRegistry) -> None:
    tgt = session()
    st = service_ticket(tgt)
    registry.add(tgt)
    registry.add(st)
    with pytest.raises(ValueError, match="already stored"):
        registry.add(st)


def test_a_ticket_stored_without_its_session_times_takes_them_from_the_session(
    registry: RedisRegistry,
    client,  # type: ignore[no-untyped-def]
) -> None:
    """Tickets stored by the version before (no session times in the array) still validate during
    an upgrade: their session is read, as validation then did."""
    tgt = session()
    registry.add(tgt)
    now = time.time()
    live, orphan = service_ticket(tgt), service_ticket(session())
    for ticket in (live, orphan):
        old = [
            ticket.service,
            ticket.service_id,
            "cdurand",
            {"uid": ["cdurand"]},
            ticket.tgt_id,
            1,
            now + 10,
            [],
        ]
        client.set(f"sso:{ticket.id}", json.dumps(old), px=10_000)
    taken = registry.take(live.id, now)
    assert taken is not None and taken.attributes == {"uid": ("cdurand",)}
    assert (taken.auth_time, taken.session_expires) == (tgt.created, tgt.expires)
    lost = registry.take(orphan.id, now)
    assert lost is not None and lost.session_expires == 0, "its session is gone: refused at validation"


# Memory per ticket


def test_memory_per_session_and_per_ticket_stays_small(registry: RedisRegistry, client) -> None:  # type: ignore[no-untyped-def]
    tgt = session()
    st = service_ticket(tgt)
    registry.add(tgt)
    registry.add(st)
    session_bytes = client.memory_usage(f"sso:{tgt.id}", samples=0)
    ticket_bytes = client.memory_usage(f"sso:{st.id}", samples=0)
    assert session_bytes <= SESSION_BUDGET, f"session with one logout record: {session_bytes} bytes"
    assert ticket_bytes <= TICKET_BUDGET, f"service ticket: {ticket_bytes} bytes"


# Outages


def test_redis_down_is_unavailable_and_recovers_without_a_new_registry(
    server: RedisServer,
    registry: RedisRegistry,
) -> None:
    tgt = session()
    registry.add(tgt)
    server.kill()
    try:
        calls = {
            "ping": lambda: registry.ping(),
            "add": lambda: registry.add(session()),
            "take": lambda: registry.take(new_id(Kind.ST), time.time()),
            "get_tgt": lambda: registry.get_tgt(tgt.id, time.time()),
            "touch_tgt": lambda: registry.touch_tgt(tgt.id, time.time()),
            "get_pgt": lambda: registry.get_pgt(new_id(Kind.PGT), time.time()),
            "end_session": lambda: registry.end_session(tgt.id),
            "purge": lambda: registry.purge(time.time()),
            "stats": lambda: registry.stats(time.time()),
        }
        for name, call in calls.items():
            with pytest.raises(RegistryUnavailable) as info:
                call()
            assert "redis://" not in str(info.value), name
    finally:
        server.start()
    registry.ping()
    assert registry.get_tgt(tgt.id, time.time()) is None, "a restart without persistence forgets sessions"
    fresh = session()
    registry.add(fresh)
    assert registry.get_tgt(fresh.id, time.time()) == fresh


def test_a_hung_redis_costs_one_timeout(server: RedisServer, registry: RedisRegistry) -> None:
    registry.ping()
    server.freeze()
    try:
        start = time.monotonic()
        with pytest.raises(RegistryUnavailable, match="Timeout"):
            registry.take(new_id(Kind.ST), time.time())
        assert time.monotonic() - start < TIMEOUT * 4
    finally:
        server.thaw()
    registry.ping()


def test_a_wrong_password_is_unavailable_and_not_repeated(server: RedisServer, client) -> None:  # type: ignore[no-untyped-def]
    client.config_set("requirepass", "right-secret-0123")
    try:
        store = RedisRegistry.from_url(
            f"redis://:wrong-secret-4567@127.0.0.1:{server.port}/0", LIFETIMES, timeout=TIMEOUT
        )
        try:
            with pytest.raises(RegistryUnavailable) as info:
                store.ping()
            assert "secret" not in str(info.value)
        finally:
            store.close()
    finally:
        client.execute_command("AUTH", "right-secret-0123")
        client.config_set("requirepass", "")


# URLs


def test_open_registry_picks_redis(server: RedisServer) -> None:
    store = open_registry(f"{server.url}/0?socket_timeout=1.5&health_check_interval=10", LIFETIMES)
    try:
        assert isinstance(store, RedisRegistry)
        store.ping()
    finally:
        store.close()


def test_open_registry_does_not_connect(tmp_path: Path) -> None:
    """A node starts while Redis is down (it answers 503 until Redis is back)."""
    store = open_registry("redis://127.0.0.1:1/0", LIFETIMES)
    try:
        with pytest.raises(RegistryUnavailable):
            store.ping()
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw-secret@host:6379/zero",
        "redis://:pw-secret@host:port/0",
        "redis://:pw-secret@host:6379/0?sockettimeout=1",
        "redis://:pw-secret@:6379/0",
        "http://:pw-secret@host:6379/0",
        "redis://:pw-secret@host:6379/0/1",
    ],
)
def test_bad_redis_urls(url: str) -> None:
    with pytest.raises(ValueError) as info:
        check_url(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1",
        "redis://sso:pw@redis.univ.fr:6380/2",
        "rediss://redis.univ.fr:6380/0?ssl_ca_certs=/etc/ssl/ca.pem",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
def test_good_redis_urls(url: str) -> None:
    check_url(url)
