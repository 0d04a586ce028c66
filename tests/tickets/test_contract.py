"""The ticket registry contract, run on every back-end (add one to ``BACKENDS``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sso.tickets.ids import new_id
from sso.tickets.memory import MemoryRegistry
from sso.tickets.model import (
    GrantingTicket,
    Kind,
    Lifetimes,
    ProxyGrantingTicket,
    ServiceTicket,
    SessionService,
)
from sso.tickets.redis import RedisRegistry
from sso.tickets.registry import TicketRegistry
from sso.tickets.sqlite import SqliteRegistry
from tests.support.redis import RedisServer

NOW = 1_750_000_000.0
LIFETIMES = Lifetimes(service_ticket=10.0, tgt_max=8 * 3600.0, tgt_idle=2 * 3600.0, pgt=2 * 3600.0)
ATTRIBUTES = {
    "mail": ("ada@univ-demo.fr",),
    "eduPersonAffiliation": ("student", "member"),
    "cn": ("Adà <b>&",),
}

#: Back-end name -> factory; a factory may ask pytest for the fixtures it needs.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], TicketRegistry]] = {
    "memory": lambda request: MemoryRegistry(LIFETIMES),
    "sqlite": lambda request: SqliteRegistry(request.getfixturevalue("tmp_path") / "tickets.db", LIFETIMES),
    "redis": lambda request: RedisRegistry.from_url(request.getfixturevalue("redis_url"), LIFETIMES),
}
#: Back-ends that need a real server.
SERVERS = {"redis"}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty database on the module's redis-server."""
    with redis_server.client() as client:
        client.flushdb()
    return redis_server.url + "/0"


@pytest.fixture(
    params=[pytest.param(name, marks=[pytest.mark.integration] * (name in SERVERS)) for name in BACKENDS]
)
def registry(request: pytest.FixtureRequest) -> Iterator[TicketRegistry]:
    store = BACKENDS[request.param](request)
    yield store
    store.close()


def make_tgt(now: float = NOW, user: str = "ada") -> GrantingTicket:
    return GrantingTicket(
        id=new_id(Kind.TGT),
        user=user,
        attributes=ATTRIBUTES,
        created=now,
        last_used=now,
        expires=now + LIFETIMES.tgt_max,
    )


def make_st(tgt: GrantingTicket, service: str = "https://moodle.univ-demo.fr/login", **kw) -> ServiceTicket:
    values = {
        "id": new_id(Kind.ST),
        "service": service,
        "service_id": "moodle",
        "user": tgt.user,
        "attributes": tgt.attributes,
        "tgt_id": tgt.id,
        "primary": True,
        "expires": NOW + LIFETIMES.service_ticket,
        "auth_time": tgt.created,
        "session_expires": tgt.expires,
    }
    values.update(kw)
    return ServiceTicket(**values)


def stored_tgt(registry: TicketRegistry, now: float = NOW) -> GrantingTicket:
    """A new session, stored (a ticket is stored only while its session is)."""
    tgt = make_tgt(now)
    registry.add(tgt)
    return tgt


def make_pgt(tgt: GrantingTicket, expires: float = NOW + 3600) -> ProxyGrantingTicket:
    return ProxyGrantingTicket(
        id=new_id(Kind.PGT),
        user=tgt.user,
        attributes=tgt.attributes,
        tgt_id=tgt.id,
        pgt_url="https://portail.univ-demo.fr/pgt",
        proxies=("https://first.univ-demo.fr/pgt",),
        expires=expires,
    )


