"""Ticket validation endpoints (CAS 3.0 §2.4–2.9, §4.2): thin views over :mod:`sso.cas`.

Services call these, not people: failures are CAS failure responses, never error pages, and the
endpoints are not throttled.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ldapdir import DirectoryUnavailable
from sso.cas import params, proxy, responses, saml, validation
from sso.cas.errors import CasError, Code
from sso.tickets.registry import RegistryUnavailable
from sso.web.runtime import runtime
from sso.web.security import client_address

bp = Blueprint("validation", __name__)

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


def _args() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


def _validation_failure(error: CasError, kind: str, fmt: str, version: int) -> Response:
    runtime().audit("validate.failure", endpoint=kind, code=error.code.value, ip=client_address())
    if version == 1:
        return Response(responses.cas1_failure(), mimetype="text/plain")
    if fmt == "JSON":
        return Response(responses.json_failure(error), content_type=JSON)
    return Response(responses.xml_failure(error), content_type=XML)


def _check_ticket(req: params.ValidateRequest, allow_proxy: bool) -> validation.Success:
    """Validate a ticket; an unreachable store is INTERNAL_ERROR (CAS 3.0 §2.5.3), never a 500."""
    rt = runtime()
    try:
        return validation.validate(
            req,
            tickets=rt.tickets,
            services=rt.services,
            lifetimes=rt.settings.tickets.lifetimes,
            settings=rt.settings.cas,
            now=rt.clock(),
            allow_proxy_tickets=allow_proxy,
            deliver_pgt=rt.deliver_pgt,
        )
    except (RegistryUnavailable, DirectoryUnavailable):
        raise CasError(Code.INTERNAL_ERROR, "ticket store unavailable") from None


def _validate(kind: str, version: int, allow_proxy: bool) -> Response:
    rt = runtime()
    fmt = "JSON" if request.args.get("format", "").upper() == "JSON" else "XML"
    try:
        req = params.parse_validate(_args())
        fmt = req.format
        success = _check_ticket(req, allow_proxy)
    except CasError as error:
        return _validation_failure(error, kind, fmt, version)
    rt.audit(
        "validate.success", endpoint=kind, user=success.user, service=success.service.id, ip=client_address()
    )
    if version == 2 and rt.settings.cas.cas2_attributes:
        version = 3  # many CAS 2 clients (phpCAS, mod_auth_cas) read the CAS 3 attributes block
    if version == 1:
        return Response(responses.cas1_success(success.user), mimetype="text/plain")
    if fmt == "JSON":
        return Response(responses.json_success(success, version), content_type=JSON)
    return Response(responses.xml_success(success, version), content_type=XML)


@bp.get("/validate")
def validate_v1() -> Response:
    """CAS 1.0 validation (CAS 3.0 §2.4): plain text, service tickets only."""
    return _validate("validate", 1, allow_proxy=False)


@bp.get("/serviceValidate")
def service_validate() -> Response:
    """CAS 2.0 service ticket validation (CAS 3.0 §2.5)."""
    return _validate("serviceValidate", 2, allow_proxy=False)


@bp.get("/proxyValidate")
def proxy_validate() -> Response:
    """CAS 2.0 service and proxy ticket validation (CAS 3.0 §2.6)."""
    return _validate("proxyValidate", 2, allow_proxy=True)


@bp.get("/p3/serviceValidate")
def p3_service_validate() -> Response:
    """CAS 3.0 service ticket validation with attributes (CAS 3.0 §2.8)."""
    return _validate("p3/serviceValidate", 3, allow_proxy=False)


@bp.get("/p3/proxyValidate")
def p3_proxy_validate() -> Response:
    """CAS 3.0 service and proxy ticket validation with attributes (CAS 3.0 §2.9)."""
    return _validate("p3/proxyValidate", 3, allow_proxy=True)


@bp.get("/proxy")
def proxy_ticket() -> Response:
    """Proxy ticket granting (CAS 3.0 §2.7)."""
    rt = runtime()
    fmt = "JSON" if request.args.get("format", "").upper() == "JSON" else "XML"
    try:
        req = params.parse_proxy(_args())
        pt = proxy.grant_proxy_ticket(
            req,
            tickets=rt.tickets,
            services=rt.services,
            lifetimes=rt.settings.tickets.lifetimes,
            now=rt.clock(),
        )
    except CasError as error:
        rt.audit("proxy.failure", code=error.code.value, ip=client_address())
        body = responses.proxy_json_failure(error) if fmt == "JSON" else responses.proxy_xml_failure(error)
        return Response(body, content_type=JSON if fmt == "JSON" else XML)
    except RegistryUnavailable:
        error = CasError(Code.INTERNAL_ERROR, "ticket store unavailable")
        return Response(responses.proxy_xml_failure(error), content_type=XML)
    rt.audit("proxy.success", user=pt.user, service=pt.service_id, ip=client_address())
    body = responses.proxy_json_success(pt.id) if fmt == "JSON" else responses.proxy_xml_success(pt.id)
    return Response(body, content_type=JSON if fmt == "JSON" else XML)


@bp.post("/samlValidate")
def saml_validate() -> Response:
    """SAML 1.1 validation (CAS 3.0 §4.2): ``TARGET`` names the service, the body holds the ticket."""
    rt = runtime()
    now = rt.clock()
    request_id = ""
    try:
        target = params.single(_args(), "TARGET", required=True) or ""
        request_id, ticket = saml.parse_saml_request(request.get_data(cache=False))
        req = params.ValidateRequest(ticket=ticket, service=target, renew=False, pgt_url=None, format="XML")
        success = _check_ticket(req, allow_proxy=False)
    except CasError as error:
        rt.audit("validate.failure", endpoint="samlValidate", code=error.code.value, ip=client_address())
        return Response(saml.saml_failure(error, request_id, now), content_type="text/xml; charset=utf-8")
    rt.audit("validate.success", endpoint="samlValidate", user=success.user, service=success.service.id)
    body = saml.saml_success(
        success, request_id, rt.settings.site.base_url, now, lifetime=rt.settings.cas.saml_assertion_lifetime
    )
    return Response(body, content_type="text/xml; charset=utf-8")
