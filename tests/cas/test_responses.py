"""CAS 1/2/3 responses: shape (Appendix A), escaping of hostile values, python-cas compatibility."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import cas as python_cas
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sso.cas import responses
from sso.cas.errors import CasError, Code
from tests.cas.builders import make_success

NS = {"cas": responses.CAS_NS}
HOSTILE = "<b>\"&'</b> ]]> \x00\x07\x1b\ud800\ufffe é ☃ 𝄞 \u202e"
CLEANED = "<b>\"&'</b> ]]>  é ☃ 𝄞 \u202e"


def parse(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def test_cas1() -> None:
    assert responses.cas1_success("ada") == "yes\nada\n"
    assert responses.cas1_success("ada\nyes\nroot") == "yes\nadayesroot\n"
    assert responses.cas1_failure() == "no\n\n"


def test_xml_v2_success_has_no_attributes() -> None:
    root = parse(responses.xml_success(make_success(), 2))
    assert root.tag == f"{{{responses.CAS_NS}}}serviceResponse"
    success = root.find("cas:authenticationSuccess", NS)
    assert success is not None
    assert success.findtext("cas:user", namespaces=NS) == "ada"
    assert success.find("cas:attributes", NS) is None
    assert success.find("cas:proxyGrantingTicket", NS) is None
    assert success.find("cas:proxies", NS) is None


def test_xml_v3_success_in_schema_order() -> None:
    body = responses.xml_success(
        make_success(pgt_iou="PGTIOU-1", proxies=("https://p2/cb", "https://p1/cb")), 3
    )
    assert body.startswith(b'<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">')
    success = parse(body).find("cas:authenticationSuccess", NS)
    assert success is not None
    assert [child.tag.split("}")[1] for child in success] == [
        "user",
        "attributes",
        "proxyGrantingTicket",
        "proxies",
    ]
    attributes = success.find("cas:attributes", NS)
    assert attributes is not None
    assert [(child.tag.split("}")[1], child.text) for child in attributes] == [
        ("authenticationDate", "2023-11-14T22:13:20Z"),
        ("longTermAuthenticationRequestTokenUsed", "false"),
        ("isFromNewLogin", "true"),
        ("mail", "ada@univ-demo.fr"),
        ("eduPersonAffiliation", "student"),
        ("eduPersonAffiliation", "member"),
    ]
    assert [p.text for p in success.iterfind("cas:proxies/cas:proxy", NS)] == [
        "https://p2/cb",
        "https://p1/cb",
    ]


def test_is_from_new_login_false_for_sso() -> None:
    attributes = parse(responses.xml_success(make_success(primary=False), 3)).find(".//cas:attributes", NS)
    assert attributes is not None and attributes.findtext("cas:isFromNewLogin", namespaces=NS) == "false"


def test_protocol_attribute_names_cannot_be_forged() -> None:
    success = make_success(attributes={"isFromNewLogin": ("true",), "authenticationDate": ("1999",)})
    attributes = parse(responses.xml_success(success, 3)).find(".//cas:attributes", NS)
    assert attributes is not None and len(attributes) == 3
    body = json.loads(responses.json_success(success, 3))
    assert body["serviceResponse"]["authenticationSuccess"]["attributes"]["authenticationDate"] == [
        "2023-11-14T22:13:20Z"
    ]


@pytest.mark.parametrize("name", ["<x>", "a b", "x:y", "1a", "", "a\n"])
def test_unsafe_attribute_names_are_dropped(name: str) -> None:
    success = make_success(attributes={name: ("v",), "ok": ("w",)})
    body = responses.xml_success(success, 3)
    attributes = parse(body).find(".//cas:attributes", NS)
    assert attributes is not None and [c.tag.split("}")[1] for c in attributes][3:] == ["ok"]
    assert list(
        json.loads(responses.json_success(success, 3))["serviceResponse"]["authenticationSuccess"][
            "attributes"
        ]
    )[3:] == ["ok"]


def test_hostile_values_in_xml() -> None:
    success = make_success(user=HOSTILE, attributes={"cn": (HOSTILE,)}, proxies=(HOSTILE,))
    root = parse(responses.xml_success(success, 3))
    assert root.findtext(".//cas:user", namespaces=NS) == CLEANED
    assert root.findtext(".//cas:attributes/cas:cn", namespaces=NS) == CLEANED
    assert root.findtext(".//cas:proxy", namespaces=NS) == CLEANED


@example("a\rb", ["x\r\ny", ""])
@given(st.text(), st.lists(st.text(), min_size=1, max_size=3))
def test_any_text_reads_back_cleaned(user: str, values: list[str]) -> None:
    """The success response is written as text: whatever the values, it parses, and each reads back
    as itself without the characters XML cannot carry."""
    success = make_success(user=user, attributes={"cn": tuple(values)}, proxies=(user,))
    root = parse(responses.xml_success(success, 3))
    assert (root.findtext(".//cas:user", namespaces=NS) or "") == responses.clean(user)
    found = [element.text or "" for element in root.findall(".//cas:attributes/cas:cn", namespaces=NS)]
    assert found == [responses.clean(value) for value in values]
    assert (root.findtext(".//cas:proxy", namespaces=NS) or "") == responses.clean(user)


def test_hostile_values_in_json() -> None:
    success = make_success(user=HOSTILE, attributes={"cn": (HOSTILE,)})
    text = responses.json_success(success, 3)
    text.encode("utf-8")  # no lone surrogate left
    body = json.loads(text)["serviceResponse"]["authenticationSuccess"]
    assert body["user"] == CLEANED
    assert body["attributes"]["cn"] == [CLEANED]


def test_hostile_failure_detail() -> None:
    error = CasError(Code.INVALID_SERVICE, HOSTILE)
    failure = parse(responses.xml_failure(error)).find("cas:authenticationFailure", NS)
    assert failure is not None and failure.get("code") == "INVALID_SERVICE" and failure.text == CLEANED
    body = json.loads(responses.json_failure(error))
    assert body == {
        "serviceResponse": {"authenticationFailure": {"code": "INVALID_SERVICE", "description": CLEANED}}
    }


def test_json_success_shape() -> None:
    v2 = json.loads(responses.json_success(make_success(), 2))
    assert v2 == {"serviceResponse": {"authenticationSuccess": {"user": "ada"}}}
    v3 = json.loads(responses.json_success(make_success(pgt_iou="PGTIOU-1", proxies=("https://p/cb",)), 3))
    body = v3["serviceResponse"]["authenticationSuccess"]
    assert body["proxyGrantingTicket"] == "PGTIOU-1" and body["proxies"] == ["https://p/cb"]
    assert body["attributes"] == {
        "authenticationDate": ["2023-11-14T22:13:20Z"],
        "longTermAuthenticationRequestTokenUsed": ["false"],
        "isFromNewLogin": ["true"],
        "mail": ["ada@univ-demo.fr"],
        "eduPersonAffiliation": ["student", "member"],
    }


def test_proxy_responses() -> None:
    success = parse(responses.proxy_xml_success("PT-1"))
    assert success.findtext("cas:proxySuccess/cas:proxyTicket", namespaces=NS) == "PT-1"
    failure = parse(responses.proxy_xml_failure(CasError(Code.UNAUTHORIZED_SERVICE, "no")))
    node = failure.find("cas:proxyFailure", NS)
    assert node is not None and node.get("code") == "UNAUTHORIZED_SERVICE" and node.text == "no"
    assert json.loads(responses.proxy_json_success("PT-1")) == {
        "serviceResponse": {"proxySuccess": {"proxyTicket": "PT-1"}}
    }
    assert json.loads(responses.proxy_json_failure(CasError(Code.INVALID_REQUEST, "x"))) == {
        "serviceResponse": {"authenticationFailure": {"code": "INVALID_REQUEST", "description": "x"}}
    }


# python-cas reads what we write


def test_python_cas_v3_parses_success() -> None:
    success = make_success(
        attributes={"mail": ("ada@univ-demo.fr",), "eduPersonAffiliation": ("student", "member")}
    )
    user, attributes, pgtiou = python_cas.CASClientV3.verify_response(
        responses.xml_success(dataclasses.replace(success, pgt_iou="PGTIOU-9"), 3)
    )
    assert user == "ada" and pgtiou == "PGTIOU-9"
    assert attributes["mail"] == "ada@univ-demo.fr"
    assert attributes["eduPersonAffiliation"] == ["student", "member"]
    assert attributes["isFromNewLogin"] == "true"


def test_python_cas_v2_parses_success() -> None:
    user, attributes, pgtiou = python_cas.CASClientV2.verify_response(
        responses.xml_success(make_success(), 2)
    )
    assert (user, attributes, pgtiou) == ("ada", None, None)


def test_python_cas_reads_hostile_values_back() -> None:
    success = make_success(user=HOSTILE, attributes={"cn": (HOSTILE,)})
    user, attributes, _ = python_cas.CASClientV3.verify_response(responses.xml_success(success, 3))
    assert user == CLEANED and attributes["cn"] == CLEANED


@pytest.mark.parametrize("client", [python_cas.CASClientV2, python_cas.CASClientV3])
def test_python_cas_failure(client) -> None:  # type: ignore[no-untyped-def]
    user, attributes, pgtiou = client.verify_response(
        responses.xml_failure(CasError(Code.INVALID_TICKET, "no"))
    )
    assert user is None and not attributes and pgtiou is None
