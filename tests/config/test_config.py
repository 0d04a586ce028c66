"""The YAML configuration: typed, validated once, errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sso.cli import main
from sso.config import ConfigError, load_settings
from tests.support.appconfig import demo_data, write_config


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "sso.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.file == str(path)
    return {problem.key: f"{problem.problem} {problem.fix}" for problem in caught.value.problems}


def test_the_bundled_demo_loads(tmp_path):
    settings = load_settings(write_config(tmp_path))
    assert settings.site.default_language == "fr"
    assert {service.id for service in settings.services} >= {"portail", "moodle", "scolarite"}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"site": {"base_url": "http://x", "colour": "red"}}, "site.colour", "unknown key"),
        ({"tickets": {"lifetimes": {"service_ticket": "ten"}}}, "tickets.lifetimes.service_ticket", "number"),
        ({"site": {"base_url": "ftp://sso.univ.fr"}}, "site.base_url", "http(s) URL"),
        ({"secret_keys": ["short"]}, "secret_keys", "32 characters"),
        ({"directory": {"connect_timeout": "soon"}}, "directory.connect_timeout", "number"),
        ({"directory": {"urls": ["ldap://127.0.0.1"]}}, "", "not both"),
        ({"security": {"trusted_proxies": -1}}, "security.trusted_proxies", "greater than"),
        ({"site": {"base_url": "http://x", "primary_color": "blue"}}, "site.primary_color", "#00508c"),
    ],
)
def test_errors_name_the_key_and_the_problem(tmp_path, change, key, words):
    data = demo_data()
    for section, value in change.items():
        data[section] = (
            {**data[section], **value}
            if isinstance(value, dict) and isinstance(data.get(section), dict)
            else value
        )
    found = problems(write(tmp_path, data))
    matching = [text for name, text in found.items() if name.startswith(key)]
    assert matching and any(words in text for text in matching), found


def test_bad_service_regex_names_the_service(tmp_path):
    data = demo_data()
    data["services"][1]["url_pattern"] = "https://(unclosed"
    found = problems(write(tmp_path, data))
    assert any(key.startswith("services.1") for key in found), found


def test_missing_required_keys(tmp_path):
    found = problems(write(tmp_path, {"secret_keys": ["x" * 40], "embedded_directory": {"data": "d.ldif"}}))
    assert "site" in found and "missing" in found["site"]


@pytest.mark.parametrize("text", ["site: [unclosed", "- a list", "", "site:\n\tbad: tab"])
def test_not_a_mapping_or_not_yaml(tmp_path, text):
    assert problems(write(tmp_path, text))


def test_missing_file(tmp_path):
    found = problems(tmp_path / "absent.yaml")
    assert "cannot read" in found["(file)"]


def test_secrets_from_environment_and_files(tmp_path, monkeypatch):
    data = demo_data()
    data.pop("secret_keys")
    data["secret_keys_file"] = "keys.txt"
    (tmp_path / "keys.txt").write_text("k" * 40 + "\n" + "o" * 40 + "\n")
    data["mail"]["password_env"] = "TEST_SMTP_PASSWORD"
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    settings = load_settings(write(tmp_path, data))
    assert settings.secret_keys == ("k" * 40, "o" * 40)
    assert settings.mail.password == "s3cret"


def test_secret_reference_problems(tmp_path, monkeypatch):
    data = demo_data()
    data["mail"]["password_env"] = "SURELY_UNSET_VARIABLE_X"
    monkeypatch.delenv("SURELY_UNSET_VARIABLE_X", raising=False)
    found = problems(write(tmp_path, data))
    assert "SURELY_UNSET_VARIABLE_X" in found["mail.password_env"]


def test_relative_state_paths_live_under_var_folder(tmp_path):
    settings = load_settings(write_config(tmp_path))
    assert settings.tickets.url == f"sqlite://{tmp_path}/var/tickets.db"
    assert settings.mail.outbox == tmp_path / "var" / "outbox"


def test_check_config_command(tmp_path):
    runner = CliRunner()
    good = runner.invoke(main, ["check-config", str(write_config(tmp_path))])
    assert good.exit_code == 0 and "OK" in good.output
    data = demo_data()
    data["site"]["colour"] = "red"
    bad = runner.invoke(main, ["check-config", str(write(tmp_path, data))])
    assert bad.exit_code == 2
    assert "site.colour: unknown key" in bad.output


@pytest.mark.parametrize(
    ("url", "words"),
    [("redis://:hunter2-secret@127.0.0.1:6379/notanumber", "database"), ("postgres://x", "memory://")],
)
def test_bad_ticket_urls_are_refused_without_echoing_them(tmp_path, url, words):
    data = demo_data()
    data["tickets"] = {"url": url}
    found = problems(write(tmp_path, data))
    assert words in found["tickets.url"]
    assert "hunter2" not in str(found) and "postgres://x" not in str(found)
