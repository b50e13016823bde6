"""The three-line header: who the gateway is, whether it is alive, and how its pipes are doing."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from gateway.dashboard import _format as fmt
from gateway.dashboard._model import GatewayStatus
from gateway.dashboard._view import View

_OK = "green"
_BAD = "bold red"
_WARN = "yellow"
_DIM = "dim"


def _flag(ok: bool | None, yes: str, no: str, unknown: str = "?") -> Text:
    if ok is None:
        return Text(f"? {unknown}", style=_DIM)
    return Text(f"✔ {yes}", style=_OK) if ok else Text(f"✘ {no}", style=_BAD)


def _counter(label: str, value: int | None, bad_above: int = 0) -> Text:
    style = _WARN if value is not None and value > bad_above else ""
    return Text.assemble((label + " ", _DIM), (fmt.count(value), style))


def _join(parts: list[Text]) -> Text:
    return Text("  ").join(parts)


def render_header(view: View) -> Text:
    """The header as Rich text; a pure function of the view, so snapshots are stable."""
    model = view.model
    status = model.status
    now = view.now()
    line1: list[Text] = [Text(f"⬢ {model.gateway_id}", style="bold")]
    line1.append(_state(view, status, now))
    if status is not None:
        if status.version:
            line1.append(Text(f"v{status.version}", style=_DIM))
        if status.online and status.uptime_s is not None:
            line1.append(Text.assemble(("up ", _DIM), fmt.duration_ms(status.uptime_s * 1000)))
        line1.append(Text.assemble(("readings ", _DIM), fmt.rate(status.readings_per_s)))
    line1.append(Text.assemble(("devices ", _DIM), fmt.count(len(model.devices))))
    active = len(model.alerts.active)
    line1.append(Text.assemble(("alerts ", _DIM), (str(active), "bold red" if active else _OK)))

    conn = view.connection
    line2: list[Text] = [
        Text.assemble(("broker ", _DIM), _flag(conn.up, view.broker, view.broker)),
    ]
    if status is not None:
        line2.append(
            Text.assemble(("gateway→broker ", _DIM), _flag(status.mqtt_connected, "up", "down"))
        )
        if status.redis_configured is False:
            line2.append(Text.assemble(("redis ", _DIM), ("not configured", _DIM)))
        else:
            line2.append(
                Text.assemble(("redis ", _DIM), _flag(status.redis_connected, "up", "down"))
            )
        line2.append(_outbox(status))

    line3: list[Text] = []
    if status is not None:
        line3 += [
            _counter("late", status.late),
            _counter("dropped", status.dropped),
            _counter("dead-letter", status.deadletter),
            _counter("decode errors", status.decode_errors),
            _counter("rejected", status.rejected),
        ]
    if model.rejected:
        line3.append(_counter("unreadable msgs", model.rejected))
    if model.dropped_devices or view.inbox_dropped:
        line3.append(_counter("not shown", model.dropped_devices + view.inbox_dropped))
    if model.status_received_at is not None:
        age = now - (status.ts if status and status.ts else model.status_received_at)
        style = _WARN if age > view.status_stale_after_ms else _DIM
        line3.append(Text(f"status {fmt.duration_ms(age)} ago", style=style))
    clock = Text(fmt.clock(now, view.tz), style="bold")
    first = _join(line1)
    first.append("  ")
    first.append_text(clock)
    return Text("\n").join([first, _join(line2), _join(line3)])


def _state(view: View, status: GatewayStatus | None, now: int) -> Text:
    if status is None:
        return Text(" NO STATUS ", style="bold black on yellow")
    if not status.online:
        since = view.model.offline_since
        label = f" {status.state.upper()} "
        suffix = f"since {fmt.clock(since, view.tz)}" if since is not None else ""
        return Text.assemble((label, "bold white on red"), suffix)
    if status.ts is not None and now - status.ts > view.status_stale_after_ms:
        return Text(" SILENT ", style="bold black on yellow")
    return Text(" ONLINE ", style="bold black on green")


def _outbox(status: GatewayStatus) -> Text:
    rows = status.outbox_rows
    style = _WARN if rows else ""
    parts: list[tuple[str, str] | str] = [("outbox ", _DIM), (f"{fmt.count(rows)} rows", style)]
    if rows:
        parts.append(f" {fmt.size(status.outbox_bytes)}")
        if status.outbox_oldest_age_s is not None:
            parts.append(f" oldest {fmt.duration_ms(status.outbox_oldest_age_s * 1000)}")
    parts += [("  drain ", _DIM), fmt.rate(status.outbox_drain_per_s)]
    if status.outbox_dropped:
        parts.append((f"  dropped {fmt.count(status.outbox_dropped)}", _BAD))
    return Text.assemble(*parts)


class GatewayHeader(Static):
    """Gateway identity, state, rates and counters; redrawn by :meth:`show`."""

    DEFAULT_CSS = """
    GatewayHeader {
        height: 3;
        padding: 0 1;
        background: $panel;
    }
    """

    def __init__(self, view: View, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view = view
        self.plain = ""

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        text = render_header(self._view)
        self.plain = text.plain
        self.update(text)
