"""Settings of first connection and password reset (the ``activation`` section of the YAML, typed).

Plain frozen dataclasses: the YAML loader validates them with pydantic (unknown keys refused);
cross-field rules are checked in ``__post_init__`` and raise :class:`ValueError` with a message
that names the key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: An LDAP attribute description as we accept it in settings (RFC 4512 §2.5 ``descr``).
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}\Z")
#: A tag of SUPANN's ``{COMPTE}``/``{SCOPE}`` kind, kept literally by :meth:`AttributeSet.render`.
_LITERAL_TAG = re.compile(r"[A-Z][A-Z0-9_]*\Z")
#: Link expiry rules understood by :func:`sso.activation.tokens.deadline`.
VALID_UNTIL = ("end_of_day", "end_of_next_day", "hours")


def _check_attribute(key: str, name: str, *, optional: bool = True) -> None:
    if optional and not name:
        return
    if not _ATTRIBUTE.match(name):
        raise ValueError(f"{key}: {name!r} is not an LDAP attribute name (letters, digits, '-')")


@dataclass(frozen=True)
class LinkRule:
    """Until when a link of one purpose works.

    ``end_of_day``: 23:59:59 local time on the day it was sent; ``end_of_next_day``: 23:59:59 the
    day after; ``hours``: a fixed number of hours. When a day rule would leave less than
    ``min_validity_minutes`` (a link sent at 23:58), the link lasts until the end of the *following*
    day instead, so the promise shown to the person stays "until 23:59" (see
    :func:`sso.activation.tokens.deadline`).
    """

    __pydantic_config__ = {"extra": "forbid"}

    #: ``end_of_day`` | ``end_of_next_day`` | ``hours``.
    valid_until: str = "end_of_day"
    #: Hours of validity when ``valid_until`` is ``hours``.
    hours: int = 0
    #: Shortest validity a link ever gets, in minutes (at most 7 days).
    min_validity_minutes: int = 60

    def __post_init__(self) -> None:
        if self.valid_until not in VALID_UNTIL:
            raise ValueError(f"valid_until: {self.valid_until!r} is not one of {', '.join(VALID_UNTIL)}")
        if self.valid_until == "hours" and not 1 <= self.hours <= 24 * 14:
            raise ValueError("hours: give 1 to 336 hours when valid_until is 'hours'")
        if self.valid_until != "hours" and self.hours:
            raise ValueError("hours: only meaningful when valid_until is 'hours'")
        if not 0 <= self.min_validity_minutes <= 7 * 24 * 60:
            raise ValueError("min_validity_minutes: give 0 to 10080 minutes")


@dataclass(frozen=True)
class PolicySettings:
    """The password policy. Defaults follow CNIL deliberation 2022-100 (entropy of at least 80 bits
    without other measures) and NIST SP 800-63B §5.1.1.2 (long passwords accepted, blocklist of
    common and context-specific passwords, no composition rule beyond that, no forced change).

    A password is long enough when it has ``min_length`` characters of ``min_classes`` kinds
    (lower case, upper case, digits, special), or ``relaxed_length`` of ``relaxed_classes`` kinds,
    or ``passphrase_min_length`` of any kinds. Lengths count Unicode code points.
    """

    __pydantic_config__ = {"extra": "forbid"}

    #: Shortest password accepted at all (CNIL: 12 with the four kinds of characters).
    min_length: int = 12
    #: Kinds of characters required at ``min_length`` (1–4).
    min_classes: int = 4
    #: Length from which ``relaxed_classes`` kinds suffice (CNIL: 14 without specials); 0 disables.
    relaxed_length: int = 14
    #: Kinds of characters required from ``relaxed_length`` on.
    relaxed_classes: int = 3
    #: Length from which any characters will do (a passphrase); 0 disables.
    passphrase_min_length: int = 20
    #: Longest password accepted (NIST: at least 64).
    max_length: int = 128
    #: Refuse common passwords (zxcvbn's list of common passwords and a French list we ship).
    blocklist: bool = True
    #: Further words refused like common passwords (the university's name, the town…).
    extra_blocklist: tuple[str, ...] = ()
    #: Refuse passwords containing the person's names or identifiers.
    forbid_personal_info: bool = True
    #: Shortest part of a name or identifier that counts as personal information.
    personal_min_length: int = 3
    #: Lowest zxcvbn score accepted (0–4); 0 disables the strength estimate.
    min_zxcvbn_score: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= 64:
            raise ValueError("min_length: give 1 to 64")
        for key in ("min_classes", "relaxed_classes"):
            if not 1 <= getattr(self, key) <= 4:
                raise ValueError(f"{key}: give 1 to 4 (kinds: lower case, upper case, digits, special)")
        if self.relaxed_length and self.relaxed_length <= self.min_length:
            raise ValueError("relaxed_length: must be 0 (disabled) or greater than min_length")
        if self.relaxed_classes > self.min_classes:
            raise ValueError("relaxed_classes: must not exceed min_classes")
        if self.passphrase_min_length and self.passphrase_min_length <= max(
            self.min_length, self.relaxed_length
        ):
            raise ValueError("passphrase_min_length: must be 0 (disabled) or greater than the other lengths")
        if not 64 <= self.max_length <= 4096:
            raise ValueError("max_length: give 64 to 4096 (NIST SP 800-63B: accept at least 64 characters)")
        if max(self.min_length, self.relaxed_length, self.passphrase_min_length) > self.max_length:
            raise ValueError("max_length: must not be below the other lengths")
        if not 1 <= self.personal_min_length <= 16:
            raise ValueError("personal_min_length: give 1 to 16")
        if not 0 <= self.min_zxcvbn_score <= 4:
            raise ValueError("min_zxcvbn_score: give 0 (disabled) to 4")
        if any(not word.strip() for word in self.extra_blocklist):
            raise ValueError("extra_blocklist: empty entries are not allowed")


@dataclass(frozen=True)
class AttributeSet:
    """An attribute written on first activation (values of the same name are collected).

    ``value`` is a template: ``{now:%Y%m%d%H%M%SZ}`` is the UTC time of the activation,
    ``{local:%Y%m%d}`` the same in the configured time zone, ``{user}`` the CAS user name; ``{{`` and
    ``}}`` are literal braces, and an upper-case tag with no format (SUPANN's ``{COMPTE}``) is kept
    as it is: ``{COMPTE}A:SupannActif::{local:%Y%m%d}``. The attribute is *replaced* by the values.
    """

    __pydantic_config__ = {"extra": "forbid"}

    #: LDAP attribute name.
    name: str
    #: Value template.
    value: str

    def __post_init__(self) -> None:
        _check_attribute("on_activation.name", self.name, optional=False)
        sample = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        try:
            self.render(sample, sample, "user")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"on_activation.value: {self.value!r}: {exc}") from None

    def render(self, now: datetime, local: datetime, user: str) -> str:
        """The value for an activation at ``now`` (UTC) / ``local`` by ``user``.

        :raises ValueError: the template names an unknown placeholder or has unbalanced braces.
        """
        known: Mapping[str, object] = {"now": now, "local": local, "user": user}
        out: list[str] = []
        for literal, field, spec, conversion in string.Formatter().parse(self.value):
            out.append(literal)
            if field is None:
                continue
            if field in known and conversion is None:
                out.append(format(known[field], spec or ""))
            elif _LITERAL_TAG.match(field) and not spec and conversion is None:
                out.append("{" + field + "}")
            else:
                raise ValueError(
                    f"unknown placeholder {{{field}}}: use {{now:…}}, {{local:…}} or {{user}}; "
                    "write {{ and }} for literal braces"
                )
        return "".join(out)


@dataclass(frozen=True)
class ActivationSettings:
    """First connection (« 1ère connexion ») and password reset (« Problème de connexion »)."""

    __pydantic_config__ = {"extra": "forbid"}

    #: Time zone of the links' deadlines (the university's promise: until 23:59 that day).
    time_zone: str = "Europe/Paris"
    #: Links sent to a never-activated account.
    activation: LinkRule = LinkRule()
    #: Links sent to reset a forgotten password.
    reset: LinkRule = LinkRule()
    #: Links sent by an administrator (``sso invite``).
    invitation: LinkRule = LinkRule(valid_until="end_of_next_day")
    #: URL of the IT charter shown on a first activation; empty: no charter step.
    charter_url: str = ""
    #: Version of the charter, recorded with its acceptance (required with ``charter_url``).
    charter_version: str = ""
    #: Attribute receiving ``version;YYYYmmddHHMMSSZ`` on acceptance; empty: audit log only.
    charter_attribute: str = ""
    #: Attribute recording the consent to appear in the public directory; empty: no consent step.
    consent_attribute: str = ""
    #: Value written to ``consent_attribute`` when the person consents.
    consent_value: str = "TRUE"
    #: Attributes written on first activation (activation date, SUPANN state…).
    on_activation: tuple[AttributeSet, ...] = ()
    #: Show a masked hint of the address the link went to (j•••@gmail.com). Off by default: the
    #: hint exists only for existing accounts, so showing it reveals which identifiers exist.
    show_mail_hint: bool = False
    #: Links sent to one account per hour, at most (further requests are dropped silently).
    links_per_hour: int = 3
    #: Let a locked account reset its password (a lock may be an administrator's decision).
    reset_locked: bool = False
    #: Attributes whose values count as personal information in passwords (with the user name and
    #: the local part of the personal address; e-mail addresses count by their local part).
    personal_attributes: tuple[str, ...] = ("givenName", "sn", "cn", "displayName", "mail")
    #: Link requests waiting for the background worker, at most (more are dropped and logged).
    queue_size: int = 1000
    #: The password policy.
    policy: PolicySettings = PolicySettings()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone: {self.time_zone!r} is not a known IANA time zone") from None
        if self.charter_url and not self.charter_url.startswith(("https://", "http://", "/")):
            raise ValueError("charter_url: give an absolute http(s) URL or a path starting with '/'")
        if self.charter_url and not self.charter_version.strip():
            raise ValueError(
                "charter_version: required with charter_url (it is recorded with the acceptance)"
            )
        if (self.charter_attribute or self.charter_version) and not self.charter_url:
            raise ValueError("charter_url: required with charter_version / charter_attribute")
        _check_attribute("charter_attribute", self.charter_attribute)
        _check_attribute("consent_attribute", self.consent_attribute)
        if self.consent_attribute and not self.consent_value:
            raise ValueError("consent_value: must not be empty when consent_attribute is set")
        for name in self.personal_attributes:
            _check_attribute("personal_attributes", name, optional=False)
        if not 1 <= self.links_per_hour <= 100:
            raise ValueError("links_per_hour: give 1 to 100")
        if not 1 <= self.queue_size <= 100_000:
            raise ValueError("queue_size: give 1 to 100000")

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.time_zone)

    def link_rule(self, purpose: str) -> LinkRule:
        """The rule of a purpose by its value (``activation``, ``reset``, ``invitation``)."""
        rules = {"activation": self.activation, "reset": self.reset, "invitation": self.invitation}
        return rules[purpose]
