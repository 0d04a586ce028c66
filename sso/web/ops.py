"""Operations endpoints: ``/health`` (liveness and readiness, JSON)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ldapdir import DirectoryUnavailable
from sso.tickets.registry import RegistryUnavailable
from sso.web.runtime import runtime

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health() -> Response:
    """200 when the directory and the ticket store answer, else 503 with what is down."""
    rt = runtime()
    checks: dict[str, str] = {}
    for name, ping, error in (
        ("directory", rt.directory.ping, DirectoryUnavailable),
        ("tickets", rt.tickets.ping, RegistryUnavailable),
    ):
        try:
            ping()
            checks[name] = "ok"
        except error:
            checks[name] = "unavailable"
    ready = all(state == "ok" for state in checks.values())
    response = jsonify({"status": "ok" if ready else "unavailable", "live": True, "ready": ready, "checks": checks})
    response.status_code = 200 if ready else 503
    return response
