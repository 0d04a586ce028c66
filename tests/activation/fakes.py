"""Small in-memory doubles of the directory, the notifier, the audit sink and the clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from ldapdir.errors import AccountNotFound, DirectoryUnavailable, PasswordRejected
from ldapdir.model import DN, Account, AccountState, PasswordCheck
from sso.activation.flow import Notice


def account(
    user: str,
    state: AccountState = AccountState.ACTIVE,
    personal_mail: str | None = None,
    given: str = "Jean",
    sn: str = "Dupont",
) -> Account:
    """An account as the directory would return it."""
    return Account(
        dn=DN(f"uid={user},ou=people,dc=univ,dc=fr"),
        user=user,
        found_by="uid",
        state=state,
        expires=None,
        personal_mail=personal_mail,
        password_fingerprint="v0",
        attributes={
            "uid": (user,),
            "mail": (f"{user}@etu.univ.fr",),
            "givenName": (given,),
            "sn": (sn,),
            "displayName": (f"{given} {sn}",),
        },
    )


@dataclass
class FakeDirectory:
    """Accounts by user name; ``find`` matches the user name or the ``mail`` attribute, case-insensitively.

    ``set_password`` bumps the fingerprint and activates a never-activated account, like the real
    directories. Set ``down`` to make every call raise :class:`DirectoryUnavailable`, ``reject`` to
    make ``set_password`` raise :class:`PasswordRejected` with that reason.
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    down: bool = False
    reject: str | None = None
    fail_update: bool = False
    finds: int = 0
    password_writes: list[tuple[str, str]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def add(self, entry: Account) -> Account:
        self.accounts[entry.user] = entry
        return entry

    @property
    def writes(self) -> int:
        return len(self.password_writes) + len(self.updates)

    def _up(self) -> None:
        if self.down:
            raise DirectoryUnavailable("fake directory is down")

    def find(self, identifier: str, today: date | None = None) -> Account | None:
        self._up()
        self.finds += 1
        key = identifier.strip().casefold()
        for entry in self.accounts.values():
            if key == entry.user.casefold() or key in (
                m.casefold() for m in entry.attributes.get("mail", ())
            ):
                return entry
        return None

    def check_password(self, account: Account, password: str) -> PasswordCheck:
        self._up()
        ok = bool(password) and self.passwords.get(account.user) == password
        return PasswordCheck.VALID if ok else PasswordCheck.INVALID

    def set_password(self, account: Account, new_password: str) -> None:
        self._up()
        if account.user not in self.accounts:
            raise AccountNotFound(account.user)
        if self.reject:
            raise PasswordRejected(self.reject, "refused by the fake")
        current = self.accounts[account.user]
        state = AccountState.ACTIVE if current.state is AccountState.NEVER_ACTIVATED else current.state
        generation = int(current.password_fingerprint[1:]) + 1
        self.accounts[account.user] = replace(current, state=state, password_fingerprint=f"v{generation}")
        self.passwords[account.user] = new_password
        self.password_writes.append((account.user, new_password))

    def update(self, account: Account, changes: Mapping[str, Sequence[str]]) -> None:
        self._up()
        if self.fail_update:
            raise DirectoryUnavailable("fake directory failed the update")
        self.updates.append((account.user, {name: list(values) for name, values in changes.items()}))
        current = self.accounts[account.user]
        attributes = dict(current.attributes)
        attributes.update({name: tuple(values) for name, values in changes.items()})
        self.accounts[account.user] = replace(current, attributes=attributes)

    def search(self, ldap_filter: str, today: date | None = None, limit: int = 0) -> Iterator[Account]:
        self._up()
        return iter(list(self.accounts.values()))

    def ping(self) -> None:
        self._up()

    def close(self) -> None:
        pass


@dataclass
class Outbox:
    """A notifier that records notices (thread-safe); ``fail`` makes it raise :class:`OSError`."""

    notices: list[Notice] = field(default_factory=list)
    fail: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, notice: Notice) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        with self._lock:
            self.notices.append(notice)

    def kinds(self) -> list[tuple[str, str]]:
        return [(notice.kind, notice.user) for notice in self.notices]


@dataclass
class AuditLog:
    """An audit sink that records events (thread-safe)."""

    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: str, fields: Mapping[str, str]) -> None:
        with self._lock:
            self.events.append((event, dict(fields)))

    def named(self, event: str) -> list[dict[str, str]]:
        return [fields for name, fields in self.events if name == event]


@dataclass
class Clock:
    """A settable aware clock."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
