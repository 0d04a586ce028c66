"""What the bench measures: the SSO, the ceiling, the bare floor and the peer, each under gunicorn.

A target knows how to start its server, which scenarios it has, where they are answered
(:class:`bench.loadgen.Site`), and how to put pre-issued service tickets in its store for the
validation scenario (straight into the store, as a sign-in would have left them).
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

from bench.accounts import PEOPLE_BASE, RELEASED, Person, Picker
from bench.loadgen import Scenario, Site
from bench.peer import Peer
from bench.servers import Gunicorn, Redis
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

    def start(self) -> Target:
        """Start the server; :raises bench.servers.ServerError: it did not start."""
        self.server = self._gunicorn()
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

    def _gunicorn(self) -> Gunicorn:
        env = {
            "CEILING_LDAP_URL": self.slapd.url,
            "CEILING_BIND_DN": Slapd.service_dn,
            "CEILING_BIND_PASSWORD": Slapd.service_pw,
            "CEILING_PEOPLE_BASE": PEOPLE_BASE,
            "CEILING_STORE": self.store_url,
        }
        return Gunicorn("bench.ceiling:create_app()", log=self.folder / "gunicorn.log", env=env)

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        import json

        from bench.ceiling import open_store

        store = open_store(self.store_url)
        expires = time.time() + lifetime
        issued: Tickets = deque()
        for _ in range(count):
            person = picker()
            ticket = f"ST-{secrets.token_hex(20)}"
            store.add_st(ticket, SERVICE, person.uid, json.dumps(attributes(person)), expires)
            issued.append((ticket, person.uid))
        return issued


class Sso(Target):
    """This project's SSO, configured as in production on the bench's slapd (SQLite or Redis tickets).

    Throttling stays on; only the link-request limits are raised so that one client address may
    ask for thousands of links. The audit log goes to a file, e-mail to an outbox folder.
    """

    name = "sso"
    scenarios = (Scenario.COLD, Scenario.SSO, Scenario.VALIDATE, Scenario.LINK)

    def __init__(self, folder: Path, slapd: Slapd, redis: Redis | None = None) -> None:
        super().__init__(folder)
        self.slapd = slapd
        self.redis = redis
        self.store_url = redis.url if redis else f"sqlite:///{folder / 'var' / 'tickets.db'}"

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
            "tickets": {"url": self.store_url},
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

        return open_registry(self.store_url, Lifetimes())

    def issue(self, count: int, picker: Picker, lifetime: float) -> Tickets:
        from sso.tickets.ids import new_id
        from sso.tickets.model import GrantingTicket, Kind, ServiceTicket

        registry = self._registry()
        now = time.time()
        issued: Tickets = deque()
        tgt: GrantingTicket | None = None
        try:
            for n in range(count):
                person = picker()
                values = {name: tuple(value) for name, value in attributes(person).items()}
                if tgt is None or n % 50 == 0:
                    tgt = GrantingTicket(new_id(Kind.TGT), person.uid, values, now, now, now + lifetime)
                    registry.add(tgt)
                ticket = ServiceTicket(
                    id=new_id(Kind.ST),
                    service=SERVICE,
                    service_id="bench",
                    user=person.uid,
                    attributes=values,
                    tgt_id=tgt.id,
                    primary=False,
                    expires=now + lifetime,
                )
                registry.add(ticket)
                issued.append((ticket.id, person.uid))
        finally:
            registry.close()
        return issued

    def prefill(self, count: int, picker: Picker, lifetime: float = 8 * 3600.0) -> None:
        """``count`` live tickets that stay: half sessions (TGT), half service tickets bound to them."""
        from sso.tickets.ids import new_id
        from sso.tickets.model import GrantingTicket, Kind, ServiceTicket

        registry = self._registry()
        now = time.time()
        try:
            for _ in range(count // 2):
                person = picker()
                values = {name: tuple(value) for name, value in attributes(person).items()}
                tgt = GrantingTicket(new_id(Kind.TGT), person.uid, values, now, now, now + lifetime)
                registry.add(tgt)
                registry.add(
                    ServiceTicket(
                        id=new_id(Kind.ST),
                        service=SERVICE,
                        service_id="bench",
                        user=person.uid,
                        attributes=values,
                        tgt_id=tgt.id,
                        primary=True,
                        expires=now + lifetime,
                    )
                )
        finally:
            registry.close()

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

    def start(self) -> Target:
        self.peer.build()
        return super().start()

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
