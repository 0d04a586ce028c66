"""The ``sso`` command line, for administrators: run the server or the demo, check the
configuration, and answer "why can't I log in?" from the console.

Every command takes ``--config`` (default ``$SSO_CONFIG``, else the bundled demo) and ``--help``.
Exit codes, for scripts:

- 0: done (``user``: the account may sign in);
- 2: unusable configuration or bad arguments (click's usage errors are 2 as well);
- 3: the directory or the ticket store does not answer;
- 4: ``user``: no account for that identifier;
- 5: ``invite``: done, but some invitations failed (listed with the reason);
- 6: ``user``: the account exists but may not sign in (the reason is printed).
"""

from sso.cli import accounts, invite, mail, server  # noqa: F401 - importing registers the commands
from sso.cli.base import (
    EXIT_CANNOT_SIGN_IN,
    EXIT_CONFIG,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNAVAILABLE,
    main,
)
from sso.cli.invite import InviteJournal, JournalEntry, Pacer

__all__ = [
    "EXIT_CANNOT_SIGN_IN",
    "EXIT_CONFIG",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_UNAVAILABLE",
    "InviteJournal",
    "JournalEntry",
    "Pacer",
    "main",
]
