"""config/production.example.yaml: it loads (secrets from the environment), names every key of the
schema, and says what each one does."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from sso.cli import main
from sso.config import load_settings
from sso.config.schema import Settings
from sso.config.secrets import LITERAL_KEYS
from sso.resources import config_dir

EXAMPLE = config_dir() / "production.example.yaml"
KEYS = ("a" * 64, "b" * 64)
ENVIRON = {
    "SSO_SECRET_KEYS": f"{KEYS[0]}\n{KEYS[1]}",
    "SSO_LDAP_PASSWORD": "ldap-service-password",
    "SSO_SMTP_PASSWORD": "smtp-password",
}
#: Sections that cannot be active in production, documented as comments instead.
COMMENTED = {"embedded_directory"}


def schema_paths(model: object = Settings, prefix: str = "") -> list[str]:
    """Every key of the settings, dotted, lists of dataclasses included (``services.url_pattern``)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        items = [(name, field.annotation) for name, field in model.model_fields.items()]
    elif dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model)
        items = [(field.name, hints[field.name]) for field in dataclasses.fields(model) if field.init]
    else:
        return []
    paths: list[str] = []
    for name, annotation in items:
        path = prefix + name
        paths.append(path)
        for inner in _nested(annotation):
            paths += schema_paths(inner, path + ".")
    return paths


def _nested(annotation: object) -> list[type]:
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    ):
        return [annotation]
    return [inner for argument in typing.get_args(annotation) for inner in _nested(argument)]


def yaml_key_lines(text: str) -> dict[str, tuple[int, bool]]:
    """Dotted key path -> (line number of its first occurrence, whether it is commented out)."""
    found: dict[str, tuple[int, bool]] = {}
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines()):
        commented = line.lstrip().startswith("#")
        body = re.sub(r"^(\s*)# ", r"\1", line) if commented else line
        match = re.match(r"^(\s*)(- )?([A-Za-z0-9_]+):(\s|$)", body)
        if not match:
            continue
        indent = len(match.group(1)) + len(match.group(2) or "")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(3)))
        path = ".".join(name for _, name in stack)
        if match.group(3) not in LITERAL_KEYS:
            path = re.sub(r"_(file|env)$", "", path)  # a secret reference names its key
        found.setdefault(path, (number, commented))
    return found


def test_it_loads_with_its_secrets_from_the_environment() -> None:
    settings = load_settings(EXAMPLE, environ=ENVIRON)
    assert settings.secret_keys == KEYS
    assert settings.directory.bind_password == "ldap-service-password"
    assert settings.mail.password == "smtp-password"
    assert len(settings.directory.urls) == 2, "failover needs several servers"
    assert settings.tickets.url.startswith("redis://")
    assert settings.security.rate_limit_storage.startswith("redis://")
    assert settings.security.rate_limit_storage != settings.tickets.url
    assert settings.security.trusted_proxies == 1
    assert settings.embedded_directory is None and settings.mail.outbox is None


def test_no_secret_is_written_in_it() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert "secret_keys" not in data and "secret_keys_env" in data
    assert "bind_password" not in data["directory"] and "password" not in data["mail"]
    active = [
        line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")
    ]
    assert not [line for line in active if re.search(r"://[^/\s]*@", line)], "no credentials in URLs"


def test_check_config_accepts_it() -> None:
    result = CliRunner().invoke(main, ["check-config", str(EXAMPLE)], env=ENVIRON)
    assert result.exit_code == 0, result.output


def test_check_config_names_a_missing_secret() -> None:
    environ = {name: value for name, value in ENVIRON.items() if name != "SSO_LDAP_PASSWORD"}
    result = CliRunner().invoke(
        main, ["check-config", str(EXAMPLE)], env={**environ, "SSO_LDAP_PASSWORD": None}
    )
    assert result.exit_code == 2
    assert "SSO_LDAP_PASSWORD" in result.output


def test_every_key_of_the_schema_is_there_with_a_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = yaml_key_lines(text)
    missing = [path for path in schema_paths() if path not in found]
    assert not missing, f"keys missing from {EXAMPLE.name}: {missing}"
    for path in schema_paths():
        number, commented = found[path]
        assert commented == (path.split(".")[0] in COMMENTED), f"{path}: active/commented out wrongly"
        above = lines[number - 1].strip() if number else ""
        assert above.startswith("#"), f"{path} (line {number + 1}) has no comment line above it"


def test_the_key_walker_sees_a_missing_key(tmp_path: Path) -> None:
    """The coverage test can fail: drop a key and it is reported."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("  max_idle: 240.0\n", "")
    assert "directory.max_idle" in schema_paths()
    assert "directory.max_idle" not in yaml_key_lines(text)
