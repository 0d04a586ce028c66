"""Prometheus metrics: what operators watch on the morning of the first day of term.

Plain Python on ``prometheus_client`` (the web glue exposes them at ``/metrics``):

- sign-ins, validations, proxy grants, logouts and account events are counted from the audit
  events (:func:`observe_audit`, an :class:`~sso.audit.Audit` observer): one source of truth;
- tickets issued, and the latency and failures of the ticket store, by :class:`MeteredRegistry`
  around the configured registry;
- request latency by endpoint by the web glue (:data:`REQUEST_SECONDS`).

The hot paths reach a metric's label children through :class:`Children` (``labels()`` takes a
lock and builds a key at every call; a child is looked up once per set of label values).

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
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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


class Children:
    """The label children of ``metric``, each made once: ``Children(M)(a, b)`` is ``M.labels(a, b)``.

    Label values come from short fixed sets, so the cache stays small.
    """

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._metric.labels(*values)
        return child


request_seconds = Children(REQUEST_SECONDS)
responses = Children(RESPONSES)
_logins = Children(LOGINS)
_validations = Children(VALIDATIONS)
_proxy_grants = Children(PROXY_GRANTS)
_account_events = Children(ACCOUNT_EVENTS)
_tickets_issued = Children(TICKETS_ISSUED)
_store_seconds = Children(TICKET_STORE_SECONDS)
_store_errors = Children(TICKET_STORE_ERRORS)

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
            _logins("success").inc()
        elif name == "throttled":
            _logins("throttled").inc()
        elif name == "failure":
            _logins(_one_of(record.get("reason"), LOGIN_OUTCOMES)).inc()
    elif family == "validate" and name in ("success", "failure"):
        outcome = "success" if name == "success" else _one_of(record.get("code"), CAS_CODES)
        _validations(_one_of(record.get("endpoint"), VALIDATION_ENDPOINTS), outcome).inc()
    elif family == "proxy" and name in ("success", "failure"):
        _proxy_grants(name).inc()
    elif event == "logout":
        LOGOUTS.inc()
    elif family == "activation":
        _account_events(name if _WORD.match(name) else "other").inc()


class MeteredRegistry:
    """A :class:`~sso.tickets.registry.TicketRegistry` that times and counts another one.

    Every call is timed (:data:`TICKET_STORE_SECONDS`); a :class:`RegistryUnavailable` is counted
    (:data:`TICKET_STORE_ERRORS`) and passed on; a successful :meth:`add` counts a ticket issued.
    """

    def __init__(self, inner: TicketRegistry) -> None:
        #: The registry measured.
        self.inner = inner

    def _call(self, operation: str, call: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return call(*args)
        except RegistryUnavailable:
            _store_errors(operation).inc()
            raise
        finally:
            _store_seconds(operation).observe(time.perf_counter() - start)

    def add(self, *tickets: Ticket) -> None:
        self._call("add", self.inner.add, *tickets)
        for ticket in tickets:
            _tickets_issued(ticket.kind.value).inc()

    def take(self, ticket_id: str, now: float) -> ServiceTicket | None:
        return self._call("take", self.inner.take, ticket_id, now)

    def get_tgt(self, tgt_id: str, now: float) -> GrantingTicket | None:
        return self._call("get_tgt", self.inner.get_tgt, tgt_id, now)

    def touch_tgt(self, tgt_id: str, now: float) -> None:
        self._call("touch_tgt", self.inner.touch_tgt, tgt_id, now)

    def get_pgt(self, pgt_id: str, now: float) -> ProxyGrantingTicket | None:
        return self._call("get_pgt", self.inner.get_pgt, pgt_id, now)

    def end_session(self, tgt_id: str) -> list[SessionService]:
        return self._call("end_session", self.inner.end_session, tgt_id)

    def purge(self, now: float) -> int:
        return self._call("purge", self.inner.purge, now)

    def stats(self, now: float) -> dict[str, int]:
        return self._call("stats", self.inner.stats, now)

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
