"""The password policy: every rule, accepted and refused examples, display and live check agree."""

from __future__ import annotations

import pytest

from sso.activation.policy import (
    KINDS,
    ZXCVBN_MAX,
    RuleResult,
    acceptable,
    evaluate,
    failures,
    fold,
    is_common,
    kinds,
    personal_parts,
    rules_for_display,
)
from sso.activation.settings import PolicySettings

DEFAULT = PolicySettings()
PERSON = ("Jean", "Dupont", "jdupont", "jean.dupont@gmail.com", "Hélène-Marie", "Li")

PASSPHRASE_64 = "le chat de la voisine mange des croquettes au saumon chaque midi"
PASSPHRASE_128 = (
    "les rivieres du languedoc coulent vers la mer tandis que les cigales chantent "
    "sous les pins parasols de la garrigue ensoleillee!"
)


def test_the_long_passphrases_have_the_lengths_claimed():
    assert (len(PASSPHRASE_64), len(PASSPHRASE_128)) == (64, 128)


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Kx9#mP2$vL7q", id="12 chars, 4 kinds"),
        pytest.param("lPq8rTz3Wm5nYv", id="14 chars, 3 kinds"),
        pytest.param("correct horse battery staple", id="passphrase, lower case only"),
        pytest.param("Lithium#Bx7-2049", id="2-letter name parts ignored"),
        pytest.param("Gmail#Secure-49x", id="mail domain is not personal"),
        pytest.param("Ça-m’étonne-7-Ψ-pluie", id="unicode"),
        pytest.param(PASSPHRASE_64, id="64 chars"),
        pytest.param(PASSPHRASE_128, id="128 chars"),
        pytest.param("x" * 4 + "Kx9#mP2$vL7q" * 10, id="beyond zxcvbn's 100 characters"),
    ],
)
def test_accepted(password):
    results = evaluate(password, DEFAULT, PERSON)
    assert failures(results) == []
    assert acceptable(results)


@pytest.mark.parametrize(
    ("password", "failing"),
    [
        ("", ["length", "classes", "not_common", "not_personal", "strength"]),
        ("Kx9#mP2$vL7", ["length"]),
        ("kx9#mp2$vl7q", ["classes"]),
        ("lpq8rtz3wm5nyv", ["classes"]),
        ("abcdefghijkl", ["classes", "strength"]),
        ("a" * 23, ["strength"]),
        ("123456789012!aA", ["strength"]),
        ("Kx9#mP2$vL7q" + "z" * 117, ["max_length"]),
        ("Kx9#mP2$\nvL7q", ["printable"]),
        ("Kx9#mP2$\x00vL7q", ["printable"]),
        ("Kx9#mP2$\u200bvL7q", ["printable"]),
        ("Kx9#mP2$\u2028vL7q", ["printable"]),
        ("Kx9#mP2$\ud800vL7q", ["printable"]),
        ("Jean.Dupont.2024!", ["not_personal"]),
        ("Mon-jdupont-9X!", ["not_personal"]),
        ("J3@n-Dup0nt-99!", ["not_personal"]),
        ("xHELENE#42pour!Q", ["not_personal"]),
        ("P@ssw0rd2024!", ["not_common", "strength"]),
    ],
)
def test_refused_with_the_rules_that_fail(password, failing):
    results = evaluate(password, DEFAULT, PERSON)
    assert failures(results) == failing
    assert not acceptable(results)


@pytest.mark.parametrize(
    "password",
    [
        "Azerty123!",
        "azertyuiop",
        "Motdepasse2024!",
        "M0td3p@sse2024!",
        "Marseille13!!",
        "Montpellier34*",
        "Universite2025!",
        "Université2025!",
        "Etudiant2024#",
        "Bonjour2024!!",
        "Soleil!!!!1234567",
        "Doudou#2023",
        "2024Chocolat!",
        "Mot de passe 2024",
    ],
)
def test_common_french_passwords_are_refused(password):
    assert "not_common" in failures(evaluate(password, DEFAULT))
    assert is_common(password)


def test_extra_blocklist():
    settings = PolicySettings(extra_blocklist=("Paul-Valéry",))
    assert failures(evaluate("paul-valery#2026!", settings)) == ["not_common"]
    assert "not_common" not in failures(evaluate("paul-valery#2026!", DEFAULT))


@pytest.mark.parametrize(
    ("settings", "rules"),
    [
        (DEFAULT, ["length", "classes", "max_length", "printable", "not_common", "not_personal", "strength"]),
        (
            PolicySettings(blocklist=False, forbid_personal_info=False, min_zxcvbn_score=0),
            ["length", "classes", "max_length", "printable"],
        ),
    ],
)
def test_display_lists_the_rules_evaluate_checks(settings, rules):
    shown = rules_for_display(settings)
    assert [rule for rule, _ in shown] == rules
    assert [(r.rule, dict(r.params)) for r in evaluate("anything at all", settings)] == shown


def test_display_parameters():
    shown = dict(rules_for_display(DEFAULT))
    assert shown["length"] == {"min": 12}
    assert shown["classes"] == {
        "min_classes": 4,
        "relaxed_length": 14,
        "relaxed_classes": 3,
        "passphrase_length": 20,
    }
    assert shown["max_length"] == {"max": 128}
    assert shown["strength"] == {"min_score": 3}
    assert shown["not_personal"] == {"min": 3}


def test_disabled_rules_do_not_refuse():
    relaxed = PolicySettings(blocklist=False, forbid_personal_info=False, min_zxcvbn_score=0)
    assert acceptable(evaluate("Jean.Dupont.2024!", relaxed, PERSON))
    assert acceptable(evaluate("Motdepasse2024!", relaxed))


def test_without_relaxed_or_passphrase_lengths_four_kinds_are_needed():
    strict = PolicySettings(relaxed_length=0, passphrase_min_length=0)
    assert failures(evaluate("lPq8rTz3Wm5nYv", strict)) == ["classes"]
    assert failures(evaluate("correct horse battery staple", strict)) == ["classes"]


def test_results_are_rule_results_with_params():
    result = evaluate("Kx9#mP2$vL7q", DEFAULT)[0]
    assert result == RuleResult("length", True, {"min": 12})


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("", set()),
        ("abc", {"lower"}),
        ("ABC", {"upper"}),
        ("123", {"digit"}),
        ("é", {"lower"}),
        ("É", {"upper"}),
        ("٣", {"digit"}),
        (" ", {"special"}),
        ("中", {"special"}),
        ("aA1!", set(KINDS)),
    ],
)
def test_kinds(password, expected):
    assert kinds(password) == expected


def test_personal_parts():
    parts = personal_parts(PERSON)
    assert parts == ("jean", "dupont", "jdupont", "helene", "marie")
    assert personal_parts(parts) == parts
    assert personal_parts(["O'Connor-Lé"], min_length=2) == ("connor", "le")


def test_fold():
    assert fold("ÉTUDIANT") == fold("étudiant") == "etudiant"
    assert fold("ﬁ") == "fi"


def test_zxcvbn_sees_at_most_its_limit():
    # A weak head hidden behind nothing: the estimate is of the first ZXCVBN_MAX characters only.
    weak_head = "a" * ZXCVBN_MAX + "Kx9#mP2$vL7q"
    assert "strength" in failures(evaluate(weak_head, DEFAULT))
