"""The minimal login flow: only the essential work of a CAS sign-in, the ceiling of our architecture.

A static form; the POST does one search and one bind on connections reused per thread; tickets
live in the cheapest store still correct across gunicorn's worker processes — an SQLite file (WAL,
one ``DELETE … RETURNING`` per validation: single use under concurrency) or Redis (``GETDEL``).
No CSRF, throttling, audit, templates, account states or i18n: what the SSO adds over this is
what it costs. The three requests of a cold login, with the SSO login and validation:

- ``GET /login?service=S`` — the static form, or, with a live TGC, a redirect with a ticket;
- ``POST /login?service=S`` — search + bind, a TGT and an ST stored, redirect to ``S?ticket=ST-…``;
- ``GET /p3/serviceValidate?ticket=…&service=S`` — take the ticket, answer CAS 3 XML with attributes.

Configured by the environment: ``CEILING_LDAP_URL``, ``CEILING_BIND_DN``, ``CEILING_BIND_PASSWORD``,
``CEILING_PEOPLE_BASE``, ``CEILING_STORE`` (``sqlite:///abs/path.db`` or ``redis://…``).

``gunicorn 'bench.ceiling:create_app()'``
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from typing import Any
from xml.sax.saxutils import escape

from flask import Flask, Response, redirect, request
from ldap3 import NONE, Connection, Server
from ldap3.utils.conv import escape_filter_chars

from bench.accounts import RELEASED

#: Seconds a service ticket lives (CAS 3.0 §3.1.2 recommends at most 5 minutes; we use 10 s).
ST_LIFETIME = 10.0
#: Pre-issued tickets (validation scenario) may name a longer expiry themselves.
TGT_LIFETIME = 8 * 3600.0

FORM = (
    "<!doctype html><title>Connexion</title><form method=post>"
    "<input name=username><input name=password type=password><button>Se connecter</button></form>"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS tgt (id TEXT PRIMARY KEY, user TEXT, attrs TEXT, expires REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS st (
    id TEXT PRIMARY KEY, service TEXT, user TEXT, attrs TEXT, expires REAL
) WITHOUT ROWID;
"""


class SqliteStore:
    """Tickets in one SQLite file; one connection per thread and process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def sign_in(self, tgt: str, st: str, service: str, user: str, attrs: str, now: float) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO tgt VALUES (?, ?, ?, ?)", (tgt, user, attrs, now + TGT_LIFETIME))
        conn.execute("INSERT INTO st VALUES (?, ?, ?, ?, ?)", (st, service, user, attrs, now + ST_LIFETIME))
        conn.execute("COMMIT")

    def session(self, tgt: str, now: float) -> tuple[str, str] | None:
        row = self._conn().execute("SELECT user, attrs, expires FROM tgt WHERE id = ?", (tgt,)).fetchone()
        return (row[0], row[1]) if row and row[2] > now else None

    def add_st(self, st: str, service: str, user: str, attrs: str, expires: float) -> None:
        self._conn().execute("INSERT INTO st VALUES (?, ?, ?, ?, ?)", (st, service, user, attrs, expires))

    def add_sts(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        """Many tickets ``(id, service, user, attrs, expires)`` in one transaction (pre-issued ones)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO st VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")

    def take(self, st: str) -> tuple[str, str, str, float] | None:
        rows = self._conn().execute(
            "DELETE FROM st WHERE id = ? RETURNING service, user, attrs, expires", (st,)
        )
        row = rows.fetchone()
        rows.fetchall()
        return tuple(row) if row else None  # type: ignore[return-value]


