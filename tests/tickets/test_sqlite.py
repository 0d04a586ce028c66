"""SQLite back-end specifics: index use, B-trees written, schema migration, failures, fork
safety, purging in passing."""

from __future__ import annotations

import fcntl
import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import sso.tickets.sqlite as sqlite_module
from sso.tickets.ids import new_id
from sso.tickets.model import Kind, ServiceTicket, SessionService
from sso.tickets.registry import RegistryUnavailable
from sso.tickets.sqlite import SCHEMA_VERSION, SQL, SqliteRegistry
from tests.tickets.test_contract import LIFETIMES, NOW, make_st, make_tgt, stored_tgt

#: The schema of version 1, as it shipped: files of this version are migrated when opened.
SCHEMA_V1 = """
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
PRAGMA user_version = 1;
"""
ATTRIBUTES_JSON = json.dumps({"mail": ["ada@univ-demo.fr"]})


def version_1_file(path: Path, rows: dict[str, list[tuple[object, ...]]]) -> None:
    """A ticket database as version 1 left it, holding ``rows`` (table -> rows, in order)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA_V1)
        for table, values in rows.items():
            for row in values:
                conn.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path):
    # No checkpoint thread: the tests count pages in the WAL (see test_wal_checkpoints_*).
    registry = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES, timeout=0.05, checkpoint_every=0)
    yield registry
    registry.close()


@pytest.fixture(params=["new", "migrated"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):
    """A registry on a new file, and on a file of version 1 migrated when opened."""
    if request.param == "migrated":
        version_1_file(tmp_path / "tickets.db", {})
    registry = SqliteRegistry(tmp_path / "tickets.db", LIFETIMES, timeout=0.05, checkpoint_every=0)
    yield registry
    registry.close()


#: The B-trees each statement looks rows up in: ``(table, index)``, the index being ``PRIMARY KEY``
#: or its name. Inserts look nothing up (their cost is checked in B-trees written, below).
PLANS: dict[str, set[tuple[str, str]]] = {
    "add_tgt": set(),
    "add_st": set(),
    "add_logout": {("tgt", "PRIMARY KEY")},
    "add_pgt": set(),
    "take": {("st", "PRIMARY KEY")},
    "get_tgt": {("tgt", "PRIMARY KEY")},
    "touch_tgt": {("tgt", "PRIMARY KEY")},
    "get_pgt": {("pgt", "PRIMARY KEY")},
    "end_tgt": {("tgt", "PRIMARY KEY")},
    "end_pgts": {("pgt", "pgt_tgt")},
    "end_sts": {("st", "PRIMARY KEY"), ("logout", "PRIMARY KEY")},
    "session_services": {("logout", "PRIMARY KEY")},
    "end_logout": {("logout", "PRIMARY KEY")},
    "purge_tgt_hard": {("tgt", "PRIMARY KEY"), ("tgt", "tgt_expires")},
    "purge_tgt_idle": {("tgt", "PRIMARY KEY"), ("tgt", "tgt_last_used")},
    "purge_st": {("st", "PRIMARY KEY"), ("st", "st_expires")},
    "purge_pgt": {("pgt", "PRIMARY KEY"), ("pgt", "pgt_expires")},
    "count_tgt": {("tgt", "tgt_last_used")},
    "count_st": {("st", "st_expires")},
    "count_pgt": {("pgt", "pgt_expires")},
}
_SEARCH = re.compile(r"SEARCH (\w+) USING (?:(?:COVERING )?INDEX (\w+)|(?:INTEGER )?(PRIMARY KEY))")


def test_every_statement_has_its_plan() -> None:
    assert sorted(PLANS) == sorted(SQL)


@pytest.mark.parametrize("name", sorted(SQL))
def test_statements_never_scan_a_table(any_store: SqliteRegistry, name: str) -> None:
    statement = SQL[name]
    numbered = [int(n) for n in re.findall(r"\?(\d+)", statement)]
    count = max(numbered) if numbered else statement.count("?")
    plan = any_store._conn().execute(f"EXPLAIN QUERY PLAN {statement}", (1,) * count).fetchall()
    details = [row[3] for row in plan]
    assert not [d for d in details if d.startswith("SCAN")], details
    used = {(m[1], m[2] or m[3]) for d in details if (m := _SEARCH.match(d))}
    assert used == PLANS[name], details


def wal_frames(store: SqliteRegistry) -> int:
    """Pages written to the WAL so far (no checkpoint runs before a thousand)."""
    page = store._conn().execute("PRAGMA page_size").fetchone()[0]
    size = Path(f"{store._path}-wal").stat().st_size
    return (size - 32) // (24 + page)


def test_b_trees_written_per_operation(any_store: SqliteRegistry) -> None:
    """A commit writes each B-tree page it changed: tgt and its two indexes, st and its index,
    logout (sign-in); st, its index, logout (a ticket from a session); st and its index (take)."""
    for _ in range(3):
        before = wal_frames(any_store)
        tgt = make_tgt()
        first = make_st(tgt)
        any_store.add(tgt, first)
        signed_in = wal_frames(any_store)
        any_store.add(make_st(tgt))
        issued = wal_frames(any_store)
        assert any_store.take(first.id, NOW) == first
        taken = wal_frames(any_store)
        assert (signed_in - before, issued - signed_in, taken - issued) == (6, 3, 2)


def test_wal_checkpoints_run_in_a_thread_of_their_own_not_in_commits(tmp_path: Path) -> None:
    """Commits never checkpoint (SQLite would, inside the write gate); the registry's thread folds
    the WAL into the database soon after, and stops when the registry is closed."""
    path = tmp_path / "tickets.db"
    registry = SqliteRegistry(path, LIFETIMES, checkpoint_every=0.05)
    try:
        assert registry._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        before = path.stat().st_size
        tgt = make_tgt()
        registry.add(tgt, make_st(tgt))
        for _ in range(200):
            registry.add(make_st(tgt))
        deadline = time.monotonic() + 5
        while path.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size > before, "the WAL's pages reached the database file"
        names = {thread.name for thread in threading.enumerate()}
        assert "sqlite-checkpoint" in names
    finally:
        registry.close()
    assert all(t.name != "sqlite-checkpoint" or not t.is_alive() for t in threading.enumerate())


def test_without_the_thread_sqlite_checkpoints_as_usual(store: SqliteRegistry) -> None:
    assert store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


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


def schema_of(path: Path) -> dict[str, object]:
    """Each table's columns, primary key, rowid or not, and indexes (their columns)."""
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        schema: dict[str, object] = {"version": conn.execute("PRAGMA user_version").fetchone()[0]}
        for table in sorted(tables):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            indexes = {
                name: [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
                for _, name, *_ in conn.execute(f"PRAGMA index_list({table})")
                if not name.startswith("sqlite_autoindex")
            }
            schema[table] = (
                conn.execute(f"PRAGMA table_xinfo({table})").fetchall(),
                sql.rstrip().endswith("WITHOUT ROWID"),
                indexes,
            )
        return schema
    finally:
        conn.close()


def test_a_version_1_file_is_migrated_when_opened(tmp_path: Path) -> None:
    tgt = make_tgt()
    first, second = make_st(tgt), make_st(tgt, service="https://mail.univ-demo.fr/", service_id="mail")
    orphan = make_st(make_tgt())  # its session purged, its record not yet (version 1 purged by bound)
    pgt_id = new_id(Kind.PGT)

    def v1_st(ticket: ServiceTicket) -> tuple[object, ...]:
        fields = (ticket.service, ticket.service_id, "ada", ATTRIBUTES_JSON, ticket.tgt_id)
        return (ticket.id, *fields, 1, ticket.expires, "[]")

    def v1_record(ticket: ServiceTicket, issued: float) -> tuple[object, ...]:
        bound = issued + LIFETIMES.service_ticket + LIFETIMES.tgt_max
        return (ticket.tgt_id, ticket.id, ticket.service, ticket.service_id, bound)

    path = tmp_path / "tickets.db"
    version_1_file(
        path,
        {
            "tgt": [(tgt.id, "ada", ATTRIBUTES_JSON, tgt.created, tgt.last_used, tgt.expires)],
            "st": [v1_st(second), v1_st(orphan)],  # first was validated: only its record is left
            "pgt": [(pgt_id, "ada", ATTRIBUTES_JSON, tgt.id, "https://p/pgt", "[]", NOW + 3600)],
            "logout": [v1_record(orphan, NOW), v1_record(first, NOW - 1), v1_record(second, NOW)],
        },
    )
    SqliteRegistry(path, LIFETIMES).close()
    SqliteRegistry(tmp_path / "new.db", LIFETIMES).close()
    assert schema_of(path) == schema_of(tmp_path / "new.db"), "as if created at version 2"
    assert schema_of(path)["version"] == SCHEMA_VERSION == 2

    store = SqliteRegistry(path, LIFETIMES)  # opened again: nothing left to do
    try:
        taken = store.take(second.id, NOW)
        assert taken is not None and (taken.user, taken.service) == ("ada", second.service)
        assert (taken.auth_time, taken.session_expires) == (tgt.created, tgt.expires), "from its session"
        lost = store.take(orphan.id, NOW)
        assert lost is not None and lost.session_expires == 0, "its session is gone: refused at validation"
        assert store.get_pgt(pgt_id, NOW) is not None
        assert store.end_session(tgt.id) == [
            SessionService(first.service, first.service_id, first.id),
            SessionService(second.service, second.service_id, second.id),
        ], "in issue order"
        count = store._conn().execute("SELECT COUNT(*) FROM logout").fetchone()[0]
        assert count == 0, "the record of the session already gone was not kept"
    finally:
        store.close()


def test_a_failed_migration_leaves_version_1(tmp_path: Path) -> None:
    path = tmp_path / "tickets.db"
    version_1_file(path, {"logout": [("TGT-a", "ST-a", "https://a/", "a", NOW)]})
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE st")  # the migration fails half-way, at ALTER TABLE st
    conn.commit()
    conn.close()
    with pytest.raises(RegistryUnavailable, match="no such table: st"):
        SqliteRegistry(path, LIFETIMES)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM logout").fetchone()[0] == 1
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"logout_tgt", "logout_bound"} <= names and "logout_v2" not in names
    finally:
        conn.close()


