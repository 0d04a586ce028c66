"""First connection and password reset: one mechanism, two wordings, no Flask.

1. :meth:`ActivationFlow.request_link` — the identifier form. It answers at once from the clock and
   the settings only, the same for every identifier; the directory lookup and the mail happen in a
   small background worker, so neither a slow directory nor a failing mail server shows in the
   answer. The purpose of the link follows the account (never activated: activation, else reset),
   whichever page was used.
2. :meth:`ActivationFlow.open_link` — the page behind the link. Checks everything, changes nothing
   (mail scanners open links).
3. :meth:`ActivationFlow.complete` — the form behind the link: charter, consent, new password.

Links are ``<link_base>?t=<token>``: ``link_base`` comes from the configuration, never from the
Host header. The token sits in the query so the access log can leave it out (gunicorn: log
``%(U)s``, the path without query, rather than ``%(r)s``); pages behind the link should send
``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import hmac
import logging
import os
import queue
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ldapdir.base import Directory
from ldapdir.errors import AccountNotFound, DirectoryError, DirectoryUnavailable, PasswordRejected
from ldapdir.model import Account, AccountState
from sso.activation import policy
from sso.activation.model import (
    Completed,
    InviteRefused,
    LinkOutcome,
    LinkRequestResult,
    LinkView,
    Notice,
    Notifier,
    Step,
    StepError,
    first_activation,
)
from sso.activation.settings import ActivationSettings
from sso.activation.tokens import (
    LinkSigner,
    LinkToken,
    Purpose,
    TokenClaims,
    TokenError,
    TokenProblem,
    deadline,
)

logger = logging.getLogger(__name__)

#: Longest identifier looked up (longer ones are treated as unknown, without a lookup).
MAX_IDENTIFIER = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class _Job:
    identifier: str
    locale: str
    now: datetime
    expires: datetime


def mask_mail(address: str) -> str:
    """``jean.dupont@gmail.com`` → ``j•••@gmail.com`` (no first letter for local parts under 3)."""
    local, at, domain = address.rpartition("@")
    if not at or not domain:
        return "•••"
    shown = local[0] if len(local) >= 3 else ""
    return f"{shown}•••@{domain}"


def _values(account: Account, name: str) -> tuple[str, ...]:
    for key, values in account.attributes.items():
        if key.lower() == name.lower():
            return tuple(values)
    return ()


def display_name(account: Account) -> str:
    """``displayName``, else ``cn``, else ``givenName sn``, else the user name."""
    for name in ("displayName", "cn"):
        values = _values(account, name)
        if values and values[0].strip():
            return values[0].strip()
    parts = [v[0].strip() for v in (_values(account, "givenName"), _values(account, "sn")) if v]
    return " ".join(part for part in parts if part) or account.user


def personal_values(account: Account, settings: ActivationSettings) -> tuple[str, ...]:
    """The account's names and identifiers a password must not contain."""
    values = [account.user]
    if account.personal_mail:
        values.append(account.personal_mail)
    for name in settings.personal_attributes:
        values.extend(_values(account, name))
    return tuple(values)


def _clean(value: str, limit: int = 100) -> str:
    return _CONTROL.sub(" ", value)[:limit]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a badly decoded form
        return False
    return True


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _no_audit(event: str, fields: Mapping[str, str]) -> None:
    """Default audit sink: nothing."""