class RedisStore:
    """Tickets in Redis: ``GETDEL`` takes a ticket atomically."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    def sign_in(self, tgt: str, st: str, service: str, user: str, attrs: str, now: float) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(tgt, json.dumps([user, attrs]), ex=int(TGT_LIFETIME))
        pipe.set(st, json.dumps([service, user, attrs, now + ST_LIFETIME]), ex=int(ST_LIFETIME) + 1)
        pipe.execute()

    def session(self, tgt: str, now: float) -> tuple[str, str] | None:
        value = self._redis.get(tgt)
        return tuple(json.loads(value)) if value else None  # type: ignore[return-value]

    def add_st(self, st: str, service: str, user: str, attrs: str, expires: float) -> None:
        self._redis.set(
            st, json.dumps([service, user, attrs, expires]), ex=max(1, int(expires - time.time()) + 1)
        )

    def add_sts(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        """Many tickets ``(id, service, user, attrs, expires)`` in pipelines (pre-issued ones)."""
        pipe = self._redis.pipeline(transaction=False)
        for n, (st, service, user, attrs, expires) in enumerate(rows, 1):
            ttl = max(1, int(expires - time.time()) + 1)
            pipe.set(st, json.dumps([service, user, attrs, expires]), ex=ttl)
            if n % 1000 == 0:
                pipe.execute()
        pipe.execute()

    def take(self, st: str) -> tuple[str, str, str, float] | None:
        value = self._redis.getdel(st)
        return tuple(json.loads(value)) if value else None  # type: ignore[return-value]


def open_store(url: str) -> SqliteStore | RedisStore:
    """The store a URL names (``sqlite:///path`` or ``redis://…``)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite://") :])
    return RedisStore(url)


class Directory:
    """Search and bind on two connections per thread, opened once and reused."""

    def __init__(self, url: str, bind_dn: str, bind_password: str, base: str) -> None:
        self.url, self.bind_dn, self.bind_password, self.base = url, bind_dn, bind_password, base
        self._local = threading.local()

    def _connections(self) -> tuple[Connection, Connection]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            server = Server(self.url, get_info=NONE)
            service = Connection(server, self.bind_dn, self.bind_password, auto_bind=True, receive_timeout=5)
            user = Connection(server, receive_timeout=5)
            user.open(read_server_info=False)
            pair = self._local.pair = (service, user)
        return pair

    def authenticate(self, login: str, password: str) -> dict[str, list[str]] | None:
        """The released attributes of the account, if the password is right."""
        if not password:
            return None
        service, user = self._connections()
        value = escape_filter_chars(login.strip().lower())
        service.search(
            self.base,
            f"(&(objectClass=inetOrgPerson)(|(mail={value})(uid={value})))",
            attributes=list(RELEASED),
            size_limit=2,
        )
        if len(service.response or ()) < 1 or service.response[0].get("type") != "searchResEntry":
            return None
        entry = service.response[0]
        if not user.rebind(user=entry["dn"], password=password, read_server_info=False):
            return None
        return {name: [bytes(v).decode() for v in entry["raw_attributes"].get(name, [])] for name in RELEASED}


def _xml(user: str, attrs: dict[str, list[str]]) -> str:
    released = "".join(
        f"<cas:{name}>{escape(value)}</cas:{name}>" for name, values in attrs.items() for value in values
    )
    return (
        "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'><cas:authenticationSuccess>"
        f"<cas:user>{escape(user)}</cas:user><cas:attributes>{released}</cas:attributes>"
        "</cas:authenticationSuccess></cas:serviceResponse>"
    )


FAILURE = (
    "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>"
    "<cas:authenticationFailure code='INVALID_TICKET'>ticket not recognized</cas:authenticationFailure>"
    "</cas:serviceResponse>"
)


def _with_ticket(service: str, ticket: str) -> Any:
    return redirect(f"{service}{'&' if '?' in service else '?'}ticket={ticket}", 302)


def create_app() -> Flask:
    """The minimal login flow, configured from the environment."""
    app = Flask(__name__)
    env = os.environ
    store = open_store(env["CEILING_STORE"])
    directory = Directory(
        env["CEILING_LDAP_URL"],
        env["CEILING_BIND_DN"],
        env["CEILING_BIND_PASSWORD"],
        env["CEILING_PEOPLE_BASE"],
    )

    @app.get("/login")
    def form() -> Any:
        service = request.args.get("service", "")
        tgt = request.cookies.get("TGC", "")
        now = time.time()
        session = store.session(tgt, now) if tgt else None
        if session is None or not service:
            return FORM
        st = f"ST-{secrets.token_hex(20)}"
        store.add_st(st, service, session[0], session[1], now + ST_LIFETIME)
        return _with_ticket(service, st)

    @app.post("/login")
    def login() -> Any:
        service = request.args.get("service", "")
        attrs = directory.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if attrs is None:
            return Response(FORM, 401)
        user = attrs["uid"][0]
        tgt, st = f"TGT-{secrets.token_hex(20)}", f"ST-{secrets.token_hex(20)}"
        store.sign_in(tgt, st, service, user, json.dumps(attrs), time.time())
        response = _with_ticket(service, st)
        response.set_cookie("TGC", tgt, httponly=True)
        return response

    @app.get("/p3/serviceValidate")
    def validate() -> Response:
        taken = store.take(request.args.get("ticket", ""))
        if taken is None:
            return Response(FAILURE, content_type="application/xml")
        service, user, attrs, expires = taken
        if service != request.args.get("service") or expires <= time.time():
            return Response(FAILURE, content_type="application/xml")
        return Response(_xml(user, json.loads(attrs)), content_type="application/xml")

    return app
