"""The dashboard app: owns the model, the source and the refresh timer; screens draw from it.

Data path::

    paho thread ──put──► Inbox (coalesced) ──wake: call_soon_threadsafe──► MessagesPending
                                                                              │
    screens ◄──apply(changes)── model.apply_many(inbox.drain()) ◄── flush, ≤ 1/flush_interval

Connection changes travel the same way as :class:`ConnectionChanged` messages. A broker that
refuses the credentials ends the app with exit code 2 and one line saying so; a broker that
is down is retried for as long as the app runs, with a banner saying so.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

import orjson
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer

from gateway.dashboard._model import DEFAULT_MAX_DEVICES, Changes, DashboardModel
from gateway.dashboard._screen import DashboardScreen
from gateway.dashboard._source import Connection, ConnectionState, Inbox, Source
from gateway.dashboard._view import DEFAULT_STALE_AFTER_MS, View
from gateway.dashboard.help_screen import HelpScreen
from gateway.dashboard.main_screen import MainScreen
from gateway.dashboard.messages import AckRequested, ConnectionChanged, MessagesPending

#: At most this many screen refreshes per second from incoming data.
DEFAULT_FLUSH_INTERVAL_S = 0.25
EXIT_REFUSED = 2


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def local_tz() -> tzinfo:
    found = datetime.now(UTC).astimezone().tzinfo
    return found if found is not None else UTC


class _Bridge:
    """The :class:`Sink` a source delivers into, from paho's thread."""

    def __init__(self, app: DashboardApp, loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._event_loop = loop

    def put(self, topic: str, payload: bytes) -> None:
        self._app.inbox.put(topic, payload)

    def connection(self, connection: Connection) -> None:
        self._event_loop.call_soon_threadsafe(self._app.post_message, ConnectionChanged(connection))


class DashboardApp(App[int]):
    """A live view of one gateway's MQTT outputs."""

    CSS_PATH = "app.tcss"
    TITLE = "edge-gateway dashboard"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        *,
        prefix: str,
        gateway_id: str,
        source: Source | None,
        now: Callable[[], int] = wall_clock_ms,
        tz: tzinfo | None = None,
        ack_by: str | None = None,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        stale_after_ms: int = DEFAULT_STALE_AFTER_MS,
        max_devices: int = DEFAULT_MAX_DEVICES,
        cursor_blink: bool = True,
    ) -> None:
        """Args:
        prefix: the gateway's MQTT prefix, ``edge-gateway/<gateway_id>`` by default.
        gateway_id: the gateway to watch.
        source: where messages come from (:class:`MqttSource`); None shows nothing live.
        now: the clock, epoch milliseconds (tests fix it).
        tz: time zone for clock times; the machine's by default.
        ack_by: who acknowledges, in ``P/commands``; ``dashboard@<hostname>`` by default.
        flush_interval_s: minimum time between two refreshes from incoming data.
        stale_after_ms: a device not heard from for this long is shown stale.
        max_devices: devices beyond this many are counted, not shown.
        cursor_blink: off for snapshot tests.
        """
        super().__init__()
        self.model = DashboardModel(prefix, gateway_id, max_devices=max_devices)
        self.view = View(
            model=self.model,
            now=now,
            tz=tz if tz is not None else local_tz(),
            broker=source.description if source is not None else "no broker",
            stale_after_ms=stale_after_ms,
            cursor_blink=cursor_blink,
        )
        self.source = source
        self.ack_by = ack_by or f"dashboard@{socket.gethostname()}"
        self.commands_topic = f"{self.model.prefix}/commands"
        self.flush_interval_s = flush_interval_s
        self.inbox = Inbox(self._coalesces, self._wake)
        self.flushes = 0
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._flush_timer: Timer | None = None
        self._last_flush = 0.0
        self._windows_prefix = f"{self.model.prefix}/windows/"
        self._alerts_topic = f"{self.model.prefix}/alerts"

    # --- lifetime ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self.push_screen(MainScreen(self.view))
        self.set_interval(1.0, self._tick, name="dashboard.tick")
        if self.source is not None:
            self.source.start(_Bridge(self, self._event_loop), self.model.subscriptions())

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.stop()

    # --- incoming data ----------------------------------------------------------------------

    def _coalesces(self, topic: str) -> bool:
        """Only the newest status, device state or active list matters; alerts and windows
        are each kept (every alert change and every window point is shown)."""
        return topic != self._alerts_topic and not topic.startswith(self._windows_prefix)

    def _wake(self) -> None:
        loop = self._event_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.post_message, MessagesPending())

    def feed(self, topic: str, payload: bytes) -> None:
        """Take one message as if the source had delivered it (replays and tests)."""
        self.inbox.put(topic, payload)

    def on_messages_pending(self, _message: MessagesPending) -> None:
        if self._flush_timer is not None:
            return
        # A timer needs a positive delay; 10 ms still lets a burst gather before the first flush.
        wait = max(0.01, self._last_flush + self.flush_interval_s - time.monotonic())
        self._flush_timer = self.set_timer(wait, self.flush, name="dashboard.flush")

    def flush(self) -> None:
        """Apply everything pending to the model and redraw what changed."""
        self._flush_timer = None
        self._last_flush = time.monotonic()
        messages = self.inbox.drain()
        self.view.inbox_dropped = self.inbox.dropped
        if not messages:
            return
        changes = self.model.apply_many(messages, self.view.now())
        self.flushes += 1
        self._redraw(changes)

    def _redraw(self, changes: Changes) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                screen.apply(changes)

    def _tick(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                screen.tick()

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        connection = message.connection
        self.view.connection = connection
        if connection.state is ConnectionState.REFUSED:
            self.exit(EXIT_REFUSED, return_code=EXIT_REFUSED, message=connection.detail)
            return
        # Messages put before this change (the retained ones, for SYNCED) are applied first,
        # so the banner never judges "nothing seen" on a state the inbox already corrects.
        if self._flush_timer is not None:
            self._flush_timer.stop()
        self.flush()
        self._redraw(Changes(status=True))

    # --- actions ----------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_ack_requested(self, message: AckRequested) -> None:
        alert = self.model.alerts.active.get(message.alert_id)
        if alert is None:
            return
        payload = orjson.dumps({"command": "ack", "alert_id": alert.alert_id, "by": self.ack_by})
        if self.source is None or not self.source.publish(self.commands_topic, payload):
            self.notify(
                f"Not connected to the broker at {self.view.broker}: acknowledgement not sent.",
                severity="error",
            )
            return
        self.model.alerts.ack_pending.add(alert.alert_id)
        self.notify(f"Acknowledgement of {alert.detector} on {alert.device} sent.")
        self._redraw(Changes(alerts=True))