def test_records_of_tickets_issued_at_the_same_instant_come_in_id_order(store: SqliteRegistry) -> None:
    tgt = stored_tgt(store)
    tickets = [make_st(tgt) for _ in range(5)]  # same expiry, so the same bound
    for ticket in tickets:
        store.add(ticket)
    assert [s.ticket_id for s in store.end_session(tgt.id)] == sorted(t.id for t in tickets)


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
    tgt = stored_tgt(store)
    st = make_st(tgt)
    store.add(st)
    with pytest.raises(ValueError):
        store.add(st)  # same id: refused, the first one intact
    assert store.take(st.id, NOW) == st
    # The second logout record was rolled back with the refused ticket.
    assert store.end_session(tgt.id) == [SessionService(st.service, st.service_id, st.id)]


def test_tickets_added_together_are_stored_together(store: SqliteRegistry) -> None:
    tgt, other = stored_tgt(store), make_tgt()
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


def test_a_sessions_attributes_go_into_its_tickets_as_stored(store: SqliteRegistry) -> None:
    """Read from the store, a session's attributes are decoded only when used; a ticket issued
    from it stores their text as it is, and its validation reads them back equal."""
    tgt = make_tgt()
    store.add(tgt)
    stored = store.get_tgt(tgt.id, NOW)
    assert stored is not None
    text = sqlite_module._dump_attributes(stored.attributes)
    assert text is stored.attributes.text  # type: ignore[attr-defined]
    assert stored.attributes == tgt.attributes and dict(stored.attributes) == dict(tgt.attributes)
    ticket = make_st(stored)
    store.add(ticket)
    taken = store.take(ticket.id, NOW)
    assert taken is not None and dict(taken.attributes) == dict(tgt.attributes)


def _open_and_ping(path: Path, go: object, answers: object) -> None:
    go.wait()  # type: ignore[attr-defined]
    try:
        registry = SqliteRegistry(path, LIFETIMES)
        registry.ping()
        registry.close()
        answers.put("ok")  # type: ignore[attr-defined]
    except RegistryUnavailable as error:
        answers.put(str(error))  # type: ignore[attr-defined]


def test_workers_opening_a_new_file_together_all_start(tmp_path: Path) -> None:
    """gunicorn's workers open the file at the same instant: SQLite refuses the switch to WAL,
    without waiting, to one of them while another reads ("database is locked": a worker that
    fails to boot). They take turns at the write gate instead."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(12):
        path = tmp_path / f"tickets-{attempt}.db"
        answers, go = context.Queue(), context.Event()
        workers = [context.Process(target=_open_and_ping, args=(path, go, answers)) for _ in range(6)]
        for worker in workers:
            worker.start()
        go.set()
        for worker in workers:
            worker.join(30)
        assert [answers.get(timeout=5) for _ in workers] == ["ok"] * 6
