"""Validation and proxy responses: CAS 1 text, CAS 2/3 XML (Appendix A), JSON (§2.5.2).

Built by construction: ElementTree (or, on the hot path of a successful validation, the same
escaping of text by :func:`xml.sax.saxutils.escape`) and :func:`json.dumps` escape every value; attribute names
were checked against :data:`sso.services.ATTRIBUTE_NAME` and are checked again here; characters
XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF) are removed from values,
in JSON too, so both formats say the same thing.

Choices:

- CAS 2 responses (``version=2``) carry no ``<cas:attributes>``, as CAS 2.0 defined; CAS 3
  responses do, with ``authenticationDate``, ``longTermAuthenticationRequestTokenUsed`` (always
  ``false``: no remember-me) and ``isFromNewLogin`` first (Appendix A). To release attributes on
  the CAS 2 endpoints too (``cas.cas2_attributes``), the view passes ``version=3``.
- JSON attribute values are always lists, as the reference implementation emits them, so a
  client never has to guess; ``proxies`` are listed most recent first, as in XML.
- ``/proxy`` in JSON: ``proxySuccess`` / ``authenticationFailure``, the shapes §2.7.2 shows.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from sso.cas.errors import CasError
from sso.services import ATTRIBUTE_NAME

if TYPE_CHECKING:
    from sso.cas.validation import Success

#: The CAS namespace (Appendix A).
CAS_NS = "http://www.yale.edu/tp/cas"
#: Attributes that carry protocol facts in CAS 3 responses; released attributes of the same
#: name are left out so a directory value can never impersonate them.
PROTOCOL_ATTRIBUTES = ("authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value)


def iso_time(timestamp: float) -> str:
    """``2025-01-31T08:30:00Z`` (UTC, seconds) for a POSIX time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _released(success: Success) -> list[tuple[str, list[str]]]:
    items = []
    for name, values in success.attributes.items():
        if ATTRIBUTE_NAME.match(name) and name not in PROTOCOL_ATTRIBUTES and values:
            items.append((name, [clean(value) for value in values]))
    return items


def _protocol_attributes(success: Success) -> list[tuple[str, str]]:
    return [
        ("authenticationDate", iso_time(success.auth_time)),
        ("longTermAuthenticationRequestTokenUsed", "false"),
        ("isFromNewLogin", "true" if success.primary else "false"),
    ]


# CAS 1.0 (§2.4.2)


def cas1_success(user: str) -> str:
    """``yes<LF>user<LF>``; line breaks in the user name could forge lines, so they are removed."""
    return f"yes\n{_CONTROL.sub('', user)}\n"


def cas1_failure() -> str:
    """``no<LF><LF>``."""
    return "no\n\n"


# XML (Appendix A)


def _root() -> ET.Element:
    return ET.Element("cas:serviceResponse", {"xmlns:cas": CAS_NS})


def _child(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"cas:{tag}")
    if text is not None:
        element.text = clean(text)
    return element


def _serialize(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="unicode").encode("utf-8")


#: Beyond ``& < >``: a carriage return as a reference, or XML parsers would read it as a line feed.
_ENTITIES = {"\r": "&#13;"}


def _element(tag: str, text: str) -> str:
    return f"<cas:{tag}>{escape(clean(text), _ENTITIES)}</cas:{tag}>"


def xml_success(success: Success, version: int) -> bytes:
    """``authenticationSuccess`` (§2.5.2, §2.6.2); attributes only for ``version >= 3``.

    Written as text (each validation answers one: a tree costs twice as much): text escaped as
    ElementTree does, carriage returns too; tags from :data:`ATTRIBUTE_NAME`-checked names only.
    """
    parts = [f'<cas:serviceResponse xmlns:cas="{CAS_NS}"><cas:authenticationSuccess>']
    parts.append(_element("user", success.user))
    if version >= 3:
        parts.append("<cas:attributes>")
        parts.extend(_element(name, value) for name, value in _protocol_attributes(success))
        parts.extend(_element(name, value) for name, values in _released(success) for value in values)
        parts.append("</cas:attributes>")
    if success.pgt_iou is not None:
        parts.append(_element("proxyGrantingTicket", success.pgt_iou))
    if success.proxies:
        parts.append("<cas:proxies>")
        parts.extend(_element("proxy", proxy) for proxy in success.proxies)
        parts.append("</cas:proxies>")
    parts.append("</cas:authenticationSuccess></cas:serviceResponse>")
    return "".join(parts).encode("utf-8")


def xml_failure(error: CasError) -> bytes:
    """``authenticationFailure`` with the error's code and detail (§2.5.3)."""
    root = _root()
    failure = _child(root, "authenticationFailure", error.detail)
    failure.set("code", error.code.value)
    return _serialize(root)


def proxy_xml_success(pt_id: str) -> bytes:
    """``proxySuccess`` with the proxy ticket (§2.7.2)."""
    root = _root()
    _child(_child(root, "proxySuccess"), "proxyTicket", pt_id)
    return _serialize(root)


def proxy_xml_failure(error: CasError) -> bytes:
    """``proxyFailure`` with the error's code and detail (§2.7.2)."""
    root = _root()
    failure = _child(root, "proxyFailure", error.detail)
    failure.set("code", error.code.value)
    return _serialize(root)


# JSON (§2.5.2)


def _dumps(body: dict[str, object]) -> str:
    return json.dumps({"serviceResponse": body}, ensure_ascii=False, separators=(",", ":"))


def json_success(success: Success, version: int) -> str:
    """``authenticationSuccess`` in JSON; attributes (lists) only for ``version >= 3``."""
    body: dict[str, object] = {"user": clean(success.user)}
    if success.pgt_iou is not None:
        body["proxyGrantingTicket"] = success.pgt_iou
    if success.proxies:
        body["proxies"] = [clean(proxy) for proxy in success.proxies]
    if version >= 3:
        attributes: dict[str, list[str]] = {name: [value] for name, value in _protocol_attributes(success)}
        attributes.update(_released(success))
        body["attributes"] = attributes
    return _dumps({"authenticationSuccess": body})


def json_failure(error: CasError) -> str:
    """``authenticationFailure`` in JSON, with ``code`` and ``description``."""
    return _dumps({"authenticationFailure": {"code": error.code.value, "description": clean(error.detail)}})


def proxy_json_success(pt_id: str) -> str:
    """``proxySuccess`` in JSON."""
    return _dumps({"proxySuccess": {"proxyTicket": pt_id}})


def proxy_json_failure(error: CasError) -> str:
    """A ``/proxy`` failure in JSON, shaped as §2.7.2 shows it (``authenticationFailure``)."""
    return json_failure(error)
