"""Reading accounts, the same on every back-end: each supplies one primitive, ``_search``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date

from ldap3 import BASE, SUBTREE

from ldapdir.entry import Entry, Scope, clock, pick, to_account
from ldapdir.model import Account
from ldapdir.query import login_filter, normalise_identifier
from ldapdir.settings import DirectorySettings


class EntryReader(ABC):
    """``find`` and ``get`` over a back-end's ``_search``."""

    settings: DirectorySettings

    @abstractmethod
    def _search(self, base: str, ldap_filter: str, scope: Scope, size_limit: int = 0) -> list[Entry]:
        """Entries under ``base`` matching ``ldap_filter`` (at most ``size_limit``; 0: no limit)."""

    def find(self, identifier: str, today: date | None = None) -> Account | None:
        """See :meth:`ldapdir.base.Directory.find`. One search for all login attributes; two entries
        matching is ambiguous and names nobody."""
        normalised = normalise_identifier(identifier)
        if normalised is None:
            return None
        entries = self._find_entries(normalised)
        day, now = clock(today, self.settings)
        return pick(entries, normalised, day, now, self.settings)

    def _find_entries(self, normalised: str) -> list[Entry]:
        """The entries (at most two) whose login attributes equal a normalised identifier."""
        return self._search(self.settings.people_base, login_filter(normalised, self.settings), SUBTREE, 2)

    def get(self, dn: str, today: date | None = None) -> Account | None:
        """The account at ``dn`` (re-read, e.g. after a change), or ``None``."""
        entries = self._search(dn, self.settings.account_filter or "(objectClass=*)", BASE, 1)
        if not entries:
            return None
        day, now = clock(today, self.settings)
        return to_account(entries[0], "", day, now, self.settings)
