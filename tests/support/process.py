"""What every server the tests run shares: a child process that can be frozen, thawed, killed,
stopped and cleaned up, with its output in a log file in its own folder."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path


class ServerProcess:
    """Base of the slapd and Redis launchers; subclasses start ``self.process`` and set ``self._log``."""

    workdir: Path
    process: subprocess.Popen[bytes] | None
    _log: Path
    _frozen: bool

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def freeze(self) -> None:
        """Suspend it (SIGSTOP): the kernel still accepts TCP connections, nothing answers them,
        like a hung server."""
        if self.running and self.process is not None:
            self.process.send_signal(signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        """Resume a frozen server (SIGCONT)."""
        if self.process is not None and self._frozen:
            self.process.send_signal(signal.SIGCONT)
            self._frozen = False

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        if self.process is None:
            return
        self.thaw()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it cleanly (SIGTERM), killing it if it does not exit in time."""
        if self.process is None:
            return
        self.thaw()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, size: int = 2000) -> str:
        """The end of the server's output."""
        try:
            return self._log.read_text(encoding="utf-8", errors="replace")[-size:]
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        """Stop it and remove its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
