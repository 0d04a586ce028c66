"""ldapdir.wire: the hand-framed sign-in search and user bind, against ldap3's own encoding and slapd.

Two halves:

- byte equivalence (no server): every message :class:`LoginSearch` and :class:`SimpleBind` frame
  is compared with the one ldap3 builds (``search_operation`` of :func:`ldapdir.query.login_filter`,
  ``bind_operation``) wrapped in an ``LDAPMessage`` and encoded by pyasn1 as ldap3 patches it, over
  tables of configurations, identifiers and message ids chosen for BER's length and sign-byte
  edges, and over arbitrary ones (hypothesis);
- behaviour (a private slapd, ``integration``): the answer a hand-framed request leaves on the
  connection (``result``, ``response``, ``bound``) is the one ldap3's ``search`` and ``bind`` leave
  on the same server for the same request.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3 import DEREF_ALWAYS, NONE, SIMPLE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPCommunicationError, LDAPInvalidCredentialsResult
from ldap3.operation.bind import bind_operation
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.protocol.sasl.sasl import validate_simple_password
from ldap3.utils.asn1 import encode  # type: ignore[attr-defined]  # pyasn1's encoder as ldap3 patches it
from pyasn1.type import univ

from ldapdir import ppolicy
from ldapdir.entry import requested_attributes
from ldapdir.query import login_filter, normalise_identifier
from ldapdir.settings import DirectorySettings
from ldapdir.wire import LoginSearch, SimpleBind, integer, length, tlv
from tests.support.slapd import Slapd, directory_settings

#: Message ids at the edges of INTEGER's content length and sign byte (X.690 §8.3).
MESSAGE_IDS = (1, 127, 128, 255, 256, 32767, 32768, 65535, 2**31 - 2)

#: Request controls in ldap3's ``(oid, criticality, value)`` form.
Controls = list[tuple[str, bool, str | bytes | None]] | None


# -- references: what ldap3 itself would send ------------------------------------------------------


def ldap3_message(message_id: int, operation: str, request: Any, controls: Controls = None) -> bytes:
    """The LDAPMessage ldap3's ``BaseStrategy.send`` builds, encoded as it encodes it."""
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName(operation, request)
    built = build_controls_list(None if controls is None else list(controls))
    if built is not None:
        message["controls"] = built
    return bytes(encode(message))


def ldap3_search(
    message_id: int, identifier: str, config: DirectorySettings, attributes: Sequence[str], size_limit: int
) -> bytes:
    request = search_operation(
        config.people_base,
        login_filter(identifier, config),
        SUBTREE,
        DEREF_ALWAYS,
        list(attributes),
        size_limit,
        0,
        False,
        True,
        True,
        None,
        validator=None,
        check_names=False,
    )
    return ldap3_message(message_id, "searchRequest", request)


def ldap3_bind(message_id: int, dn: str, password: str | bytes, controls: Controls) -> bytes:
    request = bind_operation(3, SIMPLE, dn, password, auto_encode=True)
    return ldap3_message(message_id, "bindRequest", request, controls)


# -- BER helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8180"),
        (255, "81ff"),
        (256, "820100"),
        (65535, "82ffff"),
        (65536, "83010000"),
        (2**24, "8401000000"),
    ],
    ids=lambda value: str(value) if isinstance(value, int) else None,
)
def test_length(size: int, expected: str) -> None:
    assert length(size).hex() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),
        (255, "020200ff"),
        (256, "02020100"),
        (32767, "02027fff"),
        (32768, "0203008000"),
        (65535, "020300ffff"),
        (2**31 - 1, "02047fffffff"),
        (2**31, "02050080000000"),
    ],
    ids=lambda value: str(value) if isinstance(value, int) else None,
)
def test_integer(value: int, expected: str) -> None:
    assert integer(value).hex() == expected


@pytest.mark.parametrize(
    ("tag", "content", "expected"),
    [
        (0x04, b"", "0400"),
        (0xA3, b"ab", "a3026162"),
        (0x30, b"\x01" * 127, "307f" + "01" * 127),
        (0x30, b"\x01" * 128, "308180" + "01" * 128),
        (0x63, b"\x02" * 256, "63820100" + "02" * 256),
    ],
    ids=["empty", "short", "127", "128", "256"],
)
def test_tlv(tag: int, content: bytes, expected: str) -> None:
    assert tlv(tag, content).hex() == expected


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=0, max_value=2**64), size=st.integers(min_value=0, max_value=70_000))
def test_helpers_agree_with_pyasn1(value: int, size: int) -> None:
    """``integer`` and ``length`` (through an OCTET STRING) as pyasn1 encodes them."""
    assert integer(value) == encode(univ.Integer(value))
    assert tlv(0x04, b"x" * size) == encode(univ.OctetString(b"x" * size))


