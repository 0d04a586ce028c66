"""E-mail: render the paired .txt/.html templates of a notice, queue it, send it through
Flask-Mail (SMTP) or write it to the demo's outbox folder."""

from __future__ import annotations

import logging
import os
import smtplib
import tempfile
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import flask_mail
from flask import Flask, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Mail
from flask_mail import Message as FlaskMessage

from sso.activation.flow import Notice
from sso.config.schema import MailSettings
from sso.mailqueue import Message

log = logging.getLogger(__name__)
mail = Mail()


def _subjects() -> dict[str, str]:
    return {
        "activation": _("Activez votre compte ENT"),
        "invitation": _("Activez votre compte ENT"),
        "reset": _("Choisissez un nouveau mot de passe ENT"),
        "password_changed": _("Votre mot de passe ENT a été modifié"),
    }


class Notifier:
    """Turns activation-flow notices into queued e-mails (callable from any thread)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, notice: Notice) -> None:
        """Render ``notice`` in its language and put it in the persistent queue."""
        from sso.web.runtime import runtime

        with self.app.app_context(), force_locale(notice.locale):
            context = {"notice": notice, "site": runtime(self.app).settings.site}
            subject = f"{_subjects()[notice.kind]} – {runtime(self.app).settings.site.institution}"
            text = render_template(f"mail/{notice.kind}.txt", **context)
            html = render_template(f"mail/{notice.kind}.html", **context)
            runtime(self.app).mail.put(notice.to, subject, text, html)


class _TimedConnection(flask_mail.Connection):
    """Flask-Mail's SMTP connection with a timeout: Flask-Mail 0.10 connects without one, so a
    frozen SMTP server would block the mail queue for ever."""

    def __init__(self, state: flask_mail.Mail, timeout: float) -> None:
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        factory = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = factory(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


def smtp_sender(app: Flask, settings: MailSettings) -> Callable[[Message], None]:
    """A ``send(Message)`` for the queue that goes through Flask-Mail (SMTP)."""

    def send(message: Message) -> None:
        with app.app_context():
            state = app.extensions["mail"]
            with _TimedConnection(state, settings.timeout) as connection:
                connection.send(
                    FlaskMessage(
                        subject=message.subject,
                        recipients=[message.to],
                        body=message.text,
                        html=message.html,
                        sender=settings.sender,
                    )
                )

    return send


def outbox_sender(folder: Path, sender: str) -> Callable[[Message], None]:
    """A ``send(Message)`` that writes ``.eml`` files into ``folder`` (the demo's outbox)."""

    def send(message: Message) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = sender, message.to, message.subject
        email["Date"], email["Message-ID"] = formatdate(localtime=True), make_msgid(domain="sso.local")
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(email))
        os.replace(tmp, folder / f"{message.id}.eml")
        log.info("demo outbox: message %s written to %s", message.id, folder)

    return send


def init_app(app: Flask) -> None:
    """Flask-Mail settings from the ``mail`` section (derived explicitly: Flask drops lower-case keys)."""
    settings: MailSettings = app.extensions["sso"].settings.mail
    app.config.update(
        MAIL_SERVER=settings.server,
        MAIL_PORT=settings.port,
        MAIL_USE_TLS=settings.use_tls,
        MAIL_USE_SSL=settings.use_ssl,
        MAIL_USERNAME=settings.username or None,
        MAIL_PASSWORD=settings.password or None,
        MAIL_DEFAULT_SENDER=settings.sender,
    )
    mail.init_app(app)
