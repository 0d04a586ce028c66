"""« 1ère connexion » / « Problème de connexion » through the Flask client, mail in the outbox folder."""

from __future__ import annotations

import email
import re
from email import policy as email_policy
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import csrf_token, sign_in

NEW_PASSWORD = "Tournesol-Bleu-47!"


def ask_link(client, identifier: str, purpose: str = "activation"):
    page = client.get(f"/compte/{purpose}")
    return client.post(
        f"/compte/{purpose}",
        data={"username": identifier, "csrf_token": csrf_token(page.get_data(as_text=True))},
    )


def delivered(rt) -> list[email.message.EmailMessage]:
    rt.activation.drain()
    rt.mail.run_once()
    outbox = rt.settings.mail.outbox
    files = sorted(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime) if outbox.exists() else []
    return [email.message_from_bytes(path.read_bytes(), policy=email_policy.default) for path in files]


def link_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https?://\S+/compte/lien\?t=\S+", text).group(0)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def choose_password(client, link: str, password: str = NEW_PASSWORD, confirm: str | None = None, **extra):
    page = client.get(local(link))
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    data = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "password": password,
        "confirm": password if confirm is None else confirm,
        **extra,
    }
    return client.post(local(link), data=data)


def test_login_page_links_lead_to_one_form_with_two_wordings(client):
    first = client.get("/compte/activation").get_data(as_text=True)
    reset = client.get("/compte/reset").get_data(as_text=True)
    for page in (first, reset):
        assert "Identifiant (Nom de connexion)" in page and "Suivant" in page
        assert "prenom.nom@etu.univ-demo.fr" in page
    assert "1ère connexion" in first and "Problème de connexion" in reset
    assert client.get("/compte/other").status_code == 404


def test_same_answer_whether_or_not_the_account_exists(client):
    bodies = {}
    for identifier in (
        "lea.petit@etu.univ-demo.fr",
        "nobody@etu.univ-demo.fr",
        "paul.bernard@etu.univ-demo.fr",
        "nina.lambert@etu.univ-demo.fr",
        "*)(uid=*",
    ):
        response = ask_link(client, identifier)
        assert response.status_code == 200
        bodies[identifier] = response.get_data(as_text=True)
    assert len(set(bodies.values())) == 1
    assert "valable aujourd'hui jusqu'à 23:59" in next(iter(bodies.values()))


def test_only_an_existing_usable_account_with_a_personal_mail_gets_a_link(client, rt):
    for identifier in (
        "nobody@etu.univ-demo.fr",
        "paul.bernard@etu.univ-demo.fr",
        "nina.lambert@etu.univ-demo.fr",
    ):
        ask_link(client, identifier)
    assert delivered(rt) == []
    ask_link(client, "LEA.PETIT@etu.univ-demo.fr ")
    messages = delivered(rt)
    assert [message["To"] for message in messages] == ["lea.petit@perso.example"]
    assert "Activez votre compte" in messages[0]["Subject"]
    assert link_in(messages[0]).startswith(
        "http://127.0.0.1:8000/compte/lien?t="
    )  # configured base, not Host


def test_first_connection_from_the_mail_to_a_sign_in(client, rt):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    # opening the link changes nothing, however often
    assert client.get(local(link)).status_code == 200
    assert client.get(local(link)).status_code == 200
    done = choose_password(client, link)
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    assert "Votre compte est activé" in done.get_data(as_text=True)
    confirmation = delivered(rt)[-1]
    assert "a été modifié" in confirmation["Subject"]
    assert sign_in(client, "lea.petit@etu.univ-demo.fr", NEW_PASSWORD).status_code == 303
    used = client.get(local(link))
    assert used.status_code == 410 and "déjà été utilisé" in used.get_data(as_text=True)


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("Tournesol-Bleu-47!", "Tournesol-Bleu-48!", "ne sont pas identiques"),
        ("azerty", "azerty", "ne respecte pas toutes les règles"),
        ("Lea-Petit-2026-xyz", "Lea-Petit-2026-xyz", "ne respecte pas toutes les règles"),
    ],
)
def test_refused_passwords_keep_the_link_usable(client, rt, password, confirm, message):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    refused = choose_password(client, link, password, confirm)
    assert refused.status_code == 400 and message in refused.get_data(as_text=True)
    assert choose_password(client, link).status_code == 200