# -- LoginSearch: the bytes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """A directory configuration and the attributes its sign-in search reads."""

    settings: DirectorySettings
    attributes: tuple[str, ...] = ()
    size_limit: int = 2
    #: Read ``requested_attributes(settings)`` (what LdapDirectory asks for) instead of ``attributes``.
    requested: bool = True

    @property
    def read(self) -> tuple[str, ...]:
        return tuple(requested_attributes(self.settings)) if self.requested else self.attributes

    def login_search(self) -> LoginSearch:
        return LoginSearch(
            self.settings.people_base,
            self.settings.account_filter,
            self.settings.login_attributes,
            self.read,
            self.size_limit,
        )


def config(*, attributes: Sequence[str] | None = None, size_limit: int = 2, **overrides: Any) -> Config:
    return Config(
        DirectorySettings(**overrides),
        tuple(attributes or ()),
        size_limit,
        requested=attributes is None,
    )


#: Forty attribute names: the attribute list alone passes 255 bytes.
MANY_ATTRIBUTES = [f"attributeNumber{index:02d}" for index in range(40)]

CONFIGS: dict[str, Config] = {
    "default": config(),
    "no-account-filter": config(account_filter=""),
    "compound-account-filter": config(account_filter="(&(objectClass=inetOrgPerson)(!(supannEtatCompte=X)))"),
    "rich-account-filter": config(
        account_filter=(
            "(&(objectClass=person)(|(eduPersonAffiliation=student)(eduPersonAffiliation=staff))"
            "(uid=*)(!(cn=test*))(schacExpiryDate>=20250101000000Z)(cn~=durand)"
            "(supannEtatCompte:caseIgnoreMatch:=actif)(description=o\\27brien \\2a\\28x\\29))"
        )
    ),
    "one-login-attribute": config(login_attributes=("uid",)),
    "one-login-attribute-no-filter": config(login_attributes=("uid",), account_filter=""),
    "three-login-attributes": config(login_attributes=("mail", "uid", "supannAliasLogin")),
    "three-login-attributes-reordered": config(login_attributes=("uid", "supannAliasLogin", "mail")),
    "attribute-options-and-oid": config(login_attributes=("mail;lang-fr", "0.9.2342.19200300.100.1.1")),
    "non-ascii-base": config(people_base="ou=personnes,dc=université,dc=fr"),
    "one-attribute-read": config(attributes=["uid"], login_attributes=("uid",), account_filter=""),
    "no-attribute-read": config(attributes=["1.1"], size_limit=0),
    "all-attributes": config(attributes=["*", "+"], size_limit=1),
    "many-attributes": config(attributes=MANY_ATTRIBUTES, size_limit=127),
    "size-limit-128": config(size_limit=128),
    "size-limit-max": config(size_limit=2**31 - 1),
}


#: Identifiers as typed; the tests send ``normalise_identifier`` of each (none is refused).
IDENTIFIERS: dict[str, str] = {
    "uid": "cdurand",
    "mail": "camille.durand@etu.univ-demo.fr",
    "mixed-case": "  Camille.Durand@ETU.univ-demo.fr ",
    "star": "*",
    "metacharacters": "*()\\",
    "injection": "*)(uid=*))(|(uid=*",
    "escape-lookalike": "\\2a\\28\\5c\\00",
    "trailing-backslash": "abc\\",
    "operators": "a=b~=c>=d<=e:=f",
    "boolean-characters": "&|!",
    "inner-space": "jean  dupont",
    "accent": "zoé",
    "decomposed-accent": "Zoe\u0301",
    "cjk": "漢字",
    "emoji": "🙂👍🏽",
    "long-ascii": "a" * 200 + "@univ-demo.fr",
    "long-metacharacters": "é*(" * 70,
    "longest-4-byte": "😀" * 256,
}
NORMALISED = {name: normalise_identifier(raw) for name, raw in IDENTIFIERS.items()}


