"""First connection against a real slapd and a real SMTP server, over real HTTP (gunicorn):
the link comes from the received e-mail, the password is written with the Password Modify
operation, then a CAS sign-in works and the same link is refused. SMTP down: same answer,
the message arrives once SMTP is back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from urllib.parse import quote, urlsplit

import pytest
import requests
from cas import CASClientV3

from tests.integration.conftest import Browser, sso_stack
from tests.support.servers import Gunicorn, RecordingService, SmtpSink

pytestmark = pytest.mark.integration

NEW_PASSWORD = "Tournesol-Bleu-47!"


@pytest.fixture
def stack(tmp_path, slapd_factory) -> Iterator[tuple[Gunicorn, SmtpSink, RecordingService]]:
    with sso_stack(tmp_path, slapd_factory(), {"mail": {"retry_delays": [0.5]}}) as running:
        yield running.sso, running.smtp, running.recorder


def ask_link(browser: Browser, identifier: str) -> requests.Response:
    page = browser.http.get(f"{browser.base}/compte/activation", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return browser.http.post(
        f"{browser.base}/compte/activation", data={"username": identifier, "csrf_token": token}, timeout=10
    )


def link_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            return re.search(r"https?://\S+/compte/lien\?t=\S+", text).group(0)
    raise AssertionError("no text part")


def set_password(browser: Browser, link: str, password: str) -> requests.Response:
    page = browser.http.get(link, timeout=10)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return browser.http.post(
        link, data={"csrf_token": token, "password": password, "confirm": password}, timeout=10
    )


def test_first_connection_end_to_end(stack):
    sso, smtp, service_host = stack
    browser = Browser(sso.url)
    sent = ask_link(browser, "lea.petit@etu.univ-demo.fr")
    assert sent.status_code == 200 and "jusqu'à 23:59" in sent.text
    message = smtp.wait_for(1)[0]
    assert message["To"] == "lea.petit@perso.example"
    link = link_of(message)
    assert link.startswith(sso.url + "/compte/lien?t=")
    done = set_password(browser, link, NEW_PASSWORD)
    assert done.status_code == 200 and "activé" in done.text
    confirmation = smtp.wait_for(2)[1]
    assert "modifié" in confirmation["Subject"]
    # a CAS sign-in with the new password, validated by python-cas
    service = service_host.url + "/app"
    signed = browser.sign_in(
        "lea.petit@etu.univ-demo.fr", NEW_PASSWORD, query=f"?service={quote(service, safe='')}"
    )
    ticket = dict(part.split("=") for part in urlsplit(signed.headers["Location"]).query.split("&"))["ticket"]
    assert CASClientV3(service_url=service, server_url=sso.url + "/").verify_ticket(ticket)[0] == "lpetit"
    # the link is spent
    again = browser.http.get(link, timeout=10)
    assert again.status_code == 410
    browser.close()


def test_directory_refusal_keeps_the_link(stack):
    sso, smtp, _ = stack
    browser = Browser(sso.url)
    ask_link(browser, "sophie.moreau@univ-demo.fr")
    link = link_of(smtp.wait_for(1)[0])
    assert set_password(browser, link, NEW_PASSWORD).status_code == 200
    # a second link for the now active account (reset), then the same password: in the directory's history
    page = browser.http.get(f"{sso.url}/compte/reset", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    browser.http.post(
        f"{sso.url}/compte/reset", data={"username": "smoreau", "csrf_token": token}, timeout=10
    )
    reset_link = link_of(smtp.wait_for(3)[2])
    refused = set_password(browser, reset_link, NEW_PASSWORD)
    assert refused.status_code == 400 and "déjà utilisé" in refused.text
    assert set_password(browser, reset_link, "Autre-Chemin-2026!").status_code == 200
    browser.close()


def test_smtp_down_same_answer_then_delivered(stack):
    sso, smtp, _ = stack
    browser = Browser(sso.url)
    up = ask_link(browser, "lea.petit@etu.univ-demo.fr").text
    smtp.wait_for(1)
    smtp.stop()
    down = ask_link(browser, "sophie.moreau@univ-demo.fr")
    assert down.status_code == 200
    assert re.sub(r"\s+", " ", down.text) == re.sub(r"\s+", " ", up)
    back = SmtpSink(port=smtp.port).start()
    try:
        message = back.wait_for(1, timeout=30)[0]
        assert message["To"] == "sophie.moreau@perso.example"
    finally:
        back.stop()
    browser.close()
