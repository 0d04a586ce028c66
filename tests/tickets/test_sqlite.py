"""SQLite back-end specifics: index use, failures, fork safety, purging in passing."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from pathlib import Path

import pytest

import sso.tickets.sqlite as sqlite_module
from sso.tickets.model import SessionService
from sso.tickets.registry import RegistryUnavailable
from sso.tickets.sqlite import SQL, SqliteRegistry
from tests.tickets.test_contract import LIFETIMES, NOW, make_st, make_tgt


@pytest.fixture
def store(tmp_path: Path):
    registry = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES, timeout=0.05)
    yield registry
    registry.close()


@pytest.mark.parametrize("name", sorted(SQL))
def test_statements_never_scan_a_table(store: SqliteRegistry, name: str) -> None:
    statement = SQL[name]
    conn = store._conn()
    plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", (1,) * statement.count("?")).fetchall()
    details = [row[3] for row in plan]
    assert not [d for d in details if d.startswith("SCAN")], details


def test_wal_mode(store: SqliteRegistry) -> None:
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an sqlite file at all" * 100)
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(path, LIFETIMES)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(tmp_path / "nowhere" / "tickets.db", LIFETIMES)


def test_unknown_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "tickets.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RegistryUnavailable, match="schema 99"):
        SqliteRegistry(path, LIFETIMES)


def test_locked_database_is_unavailable(store: SqliteRegistry, tmp_path: Path) -> None:
    blocker = sqlite3.connect(tmp_path / "tickets.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RegistryUnavailable):
            store.add(make_tgt())
        with pytest.raises(RegistryUnavailable):
            store.add(make_st(make_tgt()))
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    store.add(make_tgt())  # usable again once the lock is gone


def test_failed_transaction_leaves_nothing(store: SqliteRegistry) -> None:
    tgt = make_tgt()
    st = make_st(tgt)
    store.add(st)
    with pytest.raises(ValueError):
        store.add(st)  # same id: refused, the first one intact
    assert store.take(st.id, NOW) == st
    # The second logout record was rolled back with the refused ticket.
    assert store.end_session(tgt.id) == [SessionService(st.service, st.service_id, st.id)]


def test_tickets_added_together_are_stored_together(store: SqliteRegistry) -> None:
    tgt, other = make_tgt(), make_tgt()
    st = make_st(tgt)
    store.add(st)
    with pytest.raises(ValueError):
        store.add(other, st)  # the ticket is refused: the session added with it is rolled back
    assert store.get_tgt(other.id, NOW) is None


def test_writers_of_other_processes_are_waited_for(store: SqliteRegistry, tmp_path: Path) -> None:
    """Writers take turns on ``<database>-writer`` before SQLite sees them: one holding it (here,
    this test, as another process would) makes the others wait, up to the timeout."""
    with open(tmp_path / "tickets.db-writer", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RegistryUnavailable, match="other writer processes"):
            store.add(make_tgt())
        fcntl.flock(held, fcntl.LOCK_UN)
    tgt = make_tgt()
    store.add(tgt)
    assert store.get_tgt(tgt.id, NOW) == tgt


def test_writers_of_one_process_take_turns(tmp_path: Path) -> None:
    store = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES, timeout=5)
    tgt = make_tgt()
    store.add(tgt)
    tickets = [make_st(tgt) for _ in range(200)]
    threads = [
        threading.Thread(target=lambda part=part: [store.add(st) for st in part])
        for part in (tickets[::2], tickets[1::2])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s.ticket_id for s in store.end_session(tgt.id)) == sorted(st.id for st in tickets)
    store.close()


def test_closed_registry_refuses_work(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES)
    registry.close()
    with pytest.raises(RegistryUnavailable):
        registry.get_tgt("TGT-abc", NOW)
    registry.close()  # idempotent


def test_a_forked_child_opens_its_own_connection(store: SqliteRegistry, monkeypatch) -> None:
    tgt = make_tgt()
    store.add(tgt)
    parent_conn = store._conn()
    real_pid = sqlite_module.os.getpid()
    monkeypatch.setattr(sqlite_module.os, "getpid", lambda: real_pid + 1)
    child_conn = store._conn()
    assert child_conn is not parent_conn
    assert store.get_tgt(tgt.id, NOW) == tgt
    monkeypatch.setattr(sqlite_module.os, "getpid", lambda: real_pid)
    # Back in the "parent": the child's connection is not this process's; the parent's is gone
    # from this thread, so a new one is opened and the old one kept aside, never closed here.
    assert store.get_tgt(tgt.id, NOW) == tgt


def test_each_thread_has_its_own_connection(store: SqliteRegistry) -> None:
    seen: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: seen.append(store._conn()))
    thread.start()
    thread.join()
    assert seen and seen[0] is not store._conn()


def test_purge_in_passing(tmp_path: Path) -> None:
    later = NOW + 3600
    registry = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES, purge_every=3, clock=lambda: later)
    try:
        tgt = make_tgt()
        registry.add(tgt)
        old = make_st(tgt)  # expires at NOW + 10
        registry.add(old)
        assert registry.stats(NOW)["ST"] == 1
        registry.add(make_st(tgt, expires=later + 10))  # third addition: purge at "later"
        assert registry.stats(NOW)["ST"] == 1, "the expired ticket was purged in passing"
    finally:
        registry.close()
