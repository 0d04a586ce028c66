"""The bare-Flask floor: one endpoint that does nothing, under the SSO's gunicorn settings.

What a request costs this machine with Flask, Werkzeug and gunicorn's ``gthread`` worker and no
work at all: no CAS server built on Flask can answer faster.

``gunicorn 'bench.bare:create_app()'``
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    """A Flask app answering ``GET /`` with ``ok``."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return "ok"

    return app
