"""The dashboard's widgets, each with its own ``DEFAULT_CSS``."""

from gateway.dashboard.widgets.alerts_panel import AlertsTable
from gateway.dashboard.widgets.banner import Banner
from gateway.dashboard.widgets.devices_table import DevicesTable
from gateway.dashboard.widgets.header import GatewayHeader

__all__ = ["AlertsTable", "Banner", "DevicesTable", "GatewayHeader"]
