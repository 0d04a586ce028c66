"""Answering "why can't I log in?": ``user``, ``tickets``, ``accounts expiring``."""

from __future__ import annotations

import json
import sys
import time
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click

from sso.cli.base import (
    EXIT_CANNOT_SIGN_IN,
    EXIT_CONFIG,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    _directory,
    _fail,
    _parenthesised,
    _settings,
    _table,
    config_option,
    json_option,
    main,
)

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
