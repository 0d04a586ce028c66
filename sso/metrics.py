"""Prometheus metrics: what operators watch on the morning of the first day of term.

Plain Python on ``prometheus_client`` (the web glue exposes them at ``/metrics``):

- sign-ins, validations, proxy grants, logouts and account events are counted from the audit
  events (:func:`observe_audit`, an :class:`~sso.audit.Audit` observer): one source of truth;
- tickets issued, and the latency and failures of the ticket store, by :class:`MeteredRegistry`
  around the configured registry;
- request latency by endpoint by the web glue (:data:`REQUEST_SECONDS`).

Label values come from short fixed sets (unknown values become ``other``): a client cannot create
series by sending odd parameters.

Several worker processes (gunicorn): each process counts on its own. With
``PROMETHEUS_MULTIPROC_DIR`` set to an empty folder before the server starts (``sso serve`` does it
when it runs more than one worker), every process writes its values there and ``/metrics`` adds
them up (:func:`exposition`); without it, a scrape sees only the worker that answered.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from sso.cas.errors import Code
from sso.tickets.model import GrantingTicket, ProxyGrantingTicket, ServiceTicket, SessionService, Ticket
from sso.tickets.registry import RegistryUnavailable, TicketRegistry

T = TypeVar("T")

#: Environment variable of prometheus_client's multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Latency buckets (seconds): a sign-in waits on LDAP (ms to a few s at the timeouts).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Ticket store buckets: Redis or SQLite answer in well under a millisecond when healthy.
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)

LOGINS = Counter(
    "sso_logins",
    "Sign-in attempts (POST /login) by outcome: success, invalid, never_activated, locked, expired, "
    "must_change, throttled.",
    ["outcome"],
)
VALIDATIONS = Counter(
    "sso_validations",
    "Ticket validations by endpoint and outcome (success or the CAS error code).",
    ["endpoint", "outcome"],
)
PROXY_GRANTS = Counter("sso_proxy_grants", "Proxy ticket requests (/proxy) by outcome.", ["outcome"])
LOGOUTS = Counter("sso_logouts", "Sessions ended by /logout.")
ACCOUNT_EVENTS = Counter(
    "sso_account_events",
    "First connection and password reset events (link_sent, password_set, refused...).",
    ["event"],
)
TICKETS_ISSUED = Counter("sso_tickets_issued", "Tickets stored, by kind (TGT, ST, PT, PGT).", ["kind"])
TICKET_STORE_SECONDS = Histogram(
    "sso_ticket_store_duration_seconds",
    "Time spent in the ticket store, by operation.",
    ["operation"],
    buckets=STORE_BUCKETS,
)
TICKET_STORE_ERRORS = Counter(
    "sso_ticket_store_errors", "Ticket store operations that failed (store unreachable).", ["operation"]
)
REQUEST_SECONDS = Histogram(
    "sso_request_duration_seconds",
    "HTTP request latency by endpoint and method.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
RESPONSES = Counter("sso_responses", "HTTP responses by endpoint and status code.", ["endpoint", "status"])

#: Sign-in failure reasons the views record (``login.failure`` ``reason``).
LOGIN_OUTCOMES = frozenset({"invalid", "never_activated", "locked", "expired", "must_change"})
#: Validation endpoints (the ``endpoint`` of ``validate.*`` events).
VALIDATION_ENDPOINTS = frozenset(
    {"validate", "serviceValidate", "proxyValidate", "p3/serviceValidate", "p3/proxyValidate", "samlValidate"}
)
#: CAS 3.0 §2.5.3 / §2.7.3 error codes.
CAS_CODES = frozenset(code.value for code in Code)
_WORD = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


def _one_of(value: object, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else "other"


def observe_audit(event: str, record: Mapping[str, object]) -> None:
    """Count an audit event (an :data:`sso.audit.Observer`)."""
    family, _, name = event.partition(".")
    if family == "login":
        if name == "success":
            LOGINS.labels("success").inc()
        elif name == "throttled":
            LOGINS.labels("throttled").inc()
        elif name == "failure":
            LOGINS.labels(_one_of(record.get("reason"), LOGIN_OUTCOMES)).inc()
    elif family == "validate" and name in ("success", "failure"):
        outcome = "success" if name == "success" else _one_of(record.get("code"), CAS_CODES)
        VALIDATIONS.labels(_one_of(record.get("endpoint"), VALIDATION_ENDPOINTS), outcome).inc()
    elif family == "proxy" and name in ("success", "failure"):
        PROXY_GRANTS.labels(name).inc()
    elif event == "logout":
        LOGOUTS.inc()
    elif family == "activation":
        ACCOUNT_EVENTS.labels(name if _WORD.match(name) else "other").inc()


class MeteredRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` that times and counts another one.

    Every call is timed (:data:`TICKET_STORE_SECONDS`); a :class:`RegistryUnavailable` is counted
    (:data:`TICKET_STORE_ERRORS`) and passed on; a successful :meth:`add` counts a ticket issued.
    """

    def __init__(self, inner: TicketRegistry) -> None:
        #: The registry measured.
        self.inner = inner

    @contextmanager
    def _measure(self, operation: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except RegistryUnavailable:
            TICKET_STORE_ERRORS.labels(operation).inc()
            raise
        finally:
            TICKET_STORE_SECONDS.labels(operation).observe(time.perf_counter() - start)

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        with self._measure(operation):
            return call()

    def add(self, *tickets: Ticket) -> None:
        self._call("add", lambda: self.inner.add(*tickets))
        for ticket in tickets:
            TICKETS_ISSUED.labels(ticket.kind.value).inc()

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        return self._call("take", lambda: self.inner.take(ticket_id, now))

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        return self._call("get_tgt", lambda: self.inner.get_tgt(tgt_id, now))

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        self._call("touch_tgt", lambda: self.inner.touch_tgt(tgt_id, now))

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        return self._call("get_pgt", lambda: self.inner.get_pgt(pgt_id, now))

    def end_session(self, tgt_id: str) -> list[SessionService]:
        return self._call("end_session", lambda: self.inner.end_session(tgt_id))

    def purge(self, now: float) -> int:
        return self._call("purge", lambda: self.inner.purge(now))

    def stats(self, now: float) -> dict[str, int]:
        return self._call("stats", lambda: self.inner.stats(now))

    def ping(self) -> None:
        self._call("ping", self.inner.ping)

    def close(self) -> None:
        self.inner.close()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set), the values of every worker process
    (the folder's files), added up; otherwise this process's registry.
    """
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
