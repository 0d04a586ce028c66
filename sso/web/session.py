"""The ticket-granting cookie (TGC): read it, set it, clear it. Its value is the TGT id. And the
signed session cookie (it carries the CSRF token), with its signing serializer made once."""

from __future__ import annotations

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from sso.tickets.ids import well_formed
from sso.tickets.model import GrantingTicket
from sso.web.runtime import runtime


def current_tgt() -> GrantingTicket | None:
    """The live session named by the request's TGC, or ``None``."""
    rt = runtime()
    value = request.cookies.get(rt.settings.security.cookie_name, "")
    if not value.startswith("TGT-") or not well_formed(value):
        return None
    return rt.tickets.get_tgt(value, rt.clock())


def _cookie_path(req: Request) -> str:
    # Scoped to the SSO's own path (e.g. /cas/) so services on the same host never see it.
    return (req.script_root or "") + "/"


def set_tgc(response: Response, tgt: GrantingTicket) -> None:
    """Attach the TGC to ``response``: HttpOnly, Secure under https, SameSite as configured."""
    rt = runtime()
    response.set_cookie(
        rt.settings.security.cookie_name,
        tgt.id,
        path=_cookie_path(request),
        secure=rt.settings.site.base_url.startswith("https://"),
        httponly=True,
        samesite=rt.settings.security.cookie_samesite,
    )


def clear_tgc(response: Response) -> None:
    """Remove the TGC from the browser."""
    rt = runtime()
    response.delete_cookie(
        rt.settings.security.cookie_name,
        path=_cookie_path(request),
        secure=rt.settings.site.base_url.startswith("https://"),
        httponly=True,
        samesite=rt.settings.security.cookie_samesite,
    )


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; Flask makes a new signing serializer at every request (twice
    when the session is saved), this one makes it once per set of keys."""

    def __init__(self) -> None:
        self._made: tuple[object, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, super().get_signing_serializer(app))
        return made[1]
