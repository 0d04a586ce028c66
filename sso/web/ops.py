"""Operations endpoints: ``/health`` (liveness, readiness; JSON) and ``/metrics`` (Prometheus).

- ``GET /health/live``: 200 while the process serves requests, whatever its dependencies (a
  liveness probe must not restart every node because Redis is down).
- ``GET /health/ready`` (and ``/health``): 200 when the directory and the ticket store answer,
  else 503 naming what is down, so a load balancer sends people to nodes that can sign them in.
- ``GET /metrics``: the counters and histograms of :mod:`sso.metrics`. Operational figures only
  (no user, no ticket); still, keep it off the public side of the load balancer.

Registering the blueprint also wires the measurements into the app (:func:`_install`): the ticket
registry is wrapped in :class:`~sso.metrics.MeteredRegistry`, audit events are counted, every
audit line made during a request gets the client address. Each request is timed by
:class:`sso.web.edge.Edge`.
"""

from __future__ import annotations

import time
from typing import cast

from flask import Blueprint, Flask, Response, has_request_context, jsonify
from flask.blueprints import BlueprintSetupState

from ldapdir import DirectoryUnavailable
from sso import __version__, metrics
from sso.tickets.registry import RegistryUnavailable
from sso.web.runtime import runtime
from sso.web.security import client_address

bp = Blueprint("ops", __name__)


@bp.get("/health/live")
def live() -> Response:
    """Liveness: the process answers (no dependency is checked)."""
    return jsonify({"status": "ok", "live": True, "version": __version__})


@bp.get("/health")
@bp.get("/health/ready")
def health() -> Response:
    """Readiness: 200 when the directory and the ticket store answer, else 503 with what is down.

    Each check is bounded by its back-end's timeouts (LDAP connect/receive, Redis socket).
    """
    rt = runtime()
    checks: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name, ping, error in (
        ("directory", rt.directory.ping, DirectoryUnavailable),
        ("tickets", rt.tickets.ping, RegistryUnavailable),
    ):
        start = time.perf_counter()
        try:
            ping()
            checks[name] = "ok"
        except error:
            checks[name] = "unavailable"
        timings[name] = round((time.perf_counter() - start) * 1000, 1)
    ready = all(state == "ok" for state in checks.values())
    response = jsonify(
        {
            "status": "ok" if ready else "unavailable",
            "live": True,
            "ready": ready,
            "checks": checks,
            "ms": timings,
            "version": __version__,
        }
    )
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def prometheus() -> Response:
    """The metrics in Prometheus' text format (all worker processes in multiprocess mode)."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


# Measurements


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    """Wire the measurements into the app (once, when the blueprint is registered)."""
    app = cast(Flask, state.app)
    rt = runtime(app)
    rt.tickets = metrics.MeteredRegistry(rt.tickets)
    rt.audit.add_observer(metrics.observe_audit)
    rt.audit.use_context(_request_fields)


def _request_fields() -> dict[str, object]:
    """What the audit log adds to an event recorded during a request."""
    return {"ip": client_address()} if has_request_context() else {}
