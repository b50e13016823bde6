"""Running as a system service: systemd notifications, logging, metrics and installation.

* :mod:`gateway.service.notify` — ``sd_notify`` (READY, STATUS, WATCHDOG, RELOADING, STOPPING).
* :mod:`gateway.service.logs` — one line per event, journald priorities, JSON, redaction.
* :mod:`gateway.service.metrics` — the Prometheus endpoint (off by default).
* :mod:`gateway.service.install` — ``install-service`` / ``uninstall-service``.
"""

from __future__ import annotations

from gateway.service.logs import (
    RedactingFilter,
    add_config_secrets,
    add_secret,
    setup_logging,
)
from gateway.service.metrics import GatewayMetrics, Metrics, NullMetrics, create_metrics
from gateway.service.notify import SystemdNotifier

__all__ = [
    "GatewayMetrics",
    "Metrics",
    "NullMetrics",
    "RedactingFilter",
    "SystemdNotifier",
    "add_config_secrets",
    "add_secret",
    "create_metrics",
    "setup_logging",
]
