"""/login and /logout through the Flask client on the embedded directory (CAS 3.0 §2.1–2.3)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import BadSignature

from tests.web.conftest import csrf_token, sign_in

PORTAL = "http://127.0.0.1:8001/"
MOODLE = "https://moodle.univ-demo.fr/course/view.php?id=3"
STUDENT = ("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")


def ticket_of(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return parse_qs(urlsplit(response.headers["Location"]).query)["ticket"][0]


def test_login_page_speaks_the_words_users_know(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="fr">' in html
    for words in (
        "Identifiant",
        "Mot de passe",
        "Se connecter",
        "1ère connexion",
        "Problème de connexion",
        "Aide",
        "prenom.nom@etu.univ-demo.fr",
        "prenom.nom@univ-demo.fr",
    ):
        assert words in html
    assert 'href="https://infoservices.univ-demo.fr/aide-ent"' in html


def test_sign_in_without_service_shows_the_services(client):
    response = sign_in(client, *STUDENT)
    assert response.status_code == 303
    page = client.get("/login").get_data(as_text=True)
    assert "Bonjour Camille" in page
    assert "Cours en ligne" in page and "Se déconnecter" in page


def test_cookie_is_httponly_scoped_and_samesite(client):
    response = sign_in(client, *STUDENT)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("TGC="))
    assert "HttpOnly" in cookie and "Path=/" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the demo runs on plain http; under https it is set (test_https)


@pytest.mark.parametrize(
    "identifier", ["camille.durand@etu.univ-demo.fr", "  CAMILLE.Durand@ETU.univ-demo.fr ", "cdurand"]
)
def test_identifier_forms(client, identifier):
    response = sign_in(client, identifier, STUDENT[1], query=f"?service={PORTAL}")
    assert ticket_of(response).startswith("ST-")


def test_ticket_redirect_goes_to_the_registered_service(client):
    response = sign_in(client, *STUDENT, query=f"?service={MOODLE}")
    location = response.headers["Location"]
    assert location.startswith("https://moodle.univ-demo.fr/course/view.php?id=3&ticket=ST-")


@pytest.mark.parametrize(
    ("identifier", "password", "message"),
    [
        ("camille.durand@etu.univ-demo.fr", "wrong-password", "Identifiant ou mot de passe incorrect."),
        ("nobody@etu.univ-demo.fr", "Soleil-Vert-2026", "Identifiant ou mot de passe incorrect."),
        ("lea.petit@etu.univ-demo.fr", "anything-at-all", "pas encore activé"),
        ("paul.bernard@etu.univ-demo.fr", "Ancien-Mot-2024", "a expiré le"),
        ("marc.leroy@univ-demo.fr", "Verrou-Ferme-2026", "verrouillé"),
        ("paul.bernard@etu.univ-demo.fr", "not-his-password", "Identifiant ou mot de passe incorrect."),
    ],
)
def test_refusals_have_their_own_french_message(client, identifier, password, message):
    response = sign_in(client, identifier, password, query=f"?service={PORTAL}")
    html = response.get_data(as_text=True)
    assert response.status_code == 401
    assert message in html
    assert 'role="alert"' in html
    assert "Location" not in response.headers
    assert identifier.strip() in html  # what was typed is kept


def test_wrong_credentials_do_not_say_which_part_was_wrong(client):
    unknown = sign_in(client, "nobody@etu.univ-demo.fr", "x").get_data(as_text=True)
    wrong = sign_in(client, "camille.durand@etu.univ-demo.fr", "x").get_data(as_text=True)
    assert (
        unknown.replace("nobody@etu.univ-demo.fr", "ID").count("incorrect") == wrong.count("incorrect") == 1
    )


def test_post_without_csrf_token_is_refused_and_keeps_the_identifier(client):
    response = client.post("/login", data={"username": STUDENT[0], "password": STUDENT[1]})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "expiré" in html and STUDENT[0] in html
    assert "TGC=" not in response.headers.get("Set-Cookie", "")


def test_session_cookies_follow_a_key_rotation(app):
    """The session's signing serializer is made once, yet follows the keys: a cookie signed before a
    rotation is read with the previous key kept as a fallback, and refused once that key is dropped."""
    sessions = app.session_interface
    signed = sessions.get_signing_serializer(app).dumps({"csrf_token": "abc"})
    assert sessions.get_signing_serializer(app) is sessions.get_signing_serializer(app)
    old_key = app.secret_key
    app.config.update(SECRET_KEY="a-new-key-of-this-term-0123456789", SECRET_KEY_FALLBACKS=[old_key])
    assert sessions.get_signing_serializer(app).loads(signed) == {"csrf_token": "abc"}
    app.config.update(SECRET_KEY="yet-another-key-0123456789abcdef", SECRET_KEY_FALLBACKS=[])
    with pytest.raises(BadSignature):
        sessions.get_signing_serializer(app).loads(signed)


def test_the_session_cookie_is_read_only_when_the_session_is_used(app, client, monkeypatch):
    """An SSO redirect carries the session cookie but never uses the session: the cookie is not
    read (no signature check) and not sent back; the sign-in form reads it and keeps its token."""
    sign_in(client, *STUDENT, query=f"?service={PORTAL}")
    serializer = app.session_interface.get_signing_serializer(app)
    reads = []
    real = serializer.loads
    monkeypatch.setattr(serializer, "loads", lambda *a, **k: reads.append(1) or real(*a, **k))
    again = client.get(f"/login?service={PORTAL}")
    assert again.status_code == 302 and "ticket=ST-" in again.headers["Location"]
    assert reads == [] and "sso_session" not in again.headers.get("Set-Cookie", "")
    assert "Cookie" not in again.headers.get("Vary", "")
    form = client.get(f"/login?service={PORTAL}&renew=true")
    assert reads == [1] and csrf_token(form.get_data(as_text=True))
    assert "sso_session" not in form.headers.get("Set-Cookie", ""), "the same token: nothing to save"


def test_a_successful_sign_in_signs_no_csrf_token_a_refused_one_shows_a_fresh_form(client, monkeypatch):
    import sso.web.forms as forms

    signed = []
    real = forms.csrf_token
    monkeypatch.setattr(forms, "csrf_token", lambda *a, **kw: signed.append(1) or real(*a, **kw))
    page = client.get(f"/login?service={PORTAL}")
    token = csrf_token(page.get_data(as_text=True))
    signed.clear()
    wrong = client.post(
        f"/login?service={PORTAL}", data={"csrf_token": token, "username": STUDENT[0], "password": "nope"}
    )
    assert wrong.status_code == 401 and signed == [1]
    again = csrf_token(wrong.get_data(as_text=True))
    signed.clear()
    right = client.post(
        f"/login?service={PORTAL}", data={"csrf_token": again, "username": STUDENT[0], "password": STUDENT[1]}
    )
    assert right.status_code == 302 and signed == []


def test_a_tampered_session_cookie_is_a_new_session(client):
    client.get("/login")
    client.set_cookie("sso_session", "eyJjc3JmX3Rva2VuIjoiYWJjIn0.forged.signature")
    page = client.get("/login")
    assert page.status_code == 200 and csrf_token(page.get_data(as_text=True))
    assert "sso_session=" in page.headers.get("Set-Cookie", ""), "a new token, in a new cookie"


def test_unknown_service_is_never_redirected_to(client):
    for query in ("?service=https://evil.example/", "?service=https://moodle.univ-demo.fr.evil.example/"):
        page = client.get("/login" + query)
        assert page.status_code == 403
        assert "non autorisée" in page.get_data(as_text=True)
    sign_in(client, *STUDENT)
    response = client.get("/login?service=https://evil.example/")
    assert response.status_code == 403 and "Location" not in response.headers


def test_sso_second_service_without_password(client, rt):
    first = ticket_of(sign_in(client, *STUDENT, query=f"?service={PORTAL}"))
    second = ticket_of(client.get(f"/login?service={MOODLE}"))
    assert first != second
    assert rt.tickets.take(second, rt.clock()).primary is False


def test_renew_asks_for_the_password_again(client):
    sign_in(client, *STUDENT)
    page = client.get(f"/login?service={PORTAL}&renew=true")
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)


def test_gateway_without_session_returns_to_the_service_without_ticket(client):
    response = client.get(f"/login?service={PORTAL}&gateway=true")
    assert response.status_code == 302
    assert response.headers["Location"] == PORTAL


def test_gateway_with_session_issues_a_ticket(client):
    sign_in(client, *STUDENT)
    assert ticket_of(client.get(f"/login?service={PORTAL}&gateway=true")).startswith("ST-")


def test_gateway_to_unknown_service_does_not_redirect(client):
    response = client.get("/login?service=https://evil.example/&gateway=true")
    assert response.status_code == 403 and "Location" not in response.headers


def test_method_post_posts_the_ticket(client):
    response = sign_in(client, *STUDENT, query=f"?service={PORTAL}&method=POST")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'action="{PORTAL}"' in html and 'name="ticket" value="ST-' in html
    assert "<script src=" in html and "<script>" not in html


def test_fresh_session_at_each_sign_in(client):
    first = sign_in(client, *STUDENT).headers["Set-Cookie"]
    second = sign_in(client, *STUDENT, query="?renew=true").headers["Set-Cookie"]
    assert first.split(";")[0] != second.split(";")[0]
    assert client.get("/login?renew=true").status_code == 200


def test_logout_ends_the_session_and_redirects_only_to_registered_services(client, rt):
    sign_in(client, *STUDENT)
    response = client.get(f"/logout?service={PORTAL}")
    assert response.status_code == 302 and response.headers["Location"] == PORTAL
    assert "TGC=;" in response.headers["Set-Cookie"]
    page = client.get("/login").get_data(as_text=True)
    assert 'name="password"' in page
    evil = client.get("/logout?service=https://evil.example/")
    assert evil.status_code == 200 and "Location" not in evil.headers
    assert "déconnecté" in evil.get_data(as_text=True)


def test_failed_sign_ins_are_throttled_per_identifier(client):
    for _ in range(5):
        assert sign_in(client, STUDENT[0], "wrong").status_code == 401
    response = sign_in(client, *STUDENT)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Trop de tentatives" in html and "Réessayez dans" in html
    assert int(response.headers["Retry-After"]) > 0
    # another person on the same address is not locked out by someone else's identifier
    assert sign_in(client, "jean.dupont@univ-demo.fr", "Marche-Bleu-2026").status_code == 303


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_english_is_available(client):
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_warn_asks_before_signing_in_to_the_service(client):
    sign_in(client, *STUDENT)
    page = client.get(f"/login?service={PORTAL}&warn=true")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Portail ENT" in html and "ticket=" not in html
    assert ticket_of(client.get(f"/login?service={PORTAL}")).startswith("ST-")


@pytest.mark.parametrize("config_overrides", [{"security": {"login_per_address": "3 per 5 minutes"}}])
def test_password_spraying_is_slowed_per_address(client, config_overrides):
    # one password, many identifiers, one address
    for name in ("a.one", "b.two", "c.three"):
        assert sign_in(client, f"{name}@etu.univ-demo.fr", "Printemps2026!").status_code == 401
    assert sign_in(client, "d.four@etu.univ-demo.fr", "Printemps2026!").status_code == 429


@pytest.mark.parametrize(
    "config_overrides",
    [{"security": {"login_per_address": "3 per 5 minutes", "exempt_networks": ["127.0.0.0/8"]}}],
)
def test_exempt_networks_skip_the_address_limit_only(client, config_overrides):
    for name in ("a.one", "b.two", "c.three", "d.four"):
        assert sign_in(client, f"{name}@etu.univ-demo.fr", "Printemps2026!").status_code == 401
    for _ in range(5):
        sign_in(client, STUDENT[0], "wrong")
    assert sign_in(client, *STUDENT).status_code == 429  # the per-identifier limit still holds


def test_cached_sign_in_form_carries_each_visitors_own_token(app):
    first, second = app.test_client(), app.test_client()
    page_a = first.get(f"/login?service={PORTAL}").get_data(as_text=True)
    page_b = second.get(f"/login?service={PORTAL}").get_data(as_text=True)  # from the cache
    token_a, token_b = csrf_token(page_a), csrf_token(page_b)
    assert token_a != token_b and "__sso_csrf" not in page_b
    assert page_a.replace(token_a, "T") == page_b.replace(token_b, "T")
    for client, token in ((first, token_a), (second, token_b)):
        response = client.post(
            f"/login?service={PORTAL}",
            data={"username": STUDENT[0], "password": STUDENT[1], "csrf_token": token},
        )
        assert ticket_of(response).startswith("ST-")


def test_cached_sign_in_form_follows_language_and_service(client):
    french = client.get(f"/login?service={MOODLE}").get_data(as_text=True)
    english = client.get(f"/login?service={MOODLE}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    other = client.get(f"/login?service={PORTAL}").get_data(as_text=True)
    assert '<html lang="fr">' in french and '<html lang="en">' in english
    assert "Cours en ligne" in french and "Portail ENT" in other


def test_page_cache_is_bounded():
    from sso.web.pages import PageCache

    cache = PageCache(size=2)
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") is None and cache.get("b") == "B" and cache.get("c") == "C"


def test_our_csrf_tokens_are_flask_wtfs(app):
    """The token signed with the cached serializer is the one Flask-WTF would sign, and its
    validate_csrf accepts it; a token for another raw value or from another key is refused."""
    from flask import session
    from flask_wtf.csrf import generate_csrf, validate_csrf
    from wtforms import ValidationError

    from sso.web.forms import csrf_token

    with app.test_request_context("/login"):
        ours = csrf_token()
        validate_csrf(ours)
        raw = session["csrf_token"]
    with app.test_request_context("/login"):
        session["csrf_token"] = raw
        theirs = generate_csrf()
        # Same payload and salt: only the timestamp may differ, and both verify the same way.
        assert ours.split(".")[0] == theirs.split(".")[0]
        validate_csrf(theirs)
        validate_csrf(ours)
        session["csrf_token"] = "another raw token"
        with pytest.raises(ValidationError):
            validate_csrf(ours)
    with app.test_request_context("/login"):
        session["csrf_token"] = raw
        forged = csrf_token(secret_key="not-the-servers-key-0123456789abcdef")  # the same raw token
        with pytest.raises(ValidationError):
            validate_csrf(forged)
