"""Prometheus metrics: a scrape endpoint on a local port, off by default (``[metrics]``).

:func:`create_metrics` returns a :class:`Metrics` when ``[metrics] enabled = true`` and a
:class:`NullMetrics` otherwise; both have the same methods (the :class:`GatewayMetrics`
protocol), and the null one's are empty, so the hot path pays one no-op call when metrics are
off. Each :class:`Metrics` has its own :class:`~prometheus_client.CollectorRegistry` (never
the process-global one), so several can live in one process (tests, a demo).

Exposed series (all prefixed ``edge_gateway_``):

==================================  =========  ==============================================
``readings_in_total``               counter    readings accepted from MQTT (decoded)
``readings_out_total``              counter    window results emitted
``decode_errors_total{reason}``     counter    payloads refused by a decoder
``late_total``                      counter    readings late for their window(s)
``dropped_total{reason}``           counter    readings or outputs dropped (rate, mailbox,
                                               late, outbox quota, max_devices, ...)
``actors``                          gauge      device actors alive
``mailbox_depth``                   gauge      readings queued in all device mailboxes
``mailbox_depth_max``               gauge      the fullest mailbox
``outbox_backlog_rows``             gauge      outbox entries not yet synced to Redis
``outbox_backlog_bytes``            gauge      their size
``sync_latency_seconds``            histogram  time from an output's creation to its Redis ack
``checkpoint_duration_seconds``     histogram  time to write one checkpoint
``info{gateway_id,version}``        gauge      always 1
==================================  =========  ==============================================

plus the standard ``process_*`` and ``python_*`` series of the gateway process.

Label values (``reason``) must come from a small fixed set (``"invalid_json"``,
``"too_large"``, ...), never from device input: past :data:`MAX_LABEL_VALUES` distinct values
per metric, further ones are counted as ``"other"``, so a hostile device cannot grow the
series without bound.

prometheus-client is imported when the first :class:`Metrics` is made (``[metrics] enabled``):
~2 MB of a gateway's memory otherwise.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, Protocol, Self

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

__all__ = [
    "MAX_LABEL_VALUES",
    "GatewayMetrics",
    "Metrics",
    "NullMetrics",
    "create_metrics",
]

MAX_LABEL_VALUES: Final = 32
"""Distinct ``reason`` values kept per labelled metric; later ones are counted as ``other``."""

_NAMESPACE: Final = "edge_gateway"
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_CHECKPOINT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class GatewayMetrics(Protocol):
    """What the runtime records; :class:`Metrics` and :class:`NullMetrics` implement it."""

    def reading_in(self, count: int = 1) -> None: ...
    def reading_out(self, count: int = 1) -> None: ...
    def decode_error(self, reason: str, count: int = 1) -> None: ...
    def late(self, count: int = 1) -> None: ...
    def dropped(self, reason: str, count: int = 1) -> None: ...
    def set_actors(self, count: int) -> None: ...
    def set_mailbox_depth(self, total: int, largest: int = 0) -> None: ...
    def set_outbox_backlog(self, rows: int, size_bytes: int) -> None: ...
    def observe_sync_latency(self, seconds: float) -> None: ...
    def observe_checkpoint(self, seconds: float) -> None: ...
    def start_http(self, host: str, port: int) -> tuple[str, int]: ...
    def close(self) -> None: ...


class NullMetrics:
    """Metrics off: every method does nothing."""

    enabled: Final = False

    def reading_in(self, count: int = 1) -> None:
        pass

    def reading_out(self, count: int = 1) -> None:
        pass

    def decode_error(self, reason: str, count: int = 1) -> None:
        pass

    def late(self, count: int = 1) -> None:
        pass

    def dropped(self, reason: str, count: int = 1) -> None:
        pass

    def set_actors(self, count: int) -> None:
        pass

    def set_mailbox_depth(self, total: int, largest: int = 0) -> None:
        pass

    def set_outbox_backlog(self, rows: int, size_bytes: int) -> None:
        pass

    def observe_sync_latency(self, seconds: float) -> None:
        pass

    def observe_checkpoint(self, seconds: float) -> None:
        pass

    def start_http(self, host: str, port: int) -> tuple[str, int]:
        """Serves nothing; returns ``(host, port)`` unchanged."""
        return host, port

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _BoundedLabels:
    """Caps the distinct values of one label; the rest become ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self._limit:
                return "other"
            self._seen.add(value)
            return value


