"""The demo ENT portal: a small, separate Flask app that is a real CAS service, built on python-cas
the way a university's own portal would be.

It redirects to the SSO's ``/login``, validates the ticket it gets back (CAS 3.0
``/p3/serviceValidate``, through :class:`cas.CASClientV3`), shows the person's name and the
attributes the SSO released to it, and receives single logout: the SSO POSTs a SAML
``LogoutRequest`` whose ``SessionIndex`` is the service ticket the session was opened with (CAS 3.0
§2.3.3, Appendix C), and the portal ends that session.

Everything comes from the SSO's own configuration: the portal is the registered service
``portail`` (:data:`SERVICE_ID`), listening at that service's ``home_url``; its pages speak the
SSO's catalogues and follow the same language cookie. ``sso demo`` runs it beside the SSO; by hand:
``SSO_CONFIG=config/demo.yaml gunicorn -w 1 --threads 4 -b 127.0.0.1:8001 'sso.demo_portal:create_app()'``
(one process: the portal keeps its sessions in memory).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from flask import Flask, Response, make_response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from jinja2 import FileSystemLoader

from sso.config import Settings, config_path, load_settings
from sso.resources import static_dir, templates_dir
from sso.services import ServiceSettings
from sso.web.i18n import init_babel

log = logging.getLogger(__name__)

#: The id of the portal in the SSO's service registry (config/demo.yaml).
SERVICE_ID = "portail"
#: Seconds the portal waits on the SSO when it validates a ticket.
VALIDATION_TIMEOUT = 10.0
#: Content-Security-Policy of the portal's pages (as strict as the SSO's).
CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
#: Longest ticket accepted from a query string or a logout request (CAS 3.0 §3.1: at most 256).
MAX_TICKET = 256


class PortalNotConfigured(Exception):
    """The SSO configuration has no usable ``portail`` service."""


@dataclass(frozen=True)
class PortalSession:
    """One person signed in to the portal."""

    user: str
    #: The attributes the SSO released (name -> values).
    attributes: Mapping[str, tuple[str, ...]]
    #: The service ticket the session was opened with: the ``SessionIndex`` of single logout.
    ticket: str
    #: POSIX time of the sign-in.
    since: float

    @property
    def first_name(self) -> str:
        """``givenName``, else ``displayName``, else the user name."""
        for name in ("givenName", "displayName"):
            values = self.attributes.get(name)
            if values and values[0].strip():
                return values[0].strip()
        return self.user


@dataclass
class SessionStore:
    """The portal's sessions, in memory (one process), found by cookie id or by service ticket."""

    _by_id: dict[str, PortalSession] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, opened: PortalSession) -> str:
        """Store a session; return its new random id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[sid] = opened
        return sid

    def get(self, sid: str) -> PortalSession | None:
        """The session ``sid`` names, if it is still open."""
        with self._lock:
            return self._by_id.get(sid)

    def close(self, sid: str) -> None:
        """End one session (local logout)."""
        with self._lock:
            self._by_id.pop(sid, None)

    def close_ticket(self, ticket: str) -> int:
        """End the sessions opened with ``ticket`` (single logout); return how many."""
        with self._lock:
            ended = [sid for sid, opened in self._by_id.items() if hmac.compare_digest(opened.ticket, ticket)]
            for sid in ended:
                del self._by_id[sid]
        return len(ended)


class _TimedSession(requests.Session):
    """python-cas's HTTP session, with a timeout on every call (python-cas sets none)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", VALIDATION_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Portal:
    """Where the portal and the SSO are."""

    #: The SSO's base URL (``site.base_url``).
    sso_url: str
    #: The portal's own home URL (the service's ``home_url``, ending with ``/``).
    home_url: str

    @property
    def service_url(self) -> str:
        """The CAS ``service`` of the portal: where the SSO sends the ticket."""
        return self.home_url + "cas/callback"

    def client(self, http: requests.Session | None = None) -> Any:
        """A python-cas CAS 3 client for the portal."""
        from cas import CASClientV3

        return CASClientV3(
            service_url=self.service_url, server_url=self.sso_url + "/", session=http or _TimedSession()
        )


def portal_service(settings: Settings, service_id: str = SERVICE_ID) -> ServiceSettings:
    """The portal's entry in the service registry.

    :raises PortalNotConfigured: no such service, or without a ``home_url`` on http(s).
    """
    for service in settings.services:
        if service.id == service_id:
            if not service.home_url or urlsplit(service.home_url).scheme not in ("http", "https"):
                raise PortalNotConfigured(f"service {service_id!r} needs a home_url (the portal's address)")
            return service
    raise PortalNotConfigured(
        f"no service with id {service_id!r} in the configuration (see config/demo.yaml)"
    )


