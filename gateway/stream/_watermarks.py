"""Watermark strategies: when is event time considered complete?

The watermark ``W`` of a key means "no event with timestamp < W is still expected". It never
moves backwards. A window ``[start, end)`` fires once ``W >= end``.

- :class:`BoundedOutOfOrder` ``(max_delay)``: ``W = max_ts - max_delay`` after every event.
  (Flink subtracts a further 1 ms; this engine follows the gateway contract, without it.)
- :class:`MonotonicAscending`: ``W = max_ts`` (``BoundedOutOfOrder(0)``).
- :class:`Periodic` ``(interval, max_delay=0)``: ``W = max_ts - max_delay`` is published only on
  processing-time ticks at every multiple of ``interval`` (epoch-aligned), i.e. when a call's
  ``now`` crosses a tick.

Every strategy takes an optional ``idle_timeout``: once a key has had no event for
``idle_timeout`` of processing time (the ``now`` passed to ``push``/``advance``), its watermark
moves to the end of its newest open window, so every open window fires.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._time import Duration, to_ms, to_ms_or_none


@dataclass(frozen=True, slots=True)
class WatermarkStrategy:
    """Base of the watermark strategies (configuration objects; frozen).

    Attributes:
        max_delay: how far ``W`` trails the largest timestamp seen, in ms.
        idle_timeout: processing time (ms) without events after which a key's open windows
            fire; ``None`` = idleness is not detected.
    """

    max_delay: int
    idle_timeout: int | None

    @property
    def interval(self) -> int | None:
        """Processing-time interval between watermark updates; ``None`` = after every event."""
        return None


@dataclass(frozen=True, slots=True, init=False)
class BoundedOutOfOrder(WatermarkStrategy):
    """``W = max_ts - max_delay``: events may arrive up to ``max_delay`` out of order.

    Args:
        max_delay: tolerated disorder (``int`` ms or ``timedelta``), >= 0.
        idle_timeout: processing time without events after which the key's open windows fire.
    """

    def __init__(self, max_delay: Duration, idle_timeout: Duration | None = None) -> None:
        object.__setattr__(self, "max_delay", to_ms(max_delay, "BoundedOutOfOrder.max_delay"))
        object.__setattr__(
            self, "idle_timeout", to_ms_or_none(idle_timeout, "BoundedOutOfOrder.idle_timeout")
        )


@dataclass(frozen=True, slots=True, init=False)
class MonotonicAscending(WatermarkStrategy):
    """``W = max_ts``: timestamps are expected in order; anything older is late.

    Args:
        idle_timeout: processing time without events after which the key's open windows fire.
    """

    def __init__(self, idle_timeout: Duration | None = None) -> None:
        object.__setattr__(self, "max_delay", 0)
        object.__setattr__(
            self, "idle_timeout", to_ms_or_none(idle_timeout, "MonotonicAscending.idle_timeout")
        )


@dataclass(frozen=True, slots=True, init=False)
class Periodic(WatermarkStrategy):
    """``W = max_ts - max_delay``, published on processing-time ticks every ``interval``.

    Ticks are at every multiple of ``interval`` of processing time; a ``push``/``advance`` whose
    ``now`` is at or past the key's next tick publishes the watermark computed from the events
    seen *before* that call (the tick happened before the call's event arrived). Without ``now``
    arguments the watermark only moves at :meth:`WindowOperator.finish`.

    Args:
        interval: processing time between watermark updates, > 0.
        max_delay: tolerated disorder, >= 0 (default 0).
        idle_timeout: processing time without events after which the key's open windows fire.
    """

    period: int

    def __init__(
        self, interval: Duration, max_delay: Duration = 0, idle_timeout: Duration | None = None
    ) -> None:
        object.__setattr__(self, "period", to_ms(interval, "Periodic.interval", allow_zero=False))
        object.__setattr__(self, "max_delay", to_ms(max_delay, "Periodic.max_delay"))
        object.__setattr__(
            self, "idle_timeout", to_ms_or_none(idle_timeout, "Periodic.idle_timeout")
        )

    @property
    def interval(self) -> int | None:
        """``interval`` in ms."""
        return self.period
