"""The bench's people: N generated accounts seeded into a private slapd.

Account ``i`` (0 ≤ i < N) is ``uid=bench<i>``, signs in with ``bench.<i>@etu.univ-demo.fr`` and
:func:`password` ``(i)``; every account is active (SUPANN state, expiry in 2099) and has a personal
address, so every scenario can pick any of them. Passwords are stored as ``{SSHA}`` hashes, as in a
real directory. The login attributes (``uid``, ``mail``, ``supannMailPerso``) are indexed by
:class:`tests.support.slapd.Slapd`'s configuration.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.slapd import Slapd

#: Where the generated accounts live.
PEOPLE_BASE = Slapd.people_base
#: Attributes released to the bench service (and read by the ceiling and the peer).
RELEASED = ("uid", "mail", "cn", "displayName", "givenName", "sn", "eduPersonAffiliation")
#: slapd's LMDB map size for the bench: 100,000 accounts and their indexes need more than the tests' 256 MB.
MAP_SIZE = 4 * 1024**3


@dataclass(frozen=True)
class Person:
    """One generated account."""

    index: int

    @property
    def uid(self) -> str:
        """CAS user name."""
        return f"bench{self.index}"

    @property
    def login(self) -> str:
        """What the person types in the identifier field."""
        return f"bench.{self.index}@etu.univ-demo.fr"

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE_BASE}"

    @property
    def password(self) -> str:
        return password(self.index)


def password(index: int) -> str:
    """The password of account ``index`` (meets the default policy; the bench knows them all)."""
    return f"Banc-Essai-{index}-Mdp!"


def _ssha(secret: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(secret.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def entries(count: int) -> Iterator[str]:
    """LDIF records of ``count`` accounts (no version line, no trailing blank)."""
    for index in range(count):
        person = Person(index)
        yield (
            f"dn: {person.dn}\n"
            "objectClass: inetOrgPerson\n"
            "objectClass: eduPerson\n"
            "objectClass: supannPerson\n"
            "objectClass: schacEntryMetadata\n"
            f"uid: {person.uid}\n"
            f"cn: Bench {index}\n"
            f"sn: Bench{index}\n"
            "givenName: Bench\n"
            f"displayName: Bench {index}\n"
            f"mail: {person.login}\n"
            f"supannMailPerso: bench.{index}@perso.example\n"
            "eduPersonAffiliation: student\n"
            "eduPersonAffiliation: member\n"
            "schacExpiryDate: 20991231225959Z\n"
            "supannRessourceEtatDate: {COMPTE}A:SupannActif::20991231\n"
            f"userPassword: {_ssha(person.password)}\n"
        )


def write_ldif(path: Path, count: int) -> Path:
    """Write ``count`` accounts to ``path`` (LDIF) and return it."""
    with path.open("w", encoding="utf-8") as out:
        for record in entries(count):
            out.write(record)
            out.write("\n")
    return path


class BenchSlapd(Slapd):
    """The tests' private slapd with a map size large enough for 100,000 accounts."""

    def _config_ldif(self) -> str:
        text = super()._config_ldif()
        return text.replace("olcDbMaxSize: 268435456", f"olcDbMaxSize: {MAP_SIZE}")


def start_directory(workdir: Path, count: int) -> BenchSlapd:
    """A started slapd seeded with the demo people and ``count`` bench accounts.

    :raises tests.support.slapd.SlapdError: it could not be set up or started.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ldif = write_ldif(workdir / "accounts.ldif", count)
    server = BenchSlapd(workdir / "slapd", extra_ldif=(ldif,), start_timeout=60.0)
    server.setup().start()
    return server


class Picker:
    """Random accounts for the virtual users (one seeded generator: runs are repeatable)."""

    def __init__(self, count: int, seed: int = 7) -> None:
        self.count = count
        self._random = random.Random(seed)

    def __call__(self) -> Person:
        return Person(self._random.randrange(self.count))
