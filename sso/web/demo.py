"""Demo only (``mail.outbox`` set): the outbox as a page, so whoever runs the demo sees the e-mails
the SSO sent and can click their links. Never registered when mail goes out through SMTP."""

from __future__ import annotations

import email
from datetime import datetime
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, make_response, render_template

from sso.web.runtime import runtime

bp = Blueprint("demo", __name__, url_prefix="/demo")

#: Messages shown, newest first.
SHOWN = 20


def _date(header: object) -> datetime | None:
    try:
        return parsedate_to_datetime(str(header))
    except (TypeError, ValueError):
        return None


def _messages(folder: Path) -> list[dict[str, object]]:
    files = sorted(folder.glob("*.eml"), key=lambda path: path.stat().st_mtime, reverse=True)[:SHOWN]
    out = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(("plain",))
        out.append(
            {
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "date": _date(message["Date"]),
                "text": body.get_content() if body is not None else "",
            }
        )
    return out


@bp.get("/outbox")
def outbox() -> Response:
    """The demo outbox: the last messages, with their links clickable."""
    folder = runtime().settings.mail.outbox
    if folder is None:
        abort(404)
    runtime().mail.run_once()  # whatever is due goes out now, so the page is up to date
    page = render_template(
        "demo_outbox.html",
        messages=_messages(Path(folder)) if Path(folder).exists() else [],
        folder=str(folder),
    )
    return make_response(page)


def init_app(app: Flask) -> None:
    """Register the outbox page when, and only when, mail goes to an outbox folder."""
    if runtime(app).settings.mail.outbox is not None:
        app.register_blueprint(bp)
