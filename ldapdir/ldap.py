"""The directory on real LDAP servers (OpenLDAP in production and in the integration tests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from functools import partial
from typing import Any

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPInvalidFilterError

from ldapdir import ppolicy
from ldapdir.connections import BindPool, ServerDown, ServerList, ServicePool, check_answer
from ldapdir.entry import Entry, Scope, clock, requested_attributes, to_account
from ldapdir.errors import AccountNotFound, DirectoryUnavailable, PasswordRejected
from ldapdir.model import Account, Authentication, PasswordCheck
from ldapdir.passwords import hash_password, prepare, prepared_new_password
from ldapdir.query import login_filter, printable, search_filter
from ldapdir.reader import EntryReader
from ldapdir.settings import DirectorySettings
from ldapdir.wire import LoginSearch

logger = logging.getLogger(__name__)

#: Result code of a missing entry (RFC 4511 §4.1.9).
NO_SUCH_OBJECT = 32


class LdapDirectory(EntryReader):
    """:class:`ldapdir.base.Directory` over LDAP servers, with failover.

    - searches, password writes and updates run on ONE service connection bound
      as ``settings.bind_dn``, reused and re-opened after a failure;
    - password checks bind as the account on a small pool of other connections;
    - every network failure, timeout or all-servers-down becomes
      :class:`DirectoryUnavailable`, never a wrong password.
    """

    def __init__(self, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic) -> None:
        """:param clock: monotonic seconds (failover and idle delays); for tests.
        :raises ValueError: no URL configured. Nothing is connected yet."""
        self.settings = settings
        self._servers = ServerList(settings, clock)
        #: The service connection (exposed for tests: it must be reused).
        self.service = ServicePool(self._servers, settings, clock)
        #: The user-bind pool (exposed for tests).
        self.binds = BindPool(self._servers, settings, clock)
        self._attributes = requested_attributes(settings)
        self._controls = [ppolicy.REQUEST] if settings.use_ppolicy else None
        #: The search of every sign-in, encoded once but for the identifier.
        self._login_search = LoginSearch(
            settings.people_base, settings.account_filter, settings.login_attributes, self._attributes, 2
        )

    # -- reading -------------------------------------------------------------------------------

    def _search(self, base: str, ldap_filter: str, scope: Scope, size_limit: int = 0) -> list[Entry]:
        def operation(connection: Connection) -> list[Entry]:
            connection.search(
                base, ldap_filter, search_scope=scope, attributes=self._attributes, size_limit=size_limit
            )
            return _entries(connection, ldap_filter)

        return self.service.run(operation)

    def _find_entries(self, normalised: str) -> list[Entry]:
        ldap_filter = login_filter(normalised, self.settings)

        def operation(connection: Connection) -> list[Entry]:
            self._login_search.run(connection, normalised, ldap_filter)
            return _entries(connection, ldap_filter)

        return self.service.run(operation)

    def search(self, ldap_filter: str, today: date | None = None, limit: int = 0) -> Iterator[Account]:
        """See :meth:`ldapdir.base.Directory.search`. Paged (RFC 2696); the service
        connection is held for one page at a time, not while the caller iterates.

        :raises ValueError: the filter is not valid LDAP filter syntax.
        """
        combined = search_filter(ldap_filter, self.settings)
        day, now = clock(today, self.settings)
        page_size = min(self.settings.search_page_size, limit) if limit else self.settings.search_page_size
        cookie: bytes | None = None
        produced = 0
        while True:
            entries, cookie = self.service.run(
                partial(self._page, ldap_filter=combined, size=page_size, cookie=cookie)
            )
            for entry in entries:
                account = to_account(entry, "", day, now, self.settings)
                if account is None:
                    continue
                yield account
                produced += 1
                if limit and produced >= limit:
                    return
            if not cookie:
                return

    def _page(
        self, connection: Connection, ldap_filter: str, size: int, cookie: bytes | None
    ) -> tuple[list[Entry], bytes | None]:
        try:
            connection.search(
                self.settings.people_base,
                ldap_filter,
                search_scope=SUBTREE,
                attributes=self._attributes,
                paged_size=size,
                paged_cookie=cookie,
            )
        except LDAPInvalidFilterError as error:
            raise ValueError(f"invalid LDAP filter: {error}") from error
        entries = _entries(connection, ldap_filter)
        control = (connection.result or {}).get("controls", {}).get("1.2.840.113556.1.4.319")
        next_cookie = control["value"]["cookie"] if control else None
        return entries, next_cookie or None

    # -- passwords -----------------------------------------------------------------------------

    def check_password(self, account: Account, password: str) -> PasswordCheck:
        """See :meth:`ldapdir.base.Directory.check_password`."""
        return self.authenticate(account, password).check

    def authenticate(self, account: Account, password: str) -> Authentication:
        """See :meth:`ldapdir.base.Directory.authenticate`.

        With ``use_ppolicy``, the policy control turns a refused bind into
        LOCKED or EXPIRED, a reset password into MUST_CHANGE, and carries the
        expiry warning and the grace sign-ins left.
        """
        prepared = prepare(password)
        if not prepared:
            # Empty (an anonymous bind would succeed), or refused by SASLprep
            # (control characters…): no password of that form can be set either.
            return Authentication(PasswordCheck.INVALID)
        # As bytes: ldap3 sends bytes as they are, where it would SASLprep a str a second time.
        result = self.binds.bind(account.dn, prepared.encode("utf-8"), self._controls)
        code = int(result.get("result", -1))
        response = ppolicy.from_result(result)
        check = ppolicy.bind_check(code, response)
        if check is None:
            logger.warning(
                "unexpected bind result for %s: %s", printable(account.dn, 200), result.get("description")
            )
            return Authentication(PasswordCheck.INVALID)
        if response is None or check is not PasswordCheck.VALID and check is not PasswordCheck.EXPIRED:
            return Authentication(check)
        return Authentication(check, response.time_before_expiration, response.grace_remaining)

    def set_password(self, account: Account, new_password: str) -> None:
        """See :meth:`ldapdir.base.Directory.set_password`.

        RFC 3062 Password Modify as the service account (the server hashes the
        password and applies its policy), or a salted-hash replace when
        ``use_password_modify`` is off. Then clears ``pwdReset`` if the server
        left it set (OpenLDAP clears it itself unless ``pwdMustChange``).

        OpenLDAP's ppolicy also clears ``pwdAccountLockedTime`` on a change, even
        an administrator's lock: callers decide whether a LOCKED account may set
        a password at all.
        """
        prepared = prepared_new_password(new_password)

        def operation(connection: Connection) -> dict[str, Any]:
            if self.settings.use_password_modify:
                connection.extend.standard.modify_password(
                    user=account.dn, new_password=prepared, controls=self._controls
                )
            else:
                value = hash_password(prepared, self.settings.password_hash)
                connection.modify(
                    account.dn, {"userPassword": [(MODIFY_REPLACE, [value])]}, controls=self._controls
                )
            return dict(connection.result or {})

        result = self.service.run(operation)
        self._raise_for_password(account, result)
        self._clear_reset(account)
        logger.info("password set for %s", printable(account.dn, 200))

    def _raise_for_password(self, account: Account, result: Mapping[str, Any]) -> None:
        code = int(result.get("result", -1))
        if code == ppolicy.SUCCESS:
            return
        if code == NO_SUCH_OBJECT:
            raise AccountNotFound(account.dn)
        message = str(result.get("message") or result.get("description") or "")
        reason = ppolicy.rejection_reason(code, ppolicy.from_result(result), message)
        logger.info(
            "password refused for %s: %s (%s)", printable(account.dn, 200), reason, printable(message)
        )
        raise PasswordRejected(str(reason), message)

    def _clear_reset(self, account: Account) -> None:
        def operation(connection: Connection) -> None:
            connection.search(account.dn, "(pwdReset=TRUE)", search_scope=BASE, attributes=["pwdReset"])
            if not _entries(connection, "(pwdReset=TRUE)"):
                return
            connection.modify(account.dn, {"pwdReset": [(MODIFY_DELETE, [])]})
            if connection.result and connection.result.get("result") not in (0, 16):
                logger.warning(
                    "could not clear pwdReset on %s: %s",
                    printable(account.dn, 200),
                    connection.result.get("description"),
                )

        self.service.run(operation)

    # -- writing ------------------------------------------------------------------------------

    def update(self, account: Account, changes: Mapping[str, Sequence[str]]) -> None:
        """See :meth:`ldapdir.base.Directory.update` (one modify: all or nothing).

        :raises AccountNotFound: the entry is gone.
        :raises ValueError: ``userPassword`` (use :meth:`set_password`), or the
            directory refused the change (schema, access).
        """
        if any(name.lower() == "userpassword" for name in changes):
            raise ValueError("userPassword is written with set_password, never with update")
        if not changes:
            return
        modifications = {name: [(MODIFY_REPLACE, list(values))] for name, values in changes.items()}

        def operation(connection: Connection) -> dict[str, Any]:
            connection.modify(account.dn, modifications)
            return dict(connection.result or {})

        result = self.service.run(operation)
        code = int(result.get("result", -1))
        if code == NO_SUCH_OBJECT:
            raise AccountNotFound(account.dn)
        if code != 0:
            raise ValueError(
                f"directory refused the change: {result.get('description')} {result.get('message')}"
            )

    # -- operations ---------------------------------------------------------------------------

    def ping(self) -> None:
        """See :meth:`ldapdir.base.Directory.ping`: a Who am I? (RFC 4532) on the service connection."""

        def operation(connection: Connection) -> None:
            connection.extend.standard.who_am_i()
            if connection.result is None or connection.result.get("result") != 0:
                raise ServerDown("no answer to Who am I?")

        self.service.run(operation)

    def close(self) -> None:
        """See :meth:`ldapdir.base.Directory.close`."""
        self.service.close()
        self.binds.close()

    def __enter__(self) -> LdapDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entries(connection: Connection, ldap_filter: str) -> list[Entry]:
    """The entries of the last search. A server error (other than "no such
    object" and size limit) is raised as :class:`DirectoryUnavailable`."""
    check_answer(connection)
    result = connection.result or {}
    code = result.get("result")
    if code not in (0, 4, NO_SUCH_OBJECT):
        raise DirectoryUnavailable(f"search {printable(ldap_filter)} failed: {result.get('description')}")
    return [
        Entry(item["dn"], item["raw_attributes"])
        for item in (connection.response or [])
        if item.get("type") == "searchResEntry"
    ]