def test_every_table_identifier_survives_normalisation() -> None:
    assert all(NORMALISED.values()), [name for name, value in NORMALISED.items() if not value]


@pytest.mark.parametrize("identifier", list(IDENTIFIERS), ids=list(IDENTIFIERS))
@pytest.mark.parametrize("configuration", list(CONFIGS), ids=list(CONFIGS))
def test_login_search_bytes(configuration: str, identifier: str) -> None:
    case = CONFIGS[configuration]
    normalised = NORMALISED[identifier]
    assert normalised is not None
    search = case.login_search()
    for message_id in MESSAGE_IDS:
        expected = ldap3_search(message_id, normalised, case.settings, case.read, case.size_limit)
        got = search.encode(message_id, normalised)
        assert got.hex() == expected.hex(), f"message id {message_id}"


#: Strings ``normalise_identifier`` refuses or would change, sent as they are: ``encode`` frames any
#: string as ldap3 would (apart from white space at either end, which ldap3's filter parser strips).
RAW_IDENTIFIERS: dict[str, str] = {
    "nul": "a\x00b",
    "nul-only": "\x00",
    "controls": "a\x01\x1f\x7f\x85b",
    "upper-case": "CDURAND",
    "zero-width-joiner": "a\u200db",
    "tab-inside": "jean\tdupont",
    "too-long": "x" * 300,
    "lone-backslash": "\\",
    "escaped-nul-lookalike": "\\00",
}


@pytest.mark.parametrize("identifier", list(RAW_IDENTIFIERS.values()), ids=list(RAW_IDENTIFIERS))
@pytest.mark.parametrize("configuration", ["default", "one-login-attribute-no-filter"])
def test_login_search_bytes_of_unnormalised_strings(configuration: str, identifier: str) -> None:
    case = CONFIGS[configuration]
    search = case.login_search()
    for message_id in (1, 128, 65535):
        expected = ldap3_search(message_id, identifier, case.settings, case.read, case.size_limit)
        assert search.encode(message_id, identifier).hex() == expected.hex(), f"message id {message_id}"


def test_normalisation_refuses_a_nul() -> None:
    assert normalise_identifier(RAW_IDENTIFIERS["nul"]) is None


def test_the_tables_reach_every_length_form() -> None:
    """The whole message's length is short (< 128), long on one octet (0x81) and on two (0x82)
    somewhere in the tables above (three octets: :func:`test_huge_attribute_list`)."""
    first_length_octets = {
        CONFIGS[configuration].login_search().encode(1, normalised)[1]
        for configuration in ("one-attribute-read", "no-attribute-read", "default", "many-attributes")
        for normalised in NORMALISED.values()
        if normalised
    }
    assert any(octet < 0x80 for octet in first_length_octets)
    assert {0x81, 0x82} <= first_length_octets


def test_huge_attribute_list() -> None:
    """A message over 65,535 bytes (a three-octet length), built in pieces of every size."""
    attributes = [f"attr{index:05d}" for index in range(6000)]
    case = config(attributes=attributes, size_limit=2)
    search = case.login_search()
    for message_id in (1, 2**31 - 2):
        expected = ldap3_search(message_id, "cdurand", case.settings, attributes, 2)
        got = search.encode(message_id, "cdurand")
        assert got[1] == 0x83  # a length on three octets
        assert got == expected


@cache
def prebuilt(configuration: str) -> LoginSearch:
    return CONFIGS[configuration].login_search()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    typed=st.text(min_size=1, max_size=300).filter(lambda text: normalise_identifier(text) is not None),
    message_id=st.integers(min_value=0, max_value=2**31 - 1),
    configuration=st.sampled_from(sorted(CONFIGS)),
)
def test_login_search_bytes_for_any_identifier(typed: str, message_id: int, configuration: str) -> None:
    identifier = normalise_identifier(typed)
    assert identifier is not None
    case = CONFIGS[configuration]
    expected = ldap3_search(message_id, identifier, case.settings, case.read, case.size_limit)
    assert prebuilt(configuration).encode(message_id, identifier) == expected


