"""One device in detail: per sensor its windows, watermark, detector scores and late events."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Sparkline, Static

from gateway.dashboard import _format as fmt
from gateway.dashboard._model import Changes, SensorState, Window
from gateway.dashboard._screen import DashboardScreen
from gateway.dashboard._view import View
from gateway.dashboard.widgets import GatewayHeader


def _window_text(label: str, window: Window | None, view: View) -> Text:
    line = Text.assemble((f"{label:<12}", "dim"))
    if window is None:
        line.append("none yet", style="dim")
        return line
    line.append(fmt.span(window.start, window.end, view.tz), style="bold")
    line.append(
        f"  n {fmt.count(window.count)}  mean {fmt.number(window.mean)}"
        f"  min {fmt.number(window.min)}  max {fmt.number(window.max)}"
    )
    if window.revision:
        line.append(f"  revision {window.revision}", style="yellow")
    return line


def _score_bar(score: float) -> Text:
    filled = max(0, min(10, round(score * 10)))
    style = "red" if score >= 0.8 else "yellow" if score >= 0.5 else "green"
    return Text.assemble(("█" * filled, style), ("░" * (10 - filled), "dim"))


def sensor_text(sensor: SensorState, view: View, device_ts: int | None) -> Text:
    """Everything known about one sensor except the sparkline, as lines of text."""
    now = view.now()
    lines: list[Text] = []
    seen = "never" if sensor.last_seen is None else f"{fmt.duration_ms(now - sensor.last_seen)} ago"
    stale = sensor.last_seen is not None and now - sensor.last_seen > view.stale_after_ms
    lines.append(
        Text.assemble(
            ("value       ", "dim"),
            (fmt.number(sensor.value), "bold"),
            ("  event time ", "dim"),
            fmt.clock(sensor.event_time, view.tz),
            ("  seen ", "dim"),
            (seen, "bold yellow" if stale else ""),
            ("  late events ", "dim"),
            (fmt.count(sensor.late), "yellow" if sensor.late else ""),
        )
    )
    watermark = Text.assemble(("watermark   ", "dim"), fmt.clock(sensor.watermark, view.tz))
    if sensor.watermark is not None and device_ts is not None:
        watermark.append(f"  lag {fmt.duration_ms(device_ts - sensor.watermark)}")
    lines.append(watermark)
    lines.append(_window_text("open window", sensor.open_window, view))
    lines.append(_window_text("last fired", sensor.last_fired, view))
    scores = Text.assemble(("scores      ", "dim"))
    if not sensor.scores:
        scores.append("no detector scores", style="dim")
    for index, (name, score) in enumerate(sorted(sensor.scores.items())):
        if index:
            scores.append("   ")
        scores.append(f"{name} ")
        scores.append_text(_score_bar(score))
        scores.append(f" {score:.2f}")
    lines.append(scores)
    means = [mean for _, mean in sensor.means]
    if means:
        lines.append(
            Text.assemble(
                ("means       ", "dim"),
                f"last {len(means)} windows, min {fmt.number(min(means))}"
                f" max {fmt.number(max(means))}",
            )
        )
    else:
        lines.append(Text("means       no fired window yet", style="dim"))
    return Text("\n").join(lines)


class SensorPanel(Vertical):
    """A sensor's figures and a sparkline of its recent window means."""

    DEFAULT_CSS = """
    SensorPanel {
        height: auto;
        border: round $primary 50%;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 1;
        margin-bottom: 1;
    }
    SensorPanel > Static { height: auto; }
    SensorPanel > Sparkline { height: 1; width: 60; }
    """

    def __init__(self, name: str) -> None:
        super().__init__(classes="sensor")
        self.sensor_name = name
        self.border_title = name
        self.plain = ""

    def compose(self) -> ComposeResult:
        yield Static(classes="figures")
        yield Sparkline([], classes="means")

    def show(self, sensor: SensorState, view: View, device_ts: int | None) -> None:
        text = sensor_text(sensor, view, device_ts)
        self.plain = text.plain
        self.query_one(".figures", Static).update(text)
        sparkline = self.query_one(".means", Sparkline)
        sparkline.data = [mean for _, mean in sensor.means]
        sparkline.display = bool(sensor.means)


class DeviceScreen(DashboardScreen):
    """Escape goes back to the devices table."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("backspace", "back", "Back", show=False),
    ]

    DEFAULT_CSS = """
    DeviceScreen #title { height: auto; padding: 0 1; background: $boost; }
    DeviceScreen #sensors { height: 1fr; }
    DeviceScreen #device-alerts { height: auto; max-height: 8; padding: 0 1; }
    """

    def __init__(self, view: View, device: str) -> None:
        super().__init__()
        self._view = view
        self.device = device
        self._sensors: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield GatewayHeader(self._view, id="header")
        yield Static(id="title")
        yield VerticalScroll(id="sensors")
        yield Static(id="device-alerts")
        yield Footer()

    async def on_mount(self) -> None:
        await self.show_device()

    def action_back(self) -> None:
        self.dismiss()

    def apply(self, changes: Changes) -> None:
        self.query_one(GatewayHeader).show()
        if self.device in changes.devices or changes.alerts:
            self.run_worker(self.show_device(), group="show", exclusive=True)

    def tick(self) -> None:
        self.query_one(GatewayHeader).show()
        self.run_worker(self.show_device(), group="show", exclusive=True)

    async def show_device(self) -> None:
        view = self._view
        device = view.model.devices.get(self.device)
        title = Text.assemble(("Device ", "dim"), (self.device, "bold"))
        if device is None:
            title.append("  — not reported (any more)", style="yellow")
            self.query_one("#title", Static).update(title)
            return
        alerts = [a for a in view.model.alerts.sorted_active() if a.device == self.device]
        title.append(f"  sensors {len(device.sensors)}", style="dim")
        title.append(f"  active alerts {device.active_alerts}", style="bold red" if alerts else "")
        if device.ts is not None:
            title.append(f"  as of {fmt.clock(device.ts, view.tz)}", style="dim")
        self.query_one("#title", Static).update(title)

        names = tuple(sorted(device.sensors))
        box = self.query_one("#sensors", VerticalScroll)
        if names != self._sensors:
            self._sensors = names
            await box.remove_children()
            await box.mount_all(SensorPanel(name) for name in names)
        for panel in box.query(SensorPanel):
            panel.show(device.sensors[panel.sensor_name], view, device.ts)

        lines = [
            Text.assemble(
                fmt.severity_text(a.severity),
                f" {fmt.clock(a.raised_at, view.tz)} {a.sensor} {a.detector}"
                f" value {fmt.number(a.value)}",
                ("  acknowledged" if a.acknowledged else "", "green"),
            )
            for a in alerts
        ]
        self.query_one("#device-alerts", Static).update(
            Text("\n").join(lines) if lines else Text("No active alert.", style="dim")
        )
