"""HTTP hardening: trusted proxies, body size, throttling (:mod:`sso.throttle`); the base path and
the security headers are in :mod:`sso.web.edge`."""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_babel import gettext as _
from werkzeug.middleware.proxy_fix import ProxyFix

from ldapdir.query import normalise_identifier
from sso.throttle import Window
from sso.web.edge import Edge
from sso.web.pages import message_page
from sso.web.runtime import runtime


def client_address() -> str:
    """The client's address (taken from X-Forwarded-For only for configured trusted proxies)."""
    return request.remote_addr or "unknown"


def identifier_key(prefix: str) -> str:
    """Throttling key of the identifier typed in a form (``username``), normalised."""
    if (request.content_length or 0) > runtime().settings.security.max_body:
        return f"{prefix}:-"  # the view answers 413 without reading the form
    return f"{prefix}:" + (normalise_identifier(request.form.get("username", "")) or "-")


def address_unless_exempt() -> str | None:
    """The client address as a throttling key; ``None`` in ``security.exempt_networks``."""
    address = client_address()
    networks = runtime().exempt_networks
    if networks:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return address
        if any(parsed in network for network in networks):
            return None
    return address


def _throttled_page(reset_at: float) -> Response:
    """429, with the wait (no X-RateLimit headers: they would tell a guesser how many tries remain)."""
    response = message_page(
        _("Trop de requêtes"), _("Vous avez fait trop de demandes. Réessayez un peu plus tard."), 429
    )
    response.headers["Retry-After"] = str(max(1, math.ceil(reset_at - time.time())))
    return response


def throttle_failed_logins(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count failed sign-ins (401 answers) per identifier and per address (``security.login_per_*``,
    the address not counted in ``exempt_networks``); past the limits, the sign-in page with the wait
    (429)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        rt = runtime()
        windows = (
            Window("login-identifier", rt.limits["login_per_identifier"], identifier_key("id")),
            Window("login-address", rt.limits["login_per_address"], address_unless_exempt()),
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


def throttle_requests(*windows: tuple[str, str, Callable[[], str | None]]) -> Callable[..., Any]:
    """Count every request of the view in each ``(scope, limit name, key function)`` window (a key
    of ``None`` is not counted); past a limit, a 429 page."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def counted(*args: Any, **kwargs: Any) -> Any:
            rt = runtime()
            reset_at = rt.throttle.hit(
                [Window(scope, rt.limits[name], key()) for scope, name, key in windows]
            )
            if reset_at is not None:
                return _throttled_page(reset_at)
            return view(*args, **kwargs)

        return counted

    return decorate


def init_app(app: Flask) -> None:
    """Install proxies, the WSGI edge (base path, headers, request metrics) and the body limit on
    ``app``."""
    settings = runtime(app).settings
    app.config["MAX_CONTENT_LENGTH"] = settings.security.max_body
    hops = settings.security.trusted_proxies
    base_url = settings.site.base_url
    wsgi: Any = Edge(app.wsgi_app, urlsplit(base_url).path, https=base_url.startswith("https://"))
    if hops:
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
