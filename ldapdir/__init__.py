"""The directory layer: accounts, passwords and states over LDAP (ldap3).

Plain Python: imports nothing from Flask or :mod:`sso`.
"""

from ldapdir.base import Directory
from ldapdir.errors import AccountNotFound, DirectoryError, DirectoryUnavailable, PasswordRejected
from ldapdir.model import DN, Account, AccountState, Authentication, PasswordCheck
from ldapdir.settings import DirectorySettings

__all__ = [
    "DN",
    "Account",
    "AccountNotFound",
    "AccountState",
    "Authentication",
    "Directory",
    "DirectoryError",
    "DirectorySettings",
    "DirectoryUnavailable",
    "PasswordCheck",
    "PasswordRejected",
]
