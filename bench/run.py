"""``python -m bench``: measure the SSO against this machine's floors and the Python peer, in one run.

In order: a private slapd seeded with ``--accounts`` generated accounts (and Redis with
``--redis``); the raw ldap3 floor; the bare-Flask floor; the minimal login flow (the ceiling);
django-cas-server (unless ``--no-peer``); the SSO (with ``--tickets`` live tickets put in its
store first). Each server runs under gunicorn with the production worker model, alone on the
machine while it is measured. Each (scenario, concurrency) gets a warm-up, then a window of
``--duration`` seconds. That sequence is run ``--rounds`` times (servers started afresh each time)
and each cell of the table sums its rounds: one round is at the mercy of how the virtual users'
keep-alive connections happened to fall on the two workers, and of the machine's drift; rounds
interleaved spread both over every target alike. The table goes to standard output and, with the JSON of every figure and
the servers' logs, to ``bench/results/<time>/`` (``bench/results/latest.txt`` is the last table).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import loadgen, procstat
from bench import profile as profiling
from bench.accounts import Picker, start_directory
from bench.ldapfloor import command as floor_command
from bench.loadgen import Outcome, Plan, Scenario
from bench.report import Memory, Report, Row
from bench.servers import THREADS, WORKERS, Redis, ServerError
from bench.targets import TICKET_MARGIN, Bare, Ceiling, PeerTarget, Sso, Target
from tests.support.slapd import Slapd

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIO_NAMES = {scenario.value: scenario for scenario in Scenario if scenario is not Scenario.BARE}


@dataclass(frozen=True)
class Options:
    """The command line, read."""

    accounts: int
    duration: float
    warmup: float
    concurrency: tuple[int, ...]
    scenarios: tuple[Scenario, ...]
    tickets: int
    redis: bool
    peer: bool
    floors: bool
    ceiling: bool
    profile: bool
    timeout: float
    validate_rate: int
    threads: int
    results: Path
    smoke: bool
    rounds: int


@dataclass
class _Cell:
    """One cell of the table: the sums of its rounds."""

    outcome: Outcome = field(default_factory=Outcome)
    server_cpu: float = 0.0
    slapd_cpu: float = 0.0
    generator_cpu: float = 0.0
    redis_cpu: float | None = None


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds: 100 accounts, 2 s per scenario, concurrency 8, no peer (CI)",
    )
    parser.add_argument("--accounts", type=int, help="accounts in the directory (default 10000)")
    parser.add_argument(
        "--duration", type=float, help="seconds measured per scenario, concurrency and round (default 5)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="times the whole sequence of targets is run, each cell summing its rounds (default 3; 1 with --smoke or --tickets)",
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds of unmeasured load before each window (default 2)"
    )
    parser.add_argument("--concurrency", help="virtual users, comma-separated (default 8,32)")
    parser.add_argument(
        "--scenarios", help=f"comma-separated, among {', '.join(SCENARIO_NAMES)} (default: all)"
    )
    parser.add_argument(
        "--tickets", type=int, default=0, help="live tickets put in the SSO's store before the run"
    )
    parser.add_argument("--redis", action="store_true", help="tickets (and throttling) in a private Redis")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure django-cas-server too (default: yes, no with --smoke)",
    )
    parser.add_argument(
        "--floors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the ldap3 and bare-Flask floors (default: yes)",
    )
    parser.add_argument(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the minimal login flow, the ceiling the ratios are taken to (default: yes)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then profile the SSO's workers with py-spy (cold login, validation)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request fails")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help=f"gunicorn threads per worker, for every target (default {THREADS}, as in production)",
    )
    parser.add_argument(
        "--validate-rate",
        type=int,
        default=4000,
        help="validations/s to pre-issue tickets for (more are issued than this rate needs)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results")
    args = parser.parse_args(argv)
    smoke = args.smoke
    concurrency = args.concurrency or ("8" if smoke else "8,32")
    names = [name.strip() for name in (args.scenarios or ",".join(SCENARIO_NAMES)).split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIO_NAMES]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose among {', '.join(SCENARIO_NAMES)}")
    return Options(
        accounts=args.accounts or (100 if smoke else 10_000),
        duration=args.duration or (2.0 if smoke else 5.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if smoke else 2.0),
        concurrency=tuple(int(value) for value in concurrency.split(",")),
        scenarios=tuple(SCENARIO_NAMES[name] for name in names),
        tickets=args.tickets,
        redis=args.redis,
        peer=args.peer if args.peer is not None else not smoke,
        floors=args.floors,
        ceiling=args.ceiling,
        profile=args.profile,
        timeout=args.timeout,
        validate_rate=args.validate_rate,
        threads=args.threads,
        results=args.results,
        smoke=smoke,
        rounds=max(1, args.rounds or (1 if smoke or args.tickets else 3)),
    )


class Bench:
    """One run: the directory, the targets one after the other, the report."""

    def __init__(self, options: Options, folder: Path, slapd: Slapd, redis: Redis | None) -> None:
        assert slapd.process is not None, "slapd is not running"
        self.options = options
        self.folder = folder
        self.slapd_pid = slapd.process.pid
        self.slapd = slapd
        self.redis = redis
        self.report = Report(settings={key: str(value) for key, value in options.__dict__.items()})
        self.picker = Picker(options.accounts)
        #: (target, scenario, concurrency) -> the sums of its rounds, in first-measured order.
        self._cells: dict[tuple[str, str, int], _Cell] = {}
        self._memory: dict[str, Memory] = {}

    def _say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _slapd_cpu(self) -> float:
        return procstat.cpu_times(self.slapd_pid).own

    def _redis_cpu(self) -> float:
        return procstat.cpu_times(self.redis.pid).own if self.redis is not None else 0.0

    # -- the floors ---------------------------------------------------------------------------

    def ldap_floor(self) -> None:
        options = self.options
        for concurrency in options.concurrency:
            threads = max(1, concurrency // WORKERS)
            opens = time.time() + 1.0 + options.warmup
            closes = opens + options.duration
            processes = [
                subprocess.Popen(
                    floor_command(self.slapd.url, threads, options.accounts, opens, closes, n + 1),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for n in range(WORKERS)
            ]
            time.sleep(max(0.0, opens - time.time()))
            slapd_start = self._slapd_cpu()
            time.sleep(max(0.0, closes - time.time()))
            slapd_cpu = self._slapd_cpu() - slapd_start
            outcome = Outcome(window=options.duration)
            cpu = 0.0
            for process in processes:
                out, err = process.communicate(timeout=options.duration + 60)
                if process.returncode != 0:
                    self.report.notes.append(
                        f"ldap3 floor process failed: {err.decode(errors='replace')[-400:]}"
                    )
                    continue
                data = json.loads(out)
                outcome.latencies.extend(data["latencies"])
                outcome.errors.update(data["errors"])
                cpu += data["cpu"]
            self._add_row("ldap3-floor", "search+bind", concurrency, outcome, cpu, slapd_cpu)

    # -- gunicorn targets ---------------------------------------------------------------------

    def measure(self, target: Target, scenario: Scenario, concurrency: int) -> None:
        options = self.options
        assert target.server is not None
        tickets = None
        if scenario is Scenario.VALIDATE:
            rate = (
                options.validate_rate
                if target.name != "django-cas-server"
                else max(500, options.validate_rate // 4)
            )
            count = int(rate * (options.warmup + options.duration) * 1.2) + 100
            self._say(f"   pre-issuing {count} tickets")
            tickets = target.issue(count, self.picker, options.warmup + options.duration + TICKET_MARGIN)
        marks: dict[str, float] = {}
        leader = target.server.pid

        def opened() -> None:
            marks["server"], marks["slapd"] = procstat.group_cpu(leader), self._slapd_cpu()
            marks["redis"] = self._redis_cpu()

        def closed() -> None:
            marks["server"] = procstat.group_cpu(leader) - marks["server"]
            marks["slapd"] = self._slapd_cpu() - marks["slapd"]
            marks["redis"] = self._redis_cpu() - marks["redis"]

        plan = Plan(
            site=target.site(),
            scenario=scenario,
            concurrency=concurrency,
            duration=options.duration,
            warmup=options.warmup,
            picker=self.picker,
            tickets=tickets,
            timeout=options.timeout,
            on_window_start=opened,
            on_window_end=closed,
        )
        outcome = loadgen.run(plan)
        if outcome.exhausted:
            outcome.errors["tickets-exhausted"] += outcome.exhausted
            self.report.notes.append(
                f"{target.name} validate c={concurrency}: pre-issued tickets ran out; raise --validate-rate"
            )
        self._add_row(
            target.name,
            scenario.value,
            concurrency,
            outcome,
            marks["server"],
            marks["slapd"],
            outcome.generator_cpu,
            marks["redis"] if self.redis is not None and target.name in ("ceiling", "sso") else None,
        )

    def _add_row(
        self,
        target: str,
        scenario: str,
        concurrency: int,
        outcome: Outcome,
        server_cpu: float,
        slapd_cpu: float,
        generator_cpu: float = 0.0,
        redis_cpu: float | None = None,
    ) -> None:
        """Add one round's window to its cell (see :meth:`rows`)."""
        flows = len(outcome.latencies)
        self._say(
            f"   {target} {scenario} c={concurrency}: {flows / outcome.window if outcome.window else 0:.0f} "
            f"flows/s, p99 {1000 * loadgen.percentile(outcome.latencies, 0.99):.1f} ms, "
            f"{sum(outcome.errors.values())} errors"
        )
        cell = self._cells.setdefault((target, scenario, concurrency), _Cell())
        cell.outcome.latencies.extend(outcome.latencies)
        cell.outcome.errors.update(outcome.errors)
        cell.outcome.window += outcome.window
        cell.server_cpu += server_cpu
        cell.slapd_cpu += slapd_cpu
        cell.generator_cpu += generator_cpu
        cell.redis_cpu = None if redis_cpu is None else (cell.redis_cpu or 0.0) + redis_cpu

    def rows(self) -> list[Row]:
        """The table's rows: each cell's rounds summed (flows over the summed windows, latencies
        pooled, CPU over all its flows)."""
        rows = []
        for (target, scenario, concurrency), cell in self._cells.items():
            outcome = cell.outcome
            flows = len(outcome.latencies)
            per_flow = 1000.0 / flows if flows else 0.0
            rows.append(
                Row(
                    target=target,
                    scenario=scenario,
                    concurrency=concurrency,
                    flows=flows,
                    window=outcome.window,
                    p50_ms=1000 * loadgen.percentile(outcome.latencies, 0.50),
                    p95_ms=1000 * loadgen.percentile(outcome.latencies, 0.95),
                    p99_ms=1000 * loadgen.percentile(outcome.latencies, 0.99),
                    errors=dict(outcome.errors),
                    server_cpu_ms=cell.server_cpu * per_flow,
                    slapd_cpu_ms=cell.slapd_cpu * per_flow,
                    generator_cpu_pct=100.0 * cell.generator_cpu / outcome.window if outcome.window else 0.0,
                    redis_cpu_ms=None if cell.redis_cpu is None else cell.redis_cpu * per_flow,
                )
            )
        return rows

    @contextlib.contextmanager
    def running(self, target: Target) -> Iterator[procstat.RssSampler | None]:
        """Start ``target``, sample its memory, stop it; a failure to start becomes a note."""
        self._say(f"== {target.name}")
        try:
            target.start(self.options.threads)
        except (ServerError, RuntimeError) as error:
            self.report.notes.append(f"{target.name} did not start: {str(error)[-600:]}")
            self._say(f"   did not start: {str(error)[-600:]}")
            target.stop()
            yield None
            return
        assert target.server is not None
        server = target.server
        members = server.pids()
        idle, idle_pss = procstat.group_rss(members), procstat.group_pss(members)
        sampler = procstat.RssSampler(server.pids).start()
        try:
            yield sampler
        finally:
            peak = sampler.stop()
            target.stop()
            _tidy(target.folder)
            mb = 2**20
            measured = Memory(
                target.name,
                idle / mb,
                max(peak, idle) / mb,
                idle_pss / mb,
                max(sampler.peak_pss, idle_pss) / mb,
            )
            seen = self._memory.get(target.name)
            if seen is not None:  # another round: the smallest idle, the highest peak
                measured = Memory(
                    target.name,
                    min(seen.idle_mb, measured.idle_mb),
                    max(seen.peak_mb, measured.peak_mb),
                    min(seen.idle_pss_mb, measured.idle_pss_mb),
                    max(seen.peak_pss_mb, measured.peak_pss_mb),
                )
            self._memory[target.name] = measured

    def run_target(self, target: Target) -> None:
        with self.running(target) as sampler:
            if sampler is None:
                return
            wanted = [s for s in target.scenarios if s is Scenario.BARE or s in self.options.scenarios]
            for scenario in wanted:
                for concurrency in self.options.concurrency:
                    self.measure(target, scenario, concurrency)

    def run_sso(self) -> None:
        lifetime = self.options.warmup + self.options.duration + TICKET_MARGIN
        target = Sso(self.folder / "sso", self.slapd, self.redis, st_lifetime=lifetime)
        with self.running(target) as sampler:
            if sampler is None:
                return
            if self.options.tickets:
                self._say(f"   putting {self.options.tickets} live tickets in the store")
                before = target.store_bytes()
                started = time.monotonic()
                target.prefill(self.options.tickets, self.picker)
                grown = target.store_bytes() - before
                self.report.store.update(
                    {
                        "backend": "redis" if self.redis else "sqlite",
                        "live tickets added": self.options.tickets,
                        "bytes per live ticket": round(grown / self.options.tickets),
                        "fill seconds": round(time.monotonic() - started, 1),
                    }
                )
            wanted = [s for s in target.scenarios if s in self.options.scenarios]
            for scenario in wanted:
                if scenario is Scenario.LINK and self.options.profile:
                    self.profile(target)  # before the link requests leave mail to send in the background
                for concurrency in self.options.concurrency:
                    self.measure(target, scenario, concurrency)
            if self.options.profile and Scenario.LINK not in wanted:
                self.profile(target)

    def profile(self, target: Sso) -> None:
        """py-spy on both workers during a cold-login and a validation run (not in the table)."""
        try:
            profiling.py_spy()
        except profiling.ProfileError as error:
            self.report.notes.append(f"no profile: {error}")
            return
        folder = self.folder / "profile"
        summaries = [
            self._profile_one(target, scenario, folder) for scenario in (Scenario.COLD, Scenario.VALIDATE)
        ]
        path = folder / "summary.txt"
        path.write_text("\n".join(text for text in summaries if text), encoding="utf-8")
        self.report.notes.append(f"profile summary: {path}")

    def _profile_one(self, target: Sso, scenario: Scenario, folder: Path) -> str | None:
        server = target.server
        assert server is not None
        options = self.options
        concurrency = options.concurrency[0]
        self._say(f"   profiling {scenario.value} c={concurrency}")
        tickets = None
        if scenario is Scenario.VALIDATE:
            count = int(options.validate_rate * (options.duration + 1) * 1.2)
            tickets = target.issue(count, self.picker, options.duration + TICKET_MARGIN)
        recorders: list[subprocess.Popen[bytes]] = []

        def start_recording() -> None:
            recorders.extend(profiling.start(server.worker_pids(), options.duration, folder, scenario.value))

        plan = Plan(
            site=target.site(),
            scenario=scenario,
            concurrency=concurrency,
            duration=options.duration,
            warmup=1.0,
            picker=self.picker,
            tickets=tickets,
            timeout=options.timeout,
            on_window_start=start_recording,
        )
        loadgen.run(plan)
        try:
            paths = profiling.finish(recorders)
        except profiling.ProfileError as error:
            self.report.notes.append(f"profile of {scenario.value} failed: {error}")
            return None
        return profiling.summarize(paths, f"sso {scenario.value} c={concurrency}")

    def run(self) -> Report:
        options = self.options
        for round_ in range(1, options.rounds + 1):
            if options.rounds > 1:
                self._say(f"== round {round_} of {options.rounds}")
            if options.floors:
                self._say("== ldap3-floor")
                self.ldap_floor()
                self.run_target(Bare(self.folder / "bare"))
            if options.ceiling:
                self.run_target(Ceiling(self.folder / "ceiling", self.slapd, self.redis))
            if options.peer:
                validity = int(options.warmup + options.duration + TICKET_MARGIN + 600)
                self.run_target(PeerTarget(self.folder / "peer", self.slapd, validity))
            self.run_sso()
            if options.profile:  # once is enough
                options = self.options = dataclasses.replace(options, profile=False)
        self.report.rows = self.rows()
        self.report.memory = list(self._memory.values())
        return self.report


