"""A notice saying why the screen shows little or nothing; hidden when all is well."""

from __future__ import annotations

from textual.widgets import Static

from gateway.dashboard import _format as fmt
from gateway.dashboard._source import ConnectionState
from gateway.dashboard._view import View


def diagnose(view: View) -> tuple[str, str] | None:
    """``(level, message)`` for what keeps the dashboard from showing a live gateway, or None.

    ``level`` is ``error`` (nothing to see until the operator acts or the broker returns),
    ``warning`` (what is shown is old) or ``info`` (waiting).
    """
    model = view.model
    conn = view.connection
    status_topic = f"{model.prefix}/status"
    kept = " Showing the last known state." if model.status or model.devices else ""
    if conn.state is ConnectionState.REFUSED:
        return (
            "error",
            f"{conn.detail}. Check the [mqtt] username, password and TLS settings.",
        )
    if conn.state is ConnectionState.DISCONNECTED:
        return ("error", f"Cannot reach the broker: {conn.detail}. Retrying.{kept}")
    if conn.state is ConnectionState.CONNECTING:
        return ("info", f"Connecting to the broker at {view.broker}…")
    status = model.status
    if status is None:
        if conn.state is ConnectionState.CONNECTED:
            waiting = f"Connected; waiting for gateway '{model.gateway_id}' on {status_topic}…"
            return ("info", waiting)
        others = sorted(model.other_gateways.items())
        if others:
            seen = ", ".join(f"{gw} ({state})" for gw, state in others)
            hint = f"Gateways on this broker: {seen}. Is gateway_id right?"
        else:
            hint = "No gateway has published a status on this broker: is it running?"
        return (
            "error",
            f"Nothing from gateway '{model.gateway_id}' on {status_topic} at {view.broker}. {hint}",
        )
    if not status.online:
        since = model.offline_since
        when = f" since {fmt.clock(since, view.tz)}" if since is not None else ""
        return ("warning", f"Gateway '{model.gateway_id}' is {status.state}{when}.{kept}")
    if status.ts is not None:
        silent = view.now() - status.ts
        if silent > view.status_stale_after_ms:
            return (
                "warning",
                f"No status from gateway '{model.gateway_id}' for {fmt.duration_ms(silent)}:"
                " is it stuck, or are the clocks apart?",
            )
    if not model.devices:
        return ("info", f"Gateway '{model.gateway_id}' is online; no device has reported yet.")
    return None


class Banner(Static):
    """Says clearly what is wrong instead of leaving an empty screen."""

    DEFAULT_CSS = """
    Banner {
        height: auto;
        padding: 0 1;
        display: none;
    }
    Banner.-shown { display: block; }
    Banner.-error { background: $error 30%; color: $text; text-style: bold; }
    Banner.-warning { background: $warning 30%; color: $text; }
    Banner.-info { background: $primary 20%; color: $text; }
    """

    def __init__(self, view: View, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view = view
        self.plain = ""
        self.level: str | None = None

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        found = diagnose(self._view)
        level, message = found if found else (None, "")
        if (level, message) == (self.level, self.plain):
            return
        self.level, self.plain = level, message
        self.set_class(level is not None, "-shown")
        for name in ("error", "warning", "info"):
            self.set_class(level == name, f"-{name}")
        self.update(message)
