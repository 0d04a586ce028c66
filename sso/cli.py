"""The ``sso`` command line, for administrators: run the server or the demo, check the
configuration, and answer "why can't I log in?" from the console.

Every command takes ``--config`` (default ``$SSO_CONFIG``, else the bundled demo) and ``--help``.
Exit codes, for scripts:

- 0: done (``user``: the account may sign in);
- 2: unusable configuration or bad arguments (click's usage errors are 2 as well);
- 3: the directory or the ticket store does not answer;
- 4: ``user``: no account for that identifier;
- 5: ``invite``: done, but some invitations failed (listed with the reason);
- 6: ``user``: the account exists but may not sign in (the reason is printed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from sso.config import ConfigError, Settings, config_path, load_settings

#: Exit codes scripts can rely on (see the module docstring).
EXIT_OK, EXIT_CONFIG, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_PARTIAL, EXIT_CANNOT_SIGN_IN = 0, 2, 3, 4, 5, 6

#: Purpose recorded in the invitation journal (one invitation per person and purpose).
INVITE_PURPOSE = "invitation"
#: The invitation journal, under ``var_folder``.
JOURNAL_NAME = "invitations.jsonl"

config_option = click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False),
    envvar="SSO_CONFIG",
    help="YAML configuration (default: $SSO_CONFIG, else the bundled demo).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of a table (for scripts)."
)


def _settings(config: str | None) -> Settings:
    path = config_path(config)
    try:
        return load_settings(path)
    except ConfigError as error:
        click.echo(error.report(), err=True)
        sys.exit(EXIT_CONFIG)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@contextmanager
def _directory(settings: Settings) -> Iterator[Any]:
    """The configured directory, closed afterwards; an unreachable one exits with code 3."""
    from ldapdir import DirectoryUnavailable
    from sso.app import open_directory

    try:
        directory = open_directory(settings)
    except DirectoryUnavailable as exc:
        _fail(f"the directory does not answer ({exc})", EXIT_UNAVAILABLE)
    try:
        yield directory
    except DirectoryUnavailable as exc:
        _fail(f"the directory does not answer ({exc})", EXIT_UNAVAILABLE)
    finally:
        directory.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="ent-sso")
def main() -> None:
    """ENT single sign-on (CAS) server over the university's LDAP directory.

    Exit codes: 0 done, 2 configuration or usage error, 3 directory or ticket store unavailable,
    4 account not found, 5 some invitations failed, 6 account found but may not sign in.
    """


# -- configuration and serving ---------------------------------------------------------------------


@main.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@config_option
def check_config(file: str | None, config: str | None) -> None:
    """Validate a configuration file; exit 2 with every problem if it is not usable.

    Warnings (a theme colour without enough contrast, a logo the browser will not load) are printed
    but do not fail the check.
    """
    from sso.web.theme import theme_warnings

    settings = _settings(file or config)
    for warning in theme_warnings(settings.site):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{config_path(file or config)}: OK ({len(settings.services)} services)")


@main.command()
@config_option
@json_option
def services(config: str | None, as_json: bool) -> None:
    """List the registered services as a table."""
    settings = _settings(config)
    if as_json:
        click.echo(json.dumps(_service_dicts(settings), indent=2, ensure_ascii=False))
        return
    rows = [("ID", "NAME", "URL PATTERN", "ATTRIBUTES", "PROXY", "SLO")]
    for service in settings.services:
        rows.append(
            (
                service.id,
                service.name,
                service.url_pattern,
                ",".join(service.attributes) or "-",
                "yes" if service.proxy else "no",
                "yes" if service.single_logout else "no",
            )
        )
    _table(rows)


def _service_dicts(settings: Settings) -> list[dict[str, object]]:
    return [
        {
            "id": s.id,
            "name": s.name,
            "url_pattern": s.url_pattern,
            "attributes": list(s.attributes),
            "proxy": s.proxy,
            "single_logout": s.single_logout,
        }
        for s in settings.services
    ]


@main.command()
@config_option
@click.option("--bind", "-b", default=None, help="Address:port to listen on (default: from site.base_url).")
@click.option("--workers", "-w", default=2, show_default=True, help="Worker processes (one per core).")
@click.option(
    "--threads", default=8, show_default=True, help="Threads per worker (LDAP and SMTP waits overlap)."
)
def serve(config: str | None, bind: str | None, workers: int, threads: int) -> None:
    """Run the server under gunicorn (gthread workers)."""
    from gunicorn.app.base import BaseApplication

    settings = _settings(config)
    path = str(config_path(config))
    bind = bind or _default_bind(settings.site.base_url)
    if settings.embedded_directory is not None and workers > 1:
        # The embedded (demo) directory lives in one process's memory: one worker, many threads.
        click.echo("embedded directory: serving with one worker process", err=True)
        workers = 1

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": bind,
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "accesslog": None,
                "timeout": 30,
                "graceful_timeout": 10,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from sso.app import create_app

            return create_app(path)

    os.environ["SSO_CONFIG"] = path
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts in its own memory: a fresh folder where they all write lets /metrics,
        # whichever worker answers, report the whole node (prometheus_client's multiprocess mode).
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sso-metrics-")
    click.echo(f"ENT SSO: {settings.site.base_url}/login  (listening on {bind}; Ctrl+C to stop)")
    _Server().run()


def _default_bind(base_url: str) -> str:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{port}" if host in ("127.0.0.1", "localhost") else f"0.0.0.0:{port}"


@main.command()
@config_option
def demo(config: str | None) -> None:
    """Run the demo: the SSO and the demo ENT portal (a real CAS service, python-cas), together.

    Open the portal, sign in through the SSO, come back to the portal, and log out everywhere. The
    portal is the service ``portail`` of the configuration, listening at its ``home_url``. Ctrl+C
    stops both.
    """
    from sso.demo_portal import DEMO_ACCOUNTS, PortalNotConfigured, portal_bind, portal_service

    settings = _settings(config)
    try:
        portal_url = portal_service(settings).home_url
        binds = {"sso": _default_bind(settings.site.base_url), "portal": portal_bind(settings)}
    except PortalNotConfigured as exc:
        _fail(f"{exc}", EXIT_CONFIG)
    env = {**os.environ, "SSO_CONFIG": str(config_path(config).resolve())}
    processes: list[subprocess.Popen[bytes]] = []

    def stop(*_args: object) -> NoReturn:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        for name, factory in (("sso", "sso.app:create_app()"), ("portal", "sso.demo_portal:create_app()")):
            processes.append(subprocess.Popen(_gunicorn(binds[name], factory), env=env))
        _wait_ready([f"{settings.site.base_url}/health", portal_url], processes)
        click.echo(f"\nDemo ENT portal:  {portal_url}\nSSO sign-in page: {settings.site.base_url}/login")
        if settings.mail.outbox is not None:
            click.echo(f"E-mails (outbox): {settings.site.base_url}/demo/outbox")
        if (
            settings.embedded_directory is not None
            and settings.embedded_directory.data.name == "demo-directory.ldif"
        ):
            click.echo("\nDemo accounts:")
            _table([("IDENTIFIER", "PASSWORD", "STATE"), *DEMO_ACCOUNTS])
        click.echo("\nCtrl+C stops both.")
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        _fail("a server stopped; see its messages above", EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(processes)


def _gunicorn(bind: str, factory: str) -> list[str]:
    # One process each: the embedded directory and the portal's sessions live in memory.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        "1",
        "--threads",
        "8",
        "--worker-class",
        "gthread",
        "--graceful-timeout",
        "3",
        "--log-level",
        "warning",
        factory,
    ]


def _wait_ready(urls: list[str], processes: list[subprocess.Popen[bytes]], deadline: float = 60.0) -> None:
    import requests

    end = time.monotonic() + deadline
    waiting = list(urls)
    while waiting:
        if any(process.poll() is not None for process in processes):
            _fail("a server did not start; see its messages above", EXIT_UNAVAILABLE)
        if time.monotonic() > end:
            _fail(f"not answering after {deadline:.0f} s: {', '.join(waiting)}", EXIT_UNAVAILABLE)
        try:
            if requests.get(waiting[0], timeout=2, allow_redirects=False).status_code < 500:
                waiting.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.2)


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# -- "why can't I log in?" -------------------------------------------------------------------------

#: What each account state means for signing in, and what to do about it.
VERDICTS = {
    "active": "may sign in (with the right password)",
    "never_activated": "may not sign in: never activated; « 1ère connexion » e-mails an activation link "
    "to the personal address (or: sso invite)",
    "expired": "may not sign in: the account has expired",
    "locked": "may not sign in: locked by an administrator or by the password policy",
    "password_expired": "may not sign in: the password has expired; « Problème de connexion » sets a new one",
    "must_change": "may not sign in: the password was reset by an administrator and must be changed "
    "through « Problème de connexion »",
}


@main.command()
@click.argument("identifier")
@config_option
@json_option
def user(identifier: str, config: str | None, as_json: bool) -> None:
    """What the directory says of the account IDENTIFIER names, and whether it may sign in.

    IDENTIFIER is what the person types (full address or bare uid). Exit 0 if the account may sign
    in, 6 if it exists but may not (the reason is printed), 4 if no account matches, 3 if the
    directory does not answer. The personal e-mail address is masked.
    """
    from ldapdir import AccountState
    from sso.activation.flow import display_name, mask_mail

    settings = _settings(config)
    with _directory(settings) as directory:
        account = directory.find(identifier, date.today())
    if account is None:
        attributes = ", ".join(settings.directory.login_attributes)
        _fail(
            f"no account matches {identifier!r} (looked up by {attributes}, case-insensitive)", EXIT_NOT_FOUND
        )
    verdict = VERDICTS[account.state.value]
    if account.state is AccountState.EXPIRED and account.expires:
        verdict += f" on {account.expires.isoformat()}"
    if account.state is AccountState.NEVER_ACTIVATED and not account.personal_mail:
        verdict += "; but there is no personal e-mail address to send it to: add one to the directory"
    facts = {
        "identifier": identifier,
        "user": account.user,
        "dn": str(account.dn),
        "found_by": account.found_by,
        "name": display_name(account),
        "state": account.state.value,
        "activated": account.state is not AccountState.NEVER_ACTIVATED,
        "locked": account.state is AccountState.LOCKED,
        "expires": account.expires.isoformat() if account.expires else None,
        "personal_mail": mask_mail(account.personal_mail) if account.personal_mail else None,
        "may_sign_in": account.state is AccountState.ACTIVE,
        "verdict": verdict,
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2, ensure_ascii=False))
    else:
        for key, value in facts.items():
            shown = (
                {True: "yes", False: "no", None: "-"}.get(value, value)
                if not isinstance(value, str)
                else value
            )
            click.echo(f"{key.replace('_', ' '):<14} {shown}")
    sys.exit(EXIT_OK if facts["may_sign_in"] else EXIT_CANNOT_SIGN_IN)


# -- tickets -----------------------------------------------------------------------------------------

#: Ticket kinds in the order they are shown, with their names.
TICKET_KINDS = (
    ("TGT", "sessions (TGT)"),
    ("ST", "service tickets (ST)"),
    ("PT", "proxy tickets (PT)"),
    ("PGT", "proxy-granting tickets (PGT)"),
)


def _store_name(url: str) -> str:
    """The ticket store's URL without credentials (a Redis URL may hold a password)."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
    return url