def portal_bind(settings: Settings) -> str:
    """``host:port`` the portal listens on (from its ``home_url``)."""
    parts = urlsplit(portal_service(settings).home_url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def create_app(settings: Settings | str | None = None, *, http: requests.Session | None = None) -> Flask:
    """Build the demo portal from the SSO's configuration.

    :param settings: loaded settings or a YAML path (default: ``$SSO_CONFIG``, else the demo).
    :param http: the HTTP session python-cas validates tickets with (tests).
    :raises PortalNotConfigured: the configuration has no portal service.
    """
    if not isinstance(settings, Settings):
        settings = load_settings(config_path(settings))
    service = portal_service(settings)
    portal = Portal(settings.site.base_url, service.home_url.rstrip("/") + "/")
    app = Flask("sso.demo_portal", static_folder=str(static_dir()), template_folder=None)
    app.jinja_loader = FileSystemLoader(str(templates_dir() / "portal"))
    app.config.update(
        # Its own key, derived from the SSO's: the two apps never accept each other's cookies.
        SECRET_KEY=hmac.new(settings.secret_keys[0].encode(), b"demo-portal", hashlib.sha256).hexdigest(),
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=portal.home_url.startswith("https://"),
    )
    init_babel(
        app,
        settings.site.default_language,
        settings.activation.time_zone,
        Path(settings.var_folder) / "cache" / "translations",
    )
    store = SessionStore()
    app.extensions["demo_portal"] = (portal, store, http)
    _routes(app, settings, portal, store, http)
    return app


def _routes(
    app: Flask, settings: Settings, portal: Portal, store: SessionStore, http: requests.Session | None
) -> None:
    def current() -> PortalSession | None:
        sid = session.get("sid")
        return store.get(sid) if isinstance(sid, str) else None

    @app.context_processor
    def context() -> dict[str, object]:
        return {
            "site": settings.site,
            "current_lang": str(get_locale() or settings.site.default_language),
            "sso_url": portal.sso_url,
            "lang_url": _lang_url,
        }

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/")
    def home() -> Response:
        """Signed in: the name and the released attributes. Otherwise: « Se connecter avec l'ENT »."""
        opened = current()
        attributes = sorted(opened.attributes.items()) if opened else []
        since = datetime.fromtimestamp(opened.since, UTC) if opened else None
        return make_response(render_template("home.html", opened=opened, attributes=attributes, since=since))

    @app.get("/login")
    def login() -> Response:
        """Off to the SSO's sign-in page, in the page's language."""
        url = portal.client(http).get_login_url()
        return redirect(url + "&" + urlencode({"lang": str(get_locale() or "fr")}), 302)

    @app.get("/cas/callback")
    def callback() -> Response:
        """Back from the SSO with a ticket: validate it (CAS 3.0 §2.5), open the portal's session."""
        ticket = request.args.get("ticket", "")
        if not ticket or len(ticket) > MAX_TICKET:
            return redirect(url_for("home"), 303)
        try:
            user, attributes, _pgtiou = portal.client(http).verify_ticket(ticket)
        except requests.RequestException as exc:
            log.warning("ticket validation failed: %s", type(exc).__name__)
            user, attributes = None, None
        if not user:
            page = render_template(
                "error.html",
                text=_("Le service d'authentification n'a pas confirmé votre connexion. Réessayez."),
            )
            return make_response(page, 403)
        opened = PortalSession(user, _attributes(attributes or {}), ticket, time.time())
        session.clear()
        session["sid"] = store.open(opened)
        log.info("portal: %s signed in", user)
        return redirect(url_for("home"), 303)

    @app.post("/logout")
    def logout() -> Response:
        """« Se déconnecter »: end the portal's session, then the SSO's (which tells every service)."""
        sid = session.pop("sid", None)
        if isinstance(sid, str):
            store.close(sid)
        return redirect(portal.client(http).get_logout_url(portal.home_url), 303)

    @app.post("/cas/logout-callback")
    def logout_callback() -> Response:
        """Single logout from the SSO (CAS 3.0 Appendix C): end the session of the ticket named."""
        ticket = session_index(request.form.get("logoutRequest", ""))
        if ticket is not None:
            ended = store.close_ticket(ticket)
            log.info("portal: single logout ended %d session(s)", ended)
        return Response("", 200)


def session_index(logout_request: str) -> str | None:
    """The ``SessionIndex`` (a service ticket) of a SAML ``LogoutRequest``, or ``None`` if the body
    is not one. Parsed with defusedxml: the body comes from the network."""
    if not logout_request or len(logout_request) > 16 * 1024:
        return None
    try:
        root = ElementTree.fromstring(logout_request)
    except (ElementTree.ParseError, DefusedXmlException):
        return None
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.endswith("}SessionIndex"):
            text = (element.text or "").strip()
            return text if 0 < len(text) <= MAX_TICKET else None
    return None


def _attributes(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """python-cas gives a string for one value and a list for several: always a tuple of strings."""
    out: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list | tuple) else [value]
        out[str(name)] = tuple(str(item) for item in values if item is not None)
    return out


def _lang_url(lang: str) -> str:
    return f"{request.script_root}{request.path}?{urlencode({'lang': lang})}"


#: The people of config/demo-directory.ldif, for ``sso demo`` to print (identifier, password, state).
DEMO_ACCOUNTS = (
    ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026", "student, active"),
    ("jean.dupont@univ-demo.fr", "Marche-Bleu-2026", "staff, active"),
    ("lea.petit@etu.univ-demo.fr", "-", "never activated: use « 1ère connexion »"),
    ("sophie.moreau@univ-demo.fr", "-", "never activated"),
    ("paul.bernard@etu.univ-demo.fr", "Ancien-Mot-2024", "expired"),
    ("marc.leroy@univ-demo.fr", "Verrou-Ferme-2026", "locked"),
    ("nina.lambert@etu.univ-demo.fr", "Riviere-Calme-2026", "active, no personal e-mail"),
)