#: What a run leaves that is of no use afterwards (and weighs hundreds of MB): ticket stores, the
#: peer's database, mail written by the link requests, the audit log, the generated LDIF.
LEFTOVERS = ("**/*.db", "**/*.db-wal", "**/*.db-shm", "**/db.sqlite3*", "**/audit.log", "**/accounts.ldif")
LEFTOVER_FOLDERS = ("**/outbox", "**/mail-queue")


def _tidy(folder: Path) -> None:
    for pattern in LEFTOVERS:
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
    for pattern in LEFTOVER_FOLDERS:
        for path in folder.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and print the table.

    :return: 0 if every flow succeeded, 1 if some failed or a target did not start, 2 if it could not run.
    """
    from tests.support.slapd import SLAPADD, SLAPD, SlapdError

    options = parse(argv)
    missing = [str(path) for path in (SLAPD, SLAPADD) if not path.exists()]
    if missing:
        print(
            f"bench: OpenLDAP is not installed ({', '.join(missing)}): apt-get install slapd ldap-utils",
            file=sys.stderr,
        )
        return 2
    folder = options.results / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"== directory: {options.accounts} accounts (results in {folder})", file=sys.stderr, flush=True)
    redis: Redis | None = None
    try:
        slapd = start_directory(folder / "directory", options.accounts)
    except SlapdError as error:
        print(f"bench: slapd did not start: {error}", file=sys.stderr)
        return 2
    try:
        if options.redis:
            redis = Redis(folder / "redis").start()
        report = Bench(options, folder, slapd, redis).run()
    except ServerError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    finally:
        if redis is not None:
            redis.stop()
        slapd.cleanup()
        _tidy(folder / "directory")
    table = report.table()
    print(table)
    (folder / "table.txt").write_text(table + "\n", encoding="utf-8")
    (folder / "results.json").write_text(report.to_json(), encoding="utf-8")
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / "latest.txt").write_text(table + "\n", encoding="utf-8")
    failed = any(row.errors for row in report.rows) or any("did not start" in note for note in report.notes)
    return 1 if failed else 0
