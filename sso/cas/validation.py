"""Ticket validation: ``/validate``, ``/serviceValidate``, ``/proxyValidate`` and their ``/p3`` forms.

One function, :func:`validate`, for all of them (CAS 3.0 §2.4–§2.6, §2.8, §2.9). In order:

1. an id that is not a well-formed ``ST-``/``PT-`` id: ``INVALID_TICKET_SPEC`` (nothing consumed);
2. the ticket is taken from the store atomically, so it is gone after this attempt whatever
   follows (§3.1.1: "whether or not validation was successful"); unknown, expired or already
   used: ``INVALID_TICKET``. A logged-out session's tickets were deleted with it, and one issued
   as its session ended was not stored (:meth:`TicketRegistry.add`);
3. a PT where only STs are accepted (``/serviceValidate``, ``/validate``): ``INVALID_TICKET_SPEC``
   with an explanation (§2.5; the reference implementation uses this code);
4. the ``service`` differs from the one the ticket was issued for: ``INVALID_SERVICE`` (§2.5.3),
   compared after :func:`normalise_service`;
5. ``renew`` and the ticket did not come from primary credentials: ``INVALID_TICKET`` (§2.5.3);
   the ticket's session has reached its hard end: ``INVALID_TICKET``. The session itself is not
   read (one query fewer per validation): the ticket carries its creation time
   (``authenticationDate``) and hard end. Its idle end needs no check: the ticket was issued
   from the session in use, and lives seconds where the idle limit is hours;
6. ``pgtUrl`` (§2.5.4): the service must be allowed to proxy (else ``UNAUTHORIZED_SERVICE_PROXY``);
   the URL must pass :func:`sso.cas.proxy.check_callback` and the callback must answer 200
   (else ``INVALID_PROXY_CALLBACK``: CAS 3.0.3 §2.5.4 says the issuance is halted and validation
   fails, as the reference implementation does). The PGT is stored only once delivered.

A ticket store outage becomes ``INTERNAL_ERROR``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sso.cas.errors import CasError, Code
from sso.cas.params import ValidateRequest
from sso.cas.proxy import Resolver, check_callback, resolve_host
from sso.cas.settings import CasSettings
from sso.services import Service, ServiceRegistry
from sso.tickets.ids import new_id, redact, well_formed
from sso.tickets.model import Attributes, Kind, Lifetimes, ProxyGrantingTicket, ServiceTicket
from sso.tickets.registry import RegistryUnavailable, TicketRegistry

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: ``deliver_pgt(pgt_url, pgt_id, pgt_iou) -> delivered``: the proxy callback (CAS 3.0 §2.5.4).
DeliverPgt = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class Success:
    """A validated ticket: what the response tells the service."""

    user: str
    #: The ticket's attributes, already filtered by the service's release list.
    attributes: Attributes
    #: The PGTIOU delivered with the PGT, or ``None``.
    pgt_iou: str | None
    #: For a PT: the proxies it went through, most recent first (CAS 3.0 §2.6.2).
    proxies: tuple[str, ...]
    service: Service
    #: Issued from primary credentials (``isFromNewLogin``).
    primary: bool
    #: When the session was created (``authenticationDate``), POSIX seconds.
    auth_time: float
    ticket: ServiceTicket


def normalise_service(url: str) -> str:
    """The form in which service URLs are compared at validation.

    Case of scheme and host, a default port, an empty path and the fragment do not matter;
    percent-encoding is decoded (``%3A`` equals ``:``), as the reference implementation does.
    Everything else — path, query, their order and case — must be identical.
    """
    base = url.partition("#")[0]
    try:
        parts = urlsplit(base)
        port = parts.port
    except ValueError:
        return base
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = unquote(parts.path) or "/"
    query = f"?{unquote(parts.query)}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def release(attributes: Attributes, service: Service, settings: CasSettings) -> dict[str, tuple[str, ...]]:
    """The attributes ``service`` may see, in the order of its release list.

    A service with no ``attributes`` list gets ``settings.attribute_release_default``.
    """
    names = service.attributes or settings.attribute_release_default
    return {name: tuple(attributes[name]) for name in names if attributes.get(name)}


def _take(request: ValidateRequest, tickets: TicketRegistry, now: float) -> ServiceTicket:
    kind = Kind.of(request.ticket)
    if not well_formed(request.ticket) or kind not in (Kind.ST, Kind.PT):
        raise CasError(Code.INVALID_TICKET_SPEC, "ticket is not a well-formed service or proxy ticket")
    ticket = tickets.take(request.ticket, now)
    if ticket is None:
        raise CasError(Code.INVALID_TICKET, f"ticket {redact(request.ticket)} not recognized")
    return ticket


def _check(
    ticket: ServiceTicket, request: ValidateRequest, services: ServiceRegistry, allow_proxy_tickets: bool
) -> Service:
    shown = redact(ticket.id)
    if ticket.kind is Kind.PT and not allow_proxy_tickets:
        raise CasError(
            Code.INVALID_TICKET_SPEC,
            f"ticket {shown} is a proxy ticket: it can only be validated at /proxyValidate",
        )
    service = services.get(ticket.service_id)
    if service is None or normalise_service(request.service) != normalise_service(ticket.service):
        raise CasError(Code.INVALID_SERVICE, f"ticket {shown} was not issued for this service")
    if request.renew and not ticket.primary:
        raise CasError(Code.INVALID_TICKET, f"ticket {shown} did not come from a new login (renew)")
    return service


def _grant_pgt(
    ticket: ServiceTicket,
    service: Service,
    pgt_url: str,
    *,
    tickets: TicketRegistry,
    lifetimes: Lifetimes,
    settings: CasSettings,
    now: float,
    deliver_pgt: DeliverPgt,
    resolve: Resolver,
) -> str:
    """Deliver and store a PGT for ``ticket``; return its IOU (CAS 3.0 §2.5.4)."""
    check_callback(pgt_url, service, settings, resolve=resolve)
    if len(ticket.proxies) >= settings.max_proxy_depth:
        raise CasError(Code.UNAUTHORIZED_SERVICE_PROXY, "the proxy chain is too long")
    pgt = ProxyGrantingTicket(
        id=new_id(Kind.PGT),
        user=ticket.user,
        attributes=ticket.attributes,
        tgt_id=ticket.tgt_id,
        pgt_url=pgt_url,
        proxies=ticket.proxies,
        expires=min(now + lifetimes.pgt, ticket.session_expires),  # a PGT dies with its session (§3.3.1)
    )
    iou = new_id(Kind.PGTIOU)
    # Delivered first, stored after: a callback that failed never leaves a usable PGT behind.
    if not deliver_pgt(pgt_url, pgt.id, iou):
        raise CasError(Code.INVALID_PROXY_CALLBACK, "the proxy callback did not answer 200 OK")
    tickets.add(pgt)
    return iou


def validate(
    request: ValidateRequest,
    *,
    tickets: TicketRegistry,
    services: ServiceRegistry,
    lifetimes: Lifetimes,
    settings: CasSettings,
    now: float,
    allow_proxy_tickets: bool,
    deliver_pgt: DeliverPgt,
    resolve: Resolver = resolve_host,
) -> Success:
    """Validate ``request.ticket`` for ``request.service`` (see the module docstring).

    :param allow_proxy_tickets: ``True`` for ``/proxyValidate`` and ``/p3/proxyValidate``.
    :param deliver_pgt: performs the proxy callback; see :func:`sso.cas.proxy.deliver_pgt_http`.
    :param resolve: resolves the callback host for the public-address check (tests replace it).
    :raises CasError: with the failure code to report.
    """
    try:
        ticket = _take(request, tickets, now)
        service = _check(ticket, request, services, allow_proxy_tickets)
        if now >= ticket.session_expires:
            raise CasError(Code.INVALID_TICKET, f"ticket {redact(ticket.id)}: the session has ended")
        pgt_iou = None
        if request.pgt_url is not None:
            pgt_iou = _grant_pgt(
                ticket,
                service,
                request.pgt_url,
                tickets=tickets,
                lifetimes=lifetimes,
                settings=settings,
                now=now,
                deliver_pgt=deliver_pgt,
                resolve=resolve,
            )
    except RegistryUnavailable as exc:
        logger.error("ticket store unavailable during validation: %s", exc)
        raise CasError(Code.INTERNAL_ERROR, "the ticket store is unavailable") from exc
    except CasError as exc:
        shown = redact(request.ticket) if well_formed(request.ticket) else "a malformed ticket"
        logger.info("validation of %s failed: %s", shown, exc.code.value)
        raise
    return Success(
        user=ticket.user,
        attributes=release(ticket.attributes, service, settings),
        pgt_iou=pgt_iou,
        proxies=ticket.proxies,
        service=service,
        primary=ticket.primary,
        auth_time=ticket.auth_time,
        ticket=ticket,
    )
