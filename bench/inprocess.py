"""``python -m bench.inprocess``: CPU per request of the SSO's flows, in one process, no load.

The SSO app is built as under gunicorn (same configuration, a private slapd) and driven through
Flask's test client, one flow after another: GET the form, POST the credentials, validate; then an
SSO GET and its validation. Each request's CPU time (``time.process_time``) is averaged. No server,
no concurrency, no other process competing: the least noisy way to see whether a change saved CPU
on the hot paths, even on a busy machine. ``--profile FILE`` also writes a cProfile of the measured
flows (``python -m pstats FILE``). The test client adds a little of its own to every request.
"""

from __future__ import annotations

import argparse
import cProfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from bench.accounts import Person, start_directory
from bench.loadgen import hidden_fields
from bench.targets import SERVICE, Sso

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="flows measured (after 50 unmeasured)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured flows here")
    args = parser.parse_args(argv)
    from tests.support.appconfig import write_config

    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp:
        folder = Path(tmp)
        slapd = start_directory(folder / "directory", args.accounts)
        try:
            target = Sso(folder / "sso", slapd)
            (target.folder / "var").mkdir(exist_ok=True)
            from sso.app import create_app

            app = create_app(write_config(target.folder, target.config(8000)))
            for _ in flows(app, 50, args.accounts):
                pass
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            rows = list(flows(app, args.count, args.accounts))
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            app.extensions["sso"].close()
        finally:
            slapd.cleanup()
    for step, name in enumerate(STEPS):
        print(f"{name:24} {1000 * sum(row[step] for row in rows) / len(rows):7.2f} ms CPU")
    print(
        f"{'cold login (3 requests)':24} {1000 * sum(sum(row[:3]) for row in rows) / len(rows):7.2f} ms CPU"
    )
    print(f"{'SSO login (2 requests)':24} {1000 * sum(sum(row[3:]) for row in rows) / len(rows):7.2f} ms CPU")


if __name__ == "__main__":
    main()
