"""``sso invite``: activation links in bulk, with a journal so nobody is e-mailed twice."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from sso.cli.base import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNAVAILABLE,
    INVITE_PURPOSE,
    JOURNAL_NAME,
    _fail,
    _parenthesised,
    _settings,
    config_option,
    main,
)


@dataclass(frozen=True)
class JournalEntry:
    """One invitation sent, as kept in the journal (never the link: it is a secret)."""

    user: str
    purpose: str
    #: ISO 8601 time, UTC.
    at: str
    #: The masked address it went to.
    to: str


class InviteJournal:
    """JSON lines under ``var_folder``: who was already invited, so a second run e-mails nobody twice.

    A line is appended (and flushed to disk) right after each invitation is queued; a torn last line
    (a crash while writing) is ignored when reading.
    """

    def __init__(self, path: Path) -> None:
        #: The journal file.
        self.path = path

    def done(self) -> set[tuple[str, str]]:
        """The (user, purpose) pairs already invited."""
        if not self.path.exists():
            return set()
        seen = set()
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                    seen.add((str(entry["user"]), str(entry["purpose"])))
                except (ValueError, KeyError, TypeError):
                    continue
        return seen

    def record(self, entry: JournalEntry) -> None:
        """Append one entry, durably."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())


class Pacer:
    """At most ``rate`` actions per second: :meth:`wait` before each one."""

    def __init__(self, rate: float, clock: Any = time.monotonic, sleep: Any = time.sleep) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        """Sleep until the next action is allowed."""
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


#: Why an account was not invited: reason -> (skipped or failed, words for the summary).
REASONS = {
    "already_invited": ("skipped", "already invited (journal)"),
    "already_activated": ("skipped", "already activated"),
    "expired": ("skipped", "account expired"),
    "locked": ("skipped", "account locked"),
    "no_mail": ("failed", "no personal e-mail address in the directory"),
    "not_queued": ("failed", "the mail could not be queued (mail.queue not writable?)"),
}


@main.command()
@click.argument("ldap_filter", metavar="FILTER")
@config_option
@click.option("--dry-run", is_flag=True, help="Show who would be invited; send nothing, record nothing.")
@click.option(
    "--rate",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="At most this many e-mails per second.",
)
@click.option(
    "--limit", default=0, type=click.IntRange(min=0), help="Invite at most this many accounts (0: all)."
)
@click.option(
    "--lang",
    type=click.Choice(["fr", "en"]),
    default=None,
    help="Language of the e-mails (default: site.default_language).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Journal file (default: var_folder/{JOURNAL_NAME}).",
)
def invite(
    ldap_filter: str,
    config: str | None,
    dry_run: bool,
    rate: float,
    limit: int,
    lang: str | None,
    journal: Path | None,
) -> None:
    """E-mail an activation link to every never-activated account matching FILTER.

    FILTER is an LDAP filter over the people, e.g. '(eduPersonAffiliation=student)'. A journal
    keeps who was invited: running the command again e-mails nobody twice. Ends with a summary;
    exit 5 if some invitations failed, 3 if the directory does not answer.
    """
    from ldapdir import DirectoryUnavailable
    from sso.app import create_app
    from sso.web.runtime import runtime

    settings = _settings(config)
    app = create_app(settings, start_workers=False)
    rt = runtime(app)
    try:
        try:
            found = list(rt.directory.search(_parenthesised(ldap_filter), date.today()))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="FILTER") from None
        book = InviteJournal(journal or Path(settings.var_folder) / JOURNAL_NAME)
        outcomes = _invite_all(
            rt,
            found[:limit] if limit else found,
            book,
            lang or settings.site.default_language,
            dry_run,
            Pacer(rate),
        )
        delivered = rt.mail.run_once()[0] if not dry_run else 0
        waiting = len(rt.mail.pending())
    except DirectoryUnavailable as exc:
        _fail(f"the directory does not answer ({exc})", EXIT_UNAVAILABLE)
    finally:
        rt.close()
    failed = _summary(outcomes, dry_run, delivered, waiting)
    sys.exit(EXIT_PARTIAL if failed else EXIT_OK)


def _invite_all(
    rt: Any, found: list[Any], book: InviteJournal, locale: str, dry_run: bool, pacer: Pacer
) -> list[tuple[str, str]]:
    """Invite each account; return (user, outcome) pairs (``sent``, ``would_send`` or a reason)."""
    already = book.done()
    outcomes = []
    with click.progressbar(
        found,
        label="Inviting" if not dry_run else "Checking",
        file=sys.stderr,
        show_pos=True,
        item_show_func=lambda a: a.user if a else None,
    ) as accounts:
        for account in accounts:
            outcomes.append((account.user, _invite_one(rt, account, book, already, locale, dry_run, pacer)))
    return outcomes


def _invite_one(
    rt: Any,
    account: Any,
    book: InviteJournal,
    already: set[tuple[str, str]],
    locale: str,
    dry_run: bool,
    pacer: Pacer,
) -> str:
    from ldapdir import AccountState
    from sso.activation.flow import InviteRefused, mask_mail

    if (account.user, INVITE_PURPOSE) in already:
        return "already_invited"
    if account.state is AccountState.EXPIRED:
        return "expired"
    if account.state is AccountState.LOCKED:
        return "locked"
    if account.state is not AccountState.NEVER_ACTIVATED:
        return "already_activated"
    if not account.personal_mail:
        return "no_mail"
    if dry_run:
        return "would_send"
    pacer.wait()
    try:
        rt.activation.invite(account, locale, send=True)
    except InviteRefused as refused:
        return refused.outcome.value if refused.outcome.value in REASONS else "no_mail"
    except OSError:
        return "not_queued"
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    book.record(JournalEntry(account.user, INVITE_PURPOSE, stamp, mask_mail(account.personal_mail)))
    already.add((account.user, INVITE_PURPOSE))
    rt.mail.run_once()  # deliver now, at the pace set; what fails stays queued and is retried
    return "sent"


def _summary(outcomes: list[tuple[str, str]], dry_run: bool, delivered: int, waiting: int) -> int:
    """Print the summary; return the number of failures."""
    counts = Counter(outcome for _, outcome in outcomes)
    sent = counts["would_send" if dry_run else "sent"]
    skipped = {reason: n for reason, n in counts.items() if REASONS.get(reason, ("",))[0] == "skipped"}
    failed = {reason: n for reason, n in counts.items() if REASONS.get(reason, ("",))[0] == "failed"}
    verb = "would be sent" if dry_run else "sent"
    click.echo(
        f"{len(outcomes)} account(s) matched: {sent} {verb}, {sum(skipped.values())} skipped, "
        f"{sum(failed.values())} failed"
    )
    for label, group in (("skipped", skipped), ("failed", failed)):
        for reason, number in sorted(group.items()):
            click.echo(f"  {label}: {number} {REASONS[reason][1]}")
    for user_name, outcome in outcomes:
        if REASONS.get(outcome, ("",))[0] == "failed":
            click.echo(f"  failed: {user_name}: {REASONS[outcome][1]}")
        elif dry_run and outcome == "would_send":
            click.echo(f"  would invite: {user_name}")
    if not dry_run and sent:
        click.echo(
            f"mail: {delivered} more delivered at the end; {waiting} waiting in the queue (sso mail queue)"
        )
    return sum(failed.values())


# -- mail queue ----------------------------------------------------------------------------------------
