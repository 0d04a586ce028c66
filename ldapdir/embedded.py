"""The embedded directory: ldap3's MOCK strategy loaded from an LDIF file (demo, fast tests).

- one ``Server`` object holds the data (ldap3 keeps a mock directory on the
  server: a new ``Server`` would be empty) and one connection reads it,
  under a lock;
- the LDIF file is only read (it may sit read-only in site-packages); every
  change (password set, attribute updated) is written to a JSON state file,
  atomically, and applied again on start, so it survives restarts;
- passwords are salted hashes, checked here with :mod:`ldapdir.passwords`
  (the MOCK bind only compares clear text, and no clear password belongs on
  disk, even in a demo). There is no password policy: the server's own
  policy (``sso.activation.policy``) is the only one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from ldap3 import BASE, MOCK_SYNC, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPInvalidFilterError

from ldapdir.entry import Entry, Scope, clock, requested_attributes, to_account
from ldapdir.errors import AccountNotFound
from ldapdir.ldif import parse_ldif
from ldapdir.model import Account, Authentication, PasswordCheck
from ldapdir.passwords import hash_password, matches_any, prepare, prepared_new_password
from ldapdir.query import printable, search_filter
from ldapdir.reader import EntryReader
from ldapdir.settings import DirectorySettings
from ldapdir.state import is_locked, parse_generalized_time

logger = logging.getLogger(__name__)

#: Version of the state file's layout.
STATE_FORMAT = 1

#: Attributes the password check reads.
_PASSWORD_STATE = ["userPassword", "pwdAccountLockedTime", "pwdReset", "pwdEndTime"]

#: What a password change clears, as OpenLDAP's ppolicy does: the reset flag,
#: the failure count and any lock (even an administrator's ``000001010000Z``).
_CLEARED_BY_CHANGE = ("pwdReset", "pwdFailureTime", "pwdAccountLockedTime")


class EmbeddedDirectory(EntryReader):
    """:class:`ldapdir.base.Directory` in memory, from ``data_file``, changes kept in ``state_file``.

    :param data_file: LDIF content records (read once, never written).
    :param state_file: JSON file of the changes made since; ``None`` keeps
        changes in memory only (tests).
    :raises ldapdir.ldif.LdifError: the LDIF cannot be read.
    :raises ValueError: the state file exists but is not a state file.
    """

    def __init__(self, settings: DirectorySettings, data_file: Path, state_file: Path | None = None) -> None:
        self.settings = settings
        self.data_file = Path(data_file)
        self.state_file = Path(state_file) if state_file is not None else None
        self._lock = threading.RLock()
        self._server = Server("embedded", get_info=NONE)
        self._connection = Connection(
            self._server, client_strategy=MOCK_SYNC, raise_exceptions=False, check_names=False
        )
        self._connection.open()
        self._attributes = requested_attributes(settings)
        #: DN -> attribute -> current values (empty: deleted), as persisted.
        self._changes: dict[str, dict[str, list[str]]] = {}
        self._load()

    # -- loading and saving ----------------------------------------------------------------------

    def _load(self) -> None:
        records = parse_ldif(self.data_file.read_text(encoding="utf-8"))
        for record in records:
            self._connection.strategy.add_entry(record.dn, dict(record.attributes))
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            entries = state["entries"] if state.get("format") == STATE_FORMAT else None
        except (ValueError, KeyError, AttributeError) as error:
            raise ValueError(f"{self.state_file}: not a directory state file ({error})") from error
        if not isinstance(entries, dict):
            raise ValueError(
                f"{self.state_file}: not a directory state file (format {STATE_FORMAT} expected)"
            )
        for dn, attributes in entries.items():
            if not self._modify(dn, attributes):
                logger.warning("state file: entry %s is no longer in %s: change skipped", dn, self.data_file)
                continue
            self._changes[dn] = {name: list(values) for name, values in attributes.items()}
        logger.info("embedded directory: %d entries, %d changed", len(records), len(self._changes))

    def _modify(self, dn: str, attributes: Mapping[str, Sequence[str]]) -> bool:
        """Replace attributes in the mock; ``False`` if the entry does not exist."""
        changes = {name: [(MODIFY_REPLACE, list(values))] for name, values in attributes.items()}
        self._connection.modify(dn, changes)
        return bool(self._connection.result and self._connection.result.get("result") == 0)

    def _record(self, dn: str, attributes: Mapping[str, Sequence[str]]) -> None:
        self._changes.setdefault(dn, {}).update({name: list(values) for name, values in attributes.items()})
        if self.state_file is None:
            return
        payload = json.dumps({"format": STATE_FORMAT, "entries": self._changes}, indent=1, sort_keys=True)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.state_file.parent, prefix=f".{self.state_file.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(payload)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.state_file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _change(self, account: Account, attributes: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            if not self._modify(account.dn, attributes):
                raise AccountNotFound(account.dn)
            self._record(account.dn, attributes)

    # -- reading -----------------------------------------------------------------------------------

    def _search(self, base: str, ldap_filter: str, scope: Scope, size_limit: int = 0) -> list[Entry]:
        with self._lock:
            try:
                self._connection.search(
                    base, ldap_filter, search_scope=scope, attributes=self._attributes, size_limit=size_limit
                )
            except LDAPInvalidFilterError as error:
                raise ValueError(f"invalid LDAP filter: {error}") from error
            return [
                Entry(item["dn"], item["raw_attributes"])
                for item in self._connection.response or []
                if item.get("type") == "searchResEntry"
            ]

    def search(self, ldap_filter: str, today: date | None = None, limit: int = 0) -> Iterator[Account]:
        """See :meth:`ldapdir.base.Directory.search`.

        :raises ValueError: the filter is not valid LDAP filter syntax.
        """
        entries = self._search(self.settings.people_base, search_filter(ldap_filter, self.settings), SUBTREE)
        day, now = clock(today, self.settings)
        produced = 0
        for entry in entries:
            account = to_account(entry, "", day, now, self.settings)
            if account is None:
                continue
            yield account
            produced += 1
            if limit and produced >= limit:
                return

    # -- passwords ---------------------------------------------------------------------------------

    def check_password(self, account: Account, password: str) -> PasswordCheck:
        """See :meth:`ldapdir.base.Directory.check_password`; answers as OpenLDAP
        with ppolicy does for a right password: LOCKED (``pwdAccountLockedTime``,
        or ``pwdEndTime`` passed), MUST_CHANGE (``pwdReset``)."""
        prepared = prepare(password)
        if not prepared:
            return PasswordCheck.INVALID
        with self._lock:
            self._connection.search(
                account.dn, "(objectClass=*)", search_scope=BASE, attributes=_PASSWORD_STATE
            )
            found = [item for item in self._connection.response or [] if item.get("type") == "searchResEntry"]
        if not found:
            return PasswordCheck.INVALID
        entry = Entry(found[0]["dn"], found[0]["raw_attributes"])
        if not matches_any(prepared, entry.raw("userPassword")):
            return PasswordCheck.INVALID
        _, now = clock(None, self.settings)
        if _locked(entry, now, self.settings):
            return PasswordCheck.LOCKED
        if entry.first("pwdReset").upper() == "TRUE":
            return PasswordCheck.MUST_CHANGE
        return PasswordCheck.VALID

    def authenticate(self, account: Account, password: str) -> Authentication:
        """See :meth:`ldapdir.base.Directory.authenticate` (no password policy here: no warnings)."""
        return Authentication(self.check_password(account, password))

    def set_password(self, account: Account, new_password: str) -> None:
        """See :meth:`ldapdir.base.Directory.set_password`: a salted hash
        (``settings.password_hash``), ``pwdChangedTime`` set, and what OpenLDAP's
        ppolicy clears on a change cleared too (reset flag, failures, lock)."""
        prepared = prepared_new_password(new_password)
        changed = datetime.now(UTC).strftime("%Y%m%d%H%M%SZ")
        self._change(
            account,
            {
                "userPassword": [hash_password(prepared, self.settings.password_hash)],
                "pwdChangedTime": [changed],
                **{name: [] for name in _CLEARED_BY_CHANGE},
            },
        )
        logger.info("password set for %s", printable(account.dn, 200))

    # -- writing -----------------------------------------------------------------------------------

    def update(self, account: Account, changes: Mapping[str, Sequence[str]]) -> None:
        """See :meth:`ldapdir.base.Directory.update`.

        :raises AccountNotFound: the entry is gone.
        :raises ValueError: ``userPassword`` (use :meth:`set_password`).
        """
        if any(name.lower() == "userpassword" for name in changes):
            raise ValueError("userPassword is written with set_password, never with update")
        if changes:
            self._change(account, changes)

    def ping(self) -> None:
        """Always answers: the data is in memory."""

    def close(self) -> None:
        """Close the mock connection (changes are already on disk)."""
        with self._lock:
            self._connection.unbind()

    def __enter__(self) -> EmbeddedDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _locked(entry: Entry, now: datetime, settings: DirectorySettings) -> bool:
    """Whether OpenLDAP's ppolicy would refuse this entry's bind as locked."""
    tz = zoneinfo.ZoneInfo(settings.time_zone)
    if any(
        is_locked(value, now, settings.lockout_duration, tz) for value in entry.texts("pwdAccountLockedTime")
    ):
        return True
    ends = [parse_generalized_time(value, tz) for value in entry.texts("pwdEndTime")]
    return any(end is not None and end <= now for end in ends)
