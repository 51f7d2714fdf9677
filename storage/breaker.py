"""A circuit breaker for a backend the application can do without for a while (Redis)."""

from __future__ import annotations

import logging
from collections.abc import Callable


class CircuitBreaker:
    """After a failure, skip the backend for `retry_after_seconds` instead of waiting on it at
    every call; logs once when it goes down (`down`, formatted with the error) and once when it
    answers again (`back`)."""

    def __init__(
        self,
        retry_after_seconds: float,
        clock: Callable[[], float],
        *,
        logger: logging.Logger,
        down: str,
        back: str,
    ) -> None:
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._logger = logger
        self._down = down
        self._back = back
        self._closed_until = 0.0
        self.is_down = False

    def allows_call(self) -> bool:
        return self._clock() >= self._closed_until

    def record_failure(self, error: BaseException) -> None:
        self._closed_until = self._clock() + self._retry_after
        if not self.is_down:
            self.is_down = True
            self._logger.warning(self._down, error)

    def record_success(self) -> None:
        if self.is_down:
            self.is_down = False
            self._logger.info(self._back)
