"""Password values as LDAP stores them: salted hashes and the password-state fingerprint.

The replace path (directories without RFC 3062, and the embedded directory)
writes ``{SSHA}``-family values (RFC 2307 ``userPassword`` syntax, the salted
variants OpenLDAP's ``slappasswd`` produces): ``base64(digest(password + salt) + salt)``.
Clear-text values are never accepted: :func:`verify_password` refuses
``{CLEARTEXT}`` and unprefixed values, so no clear password can sit on disk
and still work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from ldap3.core.exceptions import LDAPSASLPrepError
from ldap3.protocol.sasl.sasl import sasl_prep

from ldapdir.errors import PasswordRejected

#: Salted schemes: scheme -> (hashlib name, digest length in bytes).
SALTED_SCHEMES: dict[str, tuple[str, int]] = {
    "{SSHA}": ("sha1", 20),
    "{SSHA256}": ("sha256", 32),
    "{SSHA512}": ("sha512", 64),
}

#: Bytes of random salt in a new hash.
SALT_BYTES = 16


def prepare(password: str) -> str | None:
    """The password as an LDAP simple bind sends it: SASLprep (RFC 4013), as
    ldap3 applies it to every bind and Password Modify request.

    SASLprep maps non-ASCII spaces to a space, drops invisible characters and
    normalises to NFKC; hashing the prepared form keeps a password written by
    the replace path (or the embedded directory) equal to the one a bind sends.

    :return: the prepared password, or ``None`` if SASLprep prohibits it
        (control characters, private use, mixed bidi…) or nothing is left.
    """
    try:
        prepared: str = sasl_prep(password)
    except LDAPSASLPrepError:
        return None
    return prepared or None


def prepared_new_password(password: str) -> str:
    """A new password, prepared (see :func:`prepare`), or a refusal.

    :raises PasswordRejected: empty (``too_short``), or characters SASLprep
        prohibits (``quality``).
    """
    if not password:
        raise PasswordRejected("too_short", "empty password")
    prepared = prepare(password)
    if prepared is None:
        raise PasswordRejected("quality", "characters not allowed in a password (RFC 4013 SASLprep)")
    return prepared


def hash_password(password: str, scheme: str = "{SSHA512}") -> str:
    """A new salted hash of ``password`` (random salt from :mod:`secrets`).

    :param scheme: one of :data:`SALTED_SCHEMES`.
    :raises ValueError: unknown scheme.
    """
    try:
        algorithm, _ = SALTED_SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unsupported password scheme {scheme!r}") from None
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.new(algorithm, password.encode("utf-8") + salt).digest()
    return scheme + base64.b64encode(digest + salt).decode("ascii")


def verify_password(password: str, stored: str | bytes) -> bool:
    """Whether ``password`` matches one stored ``userPassword`` value.

    Only salted SHA values are understood; anything else (clear text,
    ``{CLEARTEXT}``, ``{CRYPT}``, unknown schemes, garbage) never matches.
    The digest comparison is constant-time.
    """
    if isinstance(stored, bytes):
        try:
            stored = stored.decode("ascii")
        except UnicodeDecodeError:
            return False
    scheme, brace, encoded = stored.partition("}")
    scheme = scheme.upper() + brace
    if scheme not in SALTED_SCHEMES or not brace:
        return False
    algorithm, size = SALTED_SCHEMES[scheme]
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(decoded) <= size:
        return False
    expected, salt = decoded[:size], decoded[size:]
    actual = hashlib.new(algorithm, password.encode("utf-8") + salt).digest()
    return hmac.compare_digest(actual, expected)


def matches_any(password: str, stored: Sequence[str | bytes]) -> bool:
    """Whether ``password`` matches any of the entry's ``userPassword`` values."""
    # Check them all: no early exit that would tell which value matched by timing.
    results = [verify_password(password, value) for value in stored]
    return any(results)


def password_fingerprint(user_passwords: Sequence[bytes], changed_time: str = "", reset: str = "") -> str:
    """An opaque digest of an account's password state.

    It changes whenever a password is set (new hash, new salt, new
    ``pwdChangedTime``, ``pwdReset`` cleared), so a token carrying it stops
    working once used (activation links). It reveals nothing usable about
    the password: a truncated SHA-256 of hashes that are themselves salted.

    :param user_passwords: the raw ``userPassword`` values (order ignored).
    :param changed_time: ``pwdChangedTime``, if any.
    :param reset: ``pwdReset``, if any.
    :return: 32 hex characters; the digest of ``""`` for an account with no
        password state at all (never activated).
    """
    parts = [b"userPassword:" + value for value in sorted(user_passwords)]
    if changed_time:
        parts.append(b"pwdChangedTime:" + changed_time.encode("utf-8"))
    if reset:
        parts.append(b"pwdReset:" + reset.upper().encode("utf-8"))
    return hashlib.sha256(b"\n".join(parts)).digest()[:16].hex()