@main.command()
@config_option
@json_option
@click.option("--purge", is_flag=True, help="Also delete the expired entries now.")
def tickets(config: str | None, as_json: bool, purge: bool) -> None:
    """Live sessions and tickets in the ticket store, by kind (exit 3 if the store does not answer)."""
    from sso.tickets.registry import RegistryUnavailable, open_registry

    settings = _settings(config)
    now = time.time()
    url = settings.tickets.url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite://") :]).exists():
        _fail(
            f"no ticket database at {url[len('sqlite://') :]}: has the server run with this configuration "
            "and working directory (var_folder is relative to it)?",
            EXIT_UNAVAILABLE,
        )
    try:
        registry = open_registry(settings.tickets.url, settings.tickets.lifetimes)
    except (RegistryUnavailable, ValueError) as exc:
        _fail(f"ticket store {_store_name(settings.tickets.url)}: {exc}", EXIT_UNAVAILABLE)
    try:
        purged = registry.purge(now) if purge else None
        stats = registry.stats(now)
    except RegistryUnavailable as exc:
        _fail(f"ticket store {_store_name(settings.tickets.url)} does not answer ({exc})", EXIT_UNAVAILABLE)
    finally:
        registry.close()
    counts = {kind: int(stats.get(kind, 0)) for kind, _ in TICKET_KINDS}
    if as_json:
        click.echo(json.dumps({"store": _store_name(settings.tickets.url), "live": counts, "purged": purged}))
        return
    click.echo(f"store: {_store_name(settings.tickets.url)}")
    _table([("KIND", "LIVE"), *[(label, str(counts[kind])) for kind, label in TICKET_KINDS]])
    if purged is not None:
        click.echo(f"purged: {purged} expired entries")


