"""The results: one row per (target, scenario, concurrency), the table printed, the JSON kept.

Ratios are computed at the end from the rows of the same run: ``×ceil`` is flows/s over the
ceiling's for the same scenario and concurrency, ``p99/ceil`` the p99 over the ceiling's, ``×peer``
flows/s over django-cas-server's, and ``×floor`` flows/s over the machine's floor for that flow:
the bare-Flask requests/s divided by the requests in the flow (and, for a cold login, no more than
the raw ldap3 search + bind rate).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Requests per flow, for the ``×floor`` ratio.
REQUESTS = {"cold-login": 3, "sso-login": 2, "validate": 1, "link-request": 2, "bare": 1, "search+bind": 1}
#: The targets, in the table's order.
ORDER = ("ldap3-floor", "bare-flask", "ceiling", "django-cas-server", "sso")
SCENARIOS = ("search+bind", "bare", "cold-login", "sso-login", "validate", "link-request")


@dataclass(frozen=True)
class Row:
    """What one measured run gave."""

    target: str
    scenario: str
    concurrency: int
    #: Flows that ended successfully inside the window.
    flows: int
    #: Length of the window, seconds.
    window: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: Failed flows in the window, by reason.
    errors: dict[str, int]
    #: CPU of the server processes (gunicorn master and workers; the floor's processes) per flow.
    server_cpu_ms: float
    #: CPU of slapd per flow.
    slapd_cpu_ms: float
    #: CPU of the load generator, in % of one core, during the window.
    generator_cpu_pct: float
    #: CPU of redis-server per flow, with ``--redis``.
    redis_cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        """Flows per second."""
        return self.flows / self.window if self.window else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class Memory:
    """Summed RSS of a target's server processes."""

    target: str
    idle_mb: float
    peak_mb: float
    #: The same in PSS (shared pages divided between the processes sharing them).
    idle_pss_mb: float = 0.0
    peak_pss_mb: float = 0.0


@dataclass
class Report:
    """Everything one run measured, and the notes (failures, skipped targets)."""

    settings: dict[str, object]
    rows: list[Row] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    store: dict[str, object] = field(default_factory=dict)

    def find(self, target: str, scenario: str, concurrency: int) -> Row | None:
        for row in self.rows:
            if (row.target, row.scenario, row.concurrency) == (target, scenario, concurrency):
                return row
        return None

    def floor_rate(self, row: Row) -> float | None:
        bare = self.find("bare-flask", "bare", row.concurrency)
        rates = [bare.rate / REQUESTS[row.scenario]] if bare and bare.rate else []
        if row.scenario == "cold-login":
            ldap = self.find("ldap3-floor", "search+bind", row.concurrency)
            if ldap and ldap.rate:
                rates.append(ldap.rate)
        return min(rates) if rates else None

    def ratios(self, row: Row) -> tuple[str, str, str, str]:
        """``×floor``, ``×ceil``, ``p99/ceil``, ``×peer`` of ``row`` (``-``: nothing to compare with)."""

        def ratio(value: float | None, reference: float | None) -> str:
            return f"{value / reference:.2f}" if value and reference else "-"

        floor = ratio(row.rate, self.floor_rate(row)) if row.scenario not in ("bare", "search+bind") else "-"
        ceiling = self.find("ceiling", row.scenario, row.concurrency)
        peer = self.find("django-cas-server", row.scenario, row.concurrency)
        own = row.target in ("ceiling",)
        return (
            floor,
            "-" if own or ceiling is None else ratio(row.rate, ceiling.rate),
            "-" if own or ceiling is None else ratio(row.p99_ms, ceiling.p99_ms),
            "-" if row.target == "django-cas-server" or peer is None else ratio(row.rate, peer.rate),
        )

    def table(self) -> str:
        """The table, as printed."""
        header = (
            "target",
            "scenario",
            "conc",
            "flows/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            "srv cpu ms/flow",
            "slapd cpu ms/flow",
            "×floor",
            "×ceil",
            "p99/ceil",
            "×peer",
            "gen cpu %",
        )
        with_redis = any(row.redis_cpu_ms is not None for row in self.rows)
        if with_redis:
            header = (*header[:10], "redis cpu ms/flow", *header[10:])
        body = []
        ordered = sorted(
            self.rows,
            key=lambda r: (
                SCENARIOS.index(r.scenario) if r.scenario in SCENARIOS else 99,
                r.concurrency,
                ORDER.index(r.target) if r.target in ORDER else 99,
            ),
        )
        for row in ordered:
            redis = (
                () if not with_redis else ("-" if row.redis_cpu_ms is None else f"{row.redis_cpu_ms:.2f}",)
            )
            body.append(
                (
                    row.target,
                    row.scenario,
                    str(row.concurrency),
                    f"{row.rate:.0f}",
                    f"{row.p50_ms:.1f}",
                    f"{row.p95_ms:.1f}",
                    f"{row.p99_ms:.1f}",
                    str(row.error_count),
                    f"{row.server_cpu_ms:.2f}",
                    f"{row.slapd_cpu_ms:.2f}",
                    *redis,
                    *self.ratios(row),
                    f"{row.generator_cpu_pct:.0f}",
                )
            )
        widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
            )
            for line in (header, *body)
        ]
        lines.insert(1, "-" * len(lines[0]))
        if self.memory:
            lines += ["", "Memory of the server processes (gunicorn master + workers), summed RSS (PSS):"]
            lines += [
                f"  {m.target:<20} idle {m.idle_mb:6.1f} MB ({m.idle_pss_mb:5.1f})   "
                f"peak under load {m.peak_mb:6.1f} MB ({m.peak_pss_mb:5.1f})"
                for m in self.memory
            ]
        if self.store:
            lines += ["", "Ticket store: " + ", ".join(f"{key} {value}" for key, value in self.store.items())]
        failures = [
            (row.target, row.scenario, row.concurrency, row.errors) for row in self.rows if row.errors
        ]
        if failures:
            lines += ["", "Errors by reason:"]
            lines += [f"  {t} {s} c={c}: {e}" for t, s, c, e in failures]
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "settings": self.settings,
                "machine": machine(),
                "rows": [{**asdict(row), "rate": row.rate} for row in self.rows],
                "memory": [asdict(m) for m in self.memory],
                "store": self.store,
                "notes": self.notes,
            },
            indent=2,
        )


def machine() -> dict[str, object]:
    """What the numbers were taken on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }
