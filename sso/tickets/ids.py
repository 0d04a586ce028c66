"""Ticket ids: prefix + 160 random bits from :mod:`secrets`, only ``[A-Za-z0-9-]``.

CAS 3.0 §3.1.1/§3.7: ids must be unguessable, at most 256 characters, and
some clients reject ``_``; hex keeps to the allowed alphabet.
"""

from __future__ import annotations

import re
import secrets

from sso.tickets.model import Kind

#: Largest id we accept from a client (CAS 3.0 §3.7 allows 256; ours are far shorter).
MAX_LENGTH = 256
_VALID = re.compile(r"(?:ST|PT|PGT|PGTIOU|TGT)-[A-Za-z0-9-]{1,240}\Z")


def new_id(kind: Kind) -> str:
    """A fresh, unguessable ticket id of the given kind."""
    return f"{kind.value}-{secrets.token_hex(20)}"


def well_formed(ticket_id: str) -> bool:
    """Whether ``ticket_id`` has a known prefix and only allowed characters."""
    return len(ticket_id) <= MAX_LENGTH and _VALID.match(ticket_id) is not None


def redact(ticket_id: str) -> str:
    """What may be logged of an id: its prefix and 4 characters (``ST-ab12…``)."""
    kind, sep, rest = ticket_id.partition("-")
    if not sep:
        return "…"
    return f"{kind[:8]}-{rest[:4]}…"
