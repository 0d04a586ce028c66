"""Raw query or form parameters → checked request dataclasses (CAS 3.0 §2.1.1, §2.5.1, §2.7.1).

``args`` is a mapping of parameter name → list of values, as ``request.args.to_dict(flat=False)``
gives, or any object with a ``getlist`` method (werkzeug's ``MultiDict``). Parameters are
case-sensitive (CAS 3.0 §2.1.1). A parameter given twice, or longer than its limit, is an
``INVALID_REQUEST``: a service never sends either, and picking one of two values would let a
crafted URL mean different things to us and to a proxy in front.

Flags (``renew``, ``gateway``, ``warn``): the specification says "if this parameter is set" and
recommends the value ``true``. A flag is set when present with any value, including an empty one,
except the explicit values ``false`` and ``0`` (any case), which some clients send to mean "not set".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sso.cas.errors import CasError, Code

#: Longest URL-like value accepted (service, pgtUrl, targetService).
MAX_URL = 2048
#: Longest ticket accepted (CAS 3.0 §3.7: clients support up to 256 characters).
MAX_TICKET = 256
#: Response formats of the validation endpoints (CAS 3.0 §2.5.1).
FORMATS = ("XML", "JSON")
#: ``method`` values we honour at /login (CAS 3.0 §2.1.1): ``HEADER`` is not supported.
METHODS = ("GET", "POST")
_FALSE = ("false", "0")


class MultiMapping(Protocol):
    """What werkzeug's ``MultiDict`` offers."""

    def getlist(self, key: str) -> list[str]: ...


Args = Mapping[str, Sequence[str]] | MultiMapping


def _values(args: Args, name: str) -> Sequence[str]:
    getlist = getattr(args, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    values = args.get(name, ()) if isinstance(args, Mapping) else ()
    return (values,) if isinstance(values, str) else values


def single(args: Args, name: str, required: bool = False, max_len: int = MAX_URL) -> str | None:
    """The one value of parameter ``name``: ``None`` if absent, ``""`` if present and empty.

    :raises CasError: ``INVALID_REQUEST`` if repeated, longer than ``max_len``, or ``required``
        and absent or empty.
    """
    values = _values(args, name)
    if len(values) > 1:
        raise CasError(Code.INVALID_REQUEST, f"parameter '{name}' was given more than once")
    value = values[0] if values else None
    if value is not None and len(value) > max_len:
        raise CasError(Code.INVALID_REQUEST, f"parameter '{name}' is longer than {max_len} characters")
    if required and not value:
        raise CasError(Code.INVALID_REQUEST, f"parameter '{name}' is required")
    return value


def required(args: Args, name: str, max_len: int = MAX_URL) -> str:
    """Like :func:`single` with ``required=True``, typed as always returning a string."""
    value = single(args, name, required=True, max_len=max_len)
    return value if value is not None else ""


def flag(args: Args, name: str) -> bool:
    """Whether flag ``name`` is set (see the module docstring)."""
    value = single(args, name, max_len=16)
    return value is not None and value.lower() not in _FALSE


def requested_format(args: Args) -> str:
    """The response format to use even when the request is otherwise invalid: ``JSON`` if the
    one ``format`` value is ``JSON`` (any case), else ``XML``. Never raises."""
    values = _values(args, "format")
    if len(values) == 1 and values[0].upper() == "JSON":
        return "JSON"
    return "XML"


def _format(args: Args) -> str:
    value = single(args, "format", max_len=8)
    if not value:
        return "XML"
    if value.upper() not in FORMATS:
        raise CasError(Code.INVALID_REQUEST, "parameter 'format' must be XML or JSON")
    return value.upper()


@dataclass(frozen=True)
class LoginRequest:
    """What a browser asked of ``/login`` (CAS 3.0 §2.1.1, §2.2.1)."""

    #: The service URL as given (unchecked here; :meth:`ServiceRegistry.match` decides), or ``None``.
    service: str | None
    #: Ask for credentials even with a session.
    renew: bool = False
    #: Never ask for credentials: back to the service, with a ticket or without.
    gateway: bool = False
    #: ``GET`` (redirect with ``ticket=``) or ``POST`` (auto-submitted form with ``ticket``).
    method: str = "GET"
    #: Prompt before a transparent single sign-on to the service.
    warn: bool = False

    def without_warn(self) -> LoginRequest:
        """The same request once the person has confirmed the warning."""
        return replace(self, warn=False)


def parse_login(args: Args) -> LoginRequest:
    """Check the parameters of ``/login``. The obsolete ``url`` parameter is ignored (§2.3.1).

    :raises CasError: ``INVALID_REQUEST`` on a repeated or oversized parameter, or a ``method``
        other than ``GET``/``POST`` (``HEADER`` is allowed by the spec but not supported).
    """
    service = single(args, "service") or None
    method = (single(args, "method", max_len=8) or "GET").upper()
    if method not in METHODS:
        raise CasError(Code.INVALID_REQUEST, "parameter 'method' must be GET or POST")
    return LoginRequest(
        service=service,
        renew=flag(args, "renew"),
        gateway=flag(args, "gateway"),
        method=method,
        warn=flag(args, "warn"),
    )


@dataclass(frozen=True)
class ValidateRequest:
    """A ticket validation (``/validate``, ``/serviceValidate``, ``/proxyValidate``, ``/p3/…``)."""

    ticket: str
    service: str
    #: Succeed only for a ticket issued from primary credentials.
    renew: bool = False
    #: Proxy callback URL asking for a PGT (CAS 3.0 §2.5.4), or ``None``.
    pgt_url: str | None = None
    #: ``XML`` or ``JSON``.
    format: str = "XML"


def parse_validate(args: Args) -> ValidateRequest:
    """Check the parameters of a validation endpoint (CAS 3.0 §2.5.1).

    :raises CasError: ``INVALID_REQUEST`` if ``ticket`` or ``service`` is missing or empty, a
        parameter is repeated or oversized, or ``format`` is neither ``XML`` nor ``JSON`` (answer
        in XML then: see :func:`requested_format`).
    """
    fmt = _format(args)
    ticket = required(args, "ticket", max_len=MAX_TICKET)
    service = required(args, "service")
    return ValidateRequest(
        ticket=ticket.strip(),
        service=service,
        renew=flag(args, "renew"),
        pgt_url=single(args, "pgtUrl") or None,
        format=fmt,
    )


@dataclass(frozen=True)
class ProxyRequest:
    """A ``/proxy`` request (CAS 3.0 §2.7.1)."""

    pgt: str
    target_service: str
    format: str = "XML"


def parse_proxy(args: Args) -> ProxyRequest:
    """Check the parameters of ``/proxy``.

    :raises CasError: ``INVALID_REQUEST`` if ``pgt`` or ``targetService`` is missing, or any
        parameter is repeated, oversized or (``format``) unsupported.
    """
    fmt = _format(args)
    pgt = single(args, "pgt", max_len=MAX_TICKET)
    target = single(args, "targetService")
    if not pgt or not target:
        raise CasError(Code.INVALID_REQUEST, "'pgt' and 'targetService' parameters are both required")
    return ProxyRequest(pgt=pgt.strip(), target_service=target, format=fmt)
