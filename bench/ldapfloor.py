"""The directory floor: raw ldap3 search + bind per login against the bench's slapd.

What a sign-in's directory work alone costs from Python on this machine: the SSO's own filter and
attributes, a search on a reused service connection and a bind on a reused user connection,
nothing else. Run like the SSO: :data:`bench.servers.WORKERS` processes, ``concurrency / WORKERS``
threads each (each thread with its own pair of connections), so the GIL and the cores are shared
as gunicorn shares them.

The orchestrator starts the processes with :func:`command`; each one waits for the window's
wall-clock start, counts the logins that end inside it, and prints one JSON line:
``{"latencies": [...], "errors": {...}, "cpu": seconds}``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter

from ldap3 import NONE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from bench.accounts import PEOPLE_BASE, RELEASED, Person
from tests.support.slapd import Slapd


def command(url: str, threads: int, accounts: int, opens: float, closes: float, seed: int) -> list[str]:
    """The command line of one floor process."""
    return [
        sys.executable,
        "-m",
        "bench.ldapfloor",
        "--url",
        url,
        "--threads",
        str(threads),
        "--accounts",
        str(accounts),
        "--opens",
        repr(opens),
        "--closes",
        repr(closes),
        "--seed",
        str(seed),
    ]


def _worker(
    url: str,
    accounts: int,
    opens: float,
    closes: float,
    seed: int,
    latencies: list[float],
    errors: Counter[str],
) -> None:
    pick = random.Random(seed)
    server = Server(url, get_info=NONE)
    service = Connection(server, Slapd.service_dn, Slapd.service_pw, auto_bind=True, receive_timeout=5)
    user = Connection(server, receive_timeout=5)
    user.open(read_server_info=False)
    attributes = list(RELEASED)
    try:
        _loop(service, user, attributes, pick, accounts, opens, closes, latencies, errors)
    except LDAPException as error:  # the connection broke: counted, this thread stops
        errors[type(error).__name__] += 1
    finally:
        service.unbind()
        user.unbind()


def _loop(
    service: Connection,
    user: Connection,
    attributes: list[str],
    pick: random.Random,
    accounts: int,
    opens: float,
    closes: float,
    latencies: list[float],
    errors: Counter[str],
) -> None:
    while time.time() < closes:
        person = Person(pick.randrange(accounts))
        started = time.perf_counter()
        value = escape_filter_chars(person.login)
        service.search(
            PEOPLE_BASE,
            f"(&(objectClass=inetOrgPerson)(|(mail={value})(uid={value})))",
            attributes=attributes,
            size_limit=2,
        )
        entries = [item for item in service.response or () if item.get("type") == "searchResEntry"]
        ok = len(entries) == 1 and user.rebind(
            user=entries[0]["dn"], password=person.password, read_server_info=False
        )
        ended = time.time()
        if opens <= ended < closes:
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors["search-or-bind"] += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--opens", type=float, required=True)
    parser.add_argument("--closes", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    threads = [
        threading.Thread(
            target=_worker,
            args=(args.url, args.accounts, args.opens, args.closes, args.seed * 1000 + n, latencies, errors),
        )
        for n in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, args.opens - time.time()))
    cpu_start = time.process_time()
    time.sleep(max(0.0, args.closes - time.time()))
    cpu = time.process_time() - cpu_start
    for thread in threads:
        thread.join(30)
    print(json.dumps({"latencies": latencies, "errors": dict(errors), "cpu": cpu}))


if __name__ == "__main__":
    main()
