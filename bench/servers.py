"""Servers the bench starts: any WSGI app under gunicorn with the production worker model, and Redis.

Every server listens on a free loopback port, logs to a file in the results folder, is polled until
it answers (with a deadline), and is stopped with SIGTERM, then SIGKILL, by its own pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import procstat
from tests.support.ports import LOOPBACK, free_port

#: The production worker model on a 2-core machine (README, Operations): one process per core,
#: several threads each, since a sign-in mostly waits on LDAP.
WORKERS = 2
THREADS = 8


class ServerError(RuntimeError):
    """A server did not start; carries the tail of its log."""


def _log_tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-size:]
    except FileNotFoundError:
        return ""


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class Gunicorn:
    """A WSGI app under gunicorn (``gthread``, :data:`WORKERS` × :data:`THREADS`).

    :param app: the gunicorn app spec, e.g. ``sso.app:create_app()``.
    :param env: extra environment (the app's configuration).
    :param log: where gunicorn and the app write.
    :param cwd: working folder of the server (Django's project folder).
    """

    app: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    workers: int = WORKERS
    threads: int = THREADS
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def pids(self) -> list[int]:
        """The master and its workers."""
        return procstat.group(self.pid) if self.process is not None else []

    def worker_pids(self) -> list[int]:
        return procstat.children(self.pid) if self.process is not None else []

    def start(self, ready_path: str = "/", timeout: float = 60.0) -> Gunicorn:
        """Start and wait until every worker answers ``ready_path`` (any status below 500).

        :raises ServerError: gunicorn exited or did not answer in time.
        """
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            "gthread",
            "--graceful-timeout",
            "3",
            "--no-control-socket",  # several gunicorns run at once here: no shared ~/.gunicorn socket
            self.app,
        ]
        env = {**os.environ, **self.env}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.cwd
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"gunicorn {self.app} exited: {_log_tail(self.log)}")
            if len(self.worker_pids()) >= self.workers and self._answers(ready_path):
                # Each worker loads the app after fork: ask a few times so both have answered.
                for _ in range(4 * self.workers):
                    self._answers(ready_path)
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"gunicorn {self.app} did not answer within {timeout:.0f} s: {_log_tail(self.log)}")

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310 - loopback
                return bool(response.status < 500)
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@dataclass
class Redis:
    """A private redis-server on a loopback port: no persistence, its own folder."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 15.0) -> Redis:
        """:raises ServerError: redis-server is missing, exited or did not answer."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(log),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import redis  # the redis extra; only needed with --redis

        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"redis-server exited: {_log_tail(log)}")
                try:
                    if client.ping():
                        return self
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise ServerError(f"redis-server did not answer within {timeout:.0f} s")

    def used_memory(self) -> int:
        """Bytes Redis holds for its data (``INFO memory`` ``used_memory``)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
