"""Theming through the configuration and a theme folder (docs/theming.md)."""

from __future__ import annotations

import pytest

from sso.config.schema import SiteSettings
from sso.web.theme import contrast_ratio, theme_warnings
from tests.web import conftest as web

#: The endpoint-test fixtures of tests/web/conftest.py.
app, client, clock, rt = web.app, web.client, web.clock, web.rt

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cf"
    "f01f0005000201a5d6c1e10000000049454e44ae426082"
)


@pytest.fixture
def config_overrides(tmp_path) -> dict:
    theme = tmp_path / "theme"
    (theme / "static").mkdir(parents=True)
    (theme / "static" / "logo.png").write_bytes(PNG)
    (theme / "static" / "theme.css").write_text(".card { border-radius: 0; }\n", encoding="utf-8")
    (theme / "message.html").write_text(
        '{% extends "base.html" %}{% block content %}<p class="themed">{{ title }} (thème)</p>{% endblock %}',
        encoding="utf-8",
    )
    return {
        "site": {
            "name": "Mon ENT",
            "institution": "Université de Test",
            "theme_folder": str(theme),
            "logo_url": "logo.png",
            "primary_color": "#6a1b4d",
            "help_url": "https://aide.univ-test.fr/",
            "identifier_hint": "Voir votre carte Léocarte.",
        },
    }


def test_name_logo_colour_help_and_stylesheet_come_from_the_configuration(client):
    html = client.get("/login").get_data(as_text=True)
    assert "Mon ENT" in html and "Université de Test" in html
    assert '<img src="/theme/static/logo.png" alt="" class="logo">' in html
    assert 'href="/theme/static/theme.css"' in html and 'href="https://aide.univ-test.fr/"' in html
    with client.get("/theme/static/logo.png") as logo:
        assert logo.status_code == 200 and logo.data == PNG
    assert "--primary: #6a1b4d;" in client.get("/theme/colours.css").get_data(as_text=True)


def test_theme_templates_override_the_defaults(client):
    html = client.get("/logout").get_data(as_text=True)
    assert '<p class="themed">' in html and "(thème)" in html
    assert "Connexion à l'ENT" in client.get("/login").get_data(as_text=True)  # the others stay


@pytest.mark.parametrize("path", ["../sso.yaml", "..%2Fsso.yaml", "%2Fetc%2Fpasswd", "message.html"])
def test_only_the_theme_static_folder_is_served(client, path):
    assert client.get(f"/theme/static/{path}", follow_redirects=True).status_code == 404


def test_a_configured_identifier_hint_is_shown_as_written(client):
    assert "Voir votre carte Léocarte." in client.get("/login?lang=en").get_data(as_text=True)


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#ffffff", "#000000", 21.0),
        ("#000000", "#ffffff", 21.0),
        ("#00508c", "#00508c", 1.0),
        ("#767676", "#ffffff", 4.54),
    ],
)
def test_contrast_ratio_follows_wcag(first, second, ratio):
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.01)


@pytest.mark.parametrize(
    ("site", "warning"),
    [
        ({"primary_color": "#ffbf47"}, "contrast of 1.6:1"),
        ({"logo_url": "https://cdn.example/logo.png"}, "Content-Security-Policy"),
        ({"logo_url": "missing.png"}, "no such file"),
    ],
)
def test_theme_problems_are_warned_of(site, warning):
    warnings = theme_warnings(SiteSettings(base_url="https://sso.univ.fr", **site))
    assert len(warnings) == 1 and warning in warnings[0]


def test_the_default_theme_has_no_warning():
    assert theme_warnings(SiteSettings(base_url="https://sso.univ.fr")) == []