@settings(max_examples=200, deadline=None)
@given(
    identifier=st.text(min_size=1, max_size=80).filter(lambda text: text == text.strip() and text != ""),
    message_id=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_login_search_bytes_for_any_unnormalised_string(identifier: str, message_id: int) -> None:
    case = CONFIGS["default"]
    expected = ldap3_search(message_id, identifier, case.settings, case.read, case.size_limit)
    assert prebuilt("default").encode(message_id, identifier) == expected


def test_login_search_needs_a_login_attribute() -> None:
    with pytest.raises(ValueError):
        LoginSearch("ou=people,dc=example,dc=org", "(objectClass=inetOrgPerson)", (), ["uid"], 2)


# -- SimpleBind: the bytes -------------------------------------------------------------------------

CDURAND = "uid=cdurand,ou=people,dc=univ-demo,dc=fr"
PAGED_RESULTS = ("1.2.840.113556.1.4.319", True, b"0\x05\x02\x01\x05\x04\x00")

#: (dn, password, controls). Passwords are bytes, sent as they are by both sides.
BIND_CASES: dict[str, tuple[str, bytes, Controls]] = {
    "no-controls": (CDURAND, b"Soleil-Vert-2026", None),
    "empty-control-list": (CDURAND, b"Soleil-Vert-2026", []),
    "ppolicy": (CDURAND, b"Soleil-Vert-2026", [ppolicy.REQUEST]),
    "critical-control-with-value": (CDURAND, b"Soleil-Vert-2026", [PAGED_RESULTS, ppolicy.REQUEST]),
    "non-ascii-dn": ("uid=zoé,ou=personnes,dc=université,dc=fr", b"Soleil-Vert-2026", [ppolicy.REQUEST]),
    "cjk-dn": ("cn=漢字,ou=people,dc=univ-demo,dc=fr", "mot de passé".encode(), None),
    "long-password": (CDURAND, b"p" * 300, [ppolicy.REQUEST]),
    "long-dn": ("uid=" + "x" * 300 + ",ou=people,dc=univ-demo,dc=fr", b"secret", None),
    "binary-password": (CDURAND, b"\x00\xff\x80 \n\x30", None),
    "one-byte-password": (CDURAND, b"x", None),
}


@pytest.mark.parametrize(("dn", "password", "controls"), list(BIND_CASES.values()), ids=list(BIND_CASES))
def test_simple_bind_bytes(dn: str, password: bytes, controls: Controls) -> None:
    bind = SimpleBind(controls)
    for message_id in MESSAGE_IDS:
        expected = ldap3_bind(message_id, dn, password, controls)
        assert bind.encode(message_id, dn, password).hex() == expected.hex(), f"message id {message_id}"


@pytest.mark.parametrize(
    "password",
    ["Soleil-Vert-2026", "Mot\u00a0de\u00a0passe", "ﬁnal-Ⅸ", "p" * 300, "漢字🙂"],
    ids=["ascii", "nbsp-mapped", "nfkc-folded", "long", "non-ascii"],
)
def test_simple_bind_bytes_of_a_text_password(password: str) -> None:
    """A ``str`` password, SASLprepped as BindPool does, frames as ldap3 frames the ``str``."""
    prepared = validate_simple_password(password)
    bind = SimpleBind([ppolicy.REQUEST])
    for message_id in (1, 128, 2**31 - 2):
        expected = ldap3_bind(message_id, CDURAND, password, [ppolicy.REQUEST])
        assert bind.encode(message_id, CDURAND, prepared) == expected


@settings(max_examples=200, deadline=None)
@given(
    dn=st.text(min_size=1, max_size=300),
    password=st.binary(min_size=1, max_size=400),
    message_id=st.integers(min_value=0, max_value=2**31 - 1),
    with_policy=st.booleans(),
)
def test_simple_bind_bytes_for_anything(dn: str, password: bytes, message_id: int, with_policy: bool) -> None:
    controls: Controls = [ppolicy.REQUEST] if with_policy else None
    assert SimpleBind(controls).encode(message_id, dn, password) == ldap3_bind(
        message_id, dn, password, controls
    )


class Untouchable:
    """A stand-in connection that fails the test when anything of it is used."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"the connection was used ({name})")


def test_an_empty_password_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError):
        SimpleBind([ppolicy.REQUEST]).run(Untouchable(), CDURAND, b"")  # type: ignore[arg-type]


# -- on a real slapd -------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


#: People seeded next to the demo ones: homonyms, an over-full match, values with filter
#: metacharacters and non-ASCII values, and an entry that is not an account.
EXTRA_PEOPLE = f"""dn: uid=jdupont-homonyme,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: jdupont-homonyme
cn: Jeanne Dupont
sn: Dupont
mail: jdupont

dn: uid=partage1,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: partage1
cn: Partage Un
sn: Partage
mail: partage@univ-demo.fr

dn: uid=partage2,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: partage2
cn: Partage Deux
sn: Partage
mail: partage@univ-demo.fr

dn: uid=partage3,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: partage3
cn: Partage Trois
sn: Partage
mail: partage@univ-demo.fr

dn: uid=meta,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: meta
uid: star*user
uid: par(en)s
uid:: {_b64("back" + chr(92) + "slash")}
cn: Meta Caracteres
sn: Caracteres

dn: uid=zoe,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: zoe
uid:: {_b64("zoé.martin")}
uid:: {_b64("漢字")}
cn:: {_b64("Zoé Martin")}
sn: Martin

dn: uid=robot,ou=people,dc=univ-demo,dc=fr
objectClass: account
uid: robot
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd of this module's own: the shared one must not see failed binds or extra people."""
    folder = tmp_path_factory.mktemp("wire")
    extra = folder / "extra.ldif"
    extra.write_text(EXTRA_PEOPLE, encoding="utf-8")
    instance = Slapd(folder / "slapd", extra_ldif=(extra,))
    try:
        instance.setup().start()
        yield instance
    finally:
        instance.cleanup()


def plain_connection(
    server: Slapd, user: str | None = None, password: str | None = None, **options: Any
) -> Connection:
    """An ldap3 connection set up as :func:`ldapdir.connections.open_connection` sets one up."""
    values: dict[str, Any] = {
        "receive_timeout": 5,
        "raise_exceptions": False,
        "auto_referrals": False,
        "check_names": False,
    }
    values.update(options)
    connection = Connection(
        Server(server.url, get_info=NONE, connect_timeout=3),
        user=user,
        password=password,
        authentication=SIMPLE if user else None,
        **values,
    )
    connection.open(read_server_info=False)
    if user:
        assert connection.bind(read_server_info=False), connection.result
    return connection


@pytest.fixture
def service(server: Slapd) -> Iterator[Connection]:
    connection = plain_connection(server, Slapd.service_dn, Slapd.service_pw)
    yield connection
    if not connection.closed:
        connection.unbind()


def entries(connection: Connection) -> list[dict[str, Any]]:
    """The entries (and references) the last search left on ``connection``."""
    return list(connection.response or [])


def answer(connection: Connection) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """What a search left on ``connection``: the result, and each entry as ldap3 decoded it."""
    found = [
        (item["type"], item["dn"], item["raw_attributes"], item["attributes"]) for item in entries(connection)
    ]
    return dict(connection.result or {}), found


SEARCH_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-account-filter": {"account_filter": ""},
    "uid-only": {"login_attributes": ("uid",)},
    "three-login-attributes": {"login_attributes": ("mail", "uid", "cn")},
}

