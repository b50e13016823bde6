"""Keys and what the columns mean (``?``)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gateway.dashboard.widgets.devices_table import COLUMNS

KEYS: tuple[tuple[str, str], ...] = (
    ("?", "this help"),
    ("q", "quit"),
    ("tab / shift+tab", "move between the devices table and the alerts"),
    ("↑ ↓ pgup pgdn", "move in a table"),
    ("ctrl+home / ctrl+end", "first / last row"),
    ("enter", "device detail (on the devices table)"),
    ("escape", "back / clear the filter"),
    ("/", "filter devices by id or sensor name"),
    ("s", "sort by the next column (or click a column header)"),
    ("r", "reverse the sort"),
    ("a", "acknowledge the highlighted alert (on the alerts table)"),
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row(Text("Keys", style="bold underline"), "")
    for key, what in KEYS:
        table.add_row(key, what)
    table.add_row("", "")
    table.add_row(Text("Devices columns", style="bold underline"), "")
    for column in COLUMNS:
        table.add_row(column.label, column.help)
    return table


class HelpScreen(ModalScreen[None]):
    """Dismissed by escape, ``?`` or ``q``."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen Static { height: auto; }
    """

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "edge-gateway dashboard: help"
        box.border_subtitle = "escape closes"
        with box:
            yield Static(help_table())

    def action_close(self) -> None:
        self.dismiss()
