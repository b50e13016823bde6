"""The Textual dashboard: a live view of a running gateway through its MQTT outputs.

``edge-gateway dashboard -c FILE`` calls :func:`run_dashboard`; tests drive
:class:`DashboardApp` with ``App.run_test()``. See docs/dashboard.md.
"""

from __future__ import annotations

import ssl

from gateway.dashboard._source import MqttSource
from gateway.dashboard.app import DashboardApp

__all__ = ["DashboardApp", "MqttSource", "run_dashboard"]


def run_dashboard(
    *,
    host: str,
    port: int,
    prefix: str,
    gateway_id: str,
    username: str | None = None,
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Run the dashboard in this terminal until the operator quits; returns the exit code.

    0 when the operator quits; 2 when the broker refuses the credentials (the reason is printed
    on the way out). A broker that is down is retried, with a banner saying so.
    """
    source = MqttSource(host=host, port=port, username=username, password=password, tls=tls)
    app = DashboardApp(prefix=prefix, gateway_id=gateway_id, source=source)
    app.run()
    return app.return_code or 0
