"""CAS failure codes (CAS 3.0 §2.5.3, §2.7.3) and the exception that carries one."""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """The ``code`` of an ``authenticationFailure`` / ``proxyFailure`` response."""

    #: Not all required parameters were present, or one was repeated or oversized.
    INVALID_REQUEST = "INVALID_REQUEST"
    #: The ticket does not meet the validation specification (malformed id, a PT at /serviceValidate).
    INVALID_TICKET_SPEC = "INVALID_TICKET_SPEC"
    #: The service may not obtain proxy-granting tickets.
    UNAUTHORIZED_SERVICE_PROXY = "UNAUTHORIZED_SERVICE_PROXY"
    #: The ``pgtUrl`` is not acceptable, or the callback failed (CAS 3.0 §2.5.4).
    INVALID_PROXY_CALLBACK = "INVALID_PROXY_CALLBACK"
    #: Unknown, expired or already used ticket; or not from primary credentials under ``renew``.
    INVALID_TICKET = "INVALID_TICKET"
    #: The ticket was valid but issued for another service (it is consumed anyway).
    INVALID_SERVICE = "INVALID_SERVICE"
    #: ``/proxy``: the target service is not allowed (CAS 3.0 §2.7.3).
    UNAUTHORIZED_SERVICE = "UNAUTHORIZED_SERVICE"
    #: Something failed on our side (ticket store unreachable…).
    INTERNAL_ERROR = "INTERNAL_ERROR"


class CasError(Exception):
    """A protocol failure to report to the CAS client.

    :param code: the failure code.
    :param detail: English text safe to show to a service: never a full ticket id
        (use :func:`sso.tickets.ids.redact`), never a secret.
    """

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(code, detail)
        #: The failure code.
        self.code = code
        #: Description for the response body.
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}"
