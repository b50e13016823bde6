"""The read-only view of the app's state that screens and widgets are handed (attributes down)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from gateway.dashboard._model import DashboardModel
from gateway.dashboard._source import Connection, ConnectionState

DEFAULT_STALE_AFTER_MS = 30_000
DEFAULT_STATUS_STALE_AFTER_MS = 20_000


@dataclass(slots=True)
class View:
    """Everything a screen needs to draw: the model, the clock and the broker link."""

    model: DashboardModel
    now: Callable[[], int]
    tz: tzinfo
    broker: str
    stale_after_ms: int = DEFAULT_STALE_AFTER_MS
    status_stale_after_ms: int = DEFAULT_STATUS_STALE_AFTER_MS
    connection: Connection = field(
        default_factory=lambda: Connection(ConnectionState.CONNECTING, "starting")
    )
    #: Messages the inbox dropped because the screen could not keep up.
    inbox_dropped: int = 0
    #: Off in snapshot tests, so every frame is the same.
    cursor_blink: bool = True
