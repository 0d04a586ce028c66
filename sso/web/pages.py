"""Small page helpers shared by the views."""

from __future__ import annotations

from flask import Response, make_response, render_template


def message_page(title: str, text: str, status: int, link: tuple[str, str] | None = None) -> Response:
    """A page that tells one thing (an error, a confirmation), with an optional link ``(url, label)``."""
    body = render_template("message.html", title=title, text=text, link=link, status=status)
    return make_response(body, status)
