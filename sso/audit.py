"""Structured audit events: one JSON line per sign-in, logout, validation, link and password change.

A separate stream (logger ``sso.audit``) so operators can ship it apart from the application log.
Values are cleaned here, once: ticket ids keep their prefix only, newlines and control characters
are removed, nothing that looks like a secret is accepted.

Each line answers who (``user`` or the ``identifier`` typed), what (``event``), when (``ts``, POSIX
seconds), from where (``ip``: the web glue supplies it through :meth:`Audit.use_context` for every
event recorded during a request) and for which service (``service``). Observers (the metrics)
receive the same cleaned record, so they never see more than the log does.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sso.tickets.ids import redact

logger = logging.getLogger("sso.audit")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: A ticket id, whole: not one already cut to its prefix (``ST-ab12…``), which would get a second "…".
_TICKET = re.compile(r"\b(?:ST|PT|PGT|PGTIOU|TGT)-[A-Za-z0-9-]+(?![A-Za-z0-9-]|…)")
#: Keys that must never reach the audit log, whatever the caller passes.
_FORBIDDEN = frozenset({"password", "token", "ticket_id", "secret"})


def clean(value: object, limit: int = 200) -> str:
    """A value fit for a log line: no control characters, ticket ids redacted, bounded length."""
    text = str(value)
    if not text.isprintable():  # cheap test first: most values (users, services) are clean
        text = _CONTROL.sub(" ", text)
    if "-" in text:
        text = _TICKET.sub(lambda match: redact(match.group(0)), text)
    return text if len(text) <= limit else text[:limit] + "…"


#: Receives each event and its cleaned record (``ts``, ``event`` and the fields).
Observer = Callable[[str, Mapping[str, object]], None]


class Audit:
    """Write audit events as JSON lines.

    :param clock: POSIX time source (tests freeze it).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._observers: list[Observer] = []
        self._context: Callable[[], Mapping[str, object]] | None = None

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(event, record)`` after each event is written (metrics count them).

        Observers run in the caller's thread and must not raise.
        """
        self._observers.append(observer)

    def use_context(self, provider: Callable[[], Mapping[str, object]]) -> None:
        """Fields added to every event that does not set them itself (e.g. the client address of
        the current request); ``provider`` returns an empty mapping outside a request."""
        self._context = provider

    def __call__(self, event: str, **fields: object) -> None:
        """Record ``event`` (``login.success``, ``logout``, ``validate.failure``…) with its fields.

        :raises ValueError: a field named like a secret (``password``, ``token``…).
        """
        record: dict[str, object] = {"ts": round(self._clock(), 3), "event": event}
        if self._context is not None:
            for key, value in self._context().items():
                if fields.get(key) is None:
                    fields[key] = value
        for key, value in fields.items():
            if key in _FORBIDDEN:
                raise ValueError(f"audit field {key!r} would leak a secret")
            if value is not None:
                record[key] = value if isinstance(value, bool | int | float) else clean(value)
        if logger.isEnabledFor(logging.INFO):
            _write(json.dumps(record, ensure_ascii=False))
        for observer in self._observers:
            observer(event, record)


class _Lines:
    """The audit stream's own handlers take a line as it is: when they are the logger's only
    handler, :func:`_write` hands them the line directly, without a ``LogRecord`` (making one, and
    passing it through the logging machinery, was two thirds of an event's cost). Any other
    handler added to the logger (a test's, an operator's) gets records as usual."""

    stream: Any
    terminator: str

    def write_line(self, line: str) -> bool:
        """Write ``line``; ``False`` if the stream cannot take it (closed): log it the usual way."""
        stream = self.stream
        if stream is None:
            return False
        self.acquire()  # type: ignore[attr-defined]
        try:
            stream.write(line + self.terminator)
            stream.flush()
        except (OSError, ValueError):
            return False
        finally:
            self.release()  # type: ignore[attr-defined]
        return True


class _LinesToStream(_Lines, logging.StreamHandler):  # type: ignore[type-arg]
    pass


class _LinesToFile(_Lines, logging.FileHandler):
    pass


def _write(line: str) -> None:
    handlers = logger.handlers
    if len(handlers) == 1 and isinstance(handlers[0], _Lines) and not logger.filters:
        if handlers[0].write_line(line):
            return
    logger.info("%s", line)


def configure(target: str) -> None:
    """Send the audit stream, as bare JSON lines, to ``-`` (standard error) or a file.

    It does not propagate to the application log, so each stream can be shipped on its own.
    """
    handler: logging.Handler = (
        _LinesToStream(sys.stderr) if target == "-" else _LinesToFile(Path(target), encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
