"""Templates and look: the theme folder overrides the default templates and static files;
colours come from the configuration; every template sees ``site``, ``current_lang``,
``lang_url``, ``logo_src``, ``theme_css`` and ``identifier_hint``.

A theme folder (``site.theme_folder``) holds templates with the default names (``login.html``,
``base.html``, ``mail/activation.html``…), found before the defaults, and a ``static/`` folder
served under ``/theme/static/`` (the logo, and ``theme.css`` which, when present, is linked after
the default stylesheet). See docs/theming.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, abort, request, send_from_directory, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from jinja2 import ChoiceLoader, FileSystemLoader

from sso.config.schema import SiteSettings
from sso.resources import templates_dir
from sso.web.runtime import runtime

bp = Blueprint("theme", __name__)
log = logging.getLogger(__name__)

#: WCAG 2.1 AA (1.4.3): least contrast of normal text with its background.
AA_CONTRAST = 4.5


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.1 definition) of a ``#rrggbb`` colour."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(red) + 0.7152 * _channel(green) + 0.0722 * _channel(blue)


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#rrggbb`` colours, from 1 to 21."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def theme_warnings(site: SiteSettings) -> list[str]:
    """Problems of a theme that do not stop the server (shown by ``sso check-config``, logged at start)."""
    warnings = []
    ratio = contrast_ratio(site.primary_color, "#ffffff")
    if ratio < AA_CONTRAST:
        warnings.append(
            f"site.primary_color {site.primary_color} has a contrast of {ratio:.1f}:1 with white text "
            f"(WCAG AA needs {AA_CONTRAST}:1): choose a darker colour"
        )
    logo = site.logo_url
    if logo.startswith(("http://", "https://", "//")):
        warnings.append(
            "site.logo_url is on another site: the Content-Security-Policy (img-src 'self') blocks it; "
            "put the logo in the theme folder's static/ and give its file name"
        )
    elif logo and not logo.startswith(("/", "data:")):
        folder = site.theme_folder
        if folder is None or not (Path(folder) / "static" / logo).is_file():
            warnings.append(f"site.logo_url {logo!r}: no such file in the theme folder's static/")
    return warnings


@bp.get("/theme/colours.css")
def colours() -> Response:
    """The configured colours as CSS variables (a file, since the CSP forbids inline styles)."""
    colour = runtime().settings.site.primary_color  # validated as #rrggbb at load time
    response = Response(f":root {{ --primary: {colour}; }}\n", mimetype="text/css")
    response.cache_control.max_age = 3600
    return response


@bp.get("/theme/static/<path:filename>")
def static(filename: str) -> Response:
    """Static files of the theme folder (logo, theme.css…)."""
    folder = runtime().settings.site.theme_folder
    if folder is None:
        abort(404)
    return send_from_directory(Path(folder) / "static", filename, max_age=3600)


def lang_url(lang: str) -> str:
    """The current page in another language: same path and query, ``lang`` set. After a POST (a
    form shown again with errors), the same URL fetched with GET shows that form afresh."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    args.append(("lang", lang))
    return f"{request.script_root}{request.path}?{urlencode(args)}"


def logo_src(site: SiteSettings) -> str | None:
    """The logo's URL: a file name is looked up in the theme's ``static/`` folder."""
    logo = site.logo_url
    if not logo:
        return None
    if logo.startswith(("http://", "https://", "//", "/", "data:")):
        return logo
    return url_for("theme.static", filename=logo)


def _theme_css(site: SiteSettings) -> str | None:
    folder = site.theme_folder
    if folder is not None and (Path(folder) / "static" / "theme.css").is_file():
        return url_for("theme.static", filename="theme.css")
    return None


#: The default of ``site.identifier_hint``; it is translated, a configured text is shown as written.
DEFAULT_IDENTIFIER_HINT = SiteSettings.model_fields["identifier_hint"].default


def _identifier_hint(site: SiteSettings) -> str:
    if site.identifier_hint == DEFAULT_IDENTIFIER_HINT:
        return _("Il est indiqué dans l'application récapitulatif de votre inscription administrative (IA).")
    return site.identifier_hint


def _context() -> dict[str, object]:
    site = runtime().settings.site
    return {
        "site": site,
        "current_lang": str(get_locale() or site.default_language),
        "lang_url": lang_url,
        "logo_src": logo_src(site),
        "theme_css": _theme_css(site),
        "identifier_hint": _identifier_hint(site),
    }


def init_app(app: Flask) -> None:
    """Template loader (theme first), context, and the theme routes."""
    folders = [str(templates_dir())]
    site = runtime(app).settings.site
    if site.theme_folder is not None:
        folders.insert(0, str(site.theme_folder))
    for warning in theme_warnings(site):
        log.warning("theme: %s", warning)
    app.jinja_loader = ChoiceLoader([FileSystemLoader(folder) for folder in folders])
    app.context_processor(_context)
    app.register_blueprint(bp)
