"""The sign-in's two LDAP requests, the search and the user's bind, encoded once but for what varies.

Every sign-in starts with the same search: under the people base, the account filter and the
login attributes equal to what was typed, the same attributes read. ldap3 builds each request
as a tree of pyasn1 objects and encodes it with pyasn1's generic BER encoder, which checks every
type and constraint on the way: about three quarters of the CPU of a search, where the server's
answer takes the rest (measured here: 0.65 ms per search through ``Connection.search``, 0.17 ms
this way). pyasn1's author advises "a very rigid, special-purpose codec" where speed matters
(ldap3 issue #332), and this is one, for this one request only:

- the constant parts (base, scope, limits, the account filter, the attribute list) are built by
  ldap3's own request builder and encoded by pyasn1 once, when the directory is set up;
- per sign-in, only the message id and the ``(|(mail=…)(uid=…))`` part are framed here (RFC 4511
  §4.5.1: an ``and`` of the account filter and an ``or`` of equality matches), the identifier's
  UTF-8 bytes as the assertion value: BER needs no escaping, so no filter string is parsed;
- the request goes out on the ldap3 connection's socket and the answer is read and decoded by
  ldap3 (``post_send_search``), which leaves ``connection.result`` and ``connection.response``
  as its ``search`` does.

The user's simple bind (RFC 4511 §4.2) is framed the same way, its request controls (the
password policy's) encoded by ldap3 once, and its answer read by ldap3
(``post_send_single_response``).

The tests check the bytes against ldap3 + pyasn1's own encoding (of
:func:`ldapdir.query.login_filter` for arbitrary identifiers, of ``bind_operation``), and the
answers against ``Connection.search`` and ``Connection.rebind`` on a real slapd. Every other
operation goes through ldap3 as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ldap3 import DEREF_ALWAYS, SUBTREE, Connection
from ldap3.core.exceptions import LDAPSocketSendError
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.utils.asn1 import encode  # type: ignore[attr-defined]  # pyasn1's, as ldap3 patches it

#: BER tags (X.690 §8; RFC 4511 §4.1.1, §4.5.1).
SEQUENCE = 0x30
OCTET_STRING = 0x04
INTEGER = 0x02
BIND_REQUEST = 0x60  # [APPLICATION 0], constructed
SEARCH_REQUEST = 0x63  # [APPLICATION 3], constructed
SIMPLE = 0x80  # [0] OCTET STRING, the simple authentication choice
FILTER_AND = 0xA0  # [0] SET OF Filter
FILTER_OR = 0xA1  # [1] SET OF Filter
FILTER_EQUALITY = 0xA3  # [3] AttributeValueAssertion


def length(size: int) -> bytes:
    """A BER definite length (X.690 §8.1.3)."""
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """Tag, length, value."""
    return bytes((tag,)) + length(len(content)) + content


def integer(value: int) -> bytes:
    """A non-negative INTEGER, in the fewest octets (two's complement)."""
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


class LoginSearch:
    """The search :func:`ldapdir.query.login_filter` describes, ready to send.

    :param base: the people base.
    :param account_filter: restricts matches to accounts (may be empty).
    :param login_attributes: the attributes an identifier may equal (at least one).
    :param attributes: the attributes to read.
    :param size_limit: entries the server may return (two tell an ambiguous identifier).
    """

    def __init__(
        self,
        base: str,
        account_filter: str,
        login_attributes: Sequence[str],
        attributes: Sequence[str],
        size_limit: int,
    ) -> None:
        if not login_attributes:
            raise ValueError("a login search needs at least one login attribute")
        self.base = base
        self.attributes = list(attributes)
        self.size_limit = size_limit
        # ldap3 builds (and checks) the constant parts; pyasn1 encodes them, once. The account
        # filter stands in for the whole filter here: only its encoding is kept.
        request = search_operation(
            base,
            account_filter or "(objectClass=*)",
            SUBTREE,
            DEREF_ALWAYS,
            self.attributes,
            size_limit,
            0,
            False,
            True,
            True,
            None,
            validator=None,
            check_names=False,
        )
        self._head = b"".join(encode(request.getComponentByPosition(index)) for index in range(6))
        self._account = encode(request["filter"]) if account_filter else b""
        self._selection = encode(request["attributes"])
        self._names = [tlv(OCTET_STRING, name.encode("utf-8")) for name in login_attributes]

    def encode(self, message_id: int, identifier: str) -> bytes:
        """The LDAPMessage searching for ``identifier`` (already normalised), as BER bytes."""
        value = tlv(OCTET_STRING, identifier.encode("utf-8"))
        matches = [tlv(FILTER_EQUALITY, name + value) for name in self._names]
        wanted = matches[0] if len(matches) == 1 else tlv(FILTER_OR, b"".join(matches))
        found = tlv(FILTER_AND, self._account + wanted) if self._account else wanted
        search = tlv(SEARCH_REQUEST, self._head + found + self._selection)
        return tlv(SEQUENCE, integer(message_id) + search)

    def run(self, connection: Connection, identifier: str, filter_text: str) -> None:
        """Send the search for ``identifier`` on ``connection`` and read the answer as
        ``Connection.search`` would: entries in ``connection.response``, the outcome in
        ``connection.result``.

        :param filter_text: the same filter as a string (what ldap3 keeps of a request it sent).
        :raises ldap3.core.exceptions.LDAPCommunicationError: the connection is closed or failed.
        """
        with connection.connection_lock:
            if connection.closed or connection.socket is None:
                raise LDAPSocketSendError("the connection is closed")
            message_id = connection.server.next_message_id()
            # ldap3's strategy matches the answer to this record (and reads its "attributes").
            connection.strategy._outstanding[message_id] = self._record(filter_text)
            connection.request = connection.result = connection.response = None
            try:
                connection.socket.sendall(self.encode(message_id, identifier))
            except OSError as error:
                raise LDAPSocketSendError(f"sending the search failed: {error}") from error
            connection.post_send_search(message_id)

    def _record(self, filter_text: str) -> dict[str, Any]:
        return {
            "type": "searchRequest",
            "base": self.base,
            "scope": 2,  # wholeSubtree
            "dereferenceAlias": 3,  # derefAlways, ldap3's default
            "sizeLimit": self.size_limit,
            "timeLimit": 0,
            "typesOnly": False,
            "filter": filter_text,
            "attributes": self.attributes,
        }


class SimpleBind:
    """A simple bind (LDAP v3) with fixed request controls.

    :param controls: ldap3 control tuples ``(oid, criticality, value)`` sent with every bind.
    """

    def __init__(self, controls: Sequence[tuple[str, bool, Any]] | None) -> None:
        built = build_controls_list(list(controls)) if controls else None
        self._controls = encode(built) if built is not None else b""

    def encode(self, message_id: int, dn: str, password: bytes) -> bytes:
        """The LDAPMessage binding as ``dn`` with ``password`` (sent as it is), as BER bytes."""
        bind = tlv(BIND_REQUEST, integer(3) + tlv(OCTET_STRING, dn.encode("utf-8")) + tlv(SIMPLE, password))
        return tlv(SEQUENCE, integer(message_id) + bind + self._controls)

    def run(self, connection: Connection, dn: str, password: bytes) -> dict[str, Any]:
        """Bind as ``dn`` on ``connection``; ldap3's result (code, controls…), also left in
        ``connection.result``.

        :raises ValueError: an empty password (an unauthenticated bind, RFC 4513 §5.1.2).
        :raises ldap3.core.exceptions.LDAPCommunicationError: the connection is closed or failed.
        """
        if not password:
            raise ValueError("an empty password would make an unauthenticated bind")
        with connection.connection_lock:
            if connection.closed or connection.socket is None:
                raise LDAPSocketSendError("the connection is closed")
            message_id = connection.server.next_message_id()
            connection.strategy._outstanding[message_id] = {
                "type": "bindRequest",
                "version": 3,
                "name": dn,
                "authentication": {"simple": "<stripped>", "sasl": None},
            }
            connection.request = connection.result = None
            try:
                connection.socket.sendall(self.encode(message_id, dn, password))
            except OSError as error:
                raise LDAPSocketSendError(f"sending the bind failed: {error}") from error
            connection.post_send_single_response(message_id)
            result: dict[str, Any] = connection.result or {}
            connection.bound = result.get("result") == 0
            connection.user = dn
            return result
