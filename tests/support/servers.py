"""Real servers for integration tests: a free loopback port, a temporary folder, a readiness poll
with a deadline, and a stop in ``finally``. Missing binaries skip locally and fail in CI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

#: Set by .ci/run: in CI a missing server binary is a failure, not a skip.
REQUIRE = os.environ.get("SSO_REQUIRE_SERVERS") == "1"


def require_binary(name: str, *candidates: str) -> str:
    """Path of a server binary, or skip (locally) / fail (CI) with the reason."""
    for candidate in (*candidates, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = f"{name} is not installed (apt-get install {name})"
    if REQUIRE:
        pytest.fail(reason + " and SSO_REQUIRE_SERVERS=1")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], deadline: float = 20.0, what: str = "server") -> None:
    """Poll ``check`` until it is true, or fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {deadline:.0f} s")


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.port = port or free_port()
        self._received = threading.Condition()

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                with sink._received:
                    sink.messages.append(message_from_bytes(envelope.content, policy=email_policy.default))
                    sink._received.notify_all()
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if getattr(self, "_running", False):
            self._controller.stop()
            self._running = False

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list[Message]:
        """Block until ``count`` messages arrived (or fail)."""
        with self._received:
            if not self._received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{count} message(s) expected, {len(self.messages)} received")
            return list(self.messages)


class Gunicorn:
    """The SSO served by a real gunicorn process, as in production."""

    def __init__(
        self, config: Path, port: int, workers: int = 1, threads: int = 4, log: Path | None = None
    ) -> None:
        self.config, self.port, self.workers, self.threads = config, port, workers, threads
        self.log = log or config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, health_path: str = "/health") -> Gunicorn:
        env = {**os.environ, "SSO_CONFIG": str(self.config)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                    "--worker-class",
                    "gthread",
                    "--graceful-timeout",
                    "2",
                    "sso.app:create_app()",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            try:
                return requests.get(self.url + health_path, timeout=2).status_code < 500
            except requests.RequestException:
                return False

        wait_until(ready, 30, "gunicorn")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class RecordingService:
    """A service's back-channel endpoint: records POSTed single-logout requests and proxy callbacks."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.posts: list[tuple[str, bytes]] = []
        self.gets: list[str] = []
        self._event = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder._event:
                    recorder.posts.append((self.path, body))
                    recorder._event.notify_all()
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                with recorder._event:
                    recorder.gets.append(self.path)
                    recorder._event.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        with self._event:
            if not self._event.wait_for(predicate, timeout):
                raise TimeoutError("expected request not received")
