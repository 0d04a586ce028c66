"""``sso mail``: the outgoing queue and its failures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from sso.cli.base import (
    _settings,
    _table,
    config_option,
    json_option,
    main,
)
from sso.config import Settings


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