class Metrics:
    """Live Prometheus metrics in a private registry.

    Args:
        gateway_id: value of the ``info`` series' ``gateway_id`` label.
        version: value of its ``version`` label.
        registry: the registry to fill; a new private one when absent.
        process_metrics: also export ``process_*``/``python_*`` series (off in tests that
            create many instances).

    The recording methods are thread-safe (prometheus-client's own locks). The HTTP server
    started by :meth:`start_http` runs in a daemon thread; :meth:`close` stops it.
    """

    enabled: Final = True

    def __init__(
        self,
        gateway_id: str = "",
        version: str = "",
        *,
        registry: CollectorRegistry | None = None,
        process_metrics: bool = True,
    ) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            GCCollector,
            Histogram,
            PlatformCollector,
            ProcessCollector,
        )

        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        ns = _NAMESPACE
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        info = Gauge(
            "info",
            "The gateway's id and version.",
            ["gateway_id", "version"],
            namespace=ns,
            registry=r,
        )
        info.labels(gateway_id=gateway_id, version=version).set(1)
        self._readings_in = Counter(
            "readings_in", "Readings accepted from MQTT.", namespace=ns, registry=r
        )
        self._readings_out = Counter(
            "readings_out", "Window results emitted.", namespace=ns, registry=r
        )
        self._decode_errors = Counter(
            "decode_errors",
            "Payloads refused by a decoder.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self._late = Counter("late", "Readings late for their window(s).", namespace=ns, registry=r)
        self._dropped = Counter(
            "dropped",
            "Readings or outputs dropped, by reason.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self._actors = Gauge("actors", "Device actors alive.", namespace=ns, registry=r)
        self._mailbox_depth = Gauge(
            "mailbox_depth", "Readings queued in all device mailboxes.", namespace=ns, registry=r
        )
        self._mailbox_depth_max = Gauge(
            "mailbox_depth_max",
            "Readings queued in the fullest mailbox.",
            namespace=ns,
            registry=r,
        )
        self._outbox_rows = Gauge(
            "outbox_backlog_rows", "Outbox entries not yet synced.", namespace=ns, registry=r
        )
        self._outbox_bytes = Gauge(
            "outbox_backlog_bytes",
            "Size of the outbox entries not yet synced.",
            namespace=ns,
            registry=r,
        )
        self._sync_latency = Histogram(
            "sync_latency_seconds",
            "Time from an output's creation to its Redis ack.",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self._checkpoint = Histogram(
            "checkpoint_duration_seconds",
            "Time to write one checkpoint.",
            namespace=ns,
            registry=r,
            buckets=_CHECKPOINT_BUCKETS,
        )
        self._decode_reasons = _BoundedLabels(MAX_LABEL_VALUES)
        self._drop_reasons = _BoundedLabels(MAX_LABEL_VALUES)
        self._server: tuple[WSGIServer, threading.Thread] | None = None

    # -- recording ----------------------------------------------------------------------------

    def reading_in(self, count: int = 1) -> None:
        self._readings_in.inc(count)

    def reading_out(self, count: int = 1) -> None:
        self._readings_out.inc(count)

    def decode_error(self, reason: str, count: int = 1) -> None:
        self._decode_errors.labels(reason=self._decode_reasons(reason)).inc(count)

    def late(self, count: int = 1) -> None:
        self._late.inc(count)

    def dropped(self, reason: str, count: int = 1) -> None:
        self._dropped.labels(reason=self._drop_reasons(reason)).inc(count)

    def set_actors(self, count: int) -> None:
        self._actors.set(count)

    def set_mailbox_depth(self, total: int, largest: int = 0) -> None:
        self._mailbox_depth.set(total)
        self._mailbox_depth_max.set(largest)

    def set_outbox_backlog(self, rows: int, size_bytes: int) -> None:
        self._outbox_rows.set(rows)
        self._outbox_bytes.set(size_bytes)

    def observe_sync_latency(self, seconds: float) -> None:
        self._sync_latency.observe(seconds)

    def observe_checkpoint(self, seconds: float) -> None:
        self._checkpoint.observe(seconds)

    # -- serving ------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The current metrics in the Prometheus text format (what a scrape returns)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def start_http(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one).

        Returns:
            The address actually bound.

        Raises:
            RuntimeError: already serving.
            OSError: the address cannot be bound (in use, not local); the message names it.
        """
        if self._server is not None:
            raise RuntimeError("the metrics endpoint is already serving; close() it first")
        from prometheus_client import start_http_server

        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise OSError(
                exc.errno, f"metrics endpoint {host}:{port} cannot listen: {exc.strerror}"
            ) from exc
        thread.name = "gateway[metrics].http"
        self._server = (server, thread)
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop serving (idempotent); waits for the server thread to finish."""
        if self._server is None:
            return
        server, thread = self._server
        self._server = None
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def create_metrics(enabled: bool, gateway_id: str = "", version: str = "") -> Metrics | NullMetrics:
    """A :class:`Metrics` when ``enabled`` (``[metrics] enabled``), else a :class:`NullMetrics`.

    Call :meth:`~Metrics.start_http` with ``[metrics] host`` and ``port`` to serve it.
    """
    if enabled:
        return Metrics(gateway_id, version)
    return NullMetrics()
