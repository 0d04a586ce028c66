"""What the bench measures: the SSO, the ceiling, the bare floor and the peer, each under gunicorn.

A target knows how to start its server, which scenarios it has, where they are answered
(:class:`bench.loadgen.Site`), and how to put pre-issued service tickets in its store for the
validation scenario (straight into the store, as a sign-in would have left them).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.accounts import PEOPLE_BASE, RELEASED, Person, Picker
from bench.loadgen import Scenario, Site
from bench.peer import Peer
from bench.servers import THREADS, Gunicorn, Redis
from tests.support.slapd import Slapd

#: The service the flows sign in to. Never contacted (redirects are not followed); on loopback anyway.
SERVICE = "http://127.0.0.1:9/app"
#: Pre-issued tickets outlive the warm-up and the run by this much (seconds).
TICKET_MARGIN = 120.0

Tickets = deque[tuple[str, str]]


def attributes(person: Person) -> dict[str, list[str]]:
    """The released attributes of a generated account, as the directory holds them."""
    values = {
        "uid": [person.uid],
        "mail": [person.login],
        "cn": [f"Bench {person.index}"],
        "displayName": [f"Bench {person.index}"],
        "givenName": ["Bench"],
        "sn": [f"Bench{person.index}"],
        "eduPersonAffiliation": ["student", "member"],
    }
    return {name: values[name] for name in RELEASED}


class Target:
    """Base of the targets: a name, a gunicorn server, scenarios."""

    #: Name in the table.
    name = ""
    #: Scenarios this target answers.
    scenarios: tuple[Scenario, ...] = ()

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.server: Gunicorn | None = None

    def _gunicorn(self) -> Gunicorn:
        raise NotImplementedError

    def _ready_path(self) -> str:
        return "/"

    def start(self, threads: int = THREADS) -> Target:
        """Start the server with ``threads`` per worker; :raises bench.servers.ServerError: it did not start."""
        self.server = self._gunicorn()
        self.server.threads = threads
        self.server.start(self._ready_path())
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def site(self) -> Site:
        assert self.server is not None, "not started"
        return Site(base_url=self.server.url, service=SERVICE)

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        """Put ``count`` valid service tickets for :data:`SERVICE` in the store; return ``(id, uid)``."""
        raise NotImplementedError(f"{self.name} has no validation scenario")


class Bare(Target):
    """The bare-Flask floor (:mod:`bench.bare`)."""

    name = "bare-flask"
    scenarios = (Scenario.BARE,)

    def _gunicorn(self) -> Gunicorn:
        return Gunicorn("bench.bare:create_app()", log=self.folder / "gunicorn.log")


class Ceiling(Target):
    """The minimal login flow (:mod:`bench.ceiling`)."""

    name = "ceiling"
    scenarios = (Scenario.COLD, Scenario.SSO, Scenario.VALIDATE)

    def __init__(self, folder: Path, slapd: Slapd, redis: Redis | None = None) -> None:
        super().__init__(folder)
        self.slapd = slapd
        self.store_url = redis.url.replace("/0", "/1") if redis else f"sqlite:///{folder / 'tickets.db'}"

    def environment(self) -> dict[str, str]:
        """What :func:`bench.ceiling.create_app` reads."""
        return {
            "CEILING_LDAP_URL": self.slapd.url,
            "CEILING_BIND_DN": Slapd.service_dn,
            "CEILING_BIND_PASSWORD": Slapd.service_pw,
            "CEILING_PEOPLE_BASE": PEOPLE_BASE,
            "CEILING_STORE": self.store_url,
        }

    def _gunicorn(self) -> Gunicorn:
        return Gunicorn(
            "bench.ceiling:create_app()", log=self.folder / "gunicorn.log", env=self.environment()
        )

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        from bench.ceiling import open_store

        store = open_store(self.store_url)
        expires = time.time() + lifetime
        people = [picker() for _ in range(count)]
        rows = [
            (f"ST-{secrets.token_hex(20)}", SERVICE, person.uid, json.dumps(attributes(person)), expires)
            for person in people
        ]
        store.add_sts(rows)
        return deque((row[0], row[2]) for row in rows)


class Sso(Target):
    """This project's SSO, configured as in production on the bench's slapd (SQLite or Redis tickets).

    Throttling stays on; only the link-request limits are raised so that one client address may
    ask for thousands of links. The audit log goes to a file, e-mail to an outbox folder. The
    service-ticket lifetime is raised to ``st_lifetime`` so that pre-issued tickets outlive the
    warm-up and the window (Redis expires a key after that lifetime, whatever the ticket says);
    it changes no work per request.
    """

    name = "sso"
    scenarios = (Scenario.COLD, Scenario.SSO, Scenario.VALIDATE, Scenario.LINK)

    def __init__(
        self, folder: Path, slapd: Slapd, redis: Redis | None = None, st_lifetime: float = 10.0
    ) -> None:
        super().__init__(folder)
        self.slapd = slapd
        self.redis = redis
        self.store_url = redis.url if redis else f"sqlite:///{folder / 'var' / 'tickets.db'}"
        self.st_lifetime = st_lifetime

    def config(self, port: int) -> dict[str, Any]:
        """Overrides of the demo configuration (see :func:`tests.support.appconfig.write_config`)."""
        security: dict[str, Any] = {
            "link_per_address": "1000000 per minute",
            "link_per_identifier": "1000000 per minute",
        }
        if self.redis is not None:
            security["rate_limit_storage"] = self.redis.url.replace("/0", "/2")
        return {
            "site": {"base_url": f"http://127.0.0.1:{port}"},
            "embedded_directory": None,
            "directory": {
                "urls": [self.slapd.url],
                "bind_dn": Slapd.service_dn,
                "bind_password": Slapd.service_pw,
                "people_base": PEOPLE_BASE,
                "release_attributes": list(RELEASED),
            },
            "tickets": {"url": self.store_url, "lifetimes": {"service_ticket": self.st_lifetime}},
            "mail": {"outbox": str(self.folder / "outbox")},
            "services": [
                {
                    "id": "bench",
                    "name": "Service de mesure",
                    "url_pattern": re.escape(SERVICE) + r"(\?.*)?",
                    "attributes": list(RELEASED),
                }
            ],
            "security": security,
            "audit_log": str(self.folder / "audit.log"),
        }

    def _gunicorn(self) -> Gunicorn:
        from tests.support.appconfig import write_config

        server = Gunicorn("sso.app:create_app()", log=self.folder / "gunicorn.log")
        (self.folder / "var").mkdir(exist_ok=True)
        path = write_config(self.folder, self.config(server.port))
        server.env["SSO_CONFIG"] = str(path)
        return server

    def _ready_path(self) -> str:
        return "/health"

    def site(self) -> Site:
        return Site(base_url=self.site_url(), service=SERVICE, link_path="/compte/reset")

    def site_url(self) -> str:
        assert self.server is not None, "not started"
        return self.server.url

    def _registry(self) -> Any:
        from sso.tickets.model import Lifetimes
        from sso.tickets.registry import open_registry

        return open_registry(self.store_url, Lifetimes(service_ticket=self.st_lifetime))

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        """See :meth:`Target.issue`; one session per 50 tickets."""
        tgts: list[Any] = []
        sts: list[Any] = []
        for n in range(count):
            person = picker()
            if n % 50 == 0:
                tgt, st = self._session(person, lifetime, primary=False)
                tgts.append(tgt)
            else:
                st = self._ticket(person, tgts[-1], lifetime, primary=False)
            sts.append(st)
        self._write(tgts, sts)
        return deque((st.id, st.user) for st in sts)

    def prefill(self, count: int, picker: Picker, lifetime: float = 8 * 3600.0, batch: int = 10_000) -> None:
        """``count`` live tickets that stay: half sessions (TGT), half service tickets bound to them."""
        left = count // 2
        while left > 0:
            pairs = [self._session(picker(), lifetime, primary=True) for _ in range(min(batch, left))]
            self._write([tgt for tgt, _ in pairs], [st for _, st in pairs])
            left -= len(pairs)

    def _session(self, person: Person, lifetime: float, primary: bool) -> tuple[Any, Any]:
        from sso.tickets.ids import new_id
        from sso.tickets.model import GrantingTicket, Kind

        now = time.time()
        values = {name: tuple(value) for name, value in attributes(person).items()}
        tgt = GrantingTicket(new_id(Kind.TGT), person.uid, values, now, now, now + lifetime)
        return tgt, self._ticket(person, tgt, lifetime, primary)

    def _ticket(self, person: Person, tgt: Any, lifetime: float, primary: bool) -> Any:
        from sso.tickets.ids import new_id
        from sso.tickets.model import Kind, ServiceTicket

        values = {name: tuple(value) for name, value in attributes(person).items()}
        return ServiceTicket(
            id=new_id(Kind.ST),
            service=SERVICE,
            service_id="bench",
            user=person.uid,
            attributes=values,
            tgt_id=tgt.id,
            primary=primary,
            expires=time.time() + lifetime,
            auth_time=tgt.created,
            session_expires=tgt.expires,
        )

    def _write(self, tgts: list[Any], sts: list[Any]) -> None:
        """Store sessions, then service tickets.

        SQLite: in one transaction with the registry's own statements (a commit per ticket would
        take minutes for a million). Redis: through the registry, from 8 threads.
        """
        if self.redis is None:
            self._bulk_sqlite(tgts, sts)
            return
        registry = self._registry()
        try:
            with ThreadPoolExecutor(8) as pool:
                for tickets in (tgts, sts):
                    for _ in pool.map(registry.add, tickets, chunksize=256):
                        pass
        finally:
            registry.close()

    def _bulk_sqlite(self, tgts: list[Any], sts: list[Any]) -> None:
        import sqlite3

        from sso.tickets.sqlite import SQL

        def dump(values: Any) -> str:
            return json.dumps({k: list(v) for k, v in values.items()}, separators=(",", ":"))

        self._registry().close()  # creates the schema if the server has not yet
        conn = sqlite3.connect(self.folder / "var" / "tickets.db", timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                SQL["add_tgt"],
                [(t.id, t.user, dump(t.attributes), t.created, t.last_used, t.expires) for t in tgts],
            )
            conn.executemany(
                SQL["add_st"],
                [
                    (
                        t.id,
                        t.service,
                        t.service_id,
                        t.user,
                        dump(t.attributes),
                        t.tgt_id,
                        int(t.primary),
                        t.expires,
                        "[]",
                        t.auth_time,
                        t.session_expires,
                    )
                    for t in sts
                ],
            )
            # After the sessions: a record is written only for a session stored.
            conn.executemany(
                SQL["add_logout"],
                [(t.tgt_id, t.id, t.service, t.service_id, t.expires + 8 * 3600.0) for t in sts],
            )
            conn.execute("COMMIT")
            # Fold the WAL into the database now, or the servers' next commits would pay for it.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def store_bytes(self) -> int:
        """Bytes the ticket store holds now (SQLite files, or Redis ``used_memory``)."""
        if self.redis is not None:
            return self.redis.used_memory()
        base = self.folder / "var" / "tickets.db"
        return sum(path.stat().st_size for path in (base, base.with_name("tickets.db-wal")) if path.exists())


class PeerTarget(Target):
    """django-cas-server (:mod:`bench.peer`)."""

    name = "django-cas-server"
    scenarios = (Scenario.COLD, Scenario.SSO, Scenario.VALIDATE)

    def __init__(self, folder: Path, slapd: Slapd, ticket_validity: int) -> None:
        super().__init__(folder)
        self.peer = Peer(folder / "project", slapd, SERVICE, ticket_validity)

    def start(self, threads: int = THREADS) -> Target:
        self.peer.build()
        return super().start(threads)

    def _gunicorn(self) -> Gunicorn:
        return self.peer.server(self.folder / "gunicorn.log")

    def _ready_path(self) -> str:
        return "/login"

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        people = [picker() for _ in range(count)]
        issued: Tickets = deque((f"ST-{secrets.token_hex(24)}", person.uid) for person in people)
        values = {person.uid: attributes(person) for person in people}
        self.peer.issue(list(issued), values)
        return issued