def test_take_returns_the_ticket_once(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    registry.add(tgt)
    st = make_st(tgt)
    registry.add(st)
    assert registry.take(st.id, NOW) == st
    assert registry.take(st.id, NOW) is None


def test_a_session_and_its_first_ticket_added_together(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    st = make_st(tgt)
    registry.add(tgt, st)
    assert registry.get_tgt(tgt.id, NOW) == tgt
    taken = registry.take(st.id, NOW)
    assert taken == st
    assert taken is not None and (taken.auth_time, taken.session_expires) == (tgt.created, tgt.expires)
    assert registry.end_session(tgt.id) == [SessionService(st.service, st.service_id, st.id)]


def test_proxy_ticket_round_trip(registry: TicketRegistry) -> None:
    tgt = stored_tgt(registry)
    pt = make_st(tgt, id=new_id(Kind.PT), primary=False, proxies=("https://b/pgt", "https://a/pgt"))
    registry.add(pt)
    taken = registry.take(pt.id, NOW)
    assert taken == pt
    assert taken is not None and taken.kind is Kind.PT and taken.proxies == ("https://b/pgt", "https://a/pgt")


def test_take_unknown_is_none(registry: TicketRegistry) -> None:
    assert registry.take(new_id(Kind.ST), NOW) is None


def test_take_never_touches_sessions_or_pgts(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    pgt = make_pgt(tgt)
    registry.add(tgt)
    registry.add(pgt)
    assert registry.take(tgt.id, NOW) is None
    assert registry.take(pgt.id, NOW) is None
    assert registry.get_tgt(tgt.id, NOW) == tgt
    assert registry.get_pgt(pgt.id, NOW) == pgt


def test_concurrent_take_has_one_winner(registry: TicketRegistry) -> None:
    tgt = stored_tgt(registry)
    st = make_st(tgt)
    registry.add(st)
    barrier = threading.Barrier(20)
    results: list[ServiceTicket | None] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        got = registry.take(st.id, NOW)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    assert [r for r in results if r is not None] == [st]


def test_expired_ticket_is_refused_and_consumed(registry: TicketRegistry) -> None:
    st = make_st(stored_tgt(registry))
    registry.add(st)
    assert registry.take(st.id, st.expires) is None
    assert registry.take(st.id, NOW) is None


def test_ticket_valid_until_just_before_expiry(registry: TicketRegistry) -> None:
    st = make_st(stored_tgt(registry))
    registry.add(st)
    assert registry.take(st.id, st.expires - 0.001) == st


def test_tgt_hard_expiry(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    registry.add(tgt)
    # Keep it busy so only the hard limit can end it.
    for hour in range(1, 8):
        registry.touch_tgt(tgt.id, NOW + hour * 3600)
    assert registry.get_tgt(tgt.id, tgt.expires - 1) is not None
    assert registry.get_tgt(tgt.id, tgt.expires) is None


def test_tgt_idle_expiry_and_touch(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    registry.add(tgt)
    idle = LIFETIMES.tgt_idle
    assert registry.get_tgt(tgt.id, NOW + idle - 1) == tgt
    assert registry.get_tgt(tgt.id, NOW + idle) is None
    registry.touch_tgt(tgt.id, NOW + idle - 10)
    live = registry.get_tgt(tgt.id, NOW + idle + 100)
    assert live is not None and live.last_used == NOW + idle - 10


def test_touch_does_not_revive_or_rewind(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    registry.add(tgt)
    registry.touch_tgt(tgt.id, NOW + 100)
    registry.touch_tgt(tgt.id, NOW + 50)
    live = registry.get_tgt(tgt.id, NOW + 200)
    assert live is not None and live.last_used == NOW + 100
    dead_at = NOW + 100 + LIFETIMES.tgt_idle
    registry.touch_tgt(tgt.id, dead_at + 1)
    assert registry.get_tgt(tgt.id, dead_at + 2) is None


def test_touch_unknown_is_harmless(registry: TicketRegistry) -> None:
    registry.touch_tgt(new_id(Kind.TGT), NOW)


def test_pgt_lookup_and_expiry(registry: TicketRegistry) -> None:
    pgt = make_pgt(make_tgt())
    registry.add(pgt)
    assert registry.get_pgt(pgt.id, NOW) == pgt
    assert registry.get_pgt(pgt.id, NOW) == pgt, "a PGT is not single use"
    assert registry.get_pgt(pgt.id, pgt.expires) is None
    assert registry.get_pgt(new_id(Kind.PGT), NOW) is None


def test_end_session_returns_services_and_removes_everything(registry: TicketRegistry) -> None:
    tgt, other = make_tgt(), make_tgt(user="bob")
    registry.add(tgt)
    registry.add(other)
    first = make_st(tgt, service="https://moodle.univ-demo.fr/a")
    # Issued a second later: single-logout targets come in issue order.
    second = make_st(tgt, service="https://mail.univ-demo.fr/", service_id="mail", expires=first.expires + 1)
    elsewhere = make_st(other)
    pgt, other_pgt = make_pgt(tgt), make_pgt(other)
    for ticket in (first, second, elsewhere, pgt, other_pgt):
        registry.add(ticket)
    assert registry.take(first.id, NOW) == first  # validated tickets still need a logout

    services = registry.end_session(tgt.id)

    assert services == [
        SessionService("https://moodle.univ-demo.fr/a", "moodle", first.id),
        SessionService("https://mail.univ-demo.fr/", "mail", second.id),
    ]
    assert registry.get_tgt(tgt.id, NOW) is None
    assert registry.get_pgt(pgt.id, NOW) is None
    assert registry.take(second.id, NOW) is None, "outstanding tickets die with the session"
    assert registry.end_session(tgt.id) == []
    assert registry.get_tgt(other.id, NOW) == other
    assert registry.get_pgt(other_pgt.id, NOW) == other_pgt
    assert registry.take(elsewhere.id, NOW) == elsewhere


def test_tickets_of_an_ended_session_are_gone(registry: TicketRegistry) -> None:
    """Validation reads the ticket alone: a logged-out session's tickets must not be there."""
    tgt = stored_tgt(registry)
    st = make_st(tgt)
    pt = make_st(tgt, id=new_id(Kind.PT), primary=False, proxies=("https://p/pgt",))
    registry.add(st)
    registry.add(pt)
    registry.end_session(tgt.id)
    assert registry.take(st.id, NOW) is None
    assert registry.take(pt.id, NOW) is None
    assert registry.stats(NOW) == {"TGT": 0, "ST": 0, "PT": 0, "PGT": 0}


def test_a_ticket_whose_session_is_not_stored_is_not_stored(registry: TicketRegistry) -> None:
    """A ticket issued while its session was being ended elsewhere (the caller read the session
    just before) is not kept: nothing would delete it, and validation would accept it."""
    tgt = stored_tgt(registry)
    registry.end_session(tgt.id)
    late = make_st(tgt)
    registry.add(late)
    never = make_st(make_tgt())
    registry.add(never)
    assert registry.take(late.id, NOW) is None
    assert registry.take(never.id, NOW) is None
    assert registry.end_session(tgt.id) == [], "and it left no single-logout record"
    assert registry.stats(NOW) == {"TGT": 0, "ST": 0, "PT": 0, "PGT": 0}


def test_end_unknown_session(registry: TicketRegistry) -> None:
    assert registry.end_session(new_id(Kind.TGT)) == []


def test_purge_and_stats(registry: TicketRegistry) -> None:
    live, idle = make_tgt(), make_tgt(now=NOW - LIFETIMES.tgt_idle - 1)
    registry.add(live)
    registry.add(idle)
    old_st = make_st(live, expires=NOW - 1)
    new_st = make_st(live)
    new_pt = make_st(live, id=new_id(Kind.PT), primary=False, proxies=("https://p/pgt",))
    dead_pgt, live_pgt = make_pgt(live, expires=NOW - 1), make_pgt(live)
    for ticket in (old_st, new_st, new_pt, dead_pgt, live_pgt):
        registry.add(ticket)

    assert registry.stats(NOW) == {"TGT": 1, "ST": 1, "PT": 1, "PGT": 1}
    assert registry.purge(NOW) == 3
    assert registry.purge(NOW) == 0
    assert registry.stats(NOW) == {"TGT": 1, "ST": 1, "PT": 1, "PGT": 1}
    assert registry.take(new_st.id, NOW) == new_st
    assert registry.get_pgt(live_pgt.id, NOW) == live_pgt
    assert registry.get_tgt(live.id, NOW) == live


def test_purge_of_a_dead_session_drops_its_pgts_and_logout_records(registry: TicketRegistry) -> None:
    tgt = make_tgt()
    registry.add(tgt)
    registry.add(make_st(tgt))
    pgt = make_pgt(tgt, expires=tgt.expires)
    registry.add(pgt)
    later = tgt.expires + 1
    assert registry.purge(later) == 3
    assert registry.get_pgt(pgt.id, NOW) is None
    assert registry.end_session(tgt.id) == []


def test_stats_when_empty(registry: TicketRegistry) -> None:
    assert registry.stats(NOW) == {"TGT": 0, "ST": 0, "PT": 0, "PGT": 0}


def test_ping(registry: TicketRegistry) -> None:
    registry.ping()


def test_attributes_round_trip_exactly(registry: TicketRegistry) -> None:
    hostile = {"cn": ("é\u202e<x>&\"'", ""), "empty": (), "nul": ("a\x00b",)}
    tgt = GrantingTicket(
        id=new_id(Kind.TGT), user="o'brien", attributes=hostile, created=NOW, last_used=NOW, expires=NOW + 60
    )
    registry.add(tgt)
    got = registry.get_tgt(tgt.id, NOW)
    assert got is not None and dict(got.attributes) == hostile and got.user == "o'brien"


# SQLite only: files, processes


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "tickets.db"
    first = SqliteRegistry(path, LIFETIMES)
    tgt = make_tgt()
    st = make_st(tgt)
    first.add(tgt)
    first.add(st)
    first.close()
    second = SqliteRegistry(path, LIFETIMES)
    try:
        assert second.get_tgt(tgt.id, NOW) == tgt
        assert second.take(st.id, NOW) == st
        assert second.end_session(tgt.id) == [SessionService(st.service, st.service_id, st.id)]
    finally:
        second.close()


_CHILD = """
import sys
from sso.tickets.model import Lifetimes
from sso.tickets.sqlite import SqliteRegistry
store = SqliteRegistry(sys.argv[1], Lifetimes())
print("ready", flush=True)
sys.stdin.readline()
got = store.take(sys.argv[2], float(sys.argv[3]))
print("won" if got is not None else "lost", flush=True)
store.close()
"""


def test_sqlite_two_processes_take_once(tmp_path: Path) -> None:
    path = tmp_path / "tickets.db"
    store = SqliteRegistry(path, LIFETIMES)
    st = make_st(stored_tgt(store))
    store.add(st)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), st.id, str(NOW)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:  # release them together
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = [child.communicate(timeout=60)[0].strip() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        store.close()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert all(child.returncode == 0 for child in children)
