"""The ticket-granting cookie (TGC): read it, set it, clear it. Its value is the TGT id. And the
signed session cookie (it carries the CSRF token), made cheaper to read and write."""

from __future__ import annotations

from typing import Any, ClassVar

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.timed import TimedSerializer

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


class _Signer(TimestampSigner):
    """itsdangerous's timestamp signer, keeping the keys it derives: one HMAC per cookie signed or
    checked instead of two (itsdangerous derives the key from the secret at every call)."""

    _derived: ClassVar[dict[tuple[bytes, bytes, str, Any], bytes]] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        known = (secret, self.salt, self.key_derivation, self.digest_method)
        key = self._derived.get(known)
        if key is None:
            key = self._derived[known] = super().derive_key(secret)
        return key


class _CookieSerializer(URLSafeTimedSerializer):
    """Flask's session serializer without the compression attempt: the session holds one CSRF
    token, which zlib never shortens (itsdangerous tries at every cookie). Compressed cookies
    still load."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(TimedSerializer.dump_payload(self, obj))


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with their signing serializer made once per set of keys
    (Flask makes one at every request, twice when the session is saved), keys derived once, and
    plain JSON (the session holds only strings; Flask's tagged JSON also walks every value)."""

    #: Plain, compact JSON (itsdangerous's): the session holds only strings.
    serializer = URLSafeTimedSerializer.default_serializer

    def __init__(self) -> None:
        self._made: tuple[object, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, self._serializer(app))
        return made[1]

    def _serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        # itsdangerous expects the current key last.
        secrets = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]
        return _CookieSerializer(
            secrets,
            salt=self.salt,
            serializer=self.serializer,
            signer=_Signer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )
