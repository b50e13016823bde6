"""Window assigners: which event-time windows an event belongs to.

All windows are half-open, ``[start, end)``: ``start`` is inclusive, ``end`` exclusive. An event
with timestamp ``ts`` belongs to a window when ``start <= ts < end``.

Tumbling and sliding windows are aligned to the epoch (plus an optional ``offset``)::

    TumblingWindow(10)        [0,10)    [10,20)    [20,30)
    ts:                       0 ... 9   10 ... 19  20 ... 29

    SlidingWindow(10, 5)      [0,10)
                                   [5,15)
                                        [10,20)
    ts 7 belongs to [0,10) and [5,15)

Session windows are not assigned but merged: one event opens ``[ts, ts + gap)``; sessions whose
intervals overlap merge into ``[first, last + gap)``; two events exactly ``gap`` apart are in
separate sessions (the intervals only touch)::

    SessionWindow(5)   events at 0, 3, 8, 20
                       [0,5) + [3,8) overlap -> [0,8); [8,13) touches [0,8) -> separate
                       result: [0,8) [8,13) [20,25)

Custom assigners subclass :class:`WindowAssigner` and implement :meth:`~WindowAssigner.assign`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ._time import Duration, to_ms


class WindowAssigner(ABC):
    """Base of non-merging window assigners (the pluggable part).

    Subclasses are frozen dataclasses (configuration objects) and implement :meth:`assign`.
    The operator keeps one accumulator per ``(start, end)`` it returns; a window fires once the
    key's watermark reaches ``end``.
    """

    __slots__ = ()

    @abstractmethod
    def assign(self, timestamp: int) -> list[tuple[int, int]]:
        """Return the half-open windows ``(start, end)`` containing ``timestamp``.

        Each must satisfy ``start <= timestamp < end``; the order does not matter.
        """


@dataclass(frozen=True, slots=True, init=False)
class TumblingWindow(WindowAssigner):
    """Fixed-size, non-overlapping windows ``[start, start + size)``, epoch-aligned.

    ``start = ts - (ts - offset) % size``: windows start at every multiple of ``size``
    shifted by ``offset``. Each event belongs to exactly one window.

    Args:
        size: window length (``int`` ms or ``timedelta``), > 0.
        offset: shift of the alignment, ``0 <= offset < size``.
    """

    size: int
    offset: int

    def __init__(self, size: Duration, offset: Duration = 0) -> None:
        size = to_ms(size, "TumblingWindow.size", allow_zero=False)
        offset = to_ms(offset, "TumblingWindow.offset")
        if offset >= size:
            msg = f"TumblingWindow.offset must be < size ({size}); got {offset}"
            raise ValueError(msg)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "offset", offset)

    def assign(self, timestamp: int) -> list[tuple[int, int]]:
        """Return the single window containing ``timestamp``."""
        size = self.size
        start = timestamp - (timestamp - self.offset) % size
        return [(start, start + size)]


@dataclass(frozen=True, slots=True, init=False)
class SlidingWindow(WindowAssigner):
    """Windows of ``size`` starting at every multiple of ``slide`` (epoch-aligned, + ``offset``).

    An event belongs to every window whose start is a multiple of ``slide`` (plus ``offset``) in
    ``(ts - size, ts]``: ``size / slide`` windows when ``slide`` divides ``size``. With
    ``slide > size`` windows have gaps, and events falling in a gap belong to no window.

    Args:
        size: window length, > 0.
        slide: distance between window starts, > 0.
        offset: shift of the alignment, ``0 <= offset < slide``.
    """

    size: int
    slide: int
    offset: int

    def __init__(self, size: Duration, slide: Duration, offset: Duration = 0) -> None:
        size = to_ms(size, "SlidingWindow.size", allow_zero=False)
        slide = to_ms(slide, "SlidingWindow.slide", allow_zero=False)
        offset = to_ms(offset, "SlidingWindow.offset")
        if offset >= slide:
            msg = f"SlidingWindow.offset must be < slide ({slide}); got {offset}"
            raise ValueError(msg)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "slide", slide)
        object.__setattr__(self, "offset", offset)

    def assign(self, timestamp: int) -> list[tuple[int, int]]:
        """Return the windows containing ``timestamp``, newest start first."""
        size = self.size
        slide = self.slide
        start = timestamp - (timestamp - self.offset) % slide
        out: list[tuple[int, int]] = []
        while start > timestamp - size:
            out.append((start, start + size))
            start -= slide
        return out


@dataclass(frozen=True, slots=True, init=False)
class SessionWindow:
    """Merging windows separated by at least ``gap`` of event time without events.

    One event opens ``[ts, ts + gap)``; sessions whose intervals overlap merge (their
    accumulators are combined with the aggregator's ``merge``) into ``[first, last + gap)``.
    Two events exactly ``gap`` apart are separate sessions.

    Args:
        gap: inactivity gap, > 0.
    """

    gap: int

    def __init__(self, gap: Duration) -> None:
        object.__setattr__(self, "gap", to_ms(gap, "SessionWindow.gap", allow_zero=False))


WindowSpec = WindowAssigner | SessionWindow
"""Anything :class:`WindowOperator` accepts as ``window``."""
