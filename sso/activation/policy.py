"""The password policy as pure functions (CNIL deliberation 2022-100, NIST SP 800-63B §5.1.1.2).

:func:`evaluate` returns, for a candidate password, every rule and whether it is met: the page
shows it as the person types, and the server decides with the same function (:func:`acceptable`).
Rule ids, in display order, with their parameters:

``length`` (``min``)
    at least ``min_length`` characters.
``classes`` (``min_classes``, ``relaxed_length``, ``relaxed_classes``, ``passphrase_length``)
    enough kinds of characters for its length (lower case, upper case, digits, special): with
    ``length``, CNIL's 12 characters of 4 kinds, or 14 of 3 kinds, or a passphrase of 20
    characters of any kind.
``max_length`` (``max``)
    at most ``max_length`` characters (at least 64 are always accepted).
``printable`` (no parameters)
    no control, invisible, unassigned or line-separator characters.
``not_common`` (no parameters)
    not a common password: zxcvbn's list of common passwords, the French list in
    ``data/common-fr.txt`` and ``extra_blocklist``, compared case- and accent-insensitively, with
    common "l33t" substitutions undone, on the whole password and on what is left once digits and
    symbols are stripped from both ends (``Azerty123!`` is ``azerty``, ``P@ssw0rd!`` is ``password``).
``not_personal`` (``min``)
    contains no part (of ``min`` characters or more) of the person's names or identifiers, l33t
    substitutions undone (``J3@n`` is ``jean``).
``strength`` (``min_score``)
    zxcvbn's estimate (0–4) reaches ``min_score``. Only the first 100 characters are estimated:
    zxcvbn slows down sharply beyond that, and 100 characters of anything reaching this point
    are long enough.

``confirm`` (the two fields match) is checked by the flow, not here.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from sso.activation.settings import PolicySettings

#: Characters given to zxcvbn, at most (see the module documentation).
ZXCVBN_MAX = 100
#: Kinds of characters, in the order the page lists them.
KINDS = ("lower", "upper", "digit", "special")

_LEET_BASE = {"0": "o", "@": "a", "4": "a", "$": "s", "5": "s", "3": "e", "7": "t", "8": "b"}
#: Common "l33t" substitutions undone before comparing (``P@ssw0rd`` is ``password``); ``1``, ``!``
#: and ``|`` are tried as ``i`` and as ``l``.
_LEET = tuple(str.maketrans({**_LEET_BASE, "1": letter, "!": letter, "|": letter}) for letter in "il")
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")
# zxcvbn keeps the person's strings in a module-level dictionary while it runs: one call at a time.
_ZXCVBN_LOCK = threading.Lock()


@dataclass(frozen=True)
class RuleResult:
    """One rule of the policy, for one candidate password."""

    #: Rule id (see the module documentation).
    rule: str
    met: bool
    #: The rule's parameters, for the page's wording.
    params: Mapping[str, int | str]


def fold(text: str) -> str:
    """``text`` for comparisons: compatibility-decomposed, accents dropped, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def kinds(password: str) -> frozenset[str]:
    """The kinds of characters in ``password`` (see :data:`KINDS`); letters without case and
    every other character count as ``special``."""
    found = set()
    for char in password:
        if char.islower():
            found.add("lower")
        elif char.isupper():
            found.add("upper")
        elif unicodedata.category(char) == "Nd":
            found.add("digit")
        else:
            found.add("special")
    return frozenset(found)


def personal_parts(values: Iterable[str], min_length: int = 3) -> tuple[str, ...]:
    """The parts of names and identifiers a password must not contain: folded, split on anything
    but letters and digits, at least ``min_length`` long, without duplicates. An e-mail address
    contributes its local part only. Idempotent: the result may be passed again."""
    parts: dict[str, None] = {}
    for value in values:
        local = value.rpartition("@")[0] if "@" in value else value
        for part in _SEPARATORS.split(fold(local)):
            if len(part) >= min_length:
                parts[part] = None
    return tuple(parts)


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn import frequency_lists  # ~12 MB: loaded when a password is first checked, not at start

    words = {fold(word) for word in frequency_lists.FREQUENCY_LISTS["passwords"]}
    text = resources.files("sso.activation").joinpath("data/common-fr.txt").read_text("utf-8")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.add(fold(line))
    return frozenset(words)


