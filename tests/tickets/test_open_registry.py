"""Choosing a ticket back-end from the configured URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from sso.tickets.memory import MemoryRegistry
from sso.tickets.model import Lifetimes
from sso.tickets.registry import open_registry
from sso.tickets.sqlite import SqliteRegistry


def test_memory() -> None:
    registry = open_registry("memory://", Lifetimes())
    assert isinstance(registry, MemoryRegistry)
    registry.close()


def test_sqlite_absolute(tmp_path: Path) -> None:
    registry = open_registry(f"sqlite://{tmp_path}/abs.db", Lifetimes())
    try:
        assert isinstance(registry, SqliteRegistry)
        assert (tmp_path / "abs.db").exists()
    finally:
        registry.close()


def test_sqlite_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    registry = open_registry("sqlite:var/rel.db", Lifetimes(), base_dir=tmp_path)
    try:
        assert (tmp_path / "var" / "rel.db").exists()
    finally:
        registry.close()


def test_sqlite_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = open_registry("sqlite:cwd.db", Lifetimes())
    try:
        assert (tmp_path / "cwd.db").exists()
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:secret@localhost:6379/zero", "Redis database"),
        ("rediss://:secret@localhost?socket_timeout=2&sockettimeout=1", "unknown Redis option"),
        ("redis://:secret@localhost:port/0", "Redis URL"),
        ("postgres://user:secret@db/tickets", "unknown scheme"),
        ("sqlite://host/tickets.db", "no host"),
        ("sqlite:", "sqlite:///absolute"),
        ("sqlite:///tmp/t.db?mode=ro", "no query"),
        ("memory://somewhere", "nothing after"),
        ("tickets.db", "must start with"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_registry(url, Lifetimes())
    assert "secret" not in str(info.value)
