"""What every dashboard screen does when data arrives or the clock ticks."""

from __future__ import annotations

from textual.screen import Screen

from gateway.dashboard._model import Changes


class DashboardScreen(Screen[None]):
    """A screen the app keeps current: :meth:`apply` after each batch, :meth:`tick` each second."""

    def apply(self, changes: Changes) -> None:
        """Redraw what ``changes`` touched."""

    def tick(self) -> None:
        """Redraw what moves with the clock (ages, the header clock)."""
