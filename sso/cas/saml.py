"""``/samlValidate`` (CAS 3.0 §4.2): the SAML 1.1 request parsed safely, the response built.

The request body comes from the network: it is size-limited and parsed with defusedxml, which
refuses DTDs (so no entity expansion, no external entities). The response is a SAML 1.1
``samlp:Response`` in a SOAP envelope, shaped as the reference implementation emits it (§4.2.5):
``Status``, then an ``Assertion`` with ``Conditions`` (audience: the service), an
``AuthenticationStatement`` and, if any attribute is released, an ``AttributeStatement``.
The ``AttributeStatement`` is left out when empty (SAML 1.1 requires at least one attribute).
"""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sso.cas.errors import CasError, Code
from sso.cas.responses import clean, iso_time
from sso.services import ATTRIBUTE_NAME

if TYPE_CHECKING:
    from sso.cas.validation import Success

#: Largest request body accepted (a real one is about 500 bytes).
MAX_BODY = 16 * 1024
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SAMLP_NS = "urn:oasis:names:tc:SAML:1.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:1.0:assertion"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XS_NS = "http://www.w3.org/2001/XMLSchema"
#: ``AttributeNamespace`` of released attributes, as CAS servers have always used it.
ATTRIBUTE_NAMESPACE = "http://www.ja-sig.org/products/cas/"
#: Seconds of clock skew tolerated before the assertion's issue instant.
SKEW = 30.0
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,256}\Z")


def parse_saml_request(body: bytes, *, max_size: int = MAX_BODY) -> tuple[str, str]:
    """``(request_id, ticket)`` from a SAML 1.1 ``samlp:Request`` (§4.2.3), SOAP-wrapped or bare.

    :raises CasError: ``INVALID_REQUEST`` if the body is too large, not XML, has a DTD or
        entities, or lacks exactly one ``RequestID`` and one ``AssertionArtifact``.
    """
    if len(body) > max_size:
        raise CasError(Code.INVALID_REQUEST, f"the SAML request is larger than {max_size} bytes")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise CasError(Code.INVALID_REQUEST, "the body is not an acceptable SAML 1.1 request") from exc
    request = root if root.tag == f"{{{SAMLP_NS}}}Request" else root.find(f".//{{{SAMLP_NS}}}Request")
    if request is None:
        raise CasError(Code.INVALID_REQUEST, "no samlp:Request in the body")
    request_id = request.get("RequestID", "")
    if not _REQUEST_ID.match(request_id):
        raise CasError(Code.INVALID_REQUEST, "the SAML request has no valid RequestID")
    artifacts = request.findall(f"{{{SAMLP_NS}}}AssertionArtifact")
    if len(artifacts) != 1 or not (artifacts[0].text or "").strip():
        raise CasError(Code.INVALID_REQUEST, "the SAML request needs exactly one AssertionArtifact")
    return request_id, (artifacts[0].text or "").strip()


def _new_id() -> str:
    # xs:ID values must not start with a digit.
    return f"_{secrets.token_hex(16)}"


def _envelope() -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element("SOAP-ENV:Envelope", {"xmlns:SOAP-ENV": SOAP_NS})
    ET.SubElement(envelope, "SOAP-ENV:Header")
    return envelope, ET.SubElement(envelope, "SOAP-ENV:Body")


def _response(body: ET.Element, request_id: str, now: float, recipient: str | None) -> ET.Element:
    attrs = {
        "xmlns:samlp": SAMLP_NS,
        "xmlns:saml": SAML_NS,
        "xmlns:xsi": XSI_NS,
        "xmlns:xs": XS_NS,
        "IssueInstant": iso_time(now),
        "MajorVersion": "1",
        "MinorVersion": "1",
        "ResponseID": _new_id(),
    }
    if request_id:
        attrs["InResponseTo"] = clean(request_id)
    if recipient:
        attrs["Recipient"] = clean(recipient)
    return ET.SubElement(body, "samlp:Response", attrs)


def _subject(parent: ET.Element, user: str) -> None:
    subject = ET.SubElement(parent, "saml:Subject")
    ET.SubElement(subject, "saml:NameIdentifier").text = clean(user)
    confirmation = ET.SubElement(subject, "saml:SubjectConfirmation")
    ET.SubElement(confirmation, "saml:ConfirmationMethod").text = "urn:oasis:names:tc:SAML:1.0:cm:artifact"


def _serialize(envelope: ET.Element) -> bytes:
    return ET.tostring(envelope, encoding="unicode").encode("utf-8")


def saml_success(
    success: Success, request_id: str, issuer: str, now: float, *, lifetime: float = 30.0
) -> bytes:
    """A SAML 1.1 success response for ``success`` (§4.2.5).

    :param issuer: our name as the assertion's ``Issuer`` (e.g. the host of the public base URL).
    :param lifetime: seconds until ``NotOnOrAfter`` (``cas.saml_assertion_lifetime``).
    """
    service = success.ticket.service
    envelope, body = _envelope()
    response = _response(body, request_id, now, service)
    status = ET.SubElement(response, "samlp:Status")
    ET.SubElement(status, "samlp:StatusCode", {"Value": "samlp:Success"})
    assertion = ET.SubElement(
        response,
        "saml:Assertion",
        {
            "AssertionID": _new_id(),
            "IssueInstant": iso_time(now),
            "Issuer": clean(issuer),
            "MajorVersion": "1",
            "MinorVersion": "1",
        },
    )
    conditions = ET.SubElement(
        assertion,
        "saml:Conditions",
        {"NotBefore": iso_time(now - SKEW), "NotOnOrAfter": iso_time(now + lifetime)},
    )
    restriction = ET.SubElement(conditions, "saml:AudienceRestrictionCondition")
    ET.SubElement(restriction, "saml:Audience").text = clean(service)
    authentication = ET.SubElement(
        assertion,
        "saml:AuthenticationStatement",
        {
            "AuthenticationInstant": iso_time(success.auth_time),
            "AuthenticationMethod": "urn:oasis:names:tc:SAML:1.0:am:password",
        },
    )
    _subject(authentication, success.user)
    released = [(n, v) for n, v in success.attributes.items() if ATTRIBUTE_NAME.match(n) and v]
    if released:
        statement = ET.SubElement(assertion, "saml:AttributeStatement")
        _subject(statement, success.user)
        for name, values in released:
            attribute = ET.SubElement(
                statement,
                "saml:Attribute",
                {"AttributeName": name, "AttributeNamespace": ATTRIBUTE_NAMESPACE},
            )
            for value in values:
                ET.SubElement(attribute, "saml:AttributeValue", {"xsi:type": "xs:string"}).text = clean(value)
    return _serialize(envelope)


def saml_failure(error: CasError, request_id: str, now: float) -> bytes:
    """A SAML 1.1 failure response: ``samlp:Requester`` (the ticket or request was refused,
    second-level ``samlp:RequestDenied``) or ``samlp:Responder`` (``INTERNAL_ERROR``), with the
    error's code and detail as ``StatusMessage``."""
    envelope, body = _envelope()
    response = _response(body, request_id, now, None)
    status = ET.SubElement(response, "samlp:Status")
    if error.code is Code.INTERNAL_ERROR:
        ET.SubElement(status, "samlp:StatusCode", {"Value": "samlp:Responder"})
    else:
        top = ET.SubElement(status, "samlp:StatusCode", {"Value": "samlp:Requester"})
        ET.SubElement(top, "samlp:StatusCode", {"Value": "samlp:RequestDenied"})
    ET.SubElement(status, "samlp:StatusMessage").text = clean(f"{error.code.value}: {error.detail}")
    return _serialize(envelope)