#: identifier (as typed, not normalised: the server's matching rules ignore case) → entries found
#: with the default variant (checked there; the other variants only against ldap3).
SEARCHES: dict[str, tuple[str, int]] = {
    "uid": ("cdurand", 1),
    "mail-other-case": ("CAMILLE.Durand@Etu.Univ-Demo.FR", 1),
    "unknown": ("personne.inconnue@univ-demo.fr", 0),
    "star": ("*", 0),
    "prefix-star": ("cdur*", 0),
    "injection": ("*)(uid=*", 0),
    "literal-star": ("star*user", 1),
    "parentheses": ("par(en)s", 1),
    "backslash": ("back\\slash", 1),
    "accent": ("zoé.martin", 1),
    "accent-other-case": ("ZOÉ.Martin", 1),
    "cjk": ("漢字", 1),
    "ambiguous": ("jdupont", 2),
    "over-size-limit": ("partage@univ-demo.fr", 2),
    "not-an-account": ("robot", 0),
    "long": ("x" * 250, 0),
}


@pytest.mark.integration
@pytest.mark.parametrize("identifier", list(SEARCHES), ids=list(SEARCHES))
@pytest.mark.parametrize("variant", list(SEARCH_VARIANTS), ids=list(SEARCH_VARIANTS))
def test_login_search_answers_as_ldap3_search(
    server: Slapd, service: Connection, variant: str, identifier: str
) -> None:
    typed, count = SEARCHES[identifier]
    directory = directory_settings(server, **SEARCH_VARIANTS[variant])
    attributes = requested_attributes(directory)
    search = LoginSearch(
        directory.people_base, directory.account_filter, directory.login_attributes, attributes, 2
    )
    ldap_filter = login_filter(typed, directory)

    search.run(service, typed, ldap_filter)
    wire = answer(service)
    service.search(directory.people_base, ldap_filter, SUBTREE, attributes=attributes, size_limit=2)
    reference = answer(service)

    assert wire == reference
    assert service.strategy._outstanding == {}
    if variant == "default":
        assert len(wire[1]) == count
    if variant == "default" and identifier == "over-size-limit":
        assert wire[0]["result"] == 4  # sizeLimitExceeded, as the directory's caller expects


