"""French and English: every French string has its English translation, catalogues compile at
start-up (nothing generated in git), the language follows the browser, the page switch and the
cookie, and dates are in the person's language and in Europe/Paris."""

from __future__ import annotations

import email
import re
from email import policy as email_policy
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po, write_po

from sso.resources import templates_dir, translations_dir
from sso.web.i18n import COOKIE, catalogue_sources, compile_catalogues
from tests.web import conftest as web
from tests.web.conftest import csrf_token

#: The endpoint-test fixtures of tests/web/conftest.py.
app, client, clock, config_overrides, rt = web.app, web.client, web.clock, web.config_overrides, web.rt

ROOT = Path(__file__).resolve().parents[1]
#: The gettext functions used in Python code (``_l`` is ``lazy_gettext``), as in babel.cfg.
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[str | tuple[str, ...], str]:
    """Every msgid of the Python code and the templates, as ``pybabel extract`` finds them (in memory)."""
    found: dict[str | tuple[str, ...], str] = {}
    sources = [
        (ROOT / "sso", [("**.py", "python")]),
        (templates_dir(), [("**.html", "jinja2"), ("**.txt", "jinja2")]),
    ]
    for folder, method_map in sources:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(folder), method_map, keywords=KEYWORDS
        ):
            key = message if isinstance(message, str) else tuple(message)
            found.setdefault(key, f"{folder.name}/{filename}")
    return found


@pytest.fixture(scope="module")
def english() -> Catalog:
    with (translations_dir() / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale="en")


def _translations(catalogue: Catalog) -> dict[str | tuple[str, ...], object]:
    return {
        (message.id if isinstance(message.id, str) else tuple(message.id)): message
        for message in catalogue
        if message.id
    }


def test_extraction_finds_the_strings_of_code_and_templates():
    found = extracted()
    assert "Connexion à l'ENT" in found  # a template
    assert "Identifiant ou mot de passe incorrect." in found  # Python, gettext
    assert "Saisissez votre identifiant." in found  # Python, lazy_gettext (_l)
    assert any(isinstance(key, tuple) for key in found)  # ngettext


def test_every_french_string_has_an_english_translation(english):
    catalogue = _translations(english)
    missing = []
    for msgid, where in sorted(extracted().items(), key=str):
        message = catalogue.get(msgid)
        strings = (
            ()
            if message is None
            else (message.string if isinstance(message.string, tuple) else (message.string,))
        )
        if message is None or message.fuzzy or not strings or not all(strings):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "no English translation (see docs/translations.md):\n" + "\n".join(missing)


def test_the_catalogue_holds_no_string_the_code_no_longer_uses(english):
    used = set(extracted())
    stale = [msgid for msgid in _translations(english) if msgid not in used]
    assert not stale, f"obsolete entries in messages.po: {stale}"


def test_translations_keep_the_placeholders(english):
    wrong = []
    for message in english:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set().union(*(PLACEHOLDER.findall(text) for text in ids))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != expected:
                wrong.append((message.id, text))
    assert not wrong


def test_no_compiled_catalogue_in_the_source_tree():
    assert not list(translations_dir().rglob("*.mo")), (
        "compiled catalogues are build products: never commit them"
    )


