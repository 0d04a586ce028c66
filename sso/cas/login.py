"""What ``GET /login`` should do, decided without Flask (CAS 3.0 §2.1, §2.2).

:func:`decide` looks at the request and the session (if any) and returns one decision; the view
renders or redirects. :func:`after_authentication` is the same once a password was checked and a
new session made. Rules:

- an unknown or refused ``service`` is never redirected to: :class:`UnknownService`;
- ``renew`` asks for credentials even with a session, and wins over ``gateway`` (§2.1.1 recommends
  ignoring ``gateway`` when ``renew`` is set);
- ``gateway`` without a session goes back to the (registered) service without a ticket;
  ``gateway`` without a service asks for credentials, as §2.1.1 recommends;
- with a session and no ``renew``, a service ticket is issued at once (not from primary
  credentials), or, under ``warn``, the person is asked first (§2.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sso.cas.params import LoginRequest
from sso.services import Service, ServiceRegistry
from sso.tickets.ids import new_id
from sso.tickets.model import Attributes, GrantingTicket, Kind, Lifetimes, ServiceTicket
from sso.tickets.registry import TicketRegistry


@dataclass(frozen=True)
class ShowForm:
    """Ask for credentials (the login page), then come back to this request."""

    #: The registered service the person is going to, or ``None``.
    service: Service | None
    request: LoginRequest


@dataclass(frozen=True)
class Redirect:
    """Redirect (302) to ``url``: the service, without a ticket (``gateway``)."""

    url: str


@dataclass(frozen=True)
class IssueTicket:
    """Send the browser to the service with a new ticket.

    ``GET``: redirect to :attr:`url`, which already carries ``ticket=``. ``POST``: show a form
    that posts :attr:`post_fields` to :attr:`url` (the service URL as given) and submits itself.
    """

    ticket: ServiceTicket
    url: str
    #: ``GET`` or ``POST``.
    method: str
    #: The registered service (for the page shown with ``POST``).
    service: Service | None = None

    @property
    def post_fields(self) -> dict[str, str]:
        """The fields of the auto-submitted form (``method=POST``)."""
        return {"ticket": self.ticket.id}


@dataclass(frozen=True)
class ShowSignedIn:
    """No service and a session: the signed-in page (CAS 3.0 §2.1.1)."""

    tgt: GrantingTicket


@dataclass(frozen=True)
class UnknownService:
    """The service is not registered (or the URL was refused): an error page, never a redirect."""

    service_url: str


@dataclass(frozen=True)
class ConfirmWarn:
    """``warn`` with a session: tell the person they are about to be signed in to the service.

    No ticket is issued yet (it would expire while the page is read). When the person confirms
    (the page's form posts back to ``/login``), the view calls :func:`decide` again with
    :attr:`continue_request`, which no longer warns.
    """

    service: Service
    #: The service URL as given.
    service_url: str
    #: The same request without ``warn``.
    continue_request: LoginRequest


Decision = ShowForm | Redirect | IssueTicket | ShowSignedIn | UnknownService | ConfirmWarn


#: Seconds of grain of the idle clock: a session used again within this time of its last recorded
#: use is not written to again (someone opening five services in a minute costs one write, not
#: five; the idle limit is hours).
TOUCH_GRAIN = 60.0


def new_session(user: str, attributes: Attributes, lifetimes: Lifetimes, now: float) -> GrantingTicket:
    """A new ticket-granting ticket for ``user`` (not stored: the caller adds it)."""
    return GrantingTicket(
        id=new_id(Kind.TGT),
        user=user,
        attributes=attributes,
        created=now,
        last_used=now,
        expires=now + lifetimes.tgt_max,
    )


def service_url_with_ticket(service_url: str, ticket_id: str) -> str:
    """``service_url`` with ``ticket=<id>`` added to its query (CAS 3.0 §2.2.4).

    The existing query is kept as is, byte for byte (the service compares its URL at validation);
    a fragment stays at the end, after the query, where URLs keep it.
    """
    base, hash_mark, fragment = service_url.partition("#")
    if "?" not in base:
        separator = "?"
    elif base.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&"
    return f"{base}{separator}ticket={quote(ticket_id, safe='')}{hash_mark}{fragment}"


def _issue(
    request: LoginRequest,
    service: Service,
    tgt: GrantingTicket,
    *,
    primary: bool,
    tickets: TicketRegistry,
    lifetimes: Lifetimes,
    now: float,
    store_session: bool = False,
) -> IssueTicket:
    service_url = request.service or ""
    ticket = ServiceTicket(
        id=new_id(Kind.ST),
        service=service_url,
        service_id=service.id,
        user=tgt.user,
        attributes=tgt.attributes,
        tgt_id=tgt.id,
        primary=primary,
        expires=now + lifetimes.service_ticket,
        # What validation needs of the session, so that it reads the ticket alone.
        auth_time=tgt.created,
        session_expires=tgt.expires,
    )
    if store_session:
        tickets.add(tgt, ticket)  # the new session and its first ticket: one transaction
    else:
        tickets.add(ticket)
    url = service_url_with_ticket(service_url, ticket.id) if request.method == "GET" else service_url
    return IssueTicket(ticket=ticket, url=url, method=request.method, service=service)


def decide(
    request: LoginRequest,
    tgt: GrantingTicket | None,
    services: ServiceRegistry,
    tickets: TicketRegistry,
    lifetimes: Lifetimes,
    now: float,
) -> Decision:
    """What ``GET /login`` does for ``request``, given the live session ``tgt`` (or ``None``:
    the caller looked the cookie up with :meth:`TicketRegistry.get_tgt`).

    May add a service ticket and touch the session.

    :raises RegistryUnavailable: the ticket store is down (a 503 page).
    """
    service: Service | None = None
    if request.service is not None:
        service = services.match(request.service)
        if service is None:
            return UnknownService(request.service)
    if request.renew:
        return ShowForm(service, request)
    if tgt is None:
        if request.gateway and service is not None and request.service is not None:
            return Redirect(request.service)
        return ShowForm(service, request)
    if service is None or request.service is None:
        return ShowSignedIn(tgt)
    if request.warn:
        return ConfirmWarn(service, request.service, request.without_warn())
    if now - tgt.last_used >= TOUCH_GRAIN:
        tickets.touch_tgt(tgt.id, now)
    return _issue(request, service, tgt, primary=False, tickets=tickets, lifetimes=lifetimes, now=now)


def after_authentication(
    request: LoginRequest,
    tgt: GrantingTicket,
    services: ServiceRegistry,
    tickets: TicketRegistry,
    lifetimes: Lifetimes,
    now: float,
    *,
    store_session: bool = False,
) -> IssueTicket | ShowSignedIn | UnknownService:
    """What to do once the credentials were accepted and the new session ``tgt`` was made.

    The ticket is marked as issued from primary credentials (it satisfies ``renew``).
    ``warn`` does not apply: the person just typed their password for this service.

    :param store_session: ``tgt`` is not stored yet: store it here, with the ticket if one is
        issued (one transaction instead of two). Otherwise the caller stored it.
    :raises RegistryUnavailable: the ticket store is down.
    """
    service = services.match(request.service) if request.service is not None else None
    if request.service is None or service is None:
        if store_session:
            tickets.add(tgt)
        return ShowSignedIn(tgt) if request.service is None else UnknownService(request.service)
    return _issue(
        request,
        service,
        tgt,
        primary=True,
        tickets=tickets,
        lifetimes=lifetimes,
        now=now,
        store_session=store_session,
    )
