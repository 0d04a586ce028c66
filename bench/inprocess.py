"""``python -m bench.inprocess``: CPU per request of the SSO's flows, in one process, no load.

The SSO app is built as under gunicorn (same configuration, a private slapd) and driven through
Flask's test client, one flow after another: GET the form, POST the credentials, validate; then an
SSO GET and its validation. Each request's CPU time (``time.process_time``) is averaged. No server,
no concurrency, no other process competing: the least noisy way to see whether a change saved CPU
on the hot paths, even on a busy machine. The minimal login flow (:mod:`bench.ceiling`) is measured
the same way on the same slapd, in alternating batches: the ratio of the two is the CPU the SSO adds.
``--profile FILE`` also writes a cProfile of the measured flows (``python -m pstats FILE``). The
test client adds a little of its own to every request.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from bench.accounts import Person, start_directory
from bench.loadgen import hidden_fields
from bench.targets import SERVICE, Ceiling, Sso
from tests.support.slapd import Slapd

#: What is timed, in flow order.
STEPS = ("GET /login (form)", "POST /login", "validate", "GET /login (SSO)", "validate (SSO ticket)")


def _ticket(location: str) -> str:
    return parse_qs(urlsplit(location).query)["ticket"][0]


def flows(app: object, count: int, accounts: int) -> Iterator[tuple[float, ...]]:
    """Run ``count`` flows; yield the CPU seconds of each step."""
    login = "/login?service=" + quote(SERVICE, safe="")
    for index in range(count):
        person = Person(index % accounts)
        client = app.test_client()  # type: ignore[attr-defined]
        times = []
        started = time.process_time()
        page = client.get(login)
        times.append(time.process_time() - started)
        fields = hidden_fields(page.get_data(as_text=True))
        fields.update(username=person.login, password=person.password)
        started = time.process_time()
        answer = client.post(login, data=fields)
        times.append(time.process_time() - started)
        for request in ("validate", "sso", "validate"):
            started = time.process_time()
            if request == "sso":
                answer = client.get(login)
            else:
                query = {"ticket": _ticket(answer.headers["Location"]), "service": SERVICE}
                checked = client.get("/p3/serviceValidate", query_string=query)
                if b"authenticationSuccess" not in checked.data:
                    raise RuntimeError(f"validation failed: {checked.data[:300]!r}")
            times.append(time.process_time() - started)
        yield tuple(times)


def _sso(folder: Path, slapd: Slapd) -> Any:
    from sso.app import create_app
    from tests.support.appconfig import write_config

    target = Sso(folder / "sso", slapd)
    (target.folder / "var").mkdir(exist_ok=True)
    return create_app(write_config(target.folder, target.config(8000)))


def _ceiling(folder: Path, slapd: Slapd) -> Any:
    from bench import ceiling

    env = Ceiling(folder / "ceiling", slapd).environment()
    os.environ.update(env)
    return ceiling.create_app()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="flows measured per app (after 50 unmeasured)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the SSO's measured flows here")
    args = parser.parse_args(argv)

    rows: dict[str, list[tuple[float, ...]]] = {"sso": [], "ceiling": []}
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp:
        folder = Path(tmp)
        slapd = start_directory(folder / "directory", args.accounts)
        try:
            apps = {"sso": _sso(folder, slapd), "ceiling": _ceiling(folder, slapd)}
            for app in apps.values():
                for _ in flows(app, 50, args.accounts):
                    pass
            profiler = cProfile.Profile() if args.profile else None
            # Alternate small batches: drift in the machine's speed hits both apps alike.
            for _ in range(0, args.count, 10):
                for name, app in apps.items():
                    if profiler and name == "sso":
                        profiler.enable()
                    rows[name].extend(flows(app, 10, args.accounts))
                    if profiler and name == "sso":
                        profiler.disable()
            if profiler:
                profiler.dump_stats(args.profile)
            apps["sso"].extensions["sso"].close()
        finally:
            slapd.cleanup()
    steps = [(name, [step]) for step, name in enumerate(STEPS)]
    steps += [("cold login (3 requests)", [0, 1, 2]), ("SSO login (2 requests)", [3, 4])]
    print(f"{'median CPU ms':24} {'SSO':>7} {'ceiling':>7} {'ratio':>6}")
    for label, indexes in steps:
        sso, ceiling = (
            1000 * _median([sum(row[i] for i in indexes) for row in rows[name]])
            for name in ("sso", "ceiling")
        )
        print(f"{label:24} {sso:7.2f} {ceiling:7.2f} {sso / ceiling:6.2f}")


if __name__ == "__main__":
    main()