@pytest.mark.integration
def test_the_seeded_values_are_there(service: Connection) -> None:
    """Sanity of the data above: a wildcard would find what the escaped ``*`` must not."""
    service.search(Slapd.people_base, "(uid=cdur*)", SUBTREE, attributes=["uid"])
    assert [item["dn"] for item in entries(service)] == ["uid=cdurand,ou=people,dc=univ-demo,dc=fr"]
    service.search(Slapd.people_base, "(uid=robot)", SUBTREE, attributes=["uid"])
    assert len(entries(service)) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variant", "typed", "count"),
    [
        ("no-account-filter", "robot", 1),
        ("uid-only", "camille.durand@etu.univ-demo.fr", 0),
        ("uid-only", "jdupont", 1),
        ("three-login-attributes", "camille durand", 1),
    ],
    ids=["robot-without-account-filter", "mail-with-uid-only", "no-homonym-with-uid-only", "by-cn"],
)
def test_the_configuration_shapes_the_search(
    server: Slapd, service: Connection, variant: str, typed: str, count: int
) -> None:
    directory = directory_settings(server, **SEARCH_VARIANTS[variant])
    search = LoginSearch(
        directory.people_base, directory.account_filter, directory.login_attributes, ["uid"], 2
    )
    search.run(service, typed, login_filter(typed, directory))
    assert service.result["result"] == 0
    assert len(entries(service)) == count


@pytest.mark.integration
def test_hand_framed_and_ldap3_requests_interleave(server: Slapd, service: Connection) -> None:
    """Message ids stay in step: each answer goes to its own request, on one connection."""
    directory = directory_settings(server)
    attributes = ["uid"]
    search = LoginSearch(
        directory.people_base, directory.account_filter, directory.login_attributes, attributes, 2
    )
    for typed, user in [("cdurand", "cdurand"), ("jean.dupont@univ-demo.fr", "jdupont"), ("xss", "xss")] * 3:
        search.run(service, typed, login_filter(typed, directory))
        assert [item["raw_attributes"]["uid"] for item in entries(service)] == [[user.encode()]]
        service.search(directory.people_base, f"(uid={user})", SUBTREE, attributes=attributes)
        assert [item["raw_attributes"]["uid"] for item in entries(service)] == [[user.encode()]]
    assert service.strategy._outstanding == {}


@pytest.mark.integration
def test_login_search_on_a_closed_connection(server: Slapd, service: Connection) -> None:
    directory = directory_settings(server)
    search = LoginSearch(
        directory.people_base, directory.account_filter, directory.login_attributes, ["uid"], 2
    )
    service.unbind()
    with pytest.raises(LDAPCommunicationError):
        search.run(service, "cdurand", login_filter("cdurand", directory))
    never_opened = Connection(Server(server.url, get_info=NONE), receive_timeout=5)
    with pytest.raises(LDAPCommunicationError):
        search.run(never_opened, "cdurand", login_filter("cdurand", directory))


@pytest.fixture
def bind_connections(server: Slapd) -> Iterator[tuple[Connection, Connection]]:
    """Two anonymous connections: one for SimpleBind, one for ldap3's bind."""
    pair = (plain_connection(server), plain_connection(server))
    yield pair
    for connection in pair:
        if not connection.closed:
            connection.unbind()