def test_reset_of_an_active_account(client, rt):
    ask_link(client, "jean.dupont@univ-demo.fr", purpose="reset")
    message = delivered(rt)[0]
    assert "nouveau mot de passe" in message["Subject"]
    assert choose_password(client, link_in(message)).status_code == 200
    assert sign_in(client, "jean.dupont@univ-demo.fr", "Marche-Bleu-2026").status_code == 401
    assert sign_in(client, "jean.dupont@univ-demo.fr", NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize("token", ["", "garbage", "x" * 5000, "eyJ1Ijoi.tampered.sig", "%00"])
def test_bad_links_get_a_clear_page_with_a_way_forward(client, token):
    response = client.get(f"/compte/lien?t={token}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "n'est pas valide" in html and "Demander un nouveau lien" in html


def test_tampered_link(client, rt):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(local(tampered)).status_code == 400


def test_expired_link(client, rt, clock):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    clock.advance(2 * 86400)
    response = client.get(local(link))
    assert response.status_code == 410 and "a expiré" in response.get_data(as_text=True)


def test_link_form_without_csrf_is_refused(client, rt):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    response = client.post(local(link), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert choose_password(client, link).status_code == 200


def test_live_check_speaks_the_server_rules(client, rt):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    page = client.get(local(link)).get_data(as_text=True)
    check = re.search(r'data-check-url="([^"]+)"', page).group(1).replace("&amp;", "&")
    token = csrf_token(page)
    weak = client.post(check, data={"csrf_token": token, "password": "petit", "confirm": ""}).get_json()
    assert weak["ok"] is False and weak["rules"]["length"] is False and weak["rules"]["not_personal"] is False
    strong = client.post(
        check, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    ).get_json()
    assert strong["ok"] is True
    assert client.post(check, data={"password": "x"}).status_code == 400


def test_link_requests_are_rate_limited(client):
    answers = [ask_link(client, "lea.petit@etu.univ-demo.fr") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[3]
    assert "Trop de demandes" in refused.get_data(as_text=True) or "trop de demandes" in refused.get_data(
        as_text=True
    )
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert not [name for name in refused.headers.keys() if name.lower().startswith("x-ratelimit")]
    # another identifier, same address: its own window
    assert ask_link(client, "jean.dupont@univ-demo.fr").status_code == 200


def test_live_password_checks_are_limited_per_address(client, rt):
    from sso.throttle import Window

    windows = [Window("password-check", rt.limits["password_check"], "127.0.0.1")]
    for _ in range(120):
        assert rt.throttle.hit(windows) is None
    response = client.post("/compte/verifier", data={"password": "x"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


def test_demo_outbox_shows_the_message_and_its_link(client, rt):
    sent = ask_link(client, "lea.petit@etu.univ-demo.fr").get_data(as_text=True)
    assert "/demo/outbox" in sent
    rt.activation.drain()
    page = client.get("/demo/outbox").get_data(as_text=True)
    assert "lea.petit@perso.example" in page and 'href="http://127.0.0.1:8000/compte/lien?t=' in page


@pytest.mark.parametrize("reason", ["expired", "locked"])
def test_link_of_an_account_closed_since_gets_its_own_page(client, rt, reason):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    account = rt.directory.find("lea.petit@etu.univ-demo.fr")
    change = {
        "expired": {"schacExpiryDate": ["20200101000000Z"]},
        "locked": {"pwdAccountLockedTime": ["000001010000Z"]},
    }
    rt.directory.update(account, change[reason])
    response = client.get(local(link))
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "ne peut plus être activé" in html
    assert "Demander un nouveau lien" not in html  # a new link would not help


CHARTER_AND_CONSENT = {
    # read back what activation writes (the attributes an account carries are the released ones)
    "directory": {
        "release_attributes": ["uid", "mail", "cn", "displayName", "givenName", "sn", "title", "description"]
    },
    "activation": {
        "charter_url": "https://infoservices.univ-demo.fr/charte",
        "charter_version": "2026",
        "charter_attribute": "description",
        "consent_attribute": "title",
        "consent_value": "annuaire-public",
    },
}


@pytest.mark.parametrize("config_overrides", [CHARTER_AND_CONSENT])
def test_charter_and_consent_steps_on_first_activation(client, rt, config_overrides):
    ask_link(client, "lea.petit@etu.univ-demo.fr")
    link = link_in(delivered(rt)[0])
    page = client.get(local(link)).get_data(as_text=True)
    assert "charte informatique" in page and 'href="https://infoservices.univ-demo.fr/charte"' in page
    assert "annuaire public" in page
    refused = choose_password(client, link)
    assert refused.status_code == 400 and "accepter la charte" in refused.get_data(as_text=True)
    done = choose_password(client, link, charter="y", consent="y")
    assert done.status_code == 200
    account = rt.directory.find("lea.petit@etu.univ-demo.fr")
    assert account.first("title") == "annuaire-public"
    assert account.first("description").startswith("2026;")  # charter version;date


@pytest.mark.parametrize("config_overrides", [CHARTER_AND_CONSENT])
def test_no_charter_step_on_a_reset(client, rt, config_overrides):
    ask_link(client, "jean.dupont@univ-demo.fr", purpose="reset")
    link = link_in(delivered(rt)[0])
    page = client.get(local(link)).get_data(as_text=True)
    assert "charte informatique" not in page
    assert choose_password(client, link).status_code == 200
