"""Errors of the directory layer: a small hierarchy that carries data."""

from __future__ import annotations


class DirectoryError(Exception):
    """Base class of every error raised by :mod:`ldapdir`."""


class DirectoryUnavailable(DirectoryError):
    """No directory server answered (down, timed out, refused our service bind).

    This is "can't tell", never "wrong password".
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        #: What failed, for logs (never holds a password).
        self.detail = detail


class AccountNotFound(DirectoryError):
    """The account the caller named does not exist (any more)."""


class PasswordRejected(DirectoryError):
    """The directory refused a new password (policy, history, too short…)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(reason)
        #: A stable code: ``too_short``, ``in_history``, ``too_young``,
        #: ``quality``, ``insufficient_access``, ``other``.
        self.reason = reason
        #: The directory's own diagnostic text (English, for logs).
        self.message = message
