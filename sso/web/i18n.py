"""Language of pages and e-mails (Flask-Babel): ``?lang=`` (remembered in a cookie), else the
browser's Accept-Language, else the configured default. French is the source language.

The catalogues are kept as ``.po`` files only (``sso/translations/<lang>/LC_MESSAGES/messages.po``):
compiled ``.mo`` files are build products, never committed. :func:`compile_catalogues` compiles them
when the app starts, into a cache folder named after the catalogues' content (under ``var_folder``),
so a checkout, an editable install and a wheel all work with nothing generated in git, and a changed
``.po`` is picked up at the next start. Several workers starting at once are safe: each writes a
private folder and renames it into place; the first rename wins and the others use it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from babel import Locale
from babel import __version__ as babel_version
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, request
from flask_babel import Babel, get_babel
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from sso.web.runtime import runtime

log = logging.getLogger(__name__)

#: Languages offered, the first being the source language of the msgids.
LANGUAGES = ("fr", "en")
#: Cookie that remembers a language chosen on the page.
COOKIE = "sso_lang"
#: Name of the catalogue files (Babel's default domain).
DOMAIN = "messages"


#: Parsed once: Flask-Babel takes a :class:`Locale` as it is, where it would parse a code (a look
#: at Babel's locale files) at every request.
_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def select_locale() -> Locale | str:
    """The language of the current request."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return _LOCALES[asked]
    remembered = request.cookies.get(COOKIE, "") if "HTTP_COOKIE" in request.environ else ""
    if remembered in LANGUAGES:
        return _LOCALES[remembered]
    best = _best_language(request.environ.get("HTTP_ACCEPT_LANGUAGE", ""))
    return _LOCALES[best] if best else _LOCALES.get(get_babel().default_locale, get_babel().default_locale)


@functools.lru_cache(maxsize=512)
def _best_language(header: str) -> str | None:
    """The offered language an ``Accept-Language`` header prefers: browsers send a handful of
    distinct headers, each parsed once (bounded: a client sending odd ones only churns the cache)."""
    return parse_accept_header(header, LanguageAccept).best_match(LANGUAGES) if header else None


def remember_language(response: Response) -> Response:
    """Keep a language asked with ``?lang=`` in a cookie for a year (an ``after_request`` hook)."""
    if "lang=" not in request.environ.get("QUERY_STRING", ""):
        return response  # most requests: no need to parse the query string for it
    asked = request.args.get("lang", "")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(
            COOKIE,
            asked,
            max_age=365 * 86400,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
            path=(request.script_root or "") + "/",
        )
    return response


def catalogue_sources(source: Path) -> dict[str, Path]:
    """The ``.po`` file of each language found under ``source`` (``<lang>/LC_MESSAGES/messages.po``)."""
    found = {}
    for po in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        found[po.parent.parent.name] = po
    return found


def _digest(sources: dict[str, Path]) -> str:
    digest = hashlib.sha256(babel_version.encode())
    for lang, po in sorted(sources.items()):
        digest.update(lang.encode() + b"\0" + po.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def compile_catalogues(source: Path, cache_root: Path) -> Path:
    """Compile the ``.po`` catalogues under ``source`` into ``.mo`` files under ``cache_root``.

    Fuzzy entries are left out, as ``pybabel compile`` does by default.

    :param source: folder holding ``<lang>/LC_MESSAGES/messages.po``.
    :param cache_root: folder for compiled catalogues (created if missing); one sub-folder per
        version of the sources, reused while the sources do not change.
    :raises OSError: ``cache_root`` is not writable.
    :return: the folder to give Flask-Babel as translation directory.
    """
    sources = catalogue_sources(source)
    target = cache_root / _digest(sources)
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".compiling-", dir=cache_root))
    try:
        for lang, po in sources.items():
            with po.open("rb") as handle:
                catalogue = read_po(handle, locale=lang, domain=DOMAIN)
            folder = work / lang / "LC_MESSAGES"
            folder.mkdir(parents=True)
            with (folder / f"{DOMAIN}.mo").open("wb") as out:
                write_mo(out, catalogue, use_fuzzy=False)
        work.chmod(0o755)
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():  # not "another worker was first"
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("translations compiled into %s", target)
    return target


def init_babel(app: Flask, default_language: str, time_zone: str, cache_root: Path) -> None:
    """Install Flask-Babel on ``app`` with the compiled catalogues, :func:`select_locale`-like
    selection and the given time zone (dates and times in pages and e-mails use it).

    Shared by the SSO and the demo portal.
    """
    from sso.resources import translations_dir

    Babel(
        app,
        default_locale=default_language,
        default_timezone=time_zone,
        locale_selector=select_locale,
        default_translation_directories=str(compile_catalogues(translations_dir(), cache_root)),
    )
    app.after_request(remember_language)


def init_app(app: Flask) -> None:
    """Install Flask-Babel with our locale selector and the Europe/Paris time zone (from the
    activation settings); catalogues compiled under ``var_folder/cache/translations``."""
    settings = runtime(app).settings
    init_babel(
        app,
        settings.site.default_language,
        settings.activation.time_zone,
        Path(settings.var_folder) / "cache" / "translations",
    )
