"""HTTP hardening: trusted proxies, base path, security headers, body size, throttling (Flask-Limiter)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RequestLimit
from werkzeug.middleware.proxy_fix import ProxyFix

from ldapdir.query import normalise_identifier
from sso.web.runtime import runtime

#: Content-Security-Policy: no inline script or style, no framing (clickjacking of the login form).
#: No ``form-action``: browsers apply it to the redirect that carries the ticket to the service.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def client_address() -> str:
    """The client's address (taken from X-Forwarded-For only for configured trusted proxies)."""
    return request.remote_addr or "unknown"


def login_identifier() -> str:
    """Throttling key for failed sign-ins: the normalised identifier typed (worked out once per
    request: the limiter asks before the view and again to count a failure)."""
    key: str | None = g.get("sso_login_key")
    if key is None:
        if (request.content_length or 0) > runtime().settings.security.max_body:
            key = "id:-"  # the view answers 413; reading the form here would raise inside the limiter
        else:
            key = "id:" + (normalise_identifier(request.form.get("username", "")) or "-")
        g.sso_login_key = key
    return key


def exempt_address() -> bool:
    """Whether the client is in a network exempt from per-address limits (``security.exempt_networks``)."""
    networks = runtime().exempt_networks
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(client_address())
    except ValueError:
        return False
    return any(address in network for network in networks)


# No X-RateLimit headers: they would tell a guesser how many tries remain (the 429 page says when
# to come back, with its own Retry-After).
limiter = Limiter(key_func=client_address, headers_enabled=False, strategy="moving-window")


@limiter.request_filter
def _only_submissions_are_limited() -> bool:
    """Every limit of this app is on a form submission (POST): other requests (the form, SSO
    redirects, validations) skip the limiter's per-request resolution of limits altogether."""
    return request.method != "POST"


def _failed(response: Response) -> bool:
    return response.status_code == 401


def throttle_failed_logins(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count failed sign-ins (401 answers) per address and per identifier; past the limits, 429."""
    security = lambda: runtime().settings.security  # noqa: E731 - read per request: settings belong to the app
    view = limiter.limit(
        lambda: security().login_per_identifier,
        key_func=login_identifier,
        methods=["POST"],
        deduct_when=_failed,
        on_breach=_login_breach,
        scope="login-identifier",
    )(view)
    return limiter.limit(
        lambda: security().login_per_address,
        methods=["POST"],
        exempt_when=exempt_address,
        deduct_when=_failed,
        on_breach=_login_breach,
        scope="login-address",
    )(view)


def _login_breach(limit: RequestLimit) -> Response:
    from sso.web.cas import throttled_login_page  # the page belongs to the CAS views

    return throttled_login_page(limit.reset_at)


class BasePath:
    """Serve the app under the path of ``site.base_url`` (e.g. ``/cas``) whether or not the
    reverse proxy strips it: a request for ``/cas/login`` becomes SCRIPT_NAME=/cas, PATH_INFO=/login."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app, self.prefix = app, prefix.rstrip("/")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.prefix and not environ.get("SCRIPT_NAME"):
            if path == self.prefix or path.startswith(self.prefix + "/"):
                environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Tickets travel in URLs: keep them out of Referer headers sent to third parties.
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint != "static":
        headers["Cache-Control"] = "no-store"
    if runtime().settings.site.base_url.startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    """Install proxies, base path, headers, body limit and the limiter on ``app``."""
    settings = runtime(app).settings
    app.config["MAX_CONTENT_LENGTH"] = settings.security.max_body
    app.config["RATELIMIT_STORAGE_URI"] = settings.security.rate_limit_storage
    app.config["RATELIMIT_KEY_PREFIX"] = "sso"
    # Shared storage down (Redis): count in this process's memory until it is back (checked with
    # a growing interval), never a 500; an error past that is logged and the request let through.
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    if settings.security.rate_limit_storage.startswith(("redis://", "rediss://", "redis+unix://")):
        # A frozen Redis must cost seconds, not a hung worker.
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_timeout": 1, "socket_connect_timeout": 1}
    hops = settings.security.trusted_proxies
    wsgi: Any = app.wsgi_app
    wsgi = BasePath(wsgi, urlsplit(settings.site.base_url).path)
    if hops:
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
    app.after_request(_headers)
    limiter.init_app(app)
