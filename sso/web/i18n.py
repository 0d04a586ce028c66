"""Language of pages and e-mails (Flask-Babel): ``?lang=`` (remembered in a cookie), else the
browser's Accept-Language, else the configured default. French is the source language."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_babel import Babel

from sso.web.runtime import runtime

LANGUAGES = ("fr", "en")
COOKIE = "sso_lang"


def select_locale() -> str:
    """The language of the current request."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE, "")
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(LANGUAGES) or runtime().settings.site.default_language


def _remember(response: Response) -> Response:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=365 * 86400, httponly=True, samesite="Lax",
                            secure=request.is_secure, path=(request.script_root or "") + "/")
    return response


def init_app(app: Flask) -> None:
    """Install Flask-Babel with our locale selector and the Europe/Paris time zone."""
    from sso.resources import translations_dir

    settings = runtime(app).settings
    Babel(
        app,
        default_locale=settings.site.default_language,
        default_timezone=settings.activation.time_zone,
        locale_selector=select_locale,
        default_translation_directories=str(translations_dir()),
    )
    app.after_request(_remember)
