"""A persistent outgoing mail queue: messages waiting to be sent survive a restart and are retried.

One JSON file per message under ``folder``::

    queue/   waiting messages, ``<created ms>-<random>.json`` (so a sorted listing is FIFO)
    failed/  messages that used up their attempts (``retry_failed`` puts them back)
    sent/    sent messages, only with ``keep_sent`` (the demo's outbox view)
    tmp/     files being written (moved into place with ``os.replace``: never half a message)

Several workers — threads or processes, on one machine — may share a folder: a worker claims a
message with ``flock`` on its file (released by the kernel if the process dies), checks that the
path still names the file it locked, and removes or rewrites it before letting go, so no message is
sent twice by two workers. Delivery is at least once: a crash between the SMTP answer and the
removal sends that message again on restart. ``flock`` needs a local filesystem (not NFS).

Messages carry links (bearer tokens): folders are created ``0700`` and files ``0600``, and nothing
but ids is logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import secrets
import smtplib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger(__name__)

#: Seconds between attempts, by attempt number (the last one repeats).
RETRY_DELAYS = (10.0, 60.0, 300.0, 900.0, 3600.0)
_ERROR_LIMIT = 200
#: Orders the messages one process queues within the same millisecond.
_SEQUENCE = itertools.count()


@dataclass(frozen=True)
class Message:
    """One outgoing message, as stored."""

    #: ``<created ms>-<sequence>-<random hex>``: unique, sorts in creation order.
    id: str
    to: str
    subject: str
    text: str
    html: str | None
    #: POSIX time of :meth:`MailQueue.put`.
    created: float
    #: Failed attempts so far.
    attempts: int = 0
    #: What went wrong last time (never the body): ``SMTPRecipientsRefused 550``…
    last_error: str = ""
    #: POSIX time before which it is not tried again.
    next_try: float = 0.0


def describe_error(exc: BaseException, message: Message | None = None) -> str:
    """A short, single-line account of a sending error, for ``last_error`` and logs: the error's
    class, SMTP code and server text, or errno — never the message body."""
    name = type(exc).__name__
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _ in exc.recipients.values()})
        detail = f"{name} {' '.join(codes)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
        detail = f"{name} {exc.smtp_code} {text}"
    elif isinstance(exc, smtplib.SMTPException):  # before OSError: SMTPException is one
        detail = f"{name} {exc}"
    elif isinstance(exc, OSError):
        detail = f"{name} errno={exc.errno} {exc.strerror or ''}" if exc.errno else name
    else:
        detail = name
    if message is not None:
        for body in (message.text, message.html):
            if body and body.strip() and body.strip() in detail:
                detail = name
    detail = " ".join(detail.split())
    return detail[:_ERROR_LIMIT]


class MailQueue:
    """A folder of messages waiting to be sent, and the worker that sends them.

    :param folder: where the queue lives (created if missing).
    :param send: delivers one message; raising :class:`OSError` or :class:`smtplib.SMTPException`
        is a failed attempt, retried after ``retry_delays``.
    :param retry_delays: seconds before the 1st, 2nd… retry (the last repeats).
    :param max_attempts: attempts before the message moves to ``failed/``.
    :param clock: POSIX time source.
    :param keep_sent: move sent messages to ``sent/`` instead of deleting them.
    """

    def __init__(
        self,
        folder: Path,
        send: Callable[[Message], None],
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_attempts: int = 10,
        clock: Callable[[], float] = time.time,
        keep_sent: bool = False,
    ) -> None:
        if not retry_delays or max_attempts < 1:
            raise ValueError("give at least one retry delay and one attempt")
        self.folder = Path(folder)
        self._send = send
        self._delays = tuple(float(delay) for delay in retry_delays)
        self._max_attempts = max_attempts
        self._clock = clock
        self._keep_sent = keep_sent
        for name in ("queue", "failed", "tmp") + (("sent",) if keep_sent else ()):
            (self.folder / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing ---------------------------------------------------------------------------------

    def put(self, to: str, subject: str, text: str, html: str | None = None) -> str:
        """Queue a message; it is on disk when this returns. Wakes the worker.

        :return: the message id.
        """
        created = self._clock()
        message = Message(
            id=f"{int(created * 1000):013d}-{next(_SEQUENCE) % 1_000_000:06d}-{secrets.token_hex(6)}",
            to=to,
            subject=subject,
            text=text,
            html=html,
            created=created,
        )
        self._write(self.folder / "queue", message)
        self._wake.set()
        return message.id

    def _write(self, where: Path, message: Message) -> None:
        tmp = self.folder / "tmp" / f"{message.id}.{secrets.token_hex(4)}"
        data = json.dumps(asdict(message), ensure_ascii=False).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(fd, "wb", closefd=True) as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, where / f"{message.id}.json")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    # -- sending ---------------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> tuple[int, int]:
        """Try every message that is due once.

        :return: (sent, failed attempts).
        """
        now = self._clock() if now is None else now
        sent = failed = 0
        for path in sorted((self.folder / "queue").glob("*.json")):
            with self._claim(path) as claimed:
                if claimed is None:
                    continue
                message = self._read(path, claimed)
                if message is None or message.next_try > now:
                    continue
                if self._attempt(path, message, now):
                    sent += 1
                else:
                    failed += 1
        return sent, failed

    @contextlib.contextmanager
    def _claim(self, path: Path) -> Iterator[BinaryIO | None]:
        """Lock ``path`` for this worker, or yield ``None`` if another holds it or it is gone."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 — closed below, after the lock's work is done
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                current = os.stat(path)
            except FileNotFoundError:
                yield None
                return
            mine = os.fstat(handle.fileno())
            # Replaced or removed by another worker since we opened it: not ours any more.
            yield handle if (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev) else None
        finally:
            handle.close()

    def _read(self, path: Path, handle: BinaryIO) -> Message | None:
        try:
            return _decode(json.loads(handle.read().decode("utf-8")))
        except (ValueError, TypeError, KeyError):
            logger.error("unreadable queued message %s moved to failed/", path.name)
            os.replace(path, self.folder / "failed" / path.name)
            return None

    def _attempt(self, path: Path, message: Message, now: float) -> bool:
        try:
            self._send(message)
        except (OSError, smtplib.SMTPException) as exc:
            self._failed(path, message, now, describe_error(exc, message))
            return False
        except Exception as exc:
            # A bug in ``send``: count the attempt so a poison message ends in failed/, then re-raise.
            self._failed(path, message, now, describe_error(exc, message))
            raise
        if self._keep_sent:
            os.replace(path, self.folder / "sent" / path.name)
        else:
            path.unlink()
        logger.info("mail %s sent after %d failed attempts", message.id, message.attempts)
        return True

    def _failed(self, path: Path, message: Message, now: float, error: str) -> None:
        attempts = message.attempts + 1
        delay = self._delays[min(attempts, len(self._delays)) - 1]
        updated = replace(message, attempts=attempts, last_error=error, next_try=now + delay)
        if attempts >= self._max_attempts:
            self._write(self.folder / "failed", updated)
            path.unlink()
            logger.error("mail %s failed %d times, moved to failed/: %s", message.id, attempts, error)
        else:
            self._write(self.folder / "queue", updated)
            logger.warning("mail %s attempt %d failed, retry in %ss: %s", message.id, attempts, delay, error)

    # -- looking and retrying --------------------------------------------------------------------

    def pending(self) -> list[Message]:
        """Messages waiting in ``queue/``, oldest first."""
        return self._list("queue")

    def failed(self) -> list[Message]:
        """Messages that used up their attempts, oldest first."""
        return self._list("failed")

    def sent(self) -> list[Message]:
        """Sent messages kept in ``sent/`` (``keep_sent`` only), oldest first."""
        return self._list("sent") if self._keep_sent else []

    def retry_failed(self) -> int:
        """Put every failed message back in the queue with fresh attempts.

        :return: how many were put back.
        """
        count = 0
        for path in sorted((self.folder / "failed").glob("*.json")):
            with self._claim(path) as claimed:
                if claimed is None:
                    continue
                message = self._read_quiet(claimed)
                if message is None:
                    continue
                self._write(self.folder / "queue", replace(message, attempts=0, next_try=0.0))
                path.unlink()
                count += 1
        if count:
            self._wake.set()
        return count

    def _list(self, name: str) -> list[Message]:
        messages = []
        for path in sorted((self.folder / name).glob("*.json")):
            try:
                with open(path, "rb") as handle:
                    message = self._read_quiet(handle)
            except FileNotFoundError:
                continue
            if message is not None:
                messages.append(message)
        return messages

    @staticmethod
    def _read_quiet(handle: BinaryIO) -> Message | None:
        try:
            return _decode(json.loads(handle.read().decode("utf-8")))
        except (ValueError, TypeError, KeyError):
            return None

    # -- background worker -----------------------------------------------------------------------

    def start(self, interval: float = 2.0) -> None:
        """Send in a daemon thread: at once after each :meth:`put` of this instance, and every
        ``interval`` seconds (messages queued by other processes, retries). Idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="sso-mailqueue", daemon=True
        )
        self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker after the message it is sending, if any. Queued messages stay on disk."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 — the worker must outlive a bug in ``send``; logged
                logger.exception("mail queue worker: unexpected error")
            self._wake.wait(interval)


def _decode(data: Any) -> Message:
    if not isinstance(data, dict):
        raise ValueError("not a message")
    message = Message(**data)
    if not (isinstance(message.id, str) and isinstance(message.to, str) and isinstance(message.text, str)):
        raise ValueError("not a message")
    return message