#: (dn, password, controls, expected result code, expected password policy response control:
#: None when the server sends none). Every wrong password goes to another account, or stays
#: under the policy's pwdMaxFailure (5) with right ones in between.
BINDS: dict[str, tuple[str, str, Controls, int, ppolicy.PolicyResponse | None]] = {
    "right": (CDURAND, "Soleil-Vert-2026", None, 0, None),
    "right-with-ppolicy": (CDURAND, "Soleil-Vert-2026", [ppolicy.REQUEST], 0, ppolicy.NOTHING_TO_REPORT),
    "wrong": ("uid=jdupont,ou=people,dc=univ-demo,dc=fr", "wrong-password", None, 49, None),
    "wrong-with-ppolicy": (
        "uid=xss,ou=people,dc=univ-demo,dc=fr",
        "wrong-password",
        [ppolicy.REQUEST],
        49,
        ppolicy.NOTHING_TO_REPORT,
    ),
    "locked-with-ppolicy": (
        "uid=mleroy,ou=people,dc=univ-demo,dc=fr",
        "Verrou-Ferme-2026",
        [ppolicy.REQUEST],
        49,
        ppolicy.PolicyResponse(error=ppolicy.PolicyError.ACCOUNT_LOCKED),
    ),
    "unknown-dn": ("uid=personne,ou=people,dc=univ-demo,dc=fr", "whatever", [ppolicy.REQUEST], 49, None),
    "non-ascii-password-wrong": (CDURAND, "mot de passé 漢字", None, 49, None),
}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("dn", "password", "controls", "code", "policy"), list(BINDS.values()), ids=list(BINDS)
)
def test_simple_bind_answers_as_ldap3_bind(
    bind_connections: tuple[Connection, Connection],
    dn: str,
    password: str,
    controls: Controls,
    code: int,
    policy: ppolicy.PolicyResponse | None,
) -> None:
    """The same result (code, message, controls) and the same ``bound`` as ldap3's ``rebind``."""
    wire_connection, ldap3_connection = bind_connections
    result = SimpleBind(controls).run(wire_connection, dn, validate_simple_password(password))
    ldap3_connection.rebind(user=dn, password=password, controls=controls)

    assert result == wire_connection.result == ldap3_connection.result
    assert result["result"] == code
    assert wire_connection.bound is ldap3_connection.bound is (code == 0)
    assert wire_connection.strategy._outstanding == {}
    assert ppolicy.from_result(result) == policy
    if policy is not None:
        assert result["controls"][ppolicy.OID]["criticality"] is False
    if code == 0:
        assert wire_connection.extend.standard.who_am_i() == f"dn:{dn}"


@pytest.mark.integration
def test_a_bound_connection_binds_again(bind_connections: tuple[Connection, Connection]) -> None:
    """A pooled bind connection is reused: the second identity replaces the first."""
    connection, _ = bind_connections
    bind = SimpleBind([ppolicy.REQUEST])
    assert bind.run(connection, CDURAND, b"Soleil-Vert-2026")["result"] == 0
    jdupont = "uid=jdupont,ou=people,dc=univ-demo,dc=fr"
    assert bind.run(connection, jdupont, b"Marche-Bleu-2026")["result"] == 0
    assert connection.extend.standard.who_am_i() == f"dn:{jdupont}"
    assert bind.run(connection, CDURAND, b"Soleil-Vert-2026-faux")["result"] == 49
    assert connection.bound is False


@pytest.mark.integration
def test_simple_bind_raises_as_ldap3_when_told_to(server: Slapd) -> None:
    """With ``raise_exceptions``, a refused bind raises the same error either way."""
    connection = plain_connection(server, raise_exceptions=True)
    try:
        with pytest.raises(LDAPInvalidCredentialsResult):
            SimpleBind(None).run(connection, "uid=nlambert,ou=people,dc=univ-demo,dc=fr", b"wrong-password")
        with pytest.raises(LDAPInvalidCredentialsResult):
            connection.rebind(user="uid=nlambert,ou=people,dc=univ-demo,dc=fr", password="wrong-password")
    finally:
        connection.unbind()


@pytest.mark.integration
def test_simple_bind_on_a_closed_connection(server: Slapd) -> None:
    connection = plain_connection(server)
    connection.unbind()
    with pytest.raises(LDAPCommunicationError):
        SimpleBind([ppolicy.REQUEST]).run(connection, CDURAND, b"Soleil-Vert-2026")
