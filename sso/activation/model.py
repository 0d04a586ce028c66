"""Value types of first connection and password reset (what the flow returns and raises)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ldapdir.model import Account, AccountState
from sso.activation.tokens import Purpose, TokenClaims


def first_activation(purpose: Purpose, account: Account) -> bool:
    """Whether the activation wording and steps apply: activation and invitation links, and any
    link to a never-activated account (the charter must be accepted once, whichever page was used)."""
    return purpose is not Purpose.RESET or account.state is AccountState.NEVER_ACTIVATED


class Step(enum.Enum):
    """A step of the form behind a link, in order."""

    #: Accept the IT charter (first activation, when a charter is configured).
    CHARTER = "charter"
    #: Consent (or not) to appear in the public directory (first activation, when configured).
    CONSENT = "consent"
    #: Choose the password, typed twice.
    PASSWORD = "password"


class LinkOutcome(enum.Enum):
    """What happened to one link request (audit and CLI; never shown to the person)."""

    SENT = "sent"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    LOCKED = "locked"
    NO_MAIL = "no_mail"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "directory_unavailable"
    #: The notifier failed (the mail could not be queued).
    NOT_DELIVERED = "not_delivered"
    #: The background queue was full.
    BUSY = "busy"


@dataclass(frozen=True)
class Notice:
    """An e-mail to send; the web layer renders it (templates ``mail/<kind>.txt|html``) and queues it."""

    #: ``activation``, ``reset``, ``invitation`` or ``password_changed``.
    kind: str
    #: The personal address.
    to: str
    user: str
    display_name: str
    #: The link (a secret: never log it); ``None`` for ``password_changed``.
    link: str | None
    #: The link's deadline, aware, in the configured time zone.
    expires: datetime | None
    locale: str


class Notifier(Protocol):
    """Renders and queues one e-mail. May raise :class:`OSError` (queue not writable).

    Called from the flow's background worker threads as well as from requests: it must be
    thread-safe and set up whatever context it needs itself (a Flask app context to render
    templates; the locale is in the notice).
    """

    def __call__(self, notice: Notice) -> None: ...


@dataclass(frozen=True)
class LinkRequestResult:
    """What the identifier page shows after « Suivant »: the same for every identifier (unless the
    mail hint is enabled)."""

    #: Until when the link works (« valable aujourd'hui jusqu'à 23h59 »).
    deadline: datetime
    #: Masked address (``j•••@gmail.com``), only with ``show_mail_hint``.
    hint: str | None


@dataclass(frozen=True)
class LinkView:
    """What the page behind a valid link needs."""

    #: The account, as read from the directory just now.
    account: Account
    claims: TokenClaims
    #: The steps of the form, in order (always ending with ``PASSWORD``).
    steps: tuple[Step, ...]
    #: The password rules and their parameters (:func:`policy.rules_for_display`).
    rules: tuple[tuple[str, Mapping[str, int | str]], ...]
    #: Folded parts of names and identifiers, for the live check (:func:`policy.evaluate`).
    personal: tuple[str, ...]

    @property
    def purpose(self) -> Purpose:
        """The purpose the link was made for."""
        return self.claims.purpose

    @property
    def first_activation(self) -> bool:
        """Whether the activation wording and steps apply."""
        return first_activation(self.claims.purpose, self.account)


@dataclass(frozen=True)
class Completed:
    """A password was set through a link."""

    user: str
    purpose: Purpose
    first_activation: bool
    #: When, aware, in the configured time zone.
    at: datetime
    #: Whether the activation attributes (charter, consent, ``on_activation``) were written; the
    #: password is set either way (the failure is logged and audited).
    attributes_written: bool


class StepError(Exception):
    """The form behind a link was refused; the link stays usable.

    ``problems`` holds codes: ``charter_required``, ``mismatch``, policy rule ids
    (:mod:`sso.activation.policy`), ``directory_refused:<reason>`` (reasons of
    :class:`ldapdir.errors.PasswordRejected`: ``too_short``, ``in_history``, ``too_young``,
    ``quality``, ``insufficient_access``, ``other``).
    """

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        super().__init__(", ".join(problems))
        #: The codes, in form order.
        self.problems = tuple(problems)


class InviteRefused(Exception):
    """``sso invite`` cannot invite this account."""

    def __init__(self, outcome: LinkOutcome) -> None:
        super().__init__(outcome.value)
        #: Why (``EXPIRED``, ``LOCKED`` or ``NO_MAIL``).
        self.outcome = outcome
