"""Throttling in moving windows (``limits``): failed sign-ins per identifier and per address,
link requests per identifier and per address, live password checks per address.

On ``limits`` (the library under Flask-Limiter) directly, not through Flask-Limiter: its work per
request (the limit strings parsed again, scopes, meta limits, a request-limit object per limit)
cost 0.2 ms of a sign-in's 1.6 ms of CPU (measured in ``bench.inprocess``), where the two windows
themselves take 20 µs, and importing it 3.7 MB of every worker's memory. Plain Python: the web
glue (:mod:`sso.web.security`) supplies the keys and the answers.

- :meth:`Throttle.blocked`: whether every window has room (a sign-in, before the password is
  checked); :meth:`Throttle.failed` then counts a refused one (a sign-in that succeeds counts
  nothing).
- :meth:`Throttle.hit`: count a request in every window, unless one is full (link requests).
- Storage: ``memory://`` (one process) or Redis (shared by the nodes). A storage that fails is
  set aside for :data:`RETRY_AFTER` seconds and the process counts in its own memory meanwhile:
  requests go on, never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

#: A window operation: ``MovingWindowRateLimiter.test`` or ``.hit`` (strategy, item, identifiers).
Step = Callable[..., bool]

#: Seconds a failed storage is left alone before it is tried again.
RETRY_AFTER = 30.0
#: First part of every key (the storage may be shared with other programs).
PREFIX = "sso"


@dataclass(frozen=True)
class Window:
    """One counted key: its limits, and the key (``None``: not counted, e.g. an exempt address)."""

    scope: str
    limits: Sequence[RateLimitItem]
    key: str | None


class Throttle:
    """The windows of one server.

    :param storage_uri: ``memory://`` or a Redis URL (``limits`` storage URI).
    :param options: passed to the storage (e.g. Redis socket timeouts).
    :param clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        storage_uri: str,
        options: Mapping[str, float | str | bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uri = storage_uri
        self._options = dict(options or {})
        self._clock = clock
        self._shared: MovingWindowRateLimiter | None = None
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._down_until = 0.0

    @staticmethod
    def limits(text: str) -> tuple[RateLimitItem, ...]:
        """Parse ``"5 per 5 minutes;20 per day"`` (once, when the settings are read).

        :raises ValueError: not a limit.
        """
        return tuple(parse_many(text))

    def _strategy(self) -> MovingWindowRateLimiter:
        if self._down_until and self._clock() < self._down_until:
            return self._local
        if self._shared is None:
            self._shared = MovingWindowRateLimiter(storage_from_string(self._uri, **self._options))
        return self._shared

    def _failed_storage(self, error: Exception) -> None:
        if not self._down_until or self._clock() >= self._down_until:
            logger.warning(
                "throttling storage unavailable (%s): counting in this process", type(error).__name__
            )
        self._down_until = self._clock() + RETRY_AFTER

    def _errors(self, strategy: MovingWindowRateLimiter) -> tuple[type[Exception], ...]:
        errors = strategy.storage.base_exceptions
        return errors if isinstance(errors, tuple) else (errors,)

    def _walk(self, windows: Sequence[Window], step: Step, stop: bool) -> float | None:
        """``step`` every counted window's limits; with ``stop``, at the first that says no, when
        that window frees up (POSIX seconds)."""
        strategy = self._strategy()
        try:
            for window in windows:
                if window.key is None:
                    continue
                for item in window.limits:
                    if not step(strategy, item, PREFIX, window.scope, window.key) and stop:
                        return strategy.get_window_stats(item, PREFIX, window.scope, window.key).reset_time
        except self._errors(strategy) as error:
            if strategy is self._local:
                raise
            self._failed_storage(error)
            return self._walk(windows, step, stop)
        return None

    def blocked(self, windows: Sequence[Window]) -> float | None:
        """When the first full window frees up (POSIX seconds), or ``None`` if all have room."""
        return self._walk(windows, MovingWindowRateLimiter.test, stop=True)

    def hit(self, windows: Sequence[Window]) -> float | None:
        """Count a request in every window; if one is full, when it frees up (POSIX seconds), and
        the request is not counted there."""
        return self._walk(windows, MovingWindowRateLimiter.hit, stop=True)

    def failed(self, windows: Sequence[Window]) -> None:
        """Count a refused sign-in in every window."""
        self._walk(windows, MovingWindowRateLimiter.hit, stop=False)
