"""DirectorySettings: defaults, cross-field rules, and embedding in the pydantic loader."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pydantic
import pytest

from ldapdir.settings import DirectorySettings


def test_defaults_are_valid() -> None:
    settings = DirectorySettings()
    assert settings.login_attributes == ("mail", "uid")
    with pytest.raises(FrozenInstanceError):
        settings.bind_dn = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"urls": ("http://ldap",)}, "urls"),
        ({"login_attributes": ()}, "login_attributes"),
        ({"login_attributes": ("mail)(uid=*",)}, "login_attributes"),
        ({"user_attribute": "u id"}, "user_attribute"),
        ({"release_attributes": ("cn", "userPassword")}, "release_attributes"),
        ({"account_filter": "objectClass=person"}, "account_filter"),
        ({"receive_timeout": 0}, "receive_timeout"),
        ({"bind_pool_size": 0}, "bind_pool_size"),
        ({"never_activated_rule": "sometimes"}, "never_activated_rule"),
        ({"never_activated_rule": "attribute"}, "activated_attribute"),
        ({"password_hash": "{MD5}"}, "password_hash"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"lockout_duration": -1}, "lockout_duration"),
        ({"search_page_size": 0}, "search_page_size"),
    ],
)
def test_invalid_settings_name_the_key(changes: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        DirectorySettings(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["mail", "supannAliasLogin", "cn;lang-fr", "2.5.4.3", "x-custom-1"])
def test_attribute_names_accepted(name: str) -> None:
    assert DirectorySettings(login_attributes=(name,)).login_attributes == (name,)


class Config(pydantic.BaseModel):
    directory: DirectorySettings


def test_pydantic_validates_and_forbids_unknown_keys() -> None:
    loaded = Config.model_validate(
        {"directory": {"urls": ["ldap://a:389", "ldaps://b"], "bind_dn": "cn=sso", "connect_timeout": "2"}}
    )
    assert loaded.directory.urls == ("ldap://a:389", "ldaps://b")
    assert loaded.directory.connect_timeout == 2.0
    with pytest.raises(pydantic.ValidationError, match="bind_passwrd"):
        Config.model_validate({"directory": {"bind_passwrd": "x"}})
    with pytest.raises(pydantic.ValidationError, match="never_activated_rule"):
        Config.model_validate({"directory": {"never_activated_rule": "maybe"}})
