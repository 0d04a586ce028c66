"""The ``sso`` group and what every command shares: options, settings, exit codes, tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

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


def _parenthesised(ldap_filter: str) -> str:
    """An administrator's filter with its outer parentheses (``uid=x`` -> ``(uid=x)``)."""
    text = ldap_filter.strip()
    return text if text.startswith("(") else f"({text})"
