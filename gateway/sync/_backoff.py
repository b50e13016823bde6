"""Backoff with jitter and log-once-per-transition, shared by every drain loop."""

from __future__ import annotations

import logging
import random

__all__ = ["Backoff", "Transitions"]


class Backoff:
    """Exponential backoff with full jitter, capped at ``cap_s``; :meth:`reset` on success."""

    def __init__(self, first_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if first_s <= 0 or cap_s < first_s:
            msg = f"backoff needs 0 < first_s <= cap_s, got {first_s}, {cap_s}"
            raise ValueError(msg)
        self._first = first_s
        self._cap = cap_s
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Failures since the last success."""
        return self._attempt

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (grows with each call until :meth:`reset`)."""
        ceiling = min(self._cap, self._first * 2 ** min(self._attempt, 30))
        self._attempt += 1
        # "Equal jitter": never less than half the ceiling, so a dead sink is not hammered.
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self._attempt = 0


class Transitions:
    """Logs a sink going down once and coming back once, whatever happens in between."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self.what = what
        self.up: bool | None = None  # None: not tried yet
        self.last_error: str | None = None

    def failed(self, error: BaseException, backlog_rows: int) -> None:
        self.last_error = str(error)
        if self.up is not False:
            self._log.warning(
                "%s: %s; %d entries wait in the outbox and are retried with backoff",
                self.what,
                error,
                backlog_rows,
            )
            self._log.debug("%s: failure detail", self.what, exc_info=error)
        self.up = False

    def succeeded(self) -> None:
        if self.up is False:
            self._log.info("%s: delivering again after: %s", self.what, self.last_error)
        self.up = True