class _RecentLinks:
    """Links sent per account in the last hour (in memory, per process)."""

    def __init__(self, limit: int, window: float = 3600.0) -> None:
        self._limit = limit
        self._window = window
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Count one more link for ``key`` unless it already had ``limit`` in the window."""
        with self._lock:
            if len(self._sent) > 10_000:
                self._sent = {k: q for k, q in self._sent.items() if q and q[-1] > now - self._window}
            times = self._sent.setdefault(key, deque())
            while times and times[0] <= now - self._window:
                times.popleft()
            if len(times) >= self._limit:
                return False
            times.append(now)
            return True


class ActivationFlow:
    """First connection, password reset and invitations over a :class:`ldapdir.Directory`.

    :param directory: the directory (accounts, password writes).
    :param signer: makes and checks the links' tokens.
    :param settings: the ``activation`` settings.
    :param notify: renders and queues e-mails.
    :param link_base: absolute public URL of the page behind links
        (``https://sso.univ.fr/cas/compte/lien``); links are ``<link_base>?t=<token>``.
    :param audit: receives ``(event, fields)``; events are ``activation.link_sent``,
        ``activation.link_not_sent``, ``activation.refused``, ``activation.password_set``,
        ``activation.attributes_failed``, ``activation.confirmation_not_sent``.
    :param clock: aware current time (tests freeze it).
    :param workers: background threads sending links.
    """

    def __init__(
        self,
        directory: Directory,
        signer: LinkSigner,
        settings: ActivationSettings,
        notify: Notifier,
        link_base: str,
        audit: Callable[[str, Mapping[str, str]], None] = _no_audit,
        clock: Callable[[], datetime] = _utcnow,
        workers: int = 2,
    ) -> None:
        parts = urlsplit(link_base)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError(f"link_base: {link_base!r} is not an absolute http(s) URL without fragment")
        self._directory = directory
        self._signer = signer
        self._settings = settings
        self._zone = settings.zone
        self._notify = notify
        self._link_base = link_base
        self._audit = audit
        self._clock = clock
        self._workers_wanted = max(1, workers)
        self._recent = _RecentLinks(settings.links_per_hour)
        self._stripes = [threading.Lock() for _ in range(64)]
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue(settings.queue_size)
        self._workers: list[threading.Thread] = []
        self._pid: int | None = None

    # -- background worker -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background workers (idempotent; again after a fork). :meth:`request_link`
        calls it, so nothing starts at import or app-creation time."""
        with self._lock:
            if self._workers and self._pid == os.getpid():
                return
            self._jobs = queue.Queue(self._settings.queue_size)
            self._workers = [
                threading.Thread(target=self._work, args=(self._jobs,), name=f"sso-links-{n}", daemon=True)
                for n in range(self._workers_wanted)
            ]
            self._pid = os.getpid()
            for worker in self._workers:
                worker.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Finish the queued requests, then stop the workers."""
        with self._lock:
            workers, jobs, pid = self._workers, self._jobs, self._pid
            self._workers, self._pid = [], None
        if pid != os.getpid():
            return
        for _ in workers:
            try:
                jobs.put(None, timeout=timeout)
            except queue.Full:
                logger.warning("link workers did not stop: queue full")
                return
        for worker in workers:
            worker.join(timeout)

    def drain(self) -> None:
        """Wait until every queued request is done (tests, CLI)."""
        with self._lock:
            jobs, running = self._jobs, bool(self._workers) and self._pid == os.getpid()
        if running:
            jobs.join()
            return
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                if job is not None:
                    self._send_link(job)
            finally:
                jobs.task_done()

    def _work(self, jobs: queue.Queue[_Job | None]) -> None:
        while True:
            job = jobs.get()
            try:
                if job is None:
                    return
                self._send_link(job)
            except Exception:  # noqa: BLE001 — a worker outlives a failed job; logged (no token in it)
                logger.exception("link request failed")
            finally:
                jobs.task_done()

    # -- 1. asking for a link --------------------------------------------------------------------

    def request_link(self, identifier: str, wording: Purpose, locale: str) -> LinkRequestResult:
        """Handle « Suivant » on the identifier page: queue the work, answer at once.

        The answer depends only on the clock and the settings — the deadline of ``wording``'s rule
        — so it is the same, in the same time, whether or not the account exists. The link, if one
        is sent, carries exactly that deadline. With ``show_mail_hint`` the account is looked up
        here, which reveals whether it exists: that is why the hint is off by default.

        :param wording: ``ACTIVATION`` (« 1ère connexion ») or ``RESET`` (« Problème de connexion »).
        """
        if wording not in (Purpose.ACTIVATION, Purpose.RESET):
            raise ValueError("wording: ACTIVATION or RESET")
        now = self._now()
        promised = deadline(now, self._settings.link_rule(wording.value), self._zone)
        hint = self._hint(identifier, now) if self._settings.show_mail_hint else None
        self.start()
        try:
            self._jobs.put_nowait(_Job(identifier, locale, now, promised))
        except queue.Full:
            logger.warning("link request dropped: background queue full")
            self._audit("activation.link_not_sent", {"reason": LinkOutcome.BUSY.value})
        return LinkRequestResult(deadline=promised, hint=hint)

    def request_link_sync(
        self, identifier: str, wording: Purpose, locale: str, now: datetime | None = None
    ) -> LinkOutcome:
        """The work of :meth:`request_link`, in the foreground (CLI, tests)."""
        if wording not in (Purpose.ACTIVATION, Purpose.RESET):
            raise ValueError("wording: ACTIVATION or RESET")
        now = now or self._now()
        promised = deadline(now, self._settings.link_rule(wording.value), self._zone)
        return self._send_link(_Job(identifier, locale, now, promised))

    def _hint(self, identifier: str, now: datetime) -> str | None:
        try:
            account = self._find(identifier, now)
        except DirectoryUnavailable:
            return None
        if self._refusal(account) is not None or account is None or not account.personal_mail:
            return None
        return mask_mail(account.personal_mail)

    def _find(self, identifier: str, now: datetime) -> Account | None:
        identifier = identifier.strip()
        if not identifier or len(identifier) > MAX_IDENTIFIER or not _encodable(identifier):
            return None
        return self._directory.find(identifier, now.astimezone(self._zone).date())

    def _refusal(self, account: Account | None, need_mail: bool = True) -> LinkOutcome | None:
        if account is None:
            return LinkOutcome.UNKNOWN
        if account.state is AccountState.EXPIRED:
            return LinkOutcome.EXPIRED
        if account.state is AccountState.LOCKED and not self._settings.reset_locked:
            return LinkOutcome.LOCKED
        if need_mail and not account.personal_mail:
            return LinkOutcome.NO_MAIL
        return None

    def _send_link(self, job: _Job) -> LinkOutcome:
        try:
            account = self._find(job.identifier, job.now)
        except DirectoryUnavailable as exc:
            logger.warning("link not sent, directory unavailable: %s", exc.detail)
            return self._not_sent(LinkOutcome.UNAVAILABLE, None)
        refusal = self._refusal(account)
        if refusal is not None or account is None:
            # An unknown identifier is often a password typed in the wrong field: not recorded.
            return self._not_sent(refusal or LinkOutcome.UNKNOWN, account)
        if not self._recent.allow(account.user, job.now.timestamp()):
            return self._not_sent(LinkOutcome.RATE_LIMITED, account)
        purpose = Purpose.ACTIVATION if account.state is AccountState.NEVER_ACTIVATED else Purpose.RESET
        link = self._signer.make(account, purpose, job.now, expires=job.expires)
        try:
            self._send_notice(account, purpose.value, link, job.locale)
        except OSError as exc:
            logger.error("link for %s not queued: %s", _clean(account.user), type(exc).__name__)
            return self._not_sent(LinkOutcome.NOT_DELIVERED, account)
        self._audit(
            "activation.link_sent", {"user": account.user, "purpose": purpose.value, "via": "request"}
        )
        return LinkOutcome.SENT

    def _not_sent(self, outcome: LinkOutcome, account: Account | None) -> LinkOutcome:
        fields = {"reason": outcome.value}
        if account is not None:
            fields["user"] = account.user
        self._audit("activation.link_not_sent", fields)
        return outcome

    def _send_notice(self, account: Account, kind: str, link: LinkToken | None, locale: str) -> None:
        if not account.personal_mail:
            raise ValueError("the account has no personal address")
        self._notify(
            Notice(
                kind=kind,
                to=account.personal_mail,
                user=account.user,
                display_name=display_name(account),
                link=self.link_url(link.token) if link else None,
                expires=link.expires if link else None,
                locale=locale,
            )
        )

    def link_url(self, token: str) -> str:
        """The public URL of a link: ``link_base`` with ``t=<token>`` added to its query."""
        parts = urlsplit(self._link_base)
        query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("t", token)])
        return urlunsplit(parts._replace(query=query))

    # -- 2. opening a link -----------------------------------------------------------------------

    def open_link(self, token: str) -> LinkView:
        """Check a link and describe its page. Changes nothing (mail scanners open links).

        :raises TokenError: expired, invalid, used, or the account is closed.
        :raises DirectoryUnavailable: the account could not be read.
        """
        now = self._now()
        return self._view(self._signer.load(token, None, now), now)

    def _view(self, claims: TokenClaims, now: datetime) -> LinkView:
        account = self._directory.find(claims.user, now.astimezone(self._zone).date())
        if account is None or account.user != claims.user or self._refusal(account, need_mail=False):
            raise TokenError(TokenProblem.ACCOUNT_CLOSED, claims.purpose)
        self._signer.check(claims, account)
        first = first_activation(claims.purpose, account)
        steps = []
        if first and self._settings.charter_url:
            steps.append(Step.CHARTER)
        if first and self._settings.consent_attribute:
            steps.append(Step.CONSENT)
        steps.append(Step.PASSWORD)
        settings = self._settings.policy
        return LinkView(
            account=account,
            claims=claims,
            steps=tuple(steps),
            rules=tuple((rule, params) for rule, params in policy.rules_for_display(settings)),
            personal=policy.personal_parts(
                personal_values(account, self._settings), settings.personal_min_length
            ),
        )

    # -- 3. completing -----------------------------------------------------------------------------

    def complete(
        self,
        token: str,
        password: str,
        confirm: str,
        charter_accepted: bool,
        consent: bool | None,
        locale: str = "fr",
    ) -> Completed:
        """Submit the form behind a link: re-check the link against the account read now, check the
        steps and the policy, write the password, then the activation attributes, audit, and send
        the confirmation e-mail.

        :param consent: the answer to the consent step; ``None``: not asked / no answer (nothing
            written).
        :raises TokenError: the link no longer works (including ``USED`` after a success).
        :raises StepError: refused; the link stays usable.
        :raises DirectoryUnavailable: the directory could not be reached; the link stays usable.
        """
        now = self._now()
        claims = self._signer.load(token, None, now)
        with self._stripes[zlib.crc32(claims.user.encode()) % len(self._stripes)]:
            view = self._view(claims, now)  # under the lock: a concurrent success makes this USED
            problems = self._problems(view, password, confirm, charter_accepted)
            if problems:
                self._audit("activation.refused", {"user": claims.user, "problems": ",".join(problems)})
                raise StepError(problems)
            try:
                self._directory.set_password(view.account, password)
            except PasswordRejected as exc:
                self._audit(
                    "activation.refused", {"user": claims.user, "problems": f"directory:{exc.reason}"}
                )
                raise StepError([f"directory_refused:{exc.reason}"]) from None
            except AccountNotFound:
                raise TokenError(TokenProblem.ACCOUNT_CLOSED, claims.purpose) from None
            written = self._record(view, now, consent)
        self._audit(
            "activation.password_set",
            {
                "user": claims.user,
                "purpose": claims.purpose.value,
                "first_activation": "yes" if view.first_activation else "no",
                "charter_version": self._settings.charter_version if Step.CHARTER in view.steps else "",
                "consent": ""
                if consent is None or Step.CONSENT not in view.steps
                else ("yes" if consent else "no"),
            },
        )
        self._confirm(view.account, locale)
        return Completed(
            user=claims.user,
            purpose=claims.purpose,
            first_activation=view.first_activation,
            at=now.astimezone(self._zone),
            attributes_written=written,
        )

    def _problems(self, view: LinkView, password: str, confirm: str, charter_accepted: bool) -> list[str]:
        problems = []
        if Step.CHARTER in view.steps and not charter_accepted:
            problems.append("charter_required")
        if not hmac.compare_digest(
            password.encode("utf-8", "surrogatepass"), confirm.encode("utf-8", "surrogatepass")
        ):
            problems.append("mismatch")
        problems += policy.failures(policy.evaluate(password, self._settings.policy, view.personal))
        return problems

    def _record(self, view: LinkView, now: datetime, consent: bool | None) -> bool:
        """Write the activation attributes in one update; ``False`` (logged, audited) if it failed."""
        if not view.first_activation:
            return True
        settings, account = self._settings, view.account
        changes: dict[str, list[str]] = {}
        utc, local = now.astimezone(UTC), now.astimezone(self._zone)
        for item in settings.on_activation:
            changes.setdefault(item.name, []).append(item.render(utc, local, account.user))
        if Step.CHARTER in view.steps and settings.charter_attribute:
            changes[settings.charter_attribute] = [f"{settings.charter_version};{utc:%Y%m%d%H%M%SZ}"]
        if Step.CONSENT in view.steps and consent is not None:
            if consent:
                changes[settings.consent_attribute] = [settings.consent_value]
            elif _values(account, settings.consent_attribute):
                changes[settings.consent_attribute] = []
        if not changes:
            return True
        try:
            self._directory.update(account, changes)
        except DirectoryError as exc:
            logger.error(
                "activation attributes of %s not written: %s", _clean(account.user), type(exc).__name__
            )
            self._audit(
                "activation.attributes_failed", {"user": account.user, "attributes": ",".join(changes)}
            )
            return False
        return True

    def _confirm(self, account: Account, locale: str) -> None:
        if not account.personal_mail:
            self._audit("activation.confirmation_not_sent", {"user": account.user, "reason": "no_mail"})
            return
        try:
            self._send_notice(account, "password_changed", None, locale)
        except OSError as exc:
            logger.error("confirmation for %s not queued: %s", _clean(account.user), type(exc).__name__)
            self._audit("activation.confirmation_not_sent", {"user": account.user, "reason": "not_delivered"})

    # -- invitations -------------------------------------------------------------------------------

    def invite(self, account: Account, locale: str, send: bool = True) -> LinkToken:
        """An invitation link for ``account`` (``sso invite``): activation steps, the invitation
        rule's deadline; mailed to the personal address unless ``send`` is false (the CLI can then
        print :meth:`link_url`).

        :raises InviteRefused: expired or locked account, or no personal address to send to.
        :raises OSError: the mail could not be queued.
        """
        refusal = self._refusal(account, need_mail=send)
        if refusal is not None:
            raise InviteRefused(refusal)
        link = self._signer.make(account, Purpose.INVITATION, self._now())
        if send:
            self._send_notice(account, Purpose.INVITATION.value, link, locale)
        self._audit(
            "activation.link_sent",
            {"user": account.user, "purpose": Purpose.INVITATION.value, "via": "invite"},
        )
        return link

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return aware datetimes")
        return now
