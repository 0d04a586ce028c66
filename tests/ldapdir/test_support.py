"""The slapd launcher's rule: skip without slapd locally, fail under SSO_REQUIRE_SERVERS=1 (CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import slapd


def test_missing_slapd_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slapd, "SLAPD", Path("/nonexistent/slapd"))
    monkeypatch.delenv(slapd.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="slapd"):
        slapd.require_slapd()


def test_missing_slapd_fails_when_servers_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slapd, "SLAPD", Path("/nonexistent/slapd"))
    monkeypatch.setenv(slapd.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="SSO_REQUIRE_SERVERS"):
        slapd.require_slapd()