def test_catalogues_compile_into_a_cache_named_after_their_content(tmp_path):
    first = compile_catalogues(translations_dir(), tmp_path / "cache")
    assert first.parent == tmp_path / "cache"
    with (first / "en" / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert compiled.get("Se connecter").string == "Sign in"
    assert compile_catalogues(translations_dir(), tmp_path / "cache") == first  # reused, not rebuilt
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no work folder left


def test_a_changed_catalogue_is_compiled_afresh_and_fuzzy_entries_are_left_out(tmp_path):
    source = tmp_path / "translations"
    folder = source / "en" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    catalogue = Catalog(locale="en")
    catalogue.add("Bonjour", "Hello")
    catalogue.add("Au revoir", "Goodbye", flags={"fuzzy"})
    with (folder / "messages.po").open("wb") as out:
        write_po(out, catalogue)
    first = compile_catalogues(source, tmp_path / "cache")
    with (first / "en" / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert compiled.get("Bonjour").string == "Hello" and compiled.get("Au revoir") is None
    catalogue.add("Merci", "Thank you")
    with (folder / "messages.po").open("wb") as out:
        write_po(out, catalogue)
    assert compile_catalogues(source, tmp_path / "cache") != first
    assert set(catalogue_sources(source)) == {"en"}


def test_pages_are_french_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Connexion à l'ENT" in html and "Sign in" not in html


@pytest.mark.parametrize("header", ["en", "en-GB,en;q=0.9", "en-US,en;q=0.8,fr;q=0.5", "de-DE,en;q=0.7"])
def test_the_browser_language_is_followed(client, header):
    html = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert '<html lang="en">' in html and "Sign in to the ENT" in html and "Your identifier" in html
    assert "Identifier" in html and "First sign-in" in html and "Trouble signing in" in html


@pytest.mark.parametrize("header", ["", "fr-FR,fr;q=0.9,en;q=0.8", "de-DE", "zz;q=0.1"])
def test_otherwise_french(client, header):
    html = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert '<html lang="fr">' in html


def test_the_language_chosen_on_the_page_is_remembered(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/login?lang=en"' in html  # the switch, on the page
    response = client.get("/login?lang=en")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie
    # no parameter any more, a French browser: the choice wins
    html = client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in html
    client.get("/login?lang=fr")
    assert '<html lang="fr">' in client.get("/login", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )


@pytest.mark.parametrize("value", ["de", "EN", "en;", "<script>", "fr-FR"])
def test_unknown_languages_are_ignored(client, value):
    response = client.get("/login", query_string={"lang": value})
    assert response.status_code == 200
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}=")]
    assert '<html lang="fr">' in response.get_data(as_text=True)


def test_the_switch_keeps_the_service(client):
    html = client.get("/login?service=http%3A%2F%2F127.0.0.1%3A8001%2F").get_data(as_text=True)
    assert 'href="/login?service=http%3A%2F%2F127.0.0.1%3A8001%2F&amp;lang=en"' in html


def test_error_pages_and_form_errors_are_translated(client):
    assert "Page not found" in client.get("/nowhere?lang=en").get_data(as_text=True)
    page = client.get("/login")
    html = client.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True))}).get_data(
        as_text=True
    )
    assert "Enter your identifier." in html and "<title>Error: Sign in" in html


def _delivered(rt) -> list[email.message.EmailMessage]:
    rt.activation.drain()
    rt.mail.run_once()
    folder = rt.settings.mail.outbox
    return [
        email.message_from_bytes(p.read_bytes(), policy=email_policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


@pytest.mark.parametrize(
    ("lang", "page_words", "subject", "body_words"),
    [
        (
            "fr",
            "valable aujourd'hui jusqu'à 23:59",
            "Activez votre compte ENT",
            ["Bonjour Léa Petit,", "lundi 21 septembre 2026 à 23:59 (heure de Paris)"],
        ),
        (
            "en",
            "valid today until 23:59",
            "Activate your ENT account",
            ["Hello Léa Petit,", "Monday, September 21, 2026 at 23:59 (Paris time)"],
        ),
    ],
)
def test_pages_and_mails_speak_the_language_dates_in_paris_time(
    client, rt, lang, page_words, subject, body_words
):
    page = client.get(f"/compte/activation?lang={lang}")
    sent = client.post(
        "/compte/activation",
        data={
            "username": "lea.petit@etu.univ-demo.fr",
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )
    assert page_words in sent.get_data(as_text=True)
    (message,) = _delivered(rt)
    assert message["Subject"].startswith(subject)
    text = message.get_body(("plain",)).get_content()
    for words in body_words:
        assert words in text


def test_the_default_identifier_hint_is_translated(client):
    html = client.get("/login?lang=en").get_data(as_text=True)
    assert "It is given in the summary of your administrative registration" in html
