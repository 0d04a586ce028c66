"""Single logout (CAS 3.0 §2.3.3, Appendix C): LogoutRequests sent in the background.

When a session ends, each service that received a ticket in it gets a ``POST`` with the form
field ``logoutRequest``: a SAML 2 ``LogoutRequest`` whose ``SessionIndex`` is the ticket id it
received (what python-cas, phpCAS and the Java client match on). Sending is "fire and forget"
(§2.3.3.1): :meth:`LogoutDispatcher.dispatch` only queues; a few worker threads send, each
request bounded by a timeout; when the queue is full, requests are dropped and logged, so a
storm of logouts to a dead service never holds people up nor grows memory without bound.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from sso.cas.responses import iso_time
from sso.services import ServiceRegistry
from sso.tickets.ids import redact
from sso.tickets.model import SessionService

logger = logging.getLogger(__name__)

SAMLP2_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML2_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
#: ``post(url, form)``: send one logout request; may raise, errors are logged and ignored.
Post = Callable[[str, dict[str, str]], None]
_STOP = None


def logout_request(ticket_id: str, now: float) -> str:
    """The SAML 2 ``LogoutRequest`` for the session that received ``ticket_id`` (Appendix C)."""
    root = ET.Element(
        "samlp:LogoutRequest",
        {
            "xmlns:samlp": SAMLP2_NS,
            "xmlns:saml": SAML2_NS,
            "ID": f"_{secrets.token_hex(16)}",
            "Version": "2.0",
            "IssueInstant": iso_time(now),
        },
    )
    ET.SubElement(root, "saml:NameID").text = "@NOT_USED@"
    ET.SubElement(root, "samlp:SessionIndex").text = ticket_id
    return ET.tostring(root, encoding="unicode")


def slo_targets(session: Sequence[SessionService], services: ServiceRegistry) -> list[tuple[str, str]]:
    """``(logout_url, ticket_id)`` for each ticket of an ended session whose service is still
    registered and takes part in single logout; the URL is the service's ``logout_url``, or
    else the service URL the ticket was issued for."""
    targets = []
    for entry in session:
        service = services.get(entry.service_id)
        if service is None or not service.single_logout:
            continue
        targets.append((service.logout_url or entry.service, entry.ticket_id))
    return targets


def post_logout_request(timeout: float) -> Post:
    """A :data:`Post` over requests: form-encoded, ``timeout`` seconds, redirects not followed."""

    def post(url: str, form: dict[str, str]) -> None:
        import requests  # imported on first use: ~5 MB a worker that many nodes never need

        with requests.post(url, data=form, timeout=timeout, allow_redirects=False, stream=True):
            pass

    return post


class LogoutDispatcher:
    """Sends logout requests from a bounded queue with a few threads (per process).

    :param post: sends one request (default: :func:`post_logout_request` with ``timeout``).
    :param workers: number of sending threads, started on first use in each process (so a
        server that forks workers after building the app gets its own threads in each).
    :param timeout: seconds per request for the default ``post``.
    :param queue_size: requests waiting at most; beyond, new ones are dropped and logged.
    :param clock: POSIX time source for the requests' ``IssueInstant``.
    """

    def __init__(
        self,
        post: Post | None,
        workers: int,
        timeout: float,
        *,
        queue_size: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("workers and queue_size must be at least 1")
        self._post = post if post is not None else post_logout_request(timeout)
        self._workers = workers
        self._queue_size = queue_size
        self._clock = clock
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(queue_size)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid() or self._closed:
                return
            # After a fork, the parent's threads do not exist here: start afresh.
            self._pid = os.getpid()
            self._queue = queue.Queue(self._queue_size)
            self._threads = [
                threading.Thread(target=self._run, name=f"slo-{n}", daemon=True) for n in range(self._workers)
            ]
            for thread in self._threads:
                thread.start()

    def dispatch(self, targets: Sequence[tuple[str, str]]) -> None:
        """Queue one logout request per ``(logout_url, ticket_id)`` and return at once."""
        if not targets:
            return
        self._start()
        if self._closed:
            logger.warning("logout dispatcher is shut down: %d logout requests dropped", len(targets))
            return
        for target in targets:
            try:
                self._queue.put_nowait(target)
            except queue.Full:
                logger.warning("logout queue full: request for %s dropped", redact(target[1]))

    def _run(self) -> None:
        work = self._queue
        while True:
            item = work.get()
            try:
                if item is _STOP:
                    return
                self._send(*item)
            finally:
                work.task_done()

    def _send(self, url: str, ticket_id: str) -> None:
        form = {"logoutRequest": logout_request(ticket_id, self._clock())}
        try:
            self._post(url, form)
        except Exception as exc:  # fire and forget (CAS 3.0 §2.3.3.1): no error may stop a worker
            logger.info(
                "logout request for %s to host %s failed: %s",
                redact(ticket_id),
                urlsplit(url).hostname,
                type(exc).__name__,
            )

    def join(self) -> None:
        """Wait until every queued request has been handled (tests, orderly shutdown)."""
        if self._pid == os.getpid():
            self._queue.join()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers: requests still queued are dropped (and counted in the log), those
        being sent finish within their timeout. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = self._pid == os.getpid()
        if not running:
            return
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            dropped += 1
        if dropped:
            logger.warning("logout dispatcher shut down: %d queued logout requests dropped", dropped)
        for _ in self._threads:
            self._queue.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
