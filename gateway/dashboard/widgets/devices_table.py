"""The devices table: one row per device, updated in place by row key (never rebuilt per update).

With 10,000 devices an update touches only the rows of the devices that changed
(``update_cell``/``add_row``); the "last seen" ages, which move with the clock, are refreshed
for the rows on screen only. Cells are :class:`Cell` objects: Rich text plus a sort key, so
``DataTable.sort`` orders by value (numbers as numbers, missing values last) rather than text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

from gateway.dashboard import _format as fmt
from gateway.dashboard._model import DeviceState, Window
from gateway.dashboard._view import View

_MISSING: tuple[Any, ...] = (1,)


@dataclass(frozen=True, slots=True, eq=False)
class Cell:
    """A table cell: what is shown and what it sorts by."""

    text: Text
    key: tuple[Any, ...]

    def __rich__(self) -> Text:
        return self.text

    def __lt__(self, other: Cell) -> bool:
        return self.key < other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text.plain


def _value_cell(value: float | None, style: str = "") -> Cell:
    if value is None:
        return Cell(Text("-", style="dim", justify="right"), _MISSING)
    return Cell(Text(fmt.number(value), style=style, justify="right"), (0, value))


def _text_cell(text: str, style: str = "") -> Cell:
    return Cell(Text(text, style=style, overflow="ellipsis", no_wrap=True), (0, text))


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    help: str


COLUMNS: tuple[Column, ...] = (
    Column("device", "Device", 18, "device id"),
    Column("alerts", "Alerts", 6, "active alerts"),
    Column("sensors", "Sensors", 16, "sensor names"),
    Column("latest", "Latest", 20, "newest value and its sensor"),
    Column("seen", "Seen", 8, "time since the newest reading; yellow when stale"),
    Column("window", "Window", 12, "open window of that sensor: start/size"),
    Column("count", "N", 5, "readings in the open window"),
    Column("mean", "Mean", 8, "open window mean"),
    Column("min", "Min", 8, "open window min"),
    Column("max", "Max", 8, "open window max"),
    Column("lag", "WM lag", 7, "gateway clock minus the slowest sensor's watermark"),
)
SORTABLE = tuple(column.key for column in COLUMNS)
_LABELS = {column.key: column.label for column in COLUMNS}


def seen_cell(device: DeviceState, view: View) -> Cell:
    last = device.last_seen
    if last is None:
        return Cell(Text("never", style="dim", justify="right"), _MISSING)
    age = view.now() - last
    if age > 10 * view.stale_after_ms:
        style, mark = "bold red", "⚠"
    elif age > view.stale_after_ms:
        style, mark = "bold yellow", "⚠"
    else:
        style, mark = "", ""
    text = f"{mark}{fmt.duration_ms(age)}"
    return Cell(Text(text, style=style, justify="right"), (0, -last))


def _alerts_cell(device: DeviceState, _view: View) -> Cell:
    alerts = device.active_alerts
    text = Text(
        str(alerts) if alerts else "·", style="bold red" if alerts else "dim", justify="right"
    )
    return Cell(text, (0, -alerts))


def _latest_cell(device: DeviceState, _view: View) -> Cell:
    latest = device.latest
    text = Text.assemble(
        (fmt.number(latest.value) if latest else "-", "bold"),
        (f" {latest.name}" if latest else "", "dim"),
        overflow="ellipsis",
        no_wrap=True,
    )
    return Cell(text, (0, latest.value) if latest and latest.value is not None else _MISSING)


def _open_window(device: DeviceState) -> Window | None:
    latest = device.latest
    return latest.open_window if latest else None


def _window_cell(device: DeviceState, view: View) -> Cell:
    window = _open_window(device)
    if window is None:
        return Cell(Text("-", style="dim"), _MISSING)
    size = fmt.duration_ms(window.end - window.start)
    return Cell(Text(f"{fmt.clock(window.start, view.tz)}/{size}"), (0, window.start))


def _count_cell(device: DeviceState, _view: View) -> Cell:
    window = _open_window(device)
    return _value_cell(float(window.count) if window and window.count is not None else None)


def _lag_cell(device: DeviceState, view: View) -> Cell:
    lag = device.watermark_lag
    if lag is None:
        return Cell(Text("-", style="dim", justify="right"), _MISSING)
    style = "yellow" if lag > view.stale_after_ms else ""
    return Cell(Text(fmt.duration_ms(lag), style=style, justify="right"), (0, lag))


def _device_cell(device: DeviceState, _view: View) -> Cell:
    return _text_cell(device.device, "bold" if device.active_alerts else "")


def _sensors_cell(device: DeviceState, _view: View) -> Cell:
    return _text_cell(",".join(sorted(device.sensors)) or "-")


def _stat_cell(stat: str) -> Callable[[DeviceState, View], Cell]:
    def make(device: DeviceState, _view: View) -> Cell:
        window = _open_window(device)
        return _value_cell(getattr(window, stat) if window else None)

    return make


#: How each column's cell is made from a device, by column key.
CELL_MAKERS: dict[str, Callable[[DeviceState, View], Cell]] = {
    "device": _device_cell,
    "alerts": _alerts_cell,
    "sensors": _sensors_cell,
    "latest": _latest_cell,
    "seen": seen_cell,
    "window": _window_cell,
    "count": _count_cell,
    "mean": _stat_cell("mean"),
    "min": _stat_cell("min"),
    "max": _stat_cell("max"),
    "lag": _lag_cell,
}


def row_cells(device: DeviceState, view: View) -> dict[str, Cell]:
    """The cells of a device's row as they are now, by column key."""
    return {key: make(device, view) for key, make in CELL_MAKERS.items()}


