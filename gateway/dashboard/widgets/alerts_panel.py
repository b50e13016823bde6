"""Active alerts (most severe first) above the recent resolved ones; ``a`` acknowledges."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from gateway.dashboard import _format as fmt
from gateway.dashboard._model import Alert, AlertBook
from gateway.dashboard._view import View
from gateway.dashboard.messages import AckRequested

#: Rows of active alerts shown at most (the header counts them all).
MAX_ACTIVE_ROWS = 500
HISTORY_PREFIX = "history:"


def state_text(alert: Alert, book: AlertBook, view: View) -> Text:
    if not alert.active:
        return Text(f"resolved {fmt.clock(alert.resolved_at, view.tz)}".rstrip(" -"), style="dim")
    if alert.acknowledged:
        who = f" by {alert.acknowledged_by}" if alert.acknowledged_by else ""
        return Text(f"✔ acked{who}", style="green")
    if alert.alert_id in book.ack_pending:
        return Text("ack sent…", style="yellow")
    return Text("ACTIVE", style="bold red")


def alert_cells(alert: Alert, book: AlertBook, view: View) -> list[Text]:
    dim = "" if alert.active else "dim"
    return [
        fmt.severity_text(alert.severity) if alert.active else Text(alert.severity.upper(), "dim"),
        Text(fmt.clock(alert.raised_at or alert.event_time, view.tz), style=dim),
        Text(alert.device, style=dim, overflow="ellipsis", no_wrap=True),
        Text(alert.sensor, style=dim, overflow="ellipsis", no_wrap=True),
        Text(alert.detector, style=dim, overflow="ellipsis", no_wrap=True),
        Text(fmt.number(alert.value), style=dim, justify="right"),
        Text("-" if alert.score is None else f"{alert.score:.2f}", style=dim, justify="right"),
        state_text(alert, book, view),
    ]


class AlertsTable(DataTable[Text]):
    """The alerts, redrawn whole when they change (there are few; the device table is not)."""

    DEFAULT_CSS = """
    AlertsTable {
        height: 12;
        border: round $error 50%;
        border-title-color: $text;
    }
    AlertsTable:focus { border: round $error; }
    """

    BINDINGS = [
        Binding("a", "ack", "Ack alert"),
    ]

    def __init__(self, view: View, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._view = view

    def on_mount(self) -> None:
        for label, width in (
            ("Severity", 8),
            ("Raised", 8),
            ("Device", 16),
            ("Sensor", 12),
            ("Detector", 10),
            ("Value", 8),
            ("Score", 5),
            ("State", 22),
        ):
            self.add_column(label, width=width, key=label.lower())
        self.show()

    @property
    def cursor_alert(self) -> str | None:
        """Row key of the highlighted row (history rows carry a prefix)."""
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return None if key.value is None else str(key.value)

    def show(self) -> None:
        book = self._view.model.alerts
        keep = self.cursor_alert
        self.clear()
        active = book.sorted_active()
        for alert in active[:MAX_ACTIVE_ROWS]:
            self.add_row(*alert_cells(alert, book, self._view), key=alert.alert_id)
        for alert in book.history:
            self.add_row(*alert_cells(alert, book, self._view), key=HISTORY_PREFIX + alert.alert_id)
        if keep is not None and RowKey(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
        hidden = len(active) - MAX_ACTIVE_ROWS
        more = f" (+{hidden:,} not listed)" if hidden > 0 else ""
        self.border_title = f"Alerts: {len(active):,} active{more} · {len(book.history)} resolved"

    def action_ack(self) -> None:
        alert_id = self.cursor_alert
        if alert_id is None:
            self.notify("No alert highlighted.", severity="warning")
            return
        alert = self._view.model.alerts.active.get(alert_id)
        if alert is None:
            self.notify("Only an active alert can be acknowledged.", severity="warning")
            return
        if alert.acknowledged:
            self.notify(f"Alert {alert.detector} on {alert.device} is already acknowledged.")
            return
        self.post_message(AckRequested(alert_id))
