"""The ticket-granting cookie (TGC): read it, set it, clear it. Its value is the TGT id. And the
signed session cookie (it carries the CSRF token), made cheaper to read and write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.timed import TimedSerializer

from sso.tickets.ids import well_formed
from sso.tickets.model import GrantingTicket
from sso.web.runtime import runtime


def current_tgt() -> GrantingTicket | None:
    """The live session named by the request's TGC, or ``None``."""
    rt = runtime()
    if "HTTP_COOKIE" not in request.environ:
        return None
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


_SERIALIZERS: dict[tuple[bytes, str], URLSafeTimedSerializer] = {}


def signing_serializer(secret_key: str | bytes, salt: str) -> URLSafeTimedSerializer:
    """A ``URLSafeTimedSerializer(secret_key, salt=salt)`` (itsdangerous's defaults: JSON, SHA-1
    HMAC, django-concat key derivation), made once per key and salt, that signs the same tokens
    without the compression attempt and derives its key once."""
    known = (want_bytes(secret_key), salt)
    serializer = _SERIALIZERS.get(known)
    if serializer is None:
        serializer = _SERIALIZERS[known] = _CookieSerializer(secret_key, salt=salt, signer=_Signer)
    return serializer


class LazySession(SecureCookieSession):
    """A session read from its cookie when first used. Most requests that carry the cookie never
    use it (a redirect to a service from the session, a sign-out), and reading it (base64, HMAC,
    JSON) was a fifth of such a request's CPU."""

    def __init__(self, load: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._pending: Callable[[], dict[str, Any]] | None = load

    @property
    def loaded(self) -> bool:
        """Whether the cookie was read (the session was used)."""
        return self._pending is None

    def _load(self) -> None:
        load, self._pending = self._pending, None
        if load is not None:
            dict.update(self, load())  # as read: not a modification


def _loading_first(name: str) -> Callable[..., Any]:
    method = getattr(SecureCookieSession, name)

    def call(self: LazySession, *args: Any, **kwargs: Any) -> Any:
        if self._pending is not None:
            self._load()
        return method(self, *args, **kwargs)

    call.__name__ = name
    return call


# Every way into the mapping reads the cookie first (dict's own methods would see an empty dict).
for _name in (
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__len__",
    "__eq__", "__ne__", "__repr__", "__or__", "__ior__", "__reversed__",
    "get", "setdefault", "pop", "popitem", "update", "clear", "keys", "values", "items", "copy",
):  # fmt: skip
    setattr(LazySession, _name, _loading_first(_name))


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with their signing serializer made once per set of keys
    (Flask makes one at every request, twice when the session is saved), keys derived once,
    plain JSON (the session holds only strings; Flask's tagged JSON also walks every value), and
    the cookie read only when the session is used (:class:`LazySession`)."""

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

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        # A service validating a ticket sends no cookie: no need to parse the headers for one.
        value = request.cookies.get(self.get_cookie_name(app)) if "HTTP_COOKIE" in request.environ else None
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())

        def load() -> dict[str, Any]:
            try:
                data = serializer.loads(value, max_age=max_age)
            except BadSignature:  # tampered, expired or from an old key: a new, empty session
                return {}
            return data if isinstance(data, dict) else {}

        return LazySession(load)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, LazySession) and not session.loaded:
            return  # never used: the cookie stays as it is
        super().save_session(app, session, response)

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
