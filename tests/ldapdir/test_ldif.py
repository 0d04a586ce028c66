"""The small LDIF reader of the embedded directory."""

from __future__ import annotations

import pytest

from ldapdir.ldif import LdifError, parse_ldif
from tests.support.slapd import DEMO_LDIF


def test_reads_records() -> None:
    text = """# comment
version: 1
dn: uid=a,ou=people,dc=x
objectClass: inetOrgPerson
objectClass: supannPerson
cn:: Wm/DqQ==
description: folded
 value
# a comment
#  folded comment
mail:a@x.fr

dn:: dWlkPcOpLG91PXBlb3BsZSxkYz14
uid: é
"""
    first, second = parse_ldif(text)
    assert first.dn == "uid=a,ou=people,dc=x"
    assert first.attributes == {
        "objectClass": [b"inetOrgPerson", b"supannPerson"],
        "cn": ["Zoé".encode()],
        "description": [b"foldedvalue"],
        "mail": [b"a@x.fr"],
    }
    assert second.dn == "uid=é,ou=people,dc=x"
    assert second.attributes == {"uid": ["é".encode()]}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("uid: a\n", 1),
        ("dn: a\nchangetype: modify\n", 2),
        ("dn: a\ndn: b\n", 2),
        ("dn: a\ncn:: not base64!\n", 2),
        ("dn: a\njpegPhoto:< file:///etc/passwd\n", 2),
        ("dn: a\nno colon here\n", 2),
        (" continued\n", 1),
    ],
)
def test_refuses(text: str, line: int) -> None:
    with pytest.raises(LdifError) as raised:
        parse_ldif(text)
    assert raised.value.line == line


def test_reads_the_demo_directory() -> None:
    records = parse_ldif(DEMO_LDIF.read_text(encoding="utf-8"))
    people = [record for record in records if record.dn.endswith(",ou=people,dc=univ-demo,dc=fr")]
    assert len(people) == 8
    assert all(b"{SSHA}" in value for record in people for value in record.attributes.get("userPassword", []))
