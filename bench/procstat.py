"""CPU time and resident memory of server processes, read from ``/proc`` (Linux).

- CPU: ``utime + stime`` of ``/proc/<pid>/stat`` (fields 14 and 15, in clock ticks). For a process
  group (gunicorn's master and its workers) the master's ``cutime + cstime`` is added, so a worker
  that died and was reaped during a run still counts.
- Memory: ``VmRSS`` of ``/proc/<pid>/status``, summed over the group (what the issue's targets are
  stated in; pages shared by the master and its workers count once per process), and ``Pss`` of
  ``/proc/<pid>/smaps_rollup`` (shared pages split between the processes sharing them: the group's
  real footprint). :class:`RssSampler` keeps the peaks of samples taken every 100 ms.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Clock ticks per second (``USER_HZ``), the unit of the CPU fields of ``/proc/<pid>/stat``.
TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by a process (and, for a group leader, its reaped children)."""

    #: User plus system seconds of the process itself.
    own: float
    #: User plus system seconds of its children that exited and were waited for.
    reaped: float

    @property
    def total(self) -> float:
        """Both together."""
        return self.own + self.reaped


def _stat_fields(pid: int) -> list[str]:
    text = (PROC / str(pid) / "stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
    return text[text.rindex(")") + 2 :].split()


def cpu_times(pid: int) -> CpuTimes:
    """CPU times of ``pid``.

    :raises FileNotFoundError: the process is gone.
    """
    fields = _stat_fields(pid)
    # After the command name, field 3 (state) is index 0: utime=14 -> 11, stime=15 -> 12, cutime, cstime.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return CpuTimes(own=(utime + stime) / TICKS, reaped=(cutime + cstime) / TICKS)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc/<pid>/task/*/children``, else a scan of ``/proc``)."""
    found: list[int] = []
    tasks = PROC / str(pid) / "task"
    try:
        for task in tasks.iterdir():
            text = (task / "children").read_text()
            found.extend(int(value) for value in text.split())
        return found
    except FileNotFoundError:
        pass
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return found


def group(leader: int) -> list[int]:
    """``leader`` and its direct children (gunicorn: the master and its workers)."""
    return [leader, *children(leader)]


def group_cpu(leader: int) -> float:
    """CPU seconds of a process group so far: every member's own time plus the leader's reaped children."""
    total = 0.0
    for pid in group(leader):
        try:
            times = cpu_times(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += times.total if pid == leader else times.own
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 if it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes (0 if it is gone or the kernel has no smaps_rollup)."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def group_rss(pids: Iterable[int]) -> int:
    """Sum of the resident sizes of ``pids``."""
    return sum(rss_bytes(pid) for pid in pids)


def group_pss(pids: Iterable[int]) -> int:
    """Sum of the proportional set sizes of ``pids``."""
    return sum(pss_bytes(pid) for pid in pids)


class RssSampler:
    """Samples the summed RSS and PSS of a process group every ``interval`` seconds and keeps the peaks.

    :param members: returns the pids to sum at each sample (the group may change).
    """

    def __init__(self, members: Callable[[], list[int]], interval: float = 0.1) -> None:
        self._members = members
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._lock = threading.Lock()
        #: Highest RSS sum seen since the last :meth:`reset_peak`, in bytes.
        self.peak = 0
        #: Highest PSS sum seen, in bytes.
        self.peak_pss = 0

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            members = self._members()
            rss, pss = group_rss(members), group_pss(members)
            with self._lock:
                self.peak = max(self.peak, rss)
                self.peak_pss = max(self.peak_pss, pss)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def reset_peak(self) -> None:
        """Forget the peak (e.g. once the idle size was read)."""
        with self._lock:
            self.peak = 0
            self.peak_pss = 0

    def stop(self) -> int:
        """Stop sampling; return the peak in bytes."""
        self._stop.set()
        self._thread.join(5)
        return self.peak
