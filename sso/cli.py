"""The ``sso`` command line: serve, check-config, services."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sso.config import ConfigError, Settings, config_path, load_settings

#: Exit codes scripts can rely on.
EXIT_OK, EXIT_CONFIG, EXIT_UNAVAILABLE, EXIT_NOT_FOUND = 0, 2, 3, 4

config_option = click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False),
    envvar="SSO_CONFIG",
    help="YAML configuration (default: $SSO_CONFIG, else the bundled demo).",
)


def _settings(config: str | None) -> Settings:
    path = config_path(config)
    try:
        return load_settings(path)
    except ConfigError as error:
        click.echo(error.report(), err=True)
        sys.exit(EXIT_CONFIG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ent-sso")
def main() -> None:
    """ENT single sign-on (CAS) server over the university's LDAP directory."""


@main.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@config_option
def check_config(file: str | None, config: str | None) -> None:
    """Validate a configuration file; exit 2 with every problem if it is not usable."""
    settings = _settings(file or config)
    click.echo(f"{config_path(file or config)}: OK ({len(settings.services)} services)")


@main.command()
@config_option
def services(config: str | None) -> None:
    """List the registered services as a table."""
    settings = _settings(config)
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
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@main.command()
@config_option
@click.option("--bind", "-b", default=None, help="Address:port to listen on (default: from site.base_url).")
@click.option("--workers", "-w", default=2, show_default=True, help="Worker processes (one per core).")
@click.option("--threads", default=8, show_default=True, help="Threads per worker (LDAP and SMTP waits overlap).")
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
    click.echo(f"ENT SSO: {settings.site.base_url}/login  (listening on {bind}; Ctrl+C to stop)")
    _Server().run()


def _default_bind(base_url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{port}" if host in ("127.0.0.1", "localhost") else f"0.0.0.0:{port}"
