"""Proxy authentication: ``pgtUrl`` checks, PGT delivery (CAS 3.0 §2.5.4) and ``/proxy`` (§2.7).

A proxy callback must be https (http only if ``cas.allow_http_proxy_callback``), match the
service's ``proxy_callback_pattern`` entirely, and — unless ``cas.allow_private_proxy_callback`` —
resolve only to public addresses, so the server cannot be made to call its own network. (The name
is resolved again when connecting; the callback pattern, written by an administrator, is what
pins the host.)
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sso.cas.errors import CasError, Code
from sso.cas.params import ProxyRequest
from sso.cas.settings import CasSettings
from sso.services import Service, ServiceRegistry, parse_safe_url
from sso.tickets.ids import new_id, well_formed
from sso.tickets.model import Kind, Lifetimes, ServiceTicket
from sso.tickets.registry import RegistryUnavailable, TicketRegistry

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

#: ``resolve(host) -> addresses``: the IP addresses a host name stands for (empty if none).
Resolver = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """The addresses of ``host`` (itself if it is an IP literal); empty if it does not resolve."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def is_public(address: str) -> bool:
    """Whether ``address`` is a public unicast address (not loopback, private, link-local,
    shared, reserved, multicast…; IPv4-mapped IPv6 addresses are judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_callback(
    url: str, service: Service, settings: CasSettings, *, resolve: Resolver = resolve_host
) -> None:
    """Check that ``service`` may receive a PGT at ``url`` (CAS 3.0 §2.5.4).

    :raises CasError: ``UNAUTHORIZED_SERVICE_PROXY`` if the service may not proxy at all;
        ``INVALID_PROXY_CALLBACK`` if the URL is refused.
    """
    if not service.proxy or service.callback_pattern is None:
        raise CasError(Code.UNAUTHORIZED_SERVICE_PROXY, "this service is not authorized to proxy")
    parts = parse_safe_url(url)
    if parts is None or parts.hostname is None:
        raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback is not a valid http(s) URL")
    if parts.scheme.lower() != "https" and not settings.allow_http_proxy_callback:
        raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback must use https")
    if not service.accepts_callback(url):
        raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback is not allowed for this service")
    if not settings.allow_private_proxy_callback:
        addresses = resolve(parts.hostname)
        if not addresses:
            raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback host does not resolve")
        if not all(is_public(address) for address in addresses):
            raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback host is not a public address")


def deliver_pgt_http(
    url: str,
    pgt: str,
    pgtiou: str,
    timeout: float,
    allow_http: bool,
    *,
    session: requests.Session | None = None,
) -> bool:
    """Call the proxy callback: ``GET url`` with ``pgtId`` and ``pgtIou`` added to its query
    (its own parameters are kept), TLS verified, redirects not followed; ``True`` on 200 only
    (CAS 3.0 §2.5.4 steps 2–3). Network errors are ``False``, never raised.
    """
    import requests  # imported on first use: ~5 MB a worker that most deployments never need

    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        return False
    http = session if session is not None else requests
    try:
        with http.get(
            url,
            params={"pgtId": pgt, "pgtIou": pgtiou},
            timeout=timeout,
            allow_redirects=False,
            verify=True,
            stream=True,
        ) as response:
            status = response.status_code
    except requests.RequestException as exc:
        logger.warning("proxy callback to host %s failed: %s", parts.hostname, type(exc).__name__)
        return False
    if status != 200:
        logger.warning("proxy callback to host %s answered %s", parts.hostname, status)
    return status == 200


def make_deliver_pgt(settings: CasSettings) -> Callable[[str, str, str], bool]:
    """:func:`deliver_pgt_http` with the timeout and http rule of ``settings``, for :func:`validate`."""
    return functools.partial(
        deliver_pgt_http,
        timeout=settings.proxy_callback_timeout,
        allow_http=settings.allow_http_proxy_callback,
    )


def grant_proxy_ticket(
    request: ProxyRequest,
    *,
    tickets: TicketRegistry,
    services: ServiceRegistry,
    lifetimes: Lifetimes,
    now: float,
) -> ServiceTicket:
    """Issue a proxy ticket for ``request.target_service`` from a PGT (CAS 3.0 §2.7).

    The PGT's session must still be alive (a PGT dies with its session, §3.3.1); using it counts
    as activity of the session. The PT records the proxy chain, most recent first (§2.6.2).

    :raises CasError: ``INVALID_TICKET`` (unknown, malformed or expired PGT, or ended session),
        ``UNAUTHORIZED_SERVICE`` (target service not registered), ``INTERNAL_ERROR`` (store down).
    """
    if not well_formed(request.pgt) or Kind.of(request.pgt) is not Kind.PGT:
        raise CasError(Code.INVALID_TICKET, "pgt is not a well-formed proxy-granting ticket")
    try:
        pgt = tickets.get_pgt(request.pgt, now)
        session = tickets.get_tgt(pgt.tgt_id, now) if pgt is not None else None
        if pgt is None or session is None:
            raise CasError(Code.INVALID_TICKET, "proxy-granting ticket not recognized")
        target = services.match(request.target_service)
        if target is None:
            raise CasError(Code.UNAUTHORIZED_SERVICE, "the target service is not registered")
        ticket = ServiceTicket(
            id=new_id(Kind.PT),
            service=request.target_service,
            service_id=target.id,
            user=pgt.user,
            attributes=pgt.attributes,
            tgt_id=pgt.tgt_id,
            primary=False,
            expires=now + lifetimes.service_ticket,
            # From the session read above, as an ST has them from its session (validation
            # reads the ticket alone).
            auth_time=session.created,
            session_expires=session.expires,
            proxies=(pgt.pgt_url, *pgt.proxies),
        )
        tickets.add(ticket)
        tickets.touch_tgt(pgt.tgt_id, now)
    except RegistryUnavailable as exc:
        logger.error("ticket store unavailable during /proxy: %s", exc)
        raise CasError(Code.INTERNAL_ERROR, "the ticket store is unavailable") from exc
    return ticket
