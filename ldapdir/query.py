"""LDAP hygiene in one place: identifier normalisation, escaped filters, DNs.

Every value that reaches a filter goes through :func:`escape_filter_chars`
(RFC 4515 §3) and every value that reaches a DN through :func:`escape_rdn`
(RFC 4514 §2.4). Attribute names are never escaped: they come from the
settings, which only accept names matching
:data:`ldapdir.settings.ATTRIBUTE_NAME`.
"""

from __future__ import annotations

import unicodedata

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from ldapdir.model import DN
from ldapdir.settings import DirectorySettings

#: Longest identifier accepted (characters, after trimming). Mail addresses are
#: at most 254 characters (RFC 5321 §4.5.3.1.3); nothing longer names anyone.
MAX_IDENTIFIER_LENGTH = 256

#: Unicode categories refused in identifiers: controls, format characters
#: (bidi overrides, zero-width joiners), surrogates, private use, unassigned,
#: and line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def normalise_identifier(raw: str) -> str | None:
    """The canonical form of what a person typed in the identifier field.

    Trims surrounding white space, composes (NFC) and lower-cases it, so
    ``  Camille.Durand@ETU.univ-demo.fr `` and ``camille.durand@etu.univ-demo.fr``
    are one identifier. Lower-casing (not case folding) keeps every character
    one the directory's case-insensitive matching rules also equate.

    :return: the identifier, or ``None`` when it is unusable: empty, longer
        than :data:`MAX_IDENTIFIER_LENGTH`, or holding a control or invisible
        formatting character.
    """
    text = raw.strip()
    if not text or len(text) > MAX_IDENTIFIER_LENGTH:
        return None
    text = unicodedata.normalize("NFC", text)
    if len(text) > MAX_IDENTIFIER_LENGTH:
        return None
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in text):
        return None
    return text.lower()


def same_identifier(value: str, identifier: str) -> bool:
    """Whether a directory value names the (normalised) ``identifier``."""
    return normalise_identifier(value) == identifier


def equality(attribute: str, value: str) -> str:
    """``(attribute=value)`` with the value escaped (RFC 4515 §3)."""
    return f"({attribute}={escape_filter_chars(value)})"


def all_of(*filters: str) -> str:
    """The conjunction of parenthesised filters, skipping empty ones."""
    present = [item for item in filters if item]
    if len(present) == 1:
        return present[0]
    return "(&" + "".join(present) + ")"


def login_filter(identifier: str, settings: DirectorySettings) -> str:
    """The filter finding the account a normalised identifier names.

    ``(&<account_filter>(|(mail=<id>)(uid=<id>)))`` over the configured login
    attributes, the identifier escaped once for every attribute.
    """
    alternatives = "".join(equality(name, identifier) for name in settings.login_attributes)
    if len(settings.login_attributes) > 1:
        alternatives = f"(|{alternatives})"
    return all_of(settings.account_filter, alternatives)


def search_filter(ldap_filter: str, settings: DirectorySettings) -> str:
    """An administrator's raw filter restricted to accounts (CLI input, not escaped)."""
    text = ldap_filter.strip() or "(objectClass=*)"
    if not (text.startswith("(") and text.endswith(")")):
        text = f"({text})"
    return all_of(settings.account_filter, text)


def person_dn(user: str, settings: DirectorySettings) -> DN:
    """The DN an account named ``user`` has under the people base
    (``uid=<user>,ou=people,…``), the value escaped (RFC 4514 §2.4)."""
    if not user:
        raise ValueError("an empty user name has no DN")
    return DN(f"{settings.user_attribute}={escape_rdn(user)},{settings.people_base}")


def printable(text: str, limit: int = 80) -> str:
    """A user-supplied string made safe for one log line: newlines and other
    controls replaced, length bounded."""
    cleaned = "".join("?" if unicodedata.category(char)[0] == "C" else char for char in text[:limit])
    return cleaned + ("…" if len(text) > limit else "")
