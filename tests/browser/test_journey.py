"""The newcomer's journey in a real browser, on a desktop and on a phone, in French and in English:
portal → SSO login → « 1ère connexion » → the link from the outbox → password chosen → sign-in →
back to the portal, which shows the name → logout everywhere. Every page passes axe-core's WCAG 2.1
A/AA rules with no serious or critical violation, fits the screen's width, and is photographed."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from tests.browser.conftest import ROOT, check_accessibility, fits_the_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "Tournesol-Bleu-47!"

#: The words each step looks for, in each language.
WORDS = {
    "fr": {
        "portal_login": "Se connecter avec l'ENT",
        "first": "1ère connexion",
        "next": "Suivant",
        "sent": "Consultez votre messagerie personnelle",
        "outbox": "Ouvrir la boîte d'envoi de la démo",
        "charter": "J'ai lu et j'accepte la charte informatique",
        "new": "Nouveau mot de passe",
        "confirm": "Confirmez le mot de passe",
        "save": "Enregistrer mon mot de passe",
        "done": "Votre compte est activé",
        "identifier": "Identifiant",
        "login_name": "Identifiant (Nom de connexion)",
        "password": "Mot de passe",
        "sign_in": "Se connecter",
        "hello": "Bonjour",
        "logout": "Se déconnecter",
        "wrong": "Identifiant ou mot de passe incorrect.",
    },
    "en": {
        "portal_login": "Sign in with the ENT",
        "first": "First sign-in",
        "next": "Next",
        "sent": "Check your personal e-mail",
        "outbox": "Open the demo's outbox",
        "charter": "I have read and accept the IT charter",
        "new": "New password",
        "confirm": "Confirm the password",
        "save": "Save my password",
        "done": "Your account is activated",
        "identifier": "Identifier",
        "login_name": "Identifier (login name)",
        "password": "Password",
        "sign_in": "Sign in",
        "hello": "Hello",
        "logout": "Sign out",
        "wrong": "Wrong identifier or password.",
    },
}


class Journey:
    """One person's walk through the pages, checking each page on the way."""

    def __init__(self, page, axe_source: str, name: str) -> None:
        self.page, self.axe, self.name = page, axe_source, name
        self.checked: list[str] = []

    def check(self, step: str) -> None:
        """Accessibility, width and a screenshot of the page shown now."""
        self.page.wait_for_load_state("load")
        violations = check_accessibility(self.page, self.axe)
        assert not violations, f"{step}: {violations}"
        assert fits_the_width(self.page), f"{step}: wider than the screen"
        screenshot(self.page, f"{self.name}-{step}")
        self.checked.append(step)


