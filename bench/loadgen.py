"""A closed-loop HTTP load generator for multi-step CAS flows, in one asyncio process (aiohttp).

Why this and not wrk or locust: a CAS sign-in is three dependent requests (the form, whose hidden
fields — CSRF token, the peer's login ticket — must be posted back; the POST, whose redirect
carries ``ticket=ST-…``; the validation of that ticket by the service), each virtual user needs its
own cookie jar (the session cookie, the TGC), and the generator must leave the 2 cores to the
servers under test. wrk cannot chain requests with parsed state without Lua scripting per step and
has no cookie jar; locust runs one greenlet per user with a heavy per-request overhead (its
``HttpUser`` is on requests) and wants a process per core to keep up. A compact asyncio
generator on aiohttp's C-accelerated HTTP parser drives thousands of requests per second from one
process, costs a fraction of a core (measured and reported with every run: ``loadgen cpu``), and
keeps the flows readable.

Closed loop: each of ``concurrency`` virtual users runs one flow after another, waiting for each
answer. Flows that *end* inside the measurement window (after the warm-up, before the deadline) are
counted; latencies are whole-flow times. Every request has a timeout, and the run stops by itself:
after the deadline no flow starts, flows in flight finish or time out.
"""

from __future__ import annotations

import asyncio
import enum
import html
import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp

from bench.accounts import Person, Picker


class Scenario(enum.Enum):
    """What one flow does (the names are the table's)."""

    #: GET the form, POST the credentials of a random account, validate the ticket (3 requests).
    COLD = "cold-login"
    #: An existing session gets a new ticket (GET /login), which is validated (2 requests).
    SSO = "sso-login"
    #: Validation of a pre-issued ticket (1 request).
    VALIDATE = "validate"
    #: « Problème de connexion »: GET the identifier form, POST an identifier (2 requests).
    LINK = "link-request"
    #: One GET of a trivial endpoint (the bare-Flask floor).
    BARE = "bare"


@dataclass(frozen=True)
class Site:
    """Where a target answers the CAS flows.

    :param service: a service URL the target accepts (never requested: redirects are not followed).
    """

    base_url: str
    service: str
    login_path: str = "/login"
    validate_path: str = "/p3/serviceValidate"
    #: The « Problème de connexion » form, or ``None`` when the target has none.
    link_path: str | None = None
    bare_path: str = "/"


