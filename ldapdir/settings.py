"""Settings of the directory layer (the ``directory`` section of the YAML, typed)."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

#: An LDAP attribute description: a name (or numeric OID) and optional ``;options``.
#: Attribute names are written into filters unescaped, so they must match this.
ATTRIBUTE_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$")

#: How ``AccountState.NEVER_ACTIVATED`` is decided (see :func:`ldapdir.state.account_state`).
NEVER_ACTIVATED_RULES = ("no_password", "attribute", "never")

#: Salted hashes the replace path can write (see :mod:`ldapdir.passwords`).
HASH_SCHEMES = ("{SSHA}", "{SSHA256}", "{SSHA512}")


@dataclass(frozen=True)
class DirectorySettings:
    """How to reach and read the directory.

    A plain dataclass; the YAML loader validates it with pydantic (unknown keys refused).
    Cross-field rules are checked in ``__post_init__`` (``ValueError`` naming the key).
    """

    __pydantic_config__ = {"extra": "forbid"}

    #: LDAP URLs, tried in order (failover): ``ldap://host:389``, ``ldaps://…``.
    urls: tuple[str, ...] = ()
    #: DN of the SSO's own service account (not the directory root).
    bind_dn: str = ""
    #: Password of the service account.
    bind_password: str = ""
    #: Base under which people are searched.
    people_base: str = "ou=people,dc=example,dc=org"
    #: Attributes an identifier is matched against, in order (e.g. mail, uid).
    login_attributes: tuple[str, ...] = ("mail", "uid")
    #: Attribute whose value is the CAS user name.
    user_attribute: str = "uid"
    #: Extra filter every account must match, e.g. ``(objectClass=inetOrgPerson)``.
    account_filter: str = "(objectClass=inetOrgPerson)"
    #: Attribute holding the personal e-mail address.
    personal_mail_attribute: str = "supannMailPerso"
    #: Attribute giving the end of the account's life (generalized time or
    #: ``YYYYMMDD``), e.g. ``schacExpiryDate``; empty to disable.
    expiry_attribute: str = "schacExpiryDate"
    #: SUPANN resource state attribute (``{COMPTE}A:SupannActif::20261231``); empty to disable.
    resource_state_attribute: str = "supannRessourceEtatDate"
    #: Attributes read and kept on each account for release to services.
    release_attributes: tuple[str, ...] = ("uid", "mail", "cn", "displayName", "givenName", "sn")
    #: Seconds to open a TCP connection to one server.
    connect_timeout: float = 3.0
    #: Seconds to wait for the answer to any one operation.
    receive_timeout: float = 5.0
    #: Connections kept open for user binds (per process).
    bind_pool_size: int = 4
    #: Connections bound as the service account (per process), used one operation at a time each:
    #: searches of concurrent sign-ins do not wait for each other.
    service_pool_size: int = 4
    #: Write passwords with the Password Modify extended operation (RFC 3062);
    #: when false, a salted-hash replace of ``userPassword``.
    use_password_modify: bool = True
    #: Ask for the ppolicy control on binds (OpenLDAP ppolicy overlay).
    use_ppolicy: bool = True
    #: Seconds a server that failed (refused, timed out) is skipped while another
    #: one answers. When every server has failed, all are tried again at once.
    server_retry_after: float = 30.0
    #: Seconds a connection may sit unused before it is replaced instead of
    #: reused: firewalls drop idle TCP connections silently, and a dropped one
    #: costs a ``receive_timeout`` to notice. 0: always reuse.
    max_idle: float = 240.0
    #: Upgrade ``ldap://`` connections with StartTLS (certificate verified).
    start_tls: bool = False
    #: PEM file of the CAs that sign the servers' certificates (``ldaps://`` and
    #: StartTLS); empty for the system's CAs. Certificates are always verified.
    tls_ca_file: str = ""
    #: Time zone of the university: an expiry date means "until the end of that
    #: day" there, and ``today`` is taken there.
    time_zone: str = "Europe/Paris"
    #: How a never-activated account is recognised: ``no_password`` (no
    #: ``userPassword`` value; the service account must be able to read it),
    #: ``attribute`` (``activated_attribute`` has no value), or ``never``.
    never_activated_rule: str = "no_password"
    #: With ``never_activated_rule: attribute``: the attribute that holds a value
    #: once the account is activated (e.g. a date of activation).
    activated_attribute: str = ""
    #: Seconds a ppolicy lockout lasts (the policy's ``pwdLockoutDuration``);
    #: 0: until an administrator unlocks the account. ``000001010000Z`` always
    #: means an administrative, permanent lock.
    lockout_duration: int = 0
    #: Scheme of the salted hash written by the replace path (and by the embedded
    #: directory): ``{SSHA}`` (every LDAP server), ``{SSHA256}``, ``{SSHA512}``
    #: (OpenLDAP needs the ``pw-sha2`` module for these two).
    password_hash: str = "{SSHA}"
    #: Entries fetched per page by :meth:`search` (simple paged results, RFC 2696).
    search_page_size: int = 500

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.lower().startswith(("ldap://", "ldaps://")):
                raise ValueError(f"urls: {url!r} is not an ldap:// or ldaps:// URL")
        if not self.login_attributes:
            raise ValueError("login_attributes: name at least one attribute (e.g. mail, uid)")
        named = {
            "login_attributes": self.login_attributes,
            "release_attributes": self.release_attributes,
            "user_attribute": (self.user_attribute,),
            "personal_mail_attribute": (self.personal_mail_attribute,),
            "expiry_attribute": (self.expiry_attribute,) if self.expiry_attribute else (),
            "resource_state_attribute": (self.resource_state_attribute,)
            if self.resource_state_attribute
            else (),
            "activated_attribute": (self.activated_attribute,) if self.activated_attribute else (),
        }
        for key, names in named.items():
            for name in names:
                if not ATTRIBUTE_NAME.match(name):
                    raise ValueError(f"{key}: {name!r} is not an LDAP attribute name")
        if any(name.lower() == "userpassword" for name in self.release_attributes):
            raise ValueError("release_attributes: userPassword is never released")
        if self.account_filter and not (
            self.account_filter.startswith("(") and self.account_filter.endswith(")")
        ):
            raise ValueError("account_filter: write a parenthesised filter, e.g. (objectClass=inetOrgPerson)")
        if self.connect_timeout <= 0 or self.receive_timeout <= 0:
            raise ValueError("connect_timeout, receive_timeout: must be positive (seconds)")
        if self.bind_pool_size < 1:
            raise ValueError("bind_pool_size: must be at least 1")
        if not 1 <= self.service_pool_size <= 64:
            raise ValueError("service_pool_size: give 1 to 64")
        if self.max_idle < 0:
            raise ValueError("max_idle: must be zero (always reuse) or positive (seconds)")
        if self.server_retry_after < 0:
            raise ValueError("server_retry_after: must be zero or positive (seconds)")
        if self.lockout_duration < 0:
            raise ValueError("lockout_duration: must be zero (until unlocked) or positive (seconds)")
        if self.search_page_size < 1:
            raise ValueError("search_page_size: must be at least 1")
        if self.never_activated_rule not in NEVER_ACTIVATED_RULES:
            raise ValueError(f"never_activated_rule: choose one of {', '.join(NEVER_ACTIVATED_RULES)}")
        if self.never_activated_rule == "attribute" and not self.activated_attribute:
            raise ValueError("activated_attribute: required when never_activated_rule is 'attribute'")
        if self.password_hash not in HASH_SCHEMES:
            raise ValueError(f"password_hash: choose one of {', '.join(HASH_SCHEMES)}")
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"time_zone: unknown time zone {self.time_zone!r}") from error
