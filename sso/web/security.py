"""HTTP hardening: trusted proxies, body size, throttling (Flask-Limiter); the base path and the
security headers are in :mod:`sso.web.edge`."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from flask.globals import request_ctx
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from ldapdir.query import normalise_identifier
from sso.throttle import Window
from sso.web.edge import Edge
from sso.web.runtime import runtime


def client_address() -> str:
    """The client's address (taken from X-Forwarded-For only for configured trusted proxies)."""
    return request.remote_addr or "unknown"


def login_identifier() -> str:
    """Throttling key for failed sign-ins: the normalised identifier typed."""
    if (request.content_length or 0) > runtime().settings.security.max_body:
        return "id:-"  # the view answers 413 without reading the form
    return "id:" + (normalise_identifier(request.form.get("username", "")) or "-")


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


def throttle_failed_logins(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count failed sign-ins (401 answers) per identifier and per address (``security.login_per_*``,
    the address not counted in ``exempt_networks``); past the limits, the 429 page
    (:mod:`sso.throttle`, on ``limits`` directly: see there why not Flask-Limiter)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        rt = runtime()
        per_identifier, per_address = rt.sign_in_limits
        windows = (
            Window("login-identifier", per_identifier, login_identifier()),
            Window("login-address", per_address, None if exempt_address() else client_address()),
        )
        reset_at = rt.throttle.blocked(windows)
        if reset_at is not None:
            from sso.web.cas import throttled_login_page  # the page belongs to the CAS views

            return throttled_login_page(reset_at)
        response = view(*args, **kwargs)
        if response.status_code == 401:
            rt.throttle.failed(windows)
        return response

    return checked


def _limit_only_limited_views(app: Flask, hooks: tuple[list[Any], list[Any], list[Any]]) -> None:
    """Flask-Limiter checks every request in a ``before_request`` hook, for default and
    application-wide limits. This app has none: every limit is on a view (form submissions), whose
    decorator checks it. So that hook is removed, and the limiter's ``after_request`` (deductions
    on failure) and teardown hooks run only for a request that went through a limited view."""
    before, after, teardown = (list(funcs) for funcs in hooks)
    app.before_request_funcs[None] = before
    ours = app.after_request_funcs.setdefault(None, [])
    for hook in [f for f in ours if f not in after]:
        ours[ours.index(hook)] = _when_limited(hook)
    ours = app.teardown_request_funcs.setdefault(None, [])
    for hook in [f for f in ours if f not in teardown]:
        ours[ours.index(hook)] = _when_limited(hook)


def _when_limited(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(value: Any) -> Any:
        # Flask-Limiter keeps its per-request state on the request context.
        return hook(value) if hasattr(request_ctx, "_limiter_request_context") else value

    return run


def init_app(app: Flask) -> None:
    """Install proxies, the WSGI edge (base path, headers, request metrics), body limit and the
    limiter on ``app``."""
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
    base_url = settings.site.base_url
    wsgi: Any = Edge(app.wsgi_app, urlsplit(base_url).path, https=base_url.startswith("https://"))
    if hops:
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
    hooks = (
        list(app.before_request_funcs.get(None, [])),
        list(app.after_request_funcs.get(None, [])),
        list(app.teardown_request_funcs.get(None, [])),
    )
    limiter.init_app(app)
    _limit_only_limited_views(app, hooks)
