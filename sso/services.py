"""The service registry: which applications may use this CAS server (CAS 3.0 §2.1.1 note).

Each entry of the YAML ``services:`` list is a :class:`ServiceSettings`; a :class:`ServiceRegistry`
compiles them and answers :meth:`ServiceRegistry.match`. A URL is refused *before* any pattern is
tried if it looks like a trick (not http(s), userinfo, backslash, control characters, whitespace,
an odd host); then the first service whose pattern matches the **whole** URL wins, so
``https://ent\\.univ\\.fr/.*`` never accepts ``https://ent.univ.fr.attacker.example/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

#: Longest service URL accepted (longer ones are refused, not truncated).
MAX_URL_LENGTH = 2048
#: Service ids: short slugs (used in logs, the portal and the ticket store).
_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})\Z")
#: Attribute names that may be released: safe as XML element names and JSON keys.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}\Z")
#: A host: DNS name or IPv4 (ASCII letters, digits, dots, hyphens), or a bracketed IPv6 literal.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])\Z")
#: Control characters, whitespace (incl. Unicode spaces) and backslash: never in a URL we accept.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\\\s]")


def parse_safe_url(url: str, *, max_length: int = MAX_URL_LENGTH) -> SplitResult | None:
    """Split ``url`` if it is a plain absolute http(s) URL, else ``None``.

    Refused: over ``max_length``; control characters, whitespace or backslashes anywhere; a
    scheme other than ``http``/``https`` (so ``javascript:``, ``data:``, scheme-relative ``//x``);
    userinfo (``@`` before the host); an empty host; a host with anything but ASCII letters,
    digits, dots and hyphens (no ``%``-encoding, no IDN homographs — use the punycode form);
    an invalid port.
    """
    if len(url) > max_length or _FORBIDDEN.search(url):
        return None
    lowered = url[:8].lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    del port  # only parsed to reject invalid ports
    if "@" in parts.netloc or not parts.hostname:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if not _HOST.match(host):
        return None
    return parts


def _compile(pattern: str, key: str, service_id: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"service {service_id!r}: {key} is not a valid regular expression ({exc})") from exc


def _check_link(value: str, key: str, service_id: str) -> None:
    if value and parse_safe_url(value) is None:
        raise ValueError(f"service {service_id!r}: {key} must be an absolute http(s) URL, got {value!r:.80}")


@dataclass(frozen=True)
class ServiceSettings:
    """One application allowed to use the CAS server (an entry of the YAML ``services:`` list).

    Patterns are Python regular expressions matched against the **whole** service URL
    (:func:`re.fullmatch`): escape the dots, and end with ``(/.*)?`` to allow paths.
    """

    __pydantic_config__ = {"extra": "forbid"}

    #: Short slug, unique (``[a-z0-9-]``): used in logs, the ticket store and the portal.
    id: str
    #: Name shown to people ("Scolarité").
    name: str
    #: Regular expression the service URL must match entirely, e.g. ``https://moodle\.univ\.fr(/.*)?``.
    url_pattern: str
    #: Link of the service's tile on the signed-in page.
    home_url: str = ""
    #: One line shown under the name on the signed-in page.
    description: str = ""
    #: Optional short icon name for the tile.
    icon: str = ""
    #: Attribute names released to this service at validation (empty: ``cas.attribute_release_default``).
    attributes: tuple[str, ...] = ()
    #: Where the single-logout request is POSTed; empty: the service URL that received the ticket.
    logout_url: str = ""
    #: Send back-channel logout requests to this service (CAS 3.0 §2.3.3).
    single_logout: bool = True
    #: May obtain proxy-granting tickets (``pgtUrl``, CAS 3.0 §2.5.4).
    proxy: bool = False
    #: Regular expression the ``pgtUrl`` must match entirely (empty: no callback allowed).
    proxy_callback_pattern: str = ""
    #: Show a tile for this service on the signed-in page.
    show_on_portal: bool = True

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"service id {self.id!r} must be 1 to 63 characters of a-z, 0-9 and '-'")
        if not self.name.strip():
            raise ValueError(f"service {self.id!r}: name must not be empty")
        if not self.url_pattern:
            raise ValueError(f"service {self.id!r}: url_pattern must not be empty")
        _compile(self.url_pattern, "url_pattern", self.id)
        if self.proxy_callback_pattern:
            _compile(self.proxy_callback_pattern, "proxy_callback_pattern", self.id)
        for name in self.attributes:
            if not ATTRIBUTE_NAME.match(name):
                raise ValueError(f"service {self.id!r}: attribute name {name!r} is not allowed")
        _check_link(self.home_url, "home_url", self.id)
        _check_link(self.logout_url, "logout_url", self.id)


@dataclass(frozen=True)
class Service:
    """A registered service, its patterns compiled. Built by :class:`ServiceRegistry`."""

    settings: ServiceSettings
    #: Compiled :attr:`ServiceSettings.url_pattern`.
    pattern: re.Pattern[str] = field(repr=False, compare=False)
    #: Compiled :attr:`ServiceSettings.proxy_callback_pattern`, or ``None`` (no callback allowed).
    callback_pattern: re.Pattern[str] | None = field(repr=False, compare=False)

    @classmethod
    def compile(cls, settings: ServiceSettings) -> Service:
        """Compile the patterns of ``settings``."""
        callback = re.compile(settings.proxy_callback_pattern) if settings.proxy_callback_pattern else None
        return cls(settings, re.compile(settings.url_pattern), callback)

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def home_url(self) -> str:
        return self.settings.home_url

    @property
    def description(self) -> str:
        return self.settings.description

    @property
    def icon(self) -> str:
        return self.settings.icon

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.settings.attributes

    @property
    def logout_url(self) -> str:
        return self.settings.logout_url

    @property
    def single_logout(self) -> bool:
        return self.settings.single_logout

    @property
    def proxy(self) -> bool:
        return self.settings.proxy

    @property
    def show_on_portal(self) -> bool:
        return self.settings.show_on_portal

    def accepts(self, url: str) -> bool:
        """Whether ``url`` (already checked by :func:`parse_safe_url`) matches this service."""
        return self.pattern.fullmatch(url) is not None

    def accepts_callback(self, url: str) -> bool:
        """Whether ``url`` matches this service's proxy callback pattern."""
        return self.callback_pattern is not None and self.callback_pattern.fullmatch(url) is not None


class ServiceRegistry:
    """The configured services, in order. Immutable once built.

    :raises ValueError: two services share an id.
    """

    def __init__(self, services: Sequence[ServiceSettings]) -> None:
        seen: set[str] = set()
        for entry in services:
            if entry.id in seen:
                raise ValueError(f"service id {entry.id!r} is used twice")
            seen.add(entry.id)
        self._services = tuple(Service.compile(entry) for entry in services)
        self._by_id = {service.id: service for service in self._services}

    def match(self, url: str) -> Service | None:
        """The first service whose pattern matches the whole of ``url``, or ``None``.

        ``None`` also for any URL :func:`parse_safe_url` refuses, whatever the patterns say.
        """
        if parse_safe_url(url) is None:
            return None
        for service in self._services:
            if service.accepts(url):
                return service
        return None

    def get(self, service_id: str) -> Service | None:
        """The service with this id, or ``None``."""
        return self._by_id.get(service_id)

    def __iter__(self) -> Iterator[Service]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)