class FlowError(Exception):
    """A flow did not end as it should; ``reason`` is a short tag counted in the results."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Outcome:
    """What the virtual users measured inside the window."""

    #: Whole-flow latencies (seconds) of the successful flows that ended in the window.
    latencies: list[float] = field(default_factory=list)
    #: Failed flows in the window, by reason.
    errors: Counter[str] = field(default_factory=Counter)
    #: Length of the window (seconds).
    window: float = 0.0
    #: CPU seconds this process (the generator) used during the window.
    generator_cpu: float = 0.0
    #: Flows that could not run because the pre-issued tickets ran out.
    exhausted: int = 0


_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_FORM = re.compile(r"<form\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _attributes(tag: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
        for m in _ATTR.finditer(tag)
    }


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the first form of ``page`` (CSRF token, login ticket, service…)."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(page):
        attrs = _attributes(tag)
        if attrs.get("type", "").lower() == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def form_action(page: str, page_url: str) -> str:
    """Where the first form posts (its ``action``, or the page itself)."""
    match = _FORM.search(page)
    action = _attributes(match.group(0)).get("action") if match else None
    return urljoin(page_url, action) if action else page_url


def ticket_of(location: str) -> str:
    """The ``ticket`` parameter of a redirect to the service."""
    values = parse_qs(urlsplit(location).query).get("ticket")
    if not values or not values[0].startswith("ST-"):
        raise FlowError("no-ticket")
    return values[0]


class Flows:
    """The HTTP steps of each scenario against one :class:`Site`."""

    def __init__(self, site: Site, validator: aiohttp.ClientSession) -> None:
        self.site = site
        self._validator = validator
        query = urlencode({"service": site.service})
        self._login_url = f"{site.base_url}{site.login_path}?{query}"

    async def _sign_in(self, browser: aiohttp.ClientSession, person: Person) -> str:
        """Form, then credentials; return the ticket of the redirect."""
        async with browser.get(self._login_url, allow_redirects=False) as response:
            page = await response.text()
            if response.status != 200:
                raise FlowError(f"form-{response.status}")
        fields = hidden_fields(page)
        fields.update(username=person.login, password=person.password)
        action = form_action(page, self._login_url)
        async with browser.post(action, data=fields, allow_redirects=False) as response:
            await response.read()
            if response.status not in (302, 303):
                raise FlowError(f"post-{response.status}")
            return ticket_of(response.headers.get("Location", ""))

    async def validate(self, ticket: str, uid: str) -> None:
        """The service validates ``ticket`` (CAS 3.0 §2.8) and must learn ``uid``."""
        params = {"ticket": ticket, "service": self.site.service}
        async with self._validator.get(
            self.site.base_url + self.site.validate_path, params=params
        ) as response:
            body = await response.text()
        if response.status != 200:
            raise FlowError(f"validate-{response.status}")
        if "authenticationSuccess" not in body:
            raise FlowError("validate-failure")
        if f"<cas:user>{uid}</cas:user>" not in body:
            raise FlowError("validate-wrong-user")

    async def cold(self, browser: aiohttp.ClientSession, person: Person) -> None:
        """A new browser (empty jar) signs in and the service validates the ticket."""
        browser.cookie_jar.clear()
        ticket = await self._sign_in(browser, person)
        await self.validate(ticket, person.uid)

    async def open_session(self, browser: aiohttp.ClientSession, person: Person) -> None:
        """Sign in once (not measured) so that :meth:`sso` has a session."""
        browser.cookie_jar.clear()
        await self._sign_in(browser, person)

    async def sso(self, browser: aiohttp.ClientSession, person: Person) -> None:
        """The session gets a ticket without a password; the service validates it."""
        async with browser.get(self._login_url, allow_redirects=False) as response:
            await response.read()
            if response.status != 302:
                raise FlowError(f"sso-{response.status}")
            ticket = ticket_of(response.headers.get("Location", ""))
        await self.validate(ticket, person.uid)

    async def link(self, browser: aiohttp.ClientSession, person: Person) -> None:
        """« Problème de connexion »: the identifier form, then the identifier."""
        if self.site.link_path is None:
            raise FlowError("no-link-form")
        browser.cookie_jar.clear()
        url = self.site.base_url + self.site.link_path
        async with browser.get(url, allow_redirects=False) as response:
            page = await response.text()
            if response.status != 200:
                raise FlowError(f"link-form-{response.status}")
        fields = hidden_fields(page)
        fields["username"] = person.login
        async with browser.post(form_action(page, url), data=fields, allow_redirects=False) as response:
            await response.read()
            if response.status != 200:
                raise FlowError(f"link-post-{response.status}")

    async def bare(self, browser: aiohttp.ClientSession) -> None:
        async with browser.get(self.site.base_url + self.site.bare_path, allow_redirects=False) as response:
            await response.read()
            if response.status != 200:
                raise FlowError(f"bare-{response.status}")


@dataclass(frozen=True)
class Plan:
    """One measured run.

    :param tickets: pre-issued ``(ticket, uid)`` pairs for :attr:`Scenario.VALIDATE`.
    :param on_window_start: called when the window opens (read CPU counters there).
    :param on_window_end: called when it closes.
    """

    site: Site
    scenario: Scenario
    concurrency: int
    duration: float
    warmup: float
    picker: Picker
    tickets: deque[tuple[str, str]] | None = None
    timeout: float = 10.0
    on_window_start: Callable[[], None] = lambda: None
    on_window_end: Callable[[], None] = lambda: None


async def _virtual_user(plan: Plan, flows: Flows, outcome: Outcome, clock: _Window) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: keep cookies of an IP address host (127.0.0.1)
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector, timeout=timeout) as browser:
        person = plan.picker()
        if plan.scenario is Scenario.SSO:
            try:
                await flows.open_session(browser, person)
            except (TimeoutError, FlowError, aiohttp.ClientError) as error:
                outcome.errors[f"setup:{getattr(error, 'reason', type(error).__name__)}"] += 1
                return
        while clock.running():
            started = time.perf_counter()
            try:
                if plan.scenario is Scenario.COLD:
                    await flows.cold(browser, plan.picker())
                elif plan.scenario is Scenario.SSO:
                    await flows.sso(browser, person)
                elif plan.scenario is Scenario.LINK:
                    await flows.link(browser, plan.picker())
                elif plan.scenario is Scenario.BARE:
                    await flows.bare(browser)
                else:
                    if not plan.tickets:
                        outcome.exhausted += 1
                        return
                    ticket, uid = plan.tickets.popleft()
                    await flows.validate(ticket, uid)
            except FlowError as error:
                if clock.counting():
                    outcome.errors[error.reason] += 1
                continue
            except (TimeoutError, aiohttp.ClientError) as error:
                if clock.counting():
                    outcome.errors[type(error).__name__] += 1
                continue
            if clock.counting():
                outcome.latencies.append(time.perf_counter() - started)


class _Window:
    """The measurement window: opens after the warm-up, closes at the deadline."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        now = time.perf_counter()
        self.opens = now + plan.warmup
        self.closes = self.opens + plan.duration
        self.open = False
        self.closed = False
        self.cpu_start = 0.0

    def running(self) -> bool:
        return time.perf_counter() < self.closes

    def counting(self) -> bool:
        return self.open and not self.closed

    async def drive(self, outcome: Outcome) -> None:
        await asyncio.sleep(max(0.0, self.opens - time.perf_counter()))
        self.plan.on_window_start()
        self.cpu_start = time.process_time()
        started = time.perf_counter()
        self.open = True
        await asyncio.sleep(max(0.0, self.closes - time.perf_counter()))
        self.closed = True
        outcome.window = time.perf_counter() - started
        outcome.generator_cpu = time.process_time() - self.cpu_start
        self.plan.on_window_end()


async def _run(plan: Plan) -> Outcome:
    outcome = Outcome()
    window = _Window(plan)
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as validator:
        flows = Flows(plan.site, validator)
        users = [
            asyncio.create_task(_virtual_user(plan, flows, outcome, window)) for _ in range(plan.concurrency)
        ]
        driver = asyncio.create_task(window.drive(outcome))
        # Bounded: the window, the flows in flight (one timeout per request, at most 3), a margin.
        limit = plan.warmup + plan.duration + 3 * plan.timeout + 5
        done, pending = await asyncio.wait([driver, *users], timeout=limit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a bug in a flow surfaces here
    return outcome


def run(plan: Plan) -> Outcome:
    """Run ``plan`` to completion (blocking) and return what was measured."""
    return asyncio.run(_run(plan))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
