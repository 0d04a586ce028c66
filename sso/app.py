"""The application factory: reads like a table of contents, one setup call per concern."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from ldapdir import Directory
from sso.activation.flow import ActivationFlow
from sso.activation.tokens import LinkSigner
from sso.audit import Audit
from sso.audit import configure as configure_audit
from sso.cas.logout import LogoutDispatcher, post_logout_request
from sso.cas.proxy import make_deliver_pgt
from sso.config import Settings, config_path, load_settings
from sso.mailqueue import MailQueue
from sso.resources import static_dir
from sso.services import ServiceRegistry
from sso.tickets.registry import TicketRegistry, open_registry
from sso.web import account, cas, demo, errors, i18n, mail, ops, security, theme, validation
from sso.web.runtime import Runtime
from sso.web.session import SessionCookies


def create_app(
    settings: Settings | str | os.PathLike[str] | None = None,
    *,
    directory: Directory | None = None,
    tickets: TicketRegistry | None = None,
    clock: Callable[[], float] = time.time,
    start_workers: bool = True,
) -> Flask:
    """Build the SSO application.

    :param settings: loaded settings, or a YAML path (default: ``--config``/``$SSO_CONFIG``/the demo).
    :param directory: replace the configured directory (tests).
    :param tickets: replace the configured ticket registry (tests).
    :param start_workers: start the background mail and link workers (tests drain them by hand).
    :raises sso.config.ConfigError: the configuration is not usable.
    """
    if not isinstance(settings, Settings):
        settings = load_settings(config_path(settings))
    app = Flask("sso", static_folder=str(static_dir()), template_folder=None)
    _configure_flask(app, settings)
    app.extensions["sso"] = _build_runtime(app, settings, directory, tickets, clock, start_workers)
    security.init_app(app)
    i18n.init_app(app)
    theme.init_app(app)
    mail.init_app(app)
    errors.init_app(app)
    app.register_blueprint(cas.bp)
    app.register_blueprint(validation.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(ops.bp)
    demo.init_app(app)
    return app


def _configure_flask(app: Flask, settings: Settings) -> None:
    """The few Flask keys, derived in one place from the typed settings."""
    https = settings.site.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.secret_keys[0],
        SECRET_KEY_FALLBACKS=list(settings.secret_keys[1:]),
        SESSION_COOKIE_NAME="sso_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=3600,
        WTF_CSRF_SSL_STRICT=https,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.session_interface = SessionCookies()
    _configure_logging(settings)


def _configure_logging(settings: Settings) -> None:
    """Application log to standard error (unless the host process already set logging up), audit apart."""
    for name in ("sso", "ldapdir"):
        logging.getLogger(name).setLevel(settings.log_level)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")
        )
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    configure_audit(settings.audit_log)


def _build_runtime(
    app: Flask,
    settings: Settings,
    directory: Directory | None,
    tickets: TicketRegistry | None,
    clock: Callable[[], float],
    start_workers: bool,
) -> Runtime:
    audit = Audit(clock)
    directory = directory or open_directory(settings)
    mail_settings = settings.mail
    if mail_settings.outbox is not None:
        sender = mail.outbox_sender(Path(mail_settings.outbox), mail_settings.sender)
    else:
        sender = mail.smtp_sender(app, mail_settings)
    queue = MailQueue(
        Path(mail_settings.queue),
        sender,
        retry_delays=mail_settings.retry_delays,
        max_attempts=mail_settings.max_attempts,
    )
    signer = LinkSigner(settings.secret_keys, settings.activation)
    flow = ActivationFlow(
        directory,
        signer,
        settings.activation,
        notify=mail.Notifier(app),
        link_base=f"{settings.site.base_url}/compte/lien",
        audit=lambda event, fields: audit(event, **fields),
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    cas_settings = settings.cas
    runtime = Runtime(
        settings=settings,
        directory=directory,
        tickets=tickets or open_registry(settings.tickets.url, settings.tickets.lifetimes),
        services=ServiceRegistry(settings.services),
        logout=LogoutDispatcher(
            post_logout_request(cas_settings.logout_timeout),
            cas_settings.logout_workers,
            cas_settings.logout_timeout,
            queue_size=cas_settings.logout_queue_size,
        ),
        mail=queue,
        activation=flow,
        audit=audit,
        signer=signer,
        deliver_pgt=make_deliver_pgt(cas_settings),
        clock=clock,
    )
    if start_workers:
        queue.start()
        flow.start()
    return runtime


def open_directory(settings: Settings) -> Directory:
    """The configured directory: the embedded demo one, or LDAP servers."""
    if settings.embedded_directory is not None:
        from ldapdir.embedded import EmbeddedDirectory

        embedded = settings.embedded_directory
        return EmbeddedDirectory(settings.directory, Path(embedded.data), Path(embedded.state))
    from ldapdir.ldap import LdapDirectory

    return LdapDirectory(settings.directory)
