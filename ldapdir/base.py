"""The interface every identity source implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Protocol

from ldapdir.model import Account, Authentication, PasswordCheck


class Directory(Protocol):
    """What the rest of the server knows of the directory.

    Every method may raise :class:`ldapdir.errors.DirectoryUnavailable`.
    """

    def find(self, identifier: str, today: date | None = None) -> Account | None:
        """Find the account an identifier names (trimmed, case-insensitive,
        matched over the login attributes in order); ``None`` if there is none
        or the identifier is unusable (empty, too long, ambiguous)."""

    def check_password(self, account: Account, password: str) -> PasswordCheck:
        """Check ``password`` by binding as the account. An empty password is
        ``INVALID`` without any bind (an empty simple bind is anonymous)."""

    def authenticate(self, account: Account, password: str) -> Authentication:
        """:meth:`check_password` with the directory's warnings (password about to
        expire, grace sign-ins left)."""

    def set_password(self, account: Account, new_password: str) -> None:
        """Write a new password the way the directory wants it.

        :raises PasswordRejected: the directory refused it (reason attached).
        :raises AccountNotFound: the entry is gone.
        """

    def update(self, account: Account, changes: Mapping[str, Sequence[str]]) -> None:
        """Replace the given attributes of the entry (an empty list deletes)."""

    def search(self, ldap_filter: str, today: date | None = None, limit: int = 0) -> Iterator[Account]:
        """Accounts under the people base matching a raw LDAP filter
        (administrator input: CLI only), combined with the account filter."""

    def ping(self) -> None:
        """Raise ``DirectoryUnavailable`` unless a server answers now."""

    def close(self) -> None:
        """Release connections."""
