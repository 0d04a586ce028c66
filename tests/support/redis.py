"""A private ``redis-server`` for integration tests, in the style of :mod:`tests.support.slapd`.

Each :class:`RedisServer` owns a temporary folder and a loopback port, runs without persistence
(``--save "" --appendonly no``: a restart starts empty, as a crashed cache would) and can be
killed, frozen and restarted on the same port. The Debian system instance, if any, is never
touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.support.ports import LOOPBACK, accepts_connections, free_port
from tests.support.process import ServerProcess

#: Environment variable that turns "skip, redis-server missing" into a failure (CI).
REQUIRE_ENV = "SSO_REQUIRE_SERVERS"


def require_redis() -> str:
    """Path of ``redis-server``; skips the calling test when missing (fails under CI)."""
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if os.access(path, os.X_OK):
        return path
    reason = "redis-server is not installed (apt-get install redis-server)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason + f" and {REQUIRE_ENV}=1")
    pytest.skip(reason)


class RedisError(RuntimeError):
    """redis-server did not start; carries its log's tail."""


class RedisServer(ServerProcess):
    """One private redis-server. ``start()``/``stop()``/``kill()``/``freeze()`` freely.

    :param workdir: a folder owned by this instance (created if missing).
    :param start_timeout: seconds to wait for the server to answer ``PING``.
    """

    def __init__(self, workdir: Path, start_timeout: float = 15.0) -> None:
        self.binary = require_redis()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "redis.log"
        self._started_once = False
        self._frozen = False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` (database 0; append ``/N`` for another)."""
        return f"redis://{LOOPBACK}:{self.port}"

    def start(self) -> RedisServer:
        """Start (again, on the same port once started) and wait for ``PING``.

        :raises RedisError: it exited or did not answer in time.
        """
        if self.running:
            return self
        for attempt in range(3):
            log = self._log.open("ab")
            try:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        "--port",
                        str(self.port),
                        "--bind",
                        LOOPBACK,
                        "--dir",
                        str(self.workdir),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--protected-mode",
                        "no",
                        "--daemonize",
                        "no",
                        "--logfile",
                        "",
                    ],  # fmt: skip
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                log.close()
            try:
                self._wait_ready()
            except RedisError:
                self.kill()
                if "Address already in use" not in self.log_tail() or self._started_once or attempt == 2:
                    raise
                self.port = free_port()  # lost the race for the port: only before the first start
                continue
            self._started_once = True
            return self
        raise RedisError("unreachable")  # pragma: no cover

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RedisError(f"redis-server exited: {self.log_tail()}")
            if accepts_connections(LOOPBACK, self.port) and self._answers():
                return
            time.sleep(0.02)
        raise RedisError(f"redis-server did not answer within {self.start_timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        with redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1, socket_connect_timeout=1) as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def client(self, db: int = 0) -> redis.Redis:
        """A client for the tests' own look (close it, or use it in ``with``)."""
        return redis.Redis(host=LOOPBACK, port=self.port, db=db, socket_timeout=5, socket_connect_timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()