main.add_command(tickets, "sessions")


# -- accounts ----------------------------------------------------------------------------------------


@main.group()
def accounts() -> None:
    """Accounts in the directory."""


@accounts.command("expiring")
@click.option(
    "--before",
    "before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day to look at (YYYY-MM-DD), included.",
)
@click.option(
    "--filter",
    "ldap_filter",
    default="(objectClass=*)",
    show_default=True,
    help="LDAP filter to narrow the accounts (e.g. '(eduPersonAffiliation=student)').",
)
@click.option("--include-expired", is_flag=True, help="Also list accounts that have already expired.")
@config_option
@json_option
def accounts_expiring(
    before: datetime, ldap_filter: str, include_expired: bool, config: str | None, as_json: bool
) -> None:
    """The accounts whose expiry date (directory.expiry_attribute) falls on or before --before."""
    from sso.activation.flow import mask_mail

    settings = _settings(config)
    attribute = settings.directory.expiry_attribute
    if not attribute:
        _fail("directory.expiry_attribute is not set: the directory gives no expiry dates", EXIT_CONFIG)
    today, last = date.today(), before.date()
    combined = f"(&({attribute}=*){_parenthesised(ldap_filter)})"
    with _directory(settings) as directory:
        try:
            found = [
                a for a in directory.search(combined, today) if a.expires is not None and a.expires <= last
            ]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--filter") from None
    found = sorted(
        (a for a in found if include_expired or a.expires >= today), key=lambda a: (a.expires, a.user)
    )
    rows = [
        {
            "user": a.user,
            "expires": a.expires.isoformat(),
            "state": a.state.value,
            "personal_mail": mask_mail(a.personal_mail) if a.personal_mail else None,
        }
        for a in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no account expires between {today.isoformat()} and {last.isoformat()}")
        return
    _table(
        [
            ("USER", "EXPIRES", "STATE", "PERSONAL MAIL"),
            *[(r["user"], r["expires"], r["state"], r["personal_mail"] or "-") for r in rows],
        ]
    )
    click.echo(f"{len(rows)} account(s)")


def _parenthesised(ldap_filter: str) -> str:
    text = ldap_filter.strip()
    return text if text.startswith("(") else f"({text})"


# -- invitations ---------------------------------------------------------------------------------------


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


@main.group()
def mail() -> None:
    """The outgoing mail queue (messages survive restarts and are retried by the server)."""


def _queue(settings: Settings) -> Any:
    from sso.mailqueue import MailQueue

    def refuse(message: object) -> None:
        raise RuntimeError("this queue is only read")

    return MailQueue(Path(settings.mail.queue), refuse)


@mail.command("queue")
@config_option
@json_option
def mail_queue(config: str | None, as_json: bool) -> None:
    """Messages waiting to be sent, and those that failed for good (with the last error)."""
    from sso.activation.flow import mask_mail

    settings = _settings(config)
    queue = _queue(settings)
    listed = [("waiting", m) for m in queue.pending()] + [("failed", m) for m in queue.failed()]
    rows = [
        {
            "id": m.id,
            "state": state,
            "to": mask_mail(m.to),
            "subject": m.subject,
            "attempts": m.attempts,
            "created": _when(m.created),
            "next_try": _when(m.next_try) if state == "waiting" and m.next_try else None,
            "last_error": m.last_error or None,
        }
        for state, m in listed
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo(f"queue: {settings.mail.queue}: {len(queue.pending())} waiting, {len(queue.failed())} failed")
    if rows:
        _table(
            [
                ("ID", "STATE", "TO", "ATTEMPTS", "CREATED", "LAST ERROR"),
                *[
                    (r["id"], r["state"], r["to"], str(r["attempts"]), r["created"], r["last_error"] or "-")
                    for r in rows
                ],
            ]
        )
    if queue.failed():
        click.echo("put the failed ones back with: sso mail retry")


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@mail.command("retry")
@config_option
@click.option(
    "--send", is_flag=True, help="Also try to send every waiting message now (else the server does)."
)
def mail_retry(config: str | None, send: bool) -> None:
    """Put the failed messages back in the queue with fresh attempts."""
    settings = _settings(config)
    count = _queue(settings).retry_failed()
    click.echo(f"{count} failed message(s) put back in the queue")
    if send:
        from sso.app import create_app
        from sso.web.runtime import runtime

        rt = runtime(create_app(settings, start_workers=False))
        try:
            sent, failed = rt.mail.run_once()
        finally:
            rt.close()
        click.echo(f"sent {sent}, failed {failed} (retried later)")


if __name__ == "__main__":  # python -m sso.cli
    main()
