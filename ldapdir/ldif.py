"""A small reader for LDIF content records (RFC 2849), enough for the embedded directory.

Reads ``dn:`` records with ``attr: value`` and ``attr:: base64`` lines,
comments, folded lines and an optional ``version: 1``. Change records and
``attr:< URL`` values are refused: the embedded directory's data is content.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field


class LdifError(ValueError):
    """The LDIF text is not what this reader accepts."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        #: The 1-based line number where the problem is.
        self.line = line
        #: What is wrong.
        self.problem = problem


@dataclass
class Record:
    """One entry: its DN and attributes (name as written -> raw values, in order)."""

    dn: str
    attributes: dict[str, list[bytes]] = field(default_factory=dict)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, unfolded line); comments dropped; ``""`` separates records."""
    current: str | None = None
    start = 0
    in_comment = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(" "):
            if in_comment:
                continue
            if current is None:
                raise LdifError(number, "continuation line with nothing to continue")
            current += line[1:]
            continue
        if current is not None:
            yield start, current
            current = None
        in_comment = line.startswith("#")
        if in_comment:
            continue
        if not line.strip():
            yield number, ""
            continue
        current, start = line, number
    if current is not None:
        yield start, current


def _split(number: int, line: str) -> tuple[str, bytes]:
    name, colon, value = line.partition(":")
    if not colon or not name:
        raise LdifError(number, "expected 'attribute: value'")
    if value.startswith(":"):
        try:
            return name, base64.b64decode(value[1:].strip(), validate=True)
        except (binascii.Error, ValueError) as error:
            raise LdifError(number, f"bad base64 value for {name}") from error
    if value.startswith("<"):
        raise LdifError(number, f"URL values are not supported ({name})")
    return name, value.lstrip(" ").encode("utf-8")


def parse_ldif(text: str) -> list[Record]:
    """The records of an LDIF document, in order.

    :raises LdifError: malformed text, a change record, or an attribute
        line outside a record.
    """
    records: list[Record] = []
    current: Record | None = None
    for number, line in _logical_lines(text):
        if not line:
            current = None
            continue
        name, value = _split(number, line)
        lowered = name.lower()
        if current is None:
            if lowered == "version" and not records:
                continue
            if lowered != "dn":
                raise LdifError(number, f"expected 'dn:', found {name!r}")
            current = Record(value.decode("utf-8"))
            records.append(current)
            continue
        if lowered == "changetype":
            raise LdifError(number, "change records are not supported")
        if lowered == "dn":
            raise LdifError(number, "two DNs in one record (missing blank line?)")
        current.attributes.setdefault(name, []).append(value)
    return records