def _variants(folded: str) -> set[str]:
    return {folded} | {folded.translate(table) for table in _LEET}


def is_common(password: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``password`` is a common password (see ``not_common`` in the module documentation)."""
    folded = fold(password)
    # Strip the edges before undoing l33t: in "M0td3p@sse2024!" the "2024!" is an edge, not letters.
    candidates = _variants(folded) | _variants(_EDGES.sub("", folded))
    candidates.discard("")
    extra_words = {fold(word.strip()) for word in extra}
    return any(candidate in _common() or candidate in extra_words for candidate in candidates)


def _printable(password: str) -> bool:
    # C*: control, format (invisible), surrogate, private use, unassigned; Zl/Zp: line breaks.
    return not any(
        unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")
        for char in password
    )


def _score(password: str, parts: Sequence[str]) -> int:
    sample = password[:ZXCVBN_MAX]
    if not sample:
        return 0
    with _ZXCVBN_LOCK:
        from zxcvbn import zxcvbn

        return int(zxcvbn(sample, user_inputs=list(parts), max_length=ZXCVBN_MAX)["score"])


def _enough_kinds(password: str, settings: PolicySettings) -> bool:
    # The absolute minimum is the ``length`` rule's business: 11 characters of 4 kinds meet this one.
    length, count = len(password), len(kinds(password))
    if settings.passphrase_min_length and length >= settings.passphrase_min_length:
        return True
    if settings.relaxed_length and length >= settings.relaxed_length and count >= settings.relaxed_classes:
        return True
    return bool(password) and count >= settings.min_classes


def rules_for_display(settings: PolicySettings) -> list[tuple[str, dict[str, int | str]]]:
    """The rules in force and their parameters, in display order: what the page lists before
    anything is typed (the same ids and parameters as :func:`evaluate` returns)."""
    rules: list[tuple[str, dict[str, int | str]]] = [
        ("length", {"min": settings.min_length}),
        (
            "classes",
            {
                "min_classes": settings.min_classes,
                "relaxed_length": settings.relaxed_length,
                "relaxed_classes": settings.relaxed_classes,
                "passphrase_length": settings.passphrase_min_length,
            },
        ),
        ("max_length", {"max": settings.max_length}),
        ("printable", {}),
    ]
    if settings.blocklist:
        rules.append(("not_common", {}))
    if settings.forbid_personal_info:
        rules.append(("not_personal", {"min": settings.personal_min_length}))
    if settings.min_zxcvbn_score:
        rules.append(("strength", {"min_score": settings.min_zxcvbn_score}))
    return rules


def evaluate(password: str, settings: PolicySettings, personal: Sequence[str] = ()) -> list[RuleResult]:
    """Every rule of the policy and whether ``password`` meets it. Pure (zxcvbn aside, which is
    deterministic); an empty password meets only ``max_length`` and ``printable``.

    :param personal: the person's names and identifiers (raw values or :func:`personal_parts`).
    """
    parts = personal_parts(personal, settings.personal_min_length)
    variants = _variants(fold(password))
    checks = {
        "length": lambda: len(password) >= settings.min_length,
        "classes": lambda: _enough_kinds(password, settings),
        "max_length": lambda: len(password) <= settings.max_length,
        "printable": lambda: _printable(password),
        "not_common": lambda: bool(password) and not is_common(password, settings.extra_blocklist),
        "not_personal": lambda: bool(password) and not any(p in v for p in parts for v in variants),
        "strength": lambda: _score(password, parts) >= settings.min_zxcvbn_score,
    }
    return [RuleResult(rule, checks[rule](), params) for rule, params in rules_for_display(settings)]


def acceptable(results: Iterable[RuleResult]) -> bool:
    """Whether every rule is met."""
    return all(result.met for result in results)


def failures(results: Iterable[RuleResult]) -> list[str]:
    """The ids of the rules not met, in display order."""
    return [result.rule for result in results if not result.met]
