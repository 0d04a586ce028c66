"""Browser tests: headless Chromium from Debian's packages driven by Playwright (no browser
download), against the real demo (``sso demo``: the SSO and the portal under gunicorn), with
axe-core from the npm registry injected into each page.

Locally they skip with a reason when Chromium, Playwright or npm is missing; with
``SSO_REQUIRE_SERVERS=1`` (CI) that is a failure. Screenshots go to ``tests/artifacts/``;
``SSO_UPDATE_DOCS=1`` also copies the login page to ``docs/login.png`` (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.appconfig import write_config
from tests.support.servers import REQUIRE, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: Debian's Chromium (apt-get install chromium).
CHROMIUM = Path(os.environ.get("SSO_CHROMIUM", "/usr/bin/chromium"))
#: Where axe-core is installed (git-ignored): ``npm install --prefix tests/browser/.npm axe-core``.
NPM_PREFIX = Path(__file__).resolve().parent / ".npm"
AXE = NPM_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
#: Major version of axe-core the tests expect.
AXE_VERSION = "4"
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Chromium flags for a root user on a machine without internet (DESIGN.md, "practical facts").
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
#: WCAG 2.1 A and AA rules of axe-core (RGAA 4 follows WCAG 2.1 AA).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = pytest.mark.browser


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and SSO_REQUIRE_SERVERS=1")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The axe-core script, installed from the npm registry into a git-ignored folder when missing."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed (apt-get install npm), needed for axe-core")
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(NPM_PREFIX),
                "--no-audit",
                "--no-fund",
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0 or not AXE.is_file():
            _missing(f"npm could not install axe-core: {result.stderr[-500:]}")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (launched by path: nothing is downloaded)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass(frozen=True)
class Demo:
    """The running demo."""

    sso: str
    portal: str
    outbox: str


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``sso demo`` for real on free ports: the SSO and the portal, each under gunicorn."""
    folder = tmp_path_factory.mktemp("demo")
    sso_port, portal_port = free_port(), free_port()
    sso, portal = f"http://127.0.0.1:{sso_port}", f"http://127.0.0.1:{portal_port}"
    config = write_config(
        folder,
        {
            "site": {"base_url": sso},
            "services": [
                {
                    "id": "portail",
                    "name": "Portail ENT (démo)",
                    "url_pattern": re.escape(portal) + "(/.*)?",
                    "description": "Le portail de démonstration, un vrai service CAS (python-cas).",
                    "home_url": portal + "/",
                    "logout_url": portal + "/cas/logout-callback",
                    "attributes": ["uid", "mail", "displayName", "givenName", "sn", "eduPersonAffiliation"],
                },
                {
                    "id": "moodle",
                    "name": "Cours en ligne",
                    "description": "Moodle, vos cours et devoirs.",
                    "url_pattern": r"https://moodle\.univ-demo\.fr(/.*)?",
                    "home_url": "https://moodle.univ-demo.fr/",
                },
            ],
            "activation": {
                "charter_url": "https://infoservices.univ-demo.fr/charte",
                "charter_version": "2026",
            },
        },
    )
    log_path = folder / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sso.cli", "demo", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"sso demo exited: {log_path.read_text()[-3000:]}")
            return "Ctrl+C stops both" in log_path.read_text()

        wait_until(ready, 90, "sso demo")
        yield Demo(sso=sso, portal=portal, outbox=sso + "/demo/outbox")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


#: Viewports: a desktop, and a 360-px-wide phone (the narrowest the brief names).
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 360, "height": 740},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture
def new_page(browser) -> Iterator[Any]:
    """Open a page in a fresh context (own cookies): ``new_page("phone", "en-GB")``."""
    contexts = []

    def make(viewport: str = "desktop", locale: str = "fr-FR") -> Any:
        # bypass_csp: axe-core is injected as an inline script, which the pages' CSP rightly forbids.
        context = browser.new_context(locale=locale, bypass_csp=True, **VIEWPORTS[viewport])
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def check_accessibility(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """Run axe-core (WCAG 2.1 A/AA rules) on the page; return the serious and critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [node["target"] for node in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def fits_the_width(page: Any) -> bool:
    """No horizontal scrolling: the page is no wider than the viewport."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
