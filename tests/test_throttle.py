"""Throttling on ``limits`` (sso.throttle): windows, exemptions, counting, a storage that fails."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from sso.throttle import RETRY_AFTER, Throttle, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def windows(identifier: str = "id:lea", address: str | None = "192.0.2.7") -> tuple[Window, ...]:
    return (
        Window("login-identifier", Throttle.limits("3 per minute;5 per day"), identifier),
        Window("login-address", Throttle.limits("4 per minute"), address),
    )


def test_a_window_fills_with_failures_only() -> None:
    throttle = Throttle("memory://")
    for _ in range(10):
        assert throttle.blocked(windows()) is None  # checking counts nothing
    for _ in range(3):
        throttle.failed(windows())
    reset_at = throttle.blocked(windows())
    assert reset_at is not None and reset_at > 0
    assert throttle.blocked(windows(identifier="id:other")) is None, "another identifier still may"


def test_the_address_window_counts_every_identifier() -> None:
    throttle = Throttle("memory://")
    for name in ("a", "b", "c", "d"):
        throttle.failed(windows(identifier=f"id:{name}"))
    assert throttle.blocked(windows(identifier="id:e")) is not None
    assert throttle.blocked(windows(identifier="id:e", address=None)) is None, "exempt address"


def test_hit_counts_every_request_until_a_window_is_full() -> None:
    throttle = Throttle("memory://")
    link = (Window("link-id", Throttle.limits("2 per hour"), "link:lea"),)
    assert throttle.hit(link) is None and throttle.hit(link) is None
    reset_at = throttle.hit(link)
    assert reset_at is not None and reset_at > 0
    assert throttle.hit((Window("link-id", Throttle.limits("2 per hour"), "link:jean"),)) is None


def test_several_limits_in_one_setting() -> None:
    assert [str(item) for item in Throttle.limits("5 per 5 minutes;20 per day")] == [
        "5 per 5 minute",
        "20 per 1 day",
    ]
    with pytest.raises(ValueError):
        Throttle.limits("five a minute")


class Broken(MemoryStorage):
    """A storage that fails like a Redis gone away (``limits`` raises its base exceptions)."""

    calls = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    @property
    def base_exceptions(self) -> type[Exception]:
        return ConnectionError

    def acquire_entry(self, *args: object, **kwargs: object) -> bool:
        Broken.calls += 1
        raise ConnectionError("down")

    def get_moving_window(self, *args: object, **kwargs: object) -> tuple[float, int]:
        Broken.calls += 1
        raise ConnectionError("down")


def test_a_failed_storage_is_set_aside_and_counting_goes_on_in_memory(monkeypatch, caplog) -> None:
    clock = Clock()
    throttle = Throttle("memory://", clock=clock)
    throttle._strategy()  # make the shared strategy, then break its storage
    assert throttle._shared is not None
    monkeypatch.setattr(throttle._shared, "storage", Broken())
    Broken.calls = 0
    assert throttle.blocked(windows()) is None  # no 500: counted here meanwhile
    for _ in range(3):
        throttle.failed(windows())
    assert throttle.blocked(windows()) is not None, "the limit still holds, in this process"
    assert Broken.calls == 1, "tried once, then left alone"
    assert "unavailable" in caplog.text
    clock.now += RETRY_AFTER + 1
    throttle.blocked(windows())
    assert Broken.calls == 2, "tried again after a while"
