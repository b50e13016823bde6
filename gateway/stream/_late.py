"""Late-data strategies: what happens to an event that is late for its window(s).

An event is late for a window once that window has fired, i.e. once the key's watermark
``W >= end`` at the event's arrival. An event with ``ts < W`` whose window is still open
(``end > W``) is not late: it simply joins the window.

- ``Drop()``: discarded and counted (this is ``AllowedLateness(0)``).
- ``AllowedLateness(L)``: a fired window keeps its state until ``W >= end + L``; a late event
  in that span updates it and re-fires it with ``revision`` + 1. The event is discarded (and
  counted) only when every window it belongs to has ``end + L <= W``.
- ``SideOutput()``: the event goes to the side output (``out.late``); the windows are untouched.
- ``RecomputeWindows(R)``: like ``AllowedLateness(R)``, but each window keeps its raw values
  until ``W >= end + R`` and every result is recomputed from scratch in timestamp order (for
  aggregators without ``merge``, or to make floating-point sums independent of arrival
  order). Costs O(events) memory per window.

An event belonging to several windows (sliding) of which only some have fired joins the open
ones; it is dropped or side-output only when none of its windows can take it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._time import Duration, to_ms


@dataclass(frozen=True, slots=True)
class LateStrategy:
    """Base of the late-data strategies (configuration objects; frozen).

    Attributes:
        lateness: how long (ms) after its end a fired window still accepts late events.
    """

    lateness: int


@dataclass(frozen=True, slots=True, init=False)
class Drop(LateStrategy):
    """Discard and count events late for all their windows (``AllowedLateness(0)``)."""

    def __init__(self) -> None:
        object.__setattr__(self, "lateness", 0)


@dataclass(frozen=True, slots=True, init=False)
class AllowedLateness(LateStrategy):
    """Keep fired windows until ``W >= end + max_lateness``; late events re-fire them.

    Args:
        max_lateness: ``int`` ms or ``timedelta``, >= 0.
    """

    def __init__(self, max_lateness: Duration) -> None:
        object.__setattr__(self, "lateness", to_ms(max_lateness, "AllowedLateness.max_lateness"))

    @property
    def max_lateness(self) -> int:
        """The allowed lateness in ms."""
        return self.lateness


@dataclass(frozen=True, slots=True, init=False)
class SideOutput(LateStrategy):
    """Route events late for all their windows to the side output; windows are untouched."""

    def __init__(self) -> None:
        object.__setattr__(self, "lateness", 0)


@dataclass(frozen=True, slots=True, init=False)
class RecomputeWindows(LateStrategy):
    """Keep windows' raw values for ``retention`` after their end; late events recompute them.

    Args:
        retention: ``int`` ms or ``timedelta``, >= 0.
    """

    def __init__(self, retention: Duration) -> None:
        object.__setattr__(self, "lateness", to_ms(retention, "RecomputeWindows.retention"))

    @property
    def retention(self) -> int:
        """The retention in ms."""
        return self.lateness