def link_from_outbox(page, outbox: str, recipient: str) -> str:
    """The activation link of the newest message to ``recipient`` (the mail is sent in the background)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.goto(outbox)
        article = page.locator("article.mail", has_text=recipient)
        if article.count():
            return article.first.locator("a[href*='/compte/lien?t=']").first.get_attribute("href")
        page.wait_for_timeout(250)
    raise AssertionError(f"no message to {recipient} in the outbox")


@pytest.mark.parametrize(
    ("viewport", "locale", "lang", "identifier", "first_name", "recipient"),
    [
        ("desktop", "fr-FR", "fr", "lea.petit@etu.univ-demo.fr", "Léa", "lea.petit@perso.example"),
        ("phone", "en-GB", "en", "sophie.moreau@univ-demo.fr", "Sophie", "sophie.moreau@perso.example"),
    ],
)
def test_first_connection_to_the_portal_and_logout(
    demo, new_page, axe_source, viewport, locale, lang, identifier, first_name, recipient
):
    words = WORDS[lang]
    page = new_page(viewport, locale)
    journey = Journey(page, axe_source, f"{viewport}-{lang}")

    page.goto(demo.portal + "/")
    journey.check("portal")
    page.get_by_role("link", name=words["portal_login"]).click()
    page.wait_for_url(re.compile(re.escape(demo.sso) + r"/login\?service="))
    assert page.locator("html").get_attribute("lang") == lang
    journey.check("login")

    page.get_by_role("link", name=words["first"]).click()
    journey.check("identifier")
    page.get_by_label(words["login_name"], exact=True).fill(identifier)
    page.get_by_role("button", name=words["next"]).click()
    page.get_by_role("heading", name=words["sent"]).wait_for()
    journey.check("sent")

    link = link_from_outbox(page, demo.outbox, recipient)
    journey.check("outbox")
    page.goto(link)
    journey.check("password")
    page.get_by_label(words["charter"]).check()
    page.get_by_label(words["new"], exact=True).fill(PASSWORD)
    page.get_by_label(words["confirm"], exact=True).fill(PASSWORD)
    page.locator("#rules li.met").first.wait_for()  # the live check, served by the app's own script
    page.get_by_role("button", name=words["save"]).click()
    page.get_by_role("heading", name=words["done"]).wait_for()
    journey.check("done")

    page.goto(demo.portal + "/")
    page.get_by_role("link", name=words["portal_login"]).click()
    page.get_by_label(words["identifier"], exact=True).fill(identifier)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=words["sign_in"], exact=True).click()
    page.wait_for_url(demo.portal + "/")
    assert page.get_by_role("heading", name=f"{words['hello']} {first_name}").is_visible()
    journey.check("portal-signed-in")

    page.goto(demo.sso + "/login")  # signed in: the ENT services as tiles
    assert page.get_by_role("heading", name=f"{words['hello']} {first_name}").is_visible()
    assert page.get_by_role("link", name=re.compile("Cours en ligne")).is_visible()
    journey.check("services")

    page.goto(demo.portal + "/")
    page.get_by_role("button", name=words["logout"]).click()
    page.wait_for_url(demo.portal + "/")
    assert page.get_by_role("link", name=words["portal_login"]).is_visible()
    page.goto(demo.sso + "/login")  # the SSO session is gone too
    assert page.get_by_label(words["password"], exact=True).is_visible()
    assert journey.checked == [
        "portal",
        "login",
        "identifier",
        "sent",
        "outbox",
        "password",
        "done",
        "portal-signed-in",
        "services",
    ]
    if viewport == "desktop" and os.environ.get("SSO_UPDATE_DOCS") == "1":
        shutil.copyfile(ROOT / "tests" / "artifacts" / "desktop-fr-login.png", ROOT / "docs" / "login.png")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_wrong_password_is_announced_and_the_focus_is_visible(new_page, demo, axe_source, viewport):
    page = new_page(viewport, "fr-FR")
    page.goto(demo.sso + "/login")
    page.get_by_label("Identifiant", exact=True).fill("camille.durand@etu.univ-demo.fr")
    page.get_by_label("Mot de passe", exact=True).fill("pas-le-bon")
    page.get_by_role("button", name="Se connecter", exact=True).click()
    alert = page.get_by_role("alert")
    assert "Identifiant ou mot de passe incorrect." in alert.inner_text()
    assert page.title().startswith("Erreur")
    page.get_by_label("Identifiant", exact=True).focus()
    page.keyboard.press("Tab")  # keyboard focus on the password field: :focus-visible applies
    assert page.evaluate("() => document.activeElement.id") == "password"
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
    assert not check_accessibility(page, axe_source)
    screenshot(page, f"{viewport}-fr-login-error")


def test_the_skip_link_comes_first_and_shows(new_page, demo):
    page = new_page("desktop", "fr-FR")
    page.goto(demo.sso + "/logout")  # a page without autofocus
    skip = page.locator("a.skip")
    assert not skip.is_visible() or skip.bounding_box()["x"] < 0
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0


def test_the_password_can_be_shown_and_hidden(new_page, demo):
    page = new_page("phone", "fr-FR")
    page.goto(demo.sso + "/login")
    field = page.get_by_label("Mot de passe", exact=True)
    field.fill("secret")
    toggle = page.get_by_role("button", name="Afficher le mot de passe")
    toggle.click()
    assert field.get_attribute("type") == "text"
    page.get_by_role("button", name="Masquer le mot de passe").click()
    assert field.get_attribute("type") == "password"


@pytest.mark.parametrize("path", ["/compte/reset", "/logout", "/compte/lien?t=abc", "/nulle-part"])
def test_other_pages_are_accessible(new_page, demo, axe_source, path):
    for viewport in ("desktop", "phone"):
        page = new_page(viewport, "fr-FR")
        page.goto(demo.sso + path)
        assert not check_accessibility(page, axe_source), path
        assert fits_the_width(page), path
