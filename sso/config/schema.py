"""The YAML file, typed: one pydantic model per section, frozen, unknown keys refused.

Sections owned by Flask-free packages (``directory``, ``cas``, ``activation``, ``services``,
ticket ``lifetimes``) are those packages' own dataclasses, validated here as they are.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ldapdir.settings import DirectorySettings
from sso.activation.settings import ActivationSettings
from sso.cas.settings import CasSettings
from sso.services import ServiceSettings
from sso.tickets.model import Lifetimes

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}\Z")


class Section(BaseModel):
    """Base of every section: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(Section):
    """What people see and where the server lives."""

    #: Name of the service shown in titles ("ENT").
    name: str = "ENT"
    #: Institution shown in pages and e-mails.
    institution: str = "Université"
    #: Public base URL, e.g. ``https://sso.univ.fr/cas`` (links in e-mails and redirects use it, never the Host header).
    base_url: str
    #: Default language of pages and e-mails.
    default_language: Literal["fr", "en"] = "fr"
    #: The « Aide » link at the top right.
    help_url: str = ""
    #: Folder whose templates override the defaults (same names), and whose ``static/`` overrides static files.
    theme_folder: Path | None = None
    #: Logo URL (absolute, or a path under the theme's static folder).
    logo_url: str = ""
    #: Main colour of buttons and headers (``#rrggbb``; keep WCAG AA contrast with white).
    primary_color: str = "#00508c"
    #: Example student identifier shown in help texts.
    student_identifier: str = "prenom.nom@etu.univ.fr"
    #: Example staff identifier shown in help texts.
    staff_identifier: str = "prenom.nom@univ.fr"
    #: Where students find their identifier.
    identifier_hint: str = (
        "Il est indiqué dans l'application récapitulatif de votre inscription administrative (IA)."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/?#\s]+(/[^?#\s]*)?\Z", value):
            raise ValueError(
                "must be an absolute http(s) URL without query or fragment, e.g. https://sso.univ.fr/cas"
            )
        return value.rstrip("/")

    @field_validator("primary_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.match(value):
            raise ValueError("must be a colour like #00508c")
        return value


class EmbeddedDirectory(Section):
    """The demo directory: ldap3's MOCK strategy loaded from an LDIF file."""

    #: LDIF file with the entries (relative: beside the YAML file).
    data: Path
    #: JSON file where changes (passwords set…) are kept across restarts (relative: under ``var_folder``).
    state: Path = Path("demo-directory.json")


class TicketSettings(Section):
    """Where tickets live and how long."""

    #: ``memory://``, ``sqlite:///abs/path.db`` / ``sqlite:relative.db`` (under ``var_folder``), or ``redis://host:6379/0``.
    url: str = "sqlite:tickets.db"
    #: Lifetimes in seconds.
    lifetimes: Lifetimes = Lifetimes()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith(("redis://", "rediss://", "unix://")):
            from sso.tickets.redis import check_url

            check_url(value)  # ValueError names the problem, never echoes the URL (it may hold a password)
        elif not value.startswith(("memory:", "sqlite:")):
            raise ValueError("use memory://, sqlite:PATH or redis://HOST:PORT/DB")
        return value


class MailSettings(Section):
    """Outgoing e-mail (activation links, confirmations)."""

    #: Sender address.
    sender: str = "ne-pas-repondre@univ.fr"
    #: Demo: write messages to this folder instead of SMTP (relative: under ``var_folder``).
    outbox: Path | None = None
    #: Persistent queue folder; messages survive restarts and are retried (relative: under ``var_folder``).
    queue: Path = Path("mail-queue")
    #: SMTP host.
    server: str = "localhost"
    #: SMTP port.
    port: int = 25
    #: STARTTLS.
    use_tls: bool = False
    #: Implicit TLS (port 465).
    use_ssl: bool = False
    #: SMTP user (empty: no authentication).
    username: str = ""
    #: SMTP password (prefer ``password_file`` / ``password_env``).
    password: str = ""
    #: Seconds before an SMTP attempt gives up.
    timeout: float = 10.0
    #: Seconds before the 1st, 2nd… retry of a message that could not be sent (the last repeats).
    retry_delays: tuple[float, ...] = (10, 60, 300, 900, 3600)
    #: Attempts before a message is moved to the failed folder (``sso mail`` shows it).
    max_attempts: int = Field(default=10, ge=1, le=100)


class SecuritySettings(Section):
    """Cookies, proxies, throttling."""

    #: Name of the ticket-granting cookie.
    cookie_name: str = "TGC"
    #: SameSite of the TGC. ``Lax`` keeps SSO working when a service links to /login.
    cookie_samesite: Literal["Lax", "Strict"] = "Lax"
    #: Number of reverse proxies in front whose X-Forwarded-For/Proto/Host/Prefix are trusted (0: none).
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    #: Storage of throttling counters: ``memory://`` (one process) or ``redis://…`` (shared by nodes).
    rate_limit_storage: str = "memory://"
    #: Failed sign-ins allowed per identifier (``limits`` syntax: "5 per 5 minutes;20 per day").
    login_per_identifier: str = "5 per 5 minutes;20 per day"
    #: Failed sign-ins allowed per client address (slows password spraying: one password, many identifiers).
    login_per_address: str = "50 per 5 minutes;500 per day"
    #: Networks (CIDR) exempt from the per-address limits, e.g. the campus NAT that thousands share;
    #: the per-identifier limits still apply to them.
    exempt_networks: tuple[str, ...] = ()
    #: Link requests allowed per client address.
    link_per_address: str = "10 per hour"
    #: Link requests allowed per identifier.
    link_per_identifier: str = "3 per hour"
    #: Largest request body accepted, in bytes.
    max_body: int = 64 * 1024

    @field_validator("exempt_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network such as 10.0.0.0/8") from None
        return value

    @field_validator("login_per_identifier", "login_per_address", "link_per_address", "link_per_identifier")
    @classmethod
    def _limits(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("not a rate limit such as '5 per 5 minutes;20 per day'") from None
        return value


class Settings(Section):
    """The whole configuration file."""

    site: SiteSettings
    #: Keys that sign cookies and links: the first signs, all verify (rotation). At least 32 characters.
    secret_keys: tuple[str, ...]
    directory: DirectorySettings = DirectorySettings()
    #: Use the embedded demo directory instead of LDAP URLs.
    embedded_directory: EmbeddedDirectory | None = None
    tickets: TicketSettings = TicketSettings()
    services: tuple[ServiceSettings, ...] = ()
    cas: CasSettings = CasSettings()
    mail: MailSettings = MailSettings()
    activation: ActivationSettings = ActivationSettings()
    security: SecuritySettings = SecuritySettings()
    #: Folder for run-time state (SQLite tickets, mail queue, demo changes); relative: to the working directory.
    var_folder: Path = Path("var")
    #: Where the structured audit log goes: ``-`` for standard error, or a file path.
    audit_log: str = "-"
    #: Log level of the application log.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        # ``secret_keys_file`` gives one string: one key per line.
        return tuple(value.split()) if isinstance(value, str) else value

    @field_validator("secret_keys")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "give at least one key (e.g. secret_keys_file or a generated 64-character value)"
            )
        if any(len(key) < 32 for key in value):
            raise ValueError(
                "every key needs at least 32 characters: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return value

    @model_validator(mode="after")
    def _one_directory(self) -> Settings:
        if self.embedded_directory is None and not self.directory.urls:
            raise ValueError("set directory.urls (LDAP servers) or embedded_directory (demo)")
        if self.embedded_directory is not None and self.directory.urls:
            raise ValueError("set directory.urls or embedded_directory, not both")
        return self
