"""Fixtures for endpoint tests: the app on the embedded directory, in-memory tickets, a fake clock."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sso.app import create_app
from sso.tickets.memory import MemoryRegistry
from sso.web.runtime import Runtime, runtime
from tests.support.appconfig import FakeClock, demo_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module to change the configuration."""
    return {}


@pytest.fixture
def app(tmp_path, clock, config_overrides) -> Iterator[Flask]:
    settings = demo_settings(tmp_path, config_overrides)
    app = create_app(
        settings, tickets=MemoryRegistry(settings.tickets.lifetimes), clock=clock, start_workers=False
    )
    app.config["TESTING"] = True
    yield app
    runtime(app).close()


@pytest.fixture
def rt(app) -> Runtime:
    return runtime(app)


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str, query: str = "", **extra):
    """GET the login form, then POST the credentials with its CSRF token."""
    page = client.get(f"/login{query}")
    token = csrf_token(page.get_data(as_text=True))
    return client.post(
        f"/login{query}", data={"username": username, "password": password, "csrf_token": token, **extra}
    )
