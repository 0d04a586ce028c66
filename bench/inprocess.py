"""``python -m bench.inprocess``: CPU per request of the SSO's flows, in one process, no load.

The SSO app is built as under gunicorn (same configuration, a private slapd) and called as a WSGI
application, the way gunicorn calls it (an environ, ``start_response``, the body read), by a
small client that keeps each browser's cookies: GET the form, POST the credentials, validate;
then an SSO GET and its validation. Each request's CPU time (``time.process_time``) is taken. No
server, no concurrency, no other process competing: the least noisy way to see whether a change
saved CPU on the hot paths, even on a busy machine. The minimal login flow (:mod:`bench.ceiling`)
is measured the same way on the same slapd, in alternating batches: the ratio of the two is the
CPU the SSO adds. ``--profile FILE`` also writes a cProfile of the SSO's measured flows
(``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from bench.accounts import Person, start_directory
from bench.loadgen import hidden_fields
from bench.targets import SERVICE, Ceiling, Sso
from tests.support.slapd import Slapd

#: What is timed, in flow order.
STEPS = ("GET /login (form)", "POST /login", "validate", "GET /login (SSO)", "validate (SSO ticket)")

Answer = tuple[int, dict[str, str], bytes]


def _ticket(location: str) -> str:
    return parse_qs(urlsplit(location).query)["ticket"][0]


class Browser:
    """Calls a WSGI app as gunicorn would, keeping the cookies it sets (one browser)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    def _environ(self, method: str, target: str, body: bytes) -> dict[str, Any]:
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "RAW_URI": target,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "50000",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "bench",
            "HTTP_ACCEPT": "*/*",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def request(self, method: str, target: str, form: dict[str, str] | None = None) -> Answer:
        """One request; the answer's status, headers (the last of each name) and body."""
        body = urlencode(form).encode() if form is not None else b""
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            seen["status"], seen["headers"] = int(status[:3]), headers

        chunks = self.app(self._environ(method, target, body), start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        headers: dict[str, str] = {}
        for name, value in seen["headers"]:
            headers[name.lower()] = value
            if name.lower() == "set-cookie":
                self._keep(value)
        return seen["status"], headers, data

    def _keep(self, header: str) -> None:
        pair, _, options = header.partition(";")
        name, _, value = pair.strip().partition("=")
        if "max-age=0" in options.lower() or "expires=thu, 01 jan 1970" in options.lower():
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


def flows(app: Callable[..., Any], count: int, accounts: int) -> Iterator[tuple[float, ...]]:
    """Run ``count`` flows; yield the CPU seconds of each step."""
    login = "/login?service=" + quote(SERVICE, safe="")
    clock = time.process_time
    for index in range(count):
        person = Person(index % accounts)
        browser, service = Browser(app), Browser(app)
        times = []
        started = clock()
        status, _, page = browser.request("GET", login)
        times.append(clock() - started)
        fields = hidden_fields(page.decode())
        fields.update(username=person.login, password=person.password)
        started = clock()
        status, headers, _ = browser.request("POST", login, fields)
        times.append(clock() - started)
        if status not in (302, 303):
            raise RuntimeError(f"sign-in failed: {status}")
        for step in ("validate", "sso", "validate"):
            started = clock()
            if step == "sso":
                status, headers, _ = browser.request("GET", login)
            else:
                query = urlencode({"ticket": _ticket(headers["location"]), "service": SERVICE})
                _, _, checked = service.request("GET", f"/p3/serviceValidate?{query}")
                if b"authenticationSuccess" not in checked:
                    raise RuntimeError(f"validation failed: {checked[:300]!r}")
            times.append(clock() - started)
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
