"""The ``sso`` command line: help everywhere, helpful errors, exit codes scripts can use; ``sso
invite`` against a real slapd and SMTP sink; ``sso demo`` starting the SSO and the portal for real."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from sso.cas.login import new_session
from sso.cli import (
    EXIT_CANNOT_SIGN_IN,
    EXIT_CONFIG,
    EXIT_NOT_FOUND,
    EXIT_PARTIAL,
    EXIT_UNAVAILABLE,
    Pacer,
    main,
)
from sso.config import load_settings
from sso.mailqueue import MailQueue
from sso.tickets.registry import open_registry
from tests.support.appconfig import write_config
from tests.support.servers import SmtpSink, free_port, wait_until


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path)


def run(*args: str, config: Path | None = None) -> click.testing.Result:
    extra = ["--config", str(config)] if config is not None else []
    return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("command", list(_commands(main)), ids=" ".join)
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


def test_the_exit_codes_are_documented():
    assert "Exit codes" in CliRunner().invoke(main, ["--help"]).output


# -- configuration ------------------------------------------------------------------------------------


def test_check_config(config):
    result = run("check-config", str(config))
    assert result.exit_code == 0 and "OK (7 services)" in result.output


def test_check_config_reports_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: {base_url: ftp://x, colour: red}\nsecret_keys: [short]\n", encoding="utf-8")
    result = run("check-config", str(bad))
    assert result.exit_code == EXIT_CONFIG
    assert "site.colour: unknown key" in result.output and "site.base_url" in result.output
    assert "secret_keys" in result.output


def test_check_config_warns_of_an_unreadable_theme_colour(tmp_path):
    path = write_config(tmp_path, {"site": {"primary_color": "#ffdd00"}})
    result = run("check-config", str(path))
    assert result.exit_code == 0 and "warning: site.primary_color #ffdd00 has a contrast of" in result.output


def test_services_table_and_json(config):
    table = run("services", config=config).output
    assert (
        re.search(r"^ID\s+NAME\s+URL PATTERN", table, re.M)
        and "portail" in table
        and "Cours en ligne" in table
    )
    rows = json.loads(run("services", "--json", config=config).output)
    assert [row["id"] for row in rows][:2] == ["portail", "scolarite"]


# -- user -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "code", "words"),
    [
        (
            "camille.durand@etu.univ-demo.fr",
            0,
            ["found by       mail", "state          active", "may sign in    yes"],
        ),
        ("CDURAND", 0, ["found by       uid", "user           cdurand"]),
        ("lea.petit@etu.univ-demo.fr", EXIT_CANNOT_SIGN_IN, ["never activated", "activated      no"]),
        (
            "paul.bernard@etu.univ-demo.fr",
            EXIT_CANNOT_SIGN_IN,
            ["has expired on 2024-12-31", "expires        2024-12-31"],
        ),
        (
            "marc.leroy@univ-demo.fr",
            EXIT_CANNOT_SIGN_IN,
            ["locked         yes", "locked by an administrator"],
        ),
    ],
)
def test_user_says_why_one_can_or_cannot_sign_in(config, identifier, code, words):
    result = run("user", identifier, config=config)
    assert result.exit_code == code, result.output
    for text in words:
        assert text in result.output
    assert "@perso.example" in result.output and not re.search(
        r"[a-z]{2,}\.[a-z]+@perso", result.output
    )  # masked


def test_user_json(config):
    result = run("user", "jdupont", "--json", config=config)
    facts = json.loads(result.output)
    assert (
        facts["user"] == "jdupont"
        and facts["may_sign_in"] is True
        and facts["personal_mail"] == "j•••@perso.example"
    )


def test_user_without_personal_mail_is_said_so(tmp_path):
    result = run("user", "nina.lambert@etu.univ-demo.fr", config=write_config(tmp_path))
    assert result.exit_code == 0 and "personal mail  -" in result.output


@pytest.mark.parametrize(
    "identifier", ["nobody@etu.univ-demo.fr", "*", "*)(uid=*", "a" * 500, "cdurand)(|(uid=*"]
)
def test_user_not_found(config, identifier):
    result = run("user", identifier, config=config)
    assert result.exit_code == EXIT_NOT_FOUND and "no account matches" in result.output


def test_user_with_the_directory_down(tmp_path):
    path = write_config(
        tmp_path,
        {
            "embedded_directory": None,
            "directory": {
                "urls": [f"ldap://127.0.0.1:{free_port()}"],
                "connect_timeout": 0.5,
                "receive_timeout": 0.5,
            },
        },
    )
    result = run("user", "cdurand", config=path)
    assert result.exit_code == EXIT_UNAVAILABLE and "does not answer" in result.output


# -- tickets ----------------------------------------------------------------------------------------


def test_tickets_counts_the_live_sessions(config):
    settings = load_settings(config)
    settings.var_folder.mkdir(parents=True, exist_ok=True)
    registry = open_registry(settings.tickets.url, settings.tickets.lifetimes)
    import time

    for user in ("cdurand", "jdupont"):
        registry.add(new_session(user, {}, settings.tickets.lifetimes, time.time()))
    registry.close()
    result = run("tickets", "--json", config=config)
    assert result.exit_code == 0 and json.loads(result.output)["live"] == {
        "TGT": 2,
        "ST": 0,
        "PT": 0,
        "PGT": 0,
    }
    table = run("sessions", config=config).output
    assert re.search(r"sessions \(TGT\)\s+2", table)
    purged = run("tickets", "--purge", config=config)
    assert purged.exit_code == 0 and "purged: 0 expired entries" in purged.output


def test_tickets_without_a_store_says_where_it_looked(config):
    result = run("tickets", config=config)
    assert result.exit_code == EXIT_UNAVAILABLE and "no ticket database at" in result.output


# -- accounts expiring ----------------------------------------------------------------------------------


def test_accounts_expiring(config):
    result = run("accounts", "expiring", "--before", "2029-12-31", config=config)
    assert result.exit_code == 0
    assert re.search(r"cdurand\s+2029-12-31\s+active\s+c•••@perso.example", result.output)
    assert "pbernard" not in result.output  # already expired
    listed = json.loads(
        run(
            "accounts", "expiring", "--before", "2030-06-30", "--include-expired", "--json", config=config
        ).output
    )
    assert [row["user"] for row in listed] == ["pbernard", "cdurand"]


def test_accounts_expiring_with_a_filter(config):
    result = run(
        "accounts",
        "expiring",
        "--before",
        "2030-01-01",
        "--filter",
        "(eduPersonAffiliation=staff)",
        config=config,
    )
    assert result.exit_code == 0 and "no account expires" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--before", "31/12/2029"], "'31/12/2029' does not match the format"),
        (["--before", "2029-12-31", "--filter", "(((bad"], "Invalid value for --filter"),
        ([], "Missing option '--before'"),
    ],
)
def test_accounts_expiring_bad_arguments(config, args, words):
    result = run("accounts", "expiring", *args, config=config)
    assert result.exit_code == 2 and words in result.output


# -- mail queue -------------------------------------------------------------------------------------------


def test_mail_queue_shows_waiting_and_failed_then_retry(config):
    settings = load_settings(config)

    def refuse(message):
        raise ConnectionRefusedError(111, "Connection refused")

    queue = MailQueue(settings.mail.queue, refuse, max_attempts=1)
    queue.put("lea.petit@perso.example", "Activez votre compte ENT", "texte")
    queue.run_once()
    queue.put("jean.dupont@perso.example", "Votre mot de passe ENT a été modifié", "texte")
    result = run("mail", "queue", config=config)
    assert result.exit_code == 0 and "1 waiting, 1 failed" in result.output
    assert "ConnectionRefusedError errno=111" in result.output and "l•••@perso.example" in result.output
    assert "lea.petit@perso.example" not in result.output and "sso mail retry" in result.output
    rows = json.loads(run("mail", "queue", "--json", config=config).output)
    assert sorted(row["state"] for row in rows) == ["failed", "waiting"]
    result = run("mail", "retry", config=config)
    assert result.exit_code == 0 and "1 failed message(s) put back" in result.output
    assert "2 waiting, 0 failed" in run("mail", "queue", config=config).output


def test_mail_retry_send_delivers_now(config):
    settings = load_settings(config)
    queue = MailQueue(settings.mail.queue, lambda message: None)
    queue.put("lea.petit@perso.example", "Sujet", "texte")
    result = run("mail", "retry", "--send", config=config)
    assert result.exit_code == 0 and "sent 1, failed 0" in result.output
    assert len(list(settings.mail.outbox.glob("*.eml"))) == 1


# -- invite -----------------------------------------------------------------------------------------------


def test_pacer_spaces_the_actions():
    now, slept = [100.0], []
    pacer = Pacer(
        2.0,
        clock=lambda: now[0],
        sleep=lambda seconds: (slept.append(seconds), now.__setitem__(0, now[0] + seconds)),
    )
    for _ in range(3):
        pacer.wait()
    assert slept == [0.5, 0.5]


def test_invite_dry_run_on_the_demo(config):
    result = run("invite", "(objectClass=*)", "--dry-run", config=config)
    assert result.exit_code == 0
    assert "2 would be sent" in result.output and "would invite: lpetit" in result.output
    assert "already activated" in result.output and "account expired" in result.output
    settings = load_settings(config)
    assert not (settings.var_folder / "invitations.jsonl").exists()
    assert not settings.mail.outbox.exists() or not list(settings.mail.outbox.iterdir())


@pytest.mark.parametrize("bad", ["(((", "uid=*)(", "(&(uid=a)"])
def test_invite_refuses_a_bad_filter(config, bad):
    result = run("invite", bad, config=config)
    assert result.exit_code == 2 and "Invalid value for FILTER" in result.output


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def ldap_settings(slapd, smtp: SmtpSink) -> dict:
    return {
        "embedded_directory": None,
        "directory": {"urls": [slapd.url], "bind_dn": slapd.service_dn, "bind_password": slapd.service_pw},
        "mail": {"outbox": None, "server": "127.0.0.1", "port": smtp.port},
    }


@pytest.mark.integration
def test_invite_on_slapd_mails_each_person_once(tmp_path, slapd, smtp):
    config = write_config(tmp_path, ldap_settings(slapd, smtp))
    first = run("invite", "(objectClass=inetOrgPerson)", "--rate", "50", config=config)
    assert first.exit_code == 0, first.output
    assert "2 sent" in first.output and "0 failed" in first.output
    received = smtp.wait_for(2)
    assert sorted(message["To"] for message in received) == [
        "lea.petit@perso.example",
        "sophie.moreau@perso.example",
    ]
    assert all("Activez votre compte ENT" in str(make_header(decode_header(m["Subject"]))) for m in received)
    body = next(
        part.get_payload(decode=True).decode()
        for part in received[0].walk()
        if part.get_content_type() == "text/plain"
    )
    assert "Bienvenue" in body and re.search(r"http://127\.0\.0\.1:8000/compte/lien\?t=\S+", body)
    journal = [json.loads(line) for line in (tmp_path / "var" / "invitations.jsonl").read_text().splitlines()]
    assert sorted(entry["user"] for entry in journal) == ["lpetit", "smoreau"]
    assert all(entry["purpose"] == "invitation" and "•••" in entry["to"] for entry in journal)
    assert "t=" not in (tmp_path / "var" / "invitations.jsonl").read_text()  # never the link
    second = run("invite", "(objectClass=inetOrgPerson)", config=config)
    assert second.exit_code == 0 and "0 sent" in second.output and "2 already invited" in second.output
    assert len(smtp.messages) == 2  # the command delivers before it returns: nothing more came


NO_MAIL_LDIF = """
dn: uid=tnomail,ou=people,dc=univ-demo,dc=fr
objectClass: inetOrgPerson
objectClass: eduPerson
objectClass: supannPerson
uid: tnomail
cn: Tom Nomail
sn: Nomail
givenName: Tom
mail: tom.nomail@etu.univ-demo.fr
eduPersonAffiliation: student
"""


@pytest.mark.integration
def test_invite_reports_failures_and_english(tmp_path, slapd_factory, smtp):
    extra = tmp_path / "nomail.ldif"
    extra.write_text(NO_MAIL_LDIF.lstrip(), encoding="utf-8")
    server = slapd_factory(extra_ldif=(extra,))
    config = write_config(tmp_path, ldap_settings(server, smtp))
    result = run("invite", "(eduPersonAffiliation=student)", "--lang", "en", "--rate", "50", config=config)
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "failed: tnomail: no personal e-mail address" in result.output and "1 sent" in result.output
    (message,) = smtp.wait_for(1)
    assert message["To"] == "lea.petit@perso.example"
    assert "Activate your ENT account" in str(make_header(decode_header(message["Subject"])))


# -- demo ---------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_sso_demo_runs_the_whole_journey_and_stops_both(tmp_path):
    sso_port, portal_port = free_port(), free_port()
    portal = f"http://127.0.0.1:{portal_port}"
    config = write_config(
        tmp_path,
        {
            "site": {"base_url": f"http://127.0.0.1:{sso_port}"},
            "services": [
                {
                    "id": "portail",
                    "name": "Portail ENT (démo)",
                    "url_pattern": re.escape(portal) + "(/.*)?",
                    "home_url": portal + "/",
                    "logout_url": portal + "/cas/logout-callback",
                    "attributes": ["uid", "mail", "displayName", "givenName"],
                }
            ],
        },
    )
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "sso.cli", "demo", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ},
    )
    http = requests.Session()
    try:
        wait_until(lambda: "Ctrl+C stops both" in (tmp_path / "demo.log").read_text(), 60, "sso demo")
        output = (tmp_path / "demo.log").read_text()
        assert f"Demo ENT portal:  {portal}/" in output and "camille.durand@etu.univ-demo.fr" in output
        # portal -> SSO login form -> sign in -> back to the portal with a ticket -> the name
        form = http.get(portal + "/login", timeout=10)
        assert form.url.startswith(f"http://127.0.0.1:{sso_port}/login?service=")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
        page = http.post(
            form.url,
            data={"username": "cdurand", "password": "Soleil-Vert-2026", "csrf_token": token},
            timeout=10,
        )
        assert (
            page.url == portal + "/" and "Bonjour Camille" in page.text and "camille.durand@etu" in page.text
        )
        # logout everywhere: the portal, then the SSO, which notifies the portal (SLO) and comes back
        page = http.post(portal + "/logout", timeout=10)
        assert page.url == portal + "/" and "Se connecter avec l'ENT" in page.text
        assert 'name="password"' in http.get(f"http://127.0.0.1:{sso_port}/login", timeout=10).text
    finally:
        http.close()
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(30)
        log.close()
    assert code == 0
    for port in (sso_port, portal_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_sso_demo_needs_the_portal_service(tmp_path):
    result = run("demo", config=write_config(tmp_path, {"services": []}))
    assert result.exit_code == EXIT_CONFIG and "no service with id 'portail'" in result.output