class LiveCell:
    """A cell that draws its device's current state whenever the table renders it.

    Updating a device therefore costs nothing per cell: the table re-renders only the rows
    on screen, and only rows on screen are told they changed (``update_cell``). Sorting asks
    each cell for its :meth:`sort_key` once.
    """

    __slots__ = ("column", "device", "view")

    def __init__(self, column: str, device: DeviceState, view: View) -> None:
        self.column = column
        self.device = device
        self.view = view

    def current(self) -> Cell:
        return CELL_MAKERS[self.column](self.device, self.view)

    def sort_key(self) -> tuple[Any, ...]:
        return self.current().key

    def __rich_console__(self, _console: Console, _options: ConsoleOptions) -> RenderResult:
        yield self.current().text

    def __rich_measure__(self, _console: Console, _options: ConsoleOptions) -> Measurement:
        # Columns have fixed widths: adding 10,000 rows need not measure 110,000 texts.
        return Measurement(1, 1)

    def __str__(self) -> str:
        return self.current().text.plain


def live_row(device: DeviceState, view: View) -> list[LiveCell]:
    return [LiveCell(column.key, device, view) for column in COLUMNS]


def _sort_key(cells: LiveCell | tuple[LiveCell, ...]) -> tuple[Any, ...]:
    if isinstance(cells, LiveCell):
        return cells.sort_key()
    return tuple(cell.sort_key() for cell in cells)


