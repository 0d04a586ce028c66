"""The activation settings: defaults, validation through pydantic, attribute templates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from sso.activation.settings import ActivationSettings, AttributeSet, LinkRule, PolicySettings

ADAPTER = TypeAdapter(ActivationSettings)


def test_defaults_follow_the_issue():
    settings = ActivationSettings()
    assert settings.zone == ZoneInfo("Europe/Paris")
    assert settings.activation == settings.reset == LinkRule("end_of_day", 0, 60)
    assert settings.invitation.valid_until == "end_of_next_day"
    assert settings.show_mail_hint is False
    policy = settings.policy
    assert (policy.min_length, policy.min_classes, policy.relaxed_length, policy.relaxed_classes) == (
        12,
        4,
        14,
        3,
    )
    assert (policy.passphrase_min_length, policy.max_length, policy.min_zxcvbn_score) == (20, 128, 3)


def test_yaml_like_mapping_validates_into_the_dataclasses():
    settings = ADAPTER.validate_python(
        {
            "time_zone": "Europe/Paris",
            "reset": {"valid_until": "hours", "hours": 4},
            "charter_url": "https://univ.fr/charte",
            "charter_version": "3",
            "on_activation": [
                {"name": "supannRessourceEtatDate", "value": "{COMPTE}A:SupannActif::{local:%Y%m%d}"}
            ],
            "policy": {"min_length": 10, "extra_blocklist": ["univ-montpellier"]},
        }
    )
    assert isinstance(settings.policy, PolicySettings)
    assert settings.reset == LinkRule("hours", 4, 60)
    assert settings.on_activation == (
        AttributeSet("supannRessourceEtatDate", "{COMPTE}A:SupannActif::{local:%Y%m%d}"),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"reset": {"valid_until": "never"}}, "valid_until"),
        ({"reset": {"valid_until": "hours"}}, "hours"),
        ({"reset": {"valid_until": "end_of_day", "hours": 3}}, "hours"),
        ({"reset": {"min_validity_minutes": -1}}, "min_validity_minutes"),
        ({"reset": {"colour": "red"}}, "colour"),
        ({"unknown": 1}, "unknown"),
        ({"charter_url": "javascript:alert(1)", "charter_version": "1"}, "charter_url"),
        ({"charter_url": "https://univ.fr/charte"}, "charter_version"),
        ({"charter_version": "1"}, "charter_url"),
        (
            {"charter_url": "/charte", "charter_version": "1", "charter_attribute": "bad attr"},
            "charter_attribute",
        ),
        ({"consent_attribute": "x)(uid=*"}, "consent_attribute"),
        ({"consent_attribute": "univConsent", "consent_value": ""}, "consent_value"),
        ({"personal_attributes": ["givenName", ""]}, "personal_attributes"),
        ({"links_per_hour": 0}, "links_per_hour"),
        ({"on_activation": [{"name": "x", "value": "{nwo:%Y}"}]}, "unknown placeholder"),
        ({"on_activation": [{"name": "x", "value": "{now"}]}, "on_activation.value"),
        ({"on_activation": [{"name": "x", "value": "{user:%Y}"}]}, "on_activation.value"),
        ({"policy": {"max_length": 32}}, "NIST"),
        ({"policy": {"min_classes": 5}}, "min_classes"),
        ({"policy": {"relaxed_length": 10}}, "relaxed_length"),
        ({"policy": {"relaxed_classes": 4, "min_classes": 3}}, "relaxed_classes"),
        ({"policy": {"passphrase_min_length": 13}}, "passphrase_min_length"),
        ({"policy": {"min_zxcvbn_score": 5}}, "min_zxcvbn_score"),
        ({"policy": {"extra_blocklist": [" "]}}, "extra_blocklist"),
    ],
)
def test_bad_settings_are_refused_with_the_key(data, message):
    with pytest.raises(ValidationError) as info:
        ADAPTER.validate_python(data)
    assert message in str(info.value)


def test_policy_switches_can_disable_rules():
    policy = PolicySettings(relaxed_length=0, passphrase_min_length=0, min_zxcvbn_score=0)
    assert policy.relaxed_length == 0


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{now:%Y%m%d%H%M%SZ}", "20260329223001Z"),
        ("{local:%Y-%m-%d %H:%M}", "2026-03-30 00:30"),
        ("{COMPTE}A:SupannActif::{local:%Y%m%d}", "{COMPTE}A:SupannActif::20260330"),
        ("{{literal}} {user}", "{literal} mmartin"),
        ("TRUE", "TRUE"),
    ],
)
def test_attribute_templates(template, expected):
    now = datetime(2026, 3, 29, 22, 30, 1, tzinfo=UTC)
    rendered = AttributeSet("a", template).render(now, now.astimezone(ZoneInfo("Europe/Paris")), "mmartin")
    assert rendered == expected
