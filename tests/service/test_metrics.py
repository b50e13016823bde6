"""Metrics: scraped over real HTTP from the endpoint; private registries; no-op when off."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.service.metrics import (
    MAX_LABEL_VALUES,
    GatewayMetrics,
    Metrics,
    NullMetrics,
    create_metrics,
)


def _scrape(host: str, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _record_everything(metrics: GatewayMetrics) -> None:
    metrics.reading_in(5)
    metrics.reading_in()
    metrics.reading_out(2)
    metrics.decode_error("invalid_json")
    metrics.decode_error("invalid_json")
    metrics.decode_error("too_large")
    metrics.late(3)
    metrics.dropped("rate_limit", 4)
    metrics.set_actors(7)
    metrics.set_mailbox_depth(12, largest=9)
    metrics.set_outbox_backlog(rows=100, size_bytes=2048)
    metrics.observe_sync_latency(0.02)
    metrics.observe_sync_latency(3.0)
    metrics.observe_checkpoint(0.004)


def test_scrape_returns_every_series() -> None:
    with Metrics("gw1", "0.1.0") as metrics:
        _record_everything(metrics)
        host, port = metrics.start_http("127.0.0.1", 0)
        assert host == "127.0.0.1"
        assert port > 0
        samples = _scrape(host, port)

    ns = "edge_gateway_"
    assert samples[(ns + "readings_in_total", ())] == 6
    assert samples[(ns + "readings_out_total", ())] == 2
    assert samples[(ns + "decode_errors_total", (("reason", "invalid_json"),))] == 2
    assert samples[(ns + "decode_errors_total", (("reason", "too_large"),))] == 1
    assert samples[(ns + "late_total", ())] == 3
    assert samples[(ns + "dropped_total", (("reason", "rate_limit"),))] == 4
    assert samples[(ns + "actors", ())] == 7
    assert samples[(ns + "mailbox_depth", ())] == 12
    assert samples[(ns + "mailbox_depth_max", ())] == 9
    assert samples[(ns + "outbox_backlog_rows", ())] == 100
    assert samples[(ns + "outbox_backlog_bytes", ())] == 2048
    assert samples[(ns + "sync_latency_seconds_count", ())] == 2
    assert samples[(ns + "sync_latency_seconds_sum", ())] == pytest.approx(3.02)
    assert samples[(ns + "sync_latency_seconds_bucket", (("le", "0.025"),))] == 1
    assert samples[(ns + "checkpoint_duration_seconds_count", ())] == 1
    assert samples[(ns + "info", (("gateway_id", "gw1"), ("version", "0.1.0")))] == 1
    assert any(name.startswith("process_") for name, _ in samples)


def test_instances_have_private_registries() -> None:
    first = Metrics(process_metrics=False)
    second = Metrics(process_metrics=False)  # the global registry would refuse a duplicate
    first.reading_in(3)
    assert b"edge_gateway_readings_in_total 3.0" in first.exposition()
    assert b"edge_gateway_readings_in_total 0.0" in second.exposition()


def test_label_values_are_bounded() -> None:
    metrics = Metrics(process_metrics=False)
    for i in range(MAX_LABEL_VALUES + 10):
        metrics.dropped(f"reason-{i}")
    text = metrics.exposition().decode()
    assert text.count("edge_gateway_dropped_total{") == MAX_LABEL_VALUES + 1
    assert 'edge_gateway_dropped_total{reason="other"} 10.0' in text
    metrics.dropped("reason-0")  # a value seen before keeps its own series
    assert 'edge_gateway_dropped_total{reason="reason-0"} 2.0' in metrics.exposition().decode()


def test_close_stops_the_server_and_its_thread() -> None:
    metrics = Metrics(process_metrics=False)
    host, port = metrics.start_http("127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="already serving"):
        metrics.start_http("127.0.0.1", 0)
    metrics.close()
    metrics.close()
    assert not any(t.name == "gateway[metrics].http" for t in threading.enumerate())
    with socket.socket() as sock:
        assert sock.connect_ex((host, port)) != 0


def test_a_busy_port_is_named_in_the_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        metrics = Metrics(process_metrics=False)
        with pytest.raises(OSError, match=f"metrics endpoint 127.0.0.1:{port} cannot listen"):
            metrics.start_http("127.0.0.1", port)


def test_disabled_metrics_do_nothing_and_serve_nothing() -> None:
    metrics = create_metrics(enabled=False)
    assert isinstance(metrics, NullMetrics)
    assert not metrics.enabled
    _record_everything(metrics)
    assert metrics.start_http("127.0.0.1", 9) == ("127.0.0.1", 9)
    metrics.close()
    assert not any(t.name == "gateway[metrics].http" for t in threading.enumerate())


def test_enabled_metrics_are_live() -> None:
    metrics = create_metrics(enabled=True, gateway_id="gw2", version="1")
    assert isinstance(metrics, Metrics)
    assert metrics.enabled
