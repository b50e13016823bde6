"""The main screen: header, what-is-wrong banner, devices table, filter line and alerts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input

from gateway.dashboard._model import Changes
from gateway.dashboard._screen import DashboardScreen
from gateway.dashboard._view import View
from gateway.dashboard.device_screen import DeviceScreen
from gateway.dashboard.widgets import AlertsTable, Banner, DevicesTable, GatewayHeader

#: Wait this long after the last keystroke before refiltering (a refill touches every row).
FILTER_DEBOUNCE_S = 0.15


class MainScreen(DashboardScreen):
    """Everything at a glance; Enter on a device opens its detail screen."""

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, view: View) -> None:
        super().__init__()
        self._view = view
        self._filter_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield GatewayHeader(self._view, id="header")
        yield Banner(self._view, id="banner")
        yield DevicesTable(self._view, id="devices")
        filter_input = Input(
            placeholder="filter: part of a device id or sensor name (Enter keeps it, Esc clears)",
            id="filter",
        )
        filter_input.cursor_blink = self._view.cursor_blink
        yield filter_input
        yield AlertsTable(self._view, id="alerts")
        yield Footer()

    @property
    def devices(self) -> DevicesTable:
        return self.query_one("#devices", DevicesTable)

    @property
    def alerts(self) -> AlertsTable:
        return self.query_one("#alerts", AlertsTable)

    def on_mount(self) -> None:
        self.devices.focus()

    def apply(self, changes: Changes) -> None:
        self.query_one(GatewayHeader).show()
        self.query_one(Banner).show()
        if changes.devices:
            self.devices.upsert(sorted(changes.devices))  # a set: sorted, so runs repeat
        if changes.alerts:
            self.alerts.show()

    def tick(self) -> None:
        self.query_one(GatewayHeader).show()
        self.query_one(Banner).show()
        self.devices.refresh_ages()
        self.devices.apply_sort()

    # --- devices ---------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is not self.devices or event.row_key.value is None:
            return
        event.stop()
        self.app.push_screen(DeviceScreen(self._view, str(event.row_key.value)))

    def action_sort(self) -> None:
        self.devices.cycle_sort()

    def action_reverse(self) -> None:
        table = self.devices
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)

    # --- filter ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-shown")
        self.devices.set_filter("")
        self.devices.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value.strip()
        self._filter_timer = self.set_timer(
            FILTER_DEBOUNCE_S, lambda: self.devices.set_filter(value)
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value.strip()
        self.devices.set_filter(value)
        if not value:
            event.input.remove_class("-shown")
        self.devices.focus()