class DevicesTable(DataTable[LiveCell]):
    """All devices (or those matching the filter), kept sorted by one column."""

    DEFAULT_CSS = """
    DevicesTable {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
    }
    DevicesTable:focus { border: round $primary; }
    """

    def __init__(self, view: View, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._view = view
        self.filter_text = ""
        self.sort_column = "device"
        self.sort_reverse = False
        self._needs_sort = False

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column.label, width=column.width, key=column.key)
        self._retitle()

    # --- what is shown --------------------------------------------------------------------

    def matches(self, device: DeviceState) -> bool:
        needle = self.filter_text.lower()
        if not needle:
            return True
        return needle in device.device.lower() or any(
            needle in name.lower() for name in device.sensors
        )

    def upsert(self, names: Iterable[str]) -> None:
        """Bring the rows of these devices up to date: add new ones, redraw those on screen."""
        devices = self._view.model.devices
        first, last = self._visible_rows()
        added = redrawn = offscreen = False
        for name in names:
            device = devices.get(name)
            if device is None or not self.matches(device):
                continue
            key = RowKey(name)
            if key not in self.rows:
                self.add_row(*live_row(device, self._view), key=name)
                added = True
            elif first <= self.get_row_index(key) < last:
                for column in COLUMNS:
                    self.update_cell(key, column.key, LiveCell(column.key, device, self._view))
                redrawn = True
            else:
                offscreen = True
        if offscreen and not redrawn and not added and last > first:
            # Rows drawn earlier may be cached: tell the table its content changed.
            row = self.coordinate_to_cell_key(Coordinate(first, 0)).row_key
            device = devices.get(str(row.value))
            if device is not None:
                self.update_cell(row, "device", LiveCell("device", device, self._view))
        if added or self.sort_column != "device":
            self._needs_sort = True
        if added:
            self.apply_sort()  # new rows go to their place at once; value changes wait for tick
        self._retitle()

    def _visible_rows(self) -> tuple[int, int]:
        first = max(0, int(self.scroll_y))
        return first, min(self.row_count, first + max(1, self.size.height))

    def refresh_ages(self) -> None:
        """Redraw the clock-dependent cells of the rows on screen."""
        devices = self._view.model.devices
        first, last = self._visible_rows()
        for index in range(first, last):
            try:
                key = self.coordinate_to_cell_key(Coordinate(index, 0)).row_key
            except CellDoesNotExist:
                break
            device = devices.get(str(key.value))
            if device is not None:
                self.update_cell(key, "seen", LiveCell("seen", device, self._view))

    def set_filter(self, text: str) -> None:
        """Show only devices whose id or a sensor name contains ``text`` (case-insensitive)."""
        if text == self.filter_text:
            return
        self.filter_text = text
        self.rebuild()

    def rebuild(self) -> None:
        """Refill from the model: only on user actions (filtering), never per update."""
        keep = self.cursor_device
        self.clear()
        view = self._view
        for device in view.model.devices.values():
            if self.matches(device):
                self.add_row(*live_row(device, view), key=device.device)
        self._needs_sort = True
        self.apply_sort()
        self._move_to(keep)

    # --- sorting ----------------------------------------------------------------------------

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in SORTABLE:
            msg = f"cannot sort by {column!r}: columns are {', '.join(SORTABLE)}"
            raise ValueError(msg)
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._needs_sort = True
        self.apply_sort()

    def cycle_sort(self) -> None:
        index = SORTABLE.index(self.sort_column)
        self.sort_by(SORTABLE[(index + 1) % len(SORTABLE)], reverse=False)

    def apply_sort(self) -> None:
        """Re-sort if rows were added or sort values changed; keeps the cursor on its device."""
        if not self._needs_sort:
            return
        self._needs_sort = False
        keep = self.cursor_device
        columns = ("device",) if self.sort_column == "device" else (self.sort_column, "device")
        self.sort(*columns, key=_sort_key, reverse=self.sort_reverse)
        self._move_to(keep)
        self._retitle()

    # --- cursor -----------------------------------------------------------------------------

    @property
    def cursor_device(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return None if key.value is None else str(key.value)

    def _move_to(self, device: str | None) -> None:
        if device is not None and RowKey(device) in self.rows:
            self.move_cursor(row=self.get_row_index(device), animate=False)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def _retitle(self) -> None:
        total = len(self._view.model.devices)
        shown = self.row_count
        arrow = "↓" if self.sort_reverse else "↑"
        parts = [f"Devices {shown:,}" if shown == total else f"Devices {shown:,} of {total:,}"]
        if self.filter_text:
            parts.append(f"filter '{self.filter_text}'")
        parts.append(f"sort {_LABELS[self.sort_column]} {arrow}")
        self.border_title = " · ".join(parts)
