"""The directory's password policy (OpenLDAP ppolicy) as a person meets it, over real HTTP:
lockout, administrator reset, expiry warning, grace sign-ins, a password the directory refuses;
and equal work for an unknown identifier and a wrong password."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest
from ldap3 import MODIFY_REPLACE

from ldapdir.passwords import hash_password
from tests.integration.conftest import Browser, sso_stack
from tests.support.servers import Gunicorn
from tests.support.slapd import Slapd, require_slapd

pytestmark = pytest.mark.integration

DAY = 86400
OLD_PASSWORD = "Ancre-Marine-2025!"
NEW_PASSWORD = "Tournesol-Bleu-47!"


def person(uid: str, changed: datetime) -> str:
    return f"""dn: uid={uid},ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
uid: {uid}
cn: Test {uid}
sn: {uid}
givenName: Test
mail: {uid}@etu.univ-demo.fr
userPassword: {hash_password(OLD_PASSWORD, "{SSHA}")}
pwdChangedTime: {changed:%Y%m%d%H%M%SZ}
"""


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory) -> Iterator[tuple[Gunicorn, Slapd]]:
    require_slapd()
    folder = tmp_path_factory.mktemp("ppolicy")
    now = datetime.now(UTC)
    extra = folder / "people.ldif"
    extra.write_text(
        person("warned", now - timedelta(days=20)) + "\n" + person("graced", now - timedelta(days=40))
    )
    slapd = (
        Slapd(
            folder / "slapd",
            extra_ldif=[extra],
            policy={"pwdMaxAge": str(30 * DAY), "pwdExpireWarning": str(20 * DAY), "pwdGraceAuthNLimit": "2"},
        )
        .setup()
        .start()
    )
    changes = {
        "security": {"login_per_identifier": "1000 per minute", "login_per_address": "1000 per minute"}
    }
    try:
        with sso_stack(folder, slapd, changes) as stack:
            yield stack.sso, slapd
    finally:
        slapd.cleanup()


@pytest.fixture
def browser(policy_server) -> Iterator[Browser]:
    client = Browser(policy_server[0].url)
    yield client
    client.close()


def follow_change_link(browser: Browser, page_text: str) -> str:
    link = re.search(r'href="(/compte/lien\?t=[^"]+)"', page_text)
    assert link, page_text[:800]
    return link.group(1).replace("&amp;", "&")


def choose(browser: Browser, link: str, password: str):
    page = browser.http.get(browser.base + link, timeout=10)
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return browser.http.post(
        browser.base + link, data={"csrf_token": token, "password": password, "confirm": password}, timeout=10
    )


def test_lockout_after_repeated_failures(browser):
    for _ in range(5):
        assert browser.sign_in("jean.dupont@univ-demo.fr", "not-the-password").status_code == 401
    locked = browser.sign_in("jean.dupont@univ-demo.fr", "Marche-Bleu-2026")
    assert locked.status_code == 401 and "verrouillé" in locked.text


def test_administrator_reset_forces_a_change(policy_server, browser):
    _, slapd = policy_server
    root = slapd.root_connection()
    root.modify("uid=cdurand,ou=people,dc=univ-demo,dc=fr", {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]})
    root.unbind()
    page = browser.sign_in("camille.durand@etu.univ-demo.fr", "Soleil-Vert-2026")
    assert page.status_code == 200 and "Changement de mot de passe obligatoire" in page.text
    assert "TGC" not in browser.http.cookies
    done = choose(browser, follow_change_link(browser, page.text), NEW_PASSWORD)
    assert done.status_code == 200 and "enregistré" in done.text
    signed = browser.sign_in("camille.durand@etu.univ-demo.fr", NEW_PASSWORD)
    assert signed.status_code == 303  # pwdReset was cleared: a normal sign-in now


def test_expiry_warning_then_continue(browser):
    service = "https://other.univ-demo.fr/"
    page = browser.sign_in(
        "warned@etu.univ-demo.fr", OLD_PASSWORD, query=f"?service={quote(service, safe='')}"
    )
    assert page.status_code == 200 and "expire dans" in page.text and "jours" in page.text
    assert "TGC" in browser.http.cookies  # signed in all the same
    go_on = re.search(r'href="(/login\?service=[^"]+)"', page.text).group(1).replace("&amp;", "&")
    ticket = browser.http.get(browser.base + go_on, allow_redirects=False, timeout=10)
    assert ticket.status_code == 302 and "ticket=ST-" in ticket.headers["Location"]


def test_grace_sign_in_leads_to_a_change_and_refusals_keep_the_link(browser):
    page = browser.sign_in("graced@etu.univ-demo.fr", OLD_PASSWORD)
    assert page.status_code == 200 and re.search(r"reste \d+ connexions? de secours", page.text)
    link = follow_change_link(browser, page.text)
    refused = choose(browser, link, OLD_PASSWORD)  # in the directory's history
    assert refused.status_code == 400 and "déjà utilisé" in refused.text
    assert choose(browser, link, NEW_PASSWORD).status_code == 200
    assert browser.sign_in("graced@etu.univ-demo.fr", NEW_PASSWORD).status_code == 303


def binds(slapd: Slapd) -> int:
    connection = slapd.root_connection()
    try:
        connection.search(
            "cn=Bind,cn=Operations,cn=Monitor",
            "(objectClass=*)",
            search_scope="BASE",
            attributes=["monitorOpCompleted"],
        )
        return int(connection.response[0]["raw_attributes"]["monitorOpCompleted"][0])
    finally:
        connection.unbind()


def test_unknown_identifier_costs_the_same_directory_work_as_a_wrong_password(policy_server, browser):
    _, slapd = policy_server
    browser.sign_in("warm.up@etu.univ-demo.fr", "x")
    start = binds(slapd)
    unknown = browser.sign_in("nobody.here@etu.univ-demo.fr", "Whatever-2026")
    middle = binds(slapd)
    wrong = browser.sign_in("nina.lambert@etu.univ-demo.fr", "Whatever-2026")
    end = binds(slapd)
    assert unknown.status_code == wrong.status_code == 401
    assert middle - start == end - middle >= 2  # the reader's own bind, plus one bind per attempt

    def strip(html: str) -> str:
        html = re.sub(r'value="[^"]*"', "", html)
        return html.replace("nobody.here@etu.univ-demo.fr", "X").replace("nina.lambert@etu.univ-demo.fr", "X")

    assert strip(unknown.text) == strip(wrong.text)
    assert urlsplit(unknown.url).path == urlsplit(wrong.url).path
