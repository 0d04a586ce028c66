"""Templates and look: the theme folder overrides the default templates and static files;
colours come from the configuration; every template sees ``site``, ``current_lang`` and ``lang_url``."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, abort, request, send_from_directory, url_for
from flask_babel import get_locale
from jinja2 import ChoiceLoader, FileSystemLoader

from sso.resources import templates_dir
from sso.web.runtime import runtime

bp = Blueprint("theme", __name__)


@bp.get("/theme/colours.css")
def colours() -> Response:
    """The configured colours as CSS variables (a file, since the CSP forbids inline styles)."""
    colour = runtime().settings.site.primary_color  # validated as #rrggbb at load time
    response = Response(f":root {{ --primary: {colour}; }}\n", mimetype="text/css")
    response.cache_control.max_age = 3600
    return response


@bp.get("/theme/static/<path:filename>")
def static(filename: str) -> Response:
    """Static files of the theme folder (logo…)."""
    folder = runtime().settings.site.theme_folder
    if folder is None:
        abort(404)
    return send_from_directory(Path(folder) / "static", filename, max_age=3600)


def lang_url(lang: str) -> str:
    """The current page in another language."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [lang]
    if request.endpoint is None or request.method != "GET":
        return url_for("cas.login", lang=lang)
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def _context() -> dict[str, object]:
    return {"site": runtime().settings.site, "current_lang": str(get_locale() or "fr"), "lang_url": lang_url}


def init_app(app: Flask) -> None:
    """Template loader (theme first), context, and the theme routes."""
    folders = [str(templates_dir())]
    theme = runtime(app).settings.site.theme_folder
    if theme is not None:
        folders.insert(0, str(theme))
    app.jinja_loader = ChoiceLoader([FileSystemLoader(folder) for folder in folders])
    app.context_processor(_context)
    app.register_blueprint(bp)
