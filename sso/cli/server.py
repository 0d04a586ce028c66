"""Running and checking: ``check-config``, ``services``, ``serve``, ``demo``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from sso.cli.base import (
    EXIT_CONFIG,
    EXIT_UNAVAILABLE,
    _fail,
    _settings,
    _table,
    config_option,
    json_option,
    main,
)
from sso.config import Settings, config_path


@main.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@config_option
def check_config(file: str | None, config: str | None) -> None:
    """Validate a configuration file; exit 2 with every problem if it is not usable.

    Warnings (a theme colour without enough contrast, a logo the browser will not load) are printed
    but do not fail the check.
    """
    from sso.web.theme import theme_warnings

    settings = _settings(file or config)
    for warning in theme_warnings(settings.site):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{config_path(file or config)}: OK ({len(settings.services)} services)")


@main.command()
@config_option
@json_option
def services(config: str | None, as_json: bool) -> None:
    """List the registered services as a table."""
    settings = _settings(config)
    if as_json:
        click.echo(json.dumps(_service_dicts(settings), indent=2, ensure_ascii=False))
        return
    rows = [("ID", "NAME", "URL PATTERN", "ATTRIBUTES", "PROXY", "SLO")]
    for service in settings.services:
        rows.append(
            (
                service.id,
                service.name,
                service.url_pattern,
                ",".join(service.attributes) or "-",
                "yes" if service.proxy else "no",
                "yes" if service.single_logout else "no",
            )
        )
    _table(rows)


def _service_dicts(settings: Settings) -> list[dict[str, object]]:
    return [
        {
            "id": s.id,
            "name": s.name,
            "url_pattern": s.url_pattern,
            "attributes": list(s.attributes),
            "proxy": s.proxy,
            "single_logout": s.single_logout,
        }
        for s in settings.services
    ]


@main.command()
@config_option
@click.option("--bind", "-b", default=None, help="Address:port to listen on (default: from site.base_url).")
@click.option("--workers", "-w", default=2, show_default=True, help="Worker processes (one per core).")
@click.option(
    "--threads", default=8, show_default=True, help="Threads per worker (LDAP and SMTP waits overlap)."
)
def serve(config: str | None, bind: str | None, workers: int, threads: int) -> None:
    """Run the server under gunicorn (gthread workers)."""
    from gunicorn.app.base import BaseApplication

    settings = _settings(config)
    path = str(config_path(config))
    bind = bind or _default_bind(settings.site.base_url)
    if settings.embedded_directory is not None and workers > 1:
        # The embedded (demo) directory lives in one process's memory: one worker, many threads.
        click.echo("embedded directory: serving with one worker process", err=True)
        workers = 1

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": bind,
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "accesslog": None,
                "timeout": 30,
                "graceful_timeout": 10,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from sso.app import create_app

            return create_app(path)

    os.environ["SSO_CONFIG"] = path
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts in its own memory: a fresh folder where they all write lets /metrics,
        # whichever worker answers, report the whole node (prometheus_client's multiprocess mode).
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sso-metrics-")
    click.echo(f"ENT SSO: {settings.site.base_url}/login  (listening on {bind}; Ctrl+C to stop)")
    _Server().run()


def _default_bind(base_url: str) -> str:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{port}" if host in ("127.0.0.1", "localhost") else f"0.0.0.0:{port}"


@main.command()
@config_option
def demo(config: str | None) -> None:
    """Run the demo: the SSO and the demo ENT portal (a real CAS service, python-cas), together.

    Open the portal, sign in through the SSO, come back to the portal, and log out everywhere. The
    portal is the service ``portail`` of the configuration, listening at its ``home_url``. Ctrl+C
    stops both.
    """
    from sso.demo_portal import DEMO_ACCOUNTS, PortalNotConfigured, portal_bind, portal_service

    settings = _settings(config)
    try:
        portal_url = portal_service(settings).home_url
        binds = {"sso": _default_bind(settings.site.base_url), "portal": portal_bind(settings)}
    except PortalNotConfigured as exc:
        _fail(f"{exc}", EXIT_CONFIG)
    env = {**os.environ, "SSO_CONFIG": str(config_path(config).resolve())}
    processes: list[subprocess.Popen[bytes]] = []

    def stop(*_args: object) -> NoReturn:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        for name, factory in (("sso", "sso.app:create_app()"), ("portal", "sso.demo_portal:create_app()")):
            processes.append(subprocess.Popen(_gunicorn(binds[name], factory), env=env))
        _wait_ready([f"{settings.site.base_url}/health", portal_url], processes)
        click.echo(f"\nDemo ENT portal:  {portal_url}\nSSO sign-in page: {settings.site.base_url}/login")
        if settings.mail.outbox is not None:
            click.echo(f"E-mails (outbox): {settings.site.base_url}/demo/outbox")
        if (
            settings.embedded_directory is not None
            and settings.embedded_directory.data.name == "demo-directory.ldif"
        ):
            click.echo("\nDemo accounts:")
            _table([("IDENTIFIER", "PASSWORD", "STATE"), *DEMO_ACCOUNTS])
        click.echo("\nCtrl+C stops both.")
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        _fail("a server stopped; see its messages above", EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(processes)


def _gunicorn(bind: str, factory: str) -> list[str]:
    # One process each: the embedded directory and the portal's sessions live in memory.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        "1",
        "--threads",
        "8",
        "--worker-class",
        "gthread",
        "--graceful-timeout",
        "3",
        "--log-level",
        "warning",
        factory,
    ]


def _wait_ready(urls: list[str], processes: list[subprocess.Popen[bytes]], deadline: float = 60.0) -> None:
    import requests

    end = time.monotonic() + deadline
    waiting = list(urls)
    while waiting:
        if any(process.poll() is not None for process in processes):
            _fail("a server did not start; see its messages above", EXIT_UNAVAILABLE)
        if time.monotonic() > end:
            _fail(f"not answering after {deadline:.0f} s: {', '.join(waiting)}", EXIT_UNAVAILABLE)
        try:
            if requests.get(waiting[0], timeout=2, allow_redirects=False).status_code < 500:
                waiting.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.2)


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# -- "why can't I log in?" -------------------------------------------------------------------------

#: What each account state means for signing in, and what to do about it.
