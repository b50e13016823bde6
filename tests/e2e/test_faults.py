"""Delivery guarantees under faults, with real processes: the gateway killed with SIGKILL
at random points, the broker restarted, Redis stopped. The end state in Redis must equal
that of a run without faults: nothing lost, nothing twice."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import redis
import tomli_w

from tests.gateway_runner import GatewayProcess, gateway_config
from tests.mqtt_tools import publisher
from tests.services import Mosquitto, RedisCluster, RedisServer, wait_for

SIZE = 10_000
STEP = 100  # ms of event time between a device's readings
DEVICES = 4
WINDOWS = 3
SPIKES = {50, 150}  # reading indices of device d0 above the threshold


def _base() -> int:
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


def _readings(base: int) -> list[tuple[str, int, float]]:
    """Every device's readings in [base, base + WINDOWS * SIZE), then one that closes them."""
    out = []
    for i in range(WINDOWS * SIZE // STEP):
        for d in range(DEVICES):
            value = 500.0 if d == 0 and i in SPIKES else float((i * 7 + d * 13) % 50)
            out.append((f"d{d}", base + i * STEP, value))
    out += [(f"d{d}", base + WINDOWS * SIZE + 5 * SIZE, 0.0) for d in range(DEVICES)]
    return out


def _expected_windows(readings: list[tuple[str, int, float]], base: int) -> dict[Any, Any]:
    windows: dict[tuple[str, int], list[float]] = {}
    for device, ts, value in readings:
        start = ts - ts % SIZE
        if start < base + WINDOWS * SIZE:
            windows.setdefault((device, start), []).append(value)
    return {k: (len(v), sum(v), min(v), max(v)) for k, v in windows.items()}


def _config(
    path: Path, broker: Mosquitto, redis_url: str, cluster: bool = False, gateway_id: str = ""
) -> Path:
    data = gateway_config(
        broker.port,
        path.parent / "state.db",
        sensors=[
            {
                "name": "temperature", "topic": "site/+/temperature", "device": "{1}",
                "format": "json", "value": "temp", "timestamp": "ts",
                "window": {"type": "tumbling", "size": "10s"},
                "watermark": {"strategy": "bounded", "max_delay": "1s", "idle_timeout": "1h"},
                "detectors": [{"type": "threshold", "max": 100.0, "resolve_after": 3}],
            }
        ],
        redis={"url": redis_url, "cluster": cluster},
    )
    if gateway_id:
        data["gateway_id"] = gateway_id
    path.write_text(tomli_w.dumps(data))
    return path


def _redis_windows(client: Any, gw: str) -> list[dict[str, Any]]:
    entries = client.xrange(f"edge:{{{gw}}}:windows")
    return [{k.decode(): orjson.loads(v) if k != b"device" and k != b"sensor" else v.decode()
             for k, v in fields.items()} for _, fields in entries]


def _redis_alerts(client: Any, gw: str) -> list[dict[str, str]]:
    entries = client.xrange(f"edge:{{{gw}}}:alerts")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def _check_end_state(
    client: Any, readings: list[tuple[str, int, float]], base: int, gw: str = "gw-test"
) -> None:
    expected = _expected_windows(readings, base)
    wait_for(lambda: client.xlen(f"edge:{{{gw}}}:windows") >= len(expected), 60,
             f"{len(expected)} windows in Redis")
    windows = _redis_windows(client, gw)
    keys = Counter((w["device"], w["window_start"], w["revision"]) for w in windows)
    assert max(keys.values()) == 1, "a window result was synced twice"
    got = {(w["device"], w["window_start"]): (w["count"], w["sum"], w["min"], w["max"])
           for w in windows}
    assert got == expected
    wait_for(lambda: client.xlen(f"edge:{{{gw}}}:alerts") >= 2 * len(SPIKES), 30, "the alerts")
    alerts = _redis_alerts(client, gw)
    states = Counter((a["alert_id"], a["state"]) for a in alerts)
    assert max(states.values()) == 1, "an alert state change was synced twice"
    assert sorted(a["state"] for a in alerts) == ["raised"] * 2 + ["resolved"] * 2
    assert {a["device"] for a in alerts} == {"d0"}


def _publish_all(broker: Mosquitto, readings: list[tuple[str, int, float]]) -> threading.Thread:
    def run() -> None:
        with publisher(broker.host, broker.port) as pub:
            for device, ts, value in readings:
                pub.send(f"site/{device}/temperature", {"temp": value, "ts": ts})

    thread = threading.Thread(target=run, name="test-publisher")
    thread.start()
    return thread


def test_sigkill_at_random_points_changes_nothing_in_redis(
    mosquitto: Mosquitto, redis_server: RedisServer, tmp_path: Path
) -> None:
    base = _base()
    readings = _readings(base)
    gateway = GatewayProcess(_config(tmp_path / "gw.toml", mosquitto, redis_server.url),
                             tmp_path / "gateway.log")
    rng = random.Random(20261128)
    try:
        gateway.start()
        gateway.wait_log("ready")
        sender = _publish_all(mosquitto, readings)
        for _ in range(3):
            deadline = time.monotonic() + rng.uniform(0.2, 0.8)
            while time.monotonic() < deadline and sender.is_alive():
                sender.join(0.05)
            gateway.kill()
            mark = len(gateway.log())
            gateway.start()
            gateway.wait_log("ready", after=mark)
        sender.join(120)
        assert not sender.is_alive()
        client = redis.Redis(port=redis_server.port)
        _check_end_state(client, readings, base)
        assert gateway.terminate() == 0
    finally:
        gateway.ensure_stopped()


def test_broker_restart_and_redis_outage_lose_nothing(
    mosquitto: Mosquitto, redis_server: RedisServer, tmp_path: Path
) -> None:
    base = _base()
    readings = _readings(base)
    half = len(readings) // 2
    gateway = GatewayProcess(_config(tmp_path / "gw.toml", mosquitto, redis_server.url),
                             tmp_path / "gateway.log")
    try:
        gateway.start()
        gateway.wait_log("ready")
        redis_server.stop()  # the uplink is down: results wait in the outbox
        with publisher(mosquitto.host, mosquitto.port) as pub:
            for device, ts, value in readings[:half]:
                pub.send(f"site/{device}/temperature", {"temp": value, "ts": ts})
        # The broker restarts (gracefully, keeping its persistent sessions and queues).
        mosquitto.restart()
        gateway.wait_log("MQTT connected", timeout=30)
        with publisher(mosquitto.host, mosquitto.port) as pub:
            for device, ts, value in readings[half:]:
                pub.send(f"site/{device}/temperature", {"temp": value, "ts": ts})
        redis_server.start()
        client = redis.Redis(port=redis_server.port)
        _check_end_state(client, readings, base)
        assert gateway.terminate() == 0
    finally:
        gateway.ensure_stopped()


def test_sigkill_against_a_redis_cluster_changes_nothing(
    mosquitto: Mosquitto, redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """The same guarantee when the central store is a 3-node Redis Cluster."""
    base = _base()
    readings = _readings(base)
    gw = f"gw-cluster-{random.randrange(10**9)}"
    config = _config(tmp_path / "gw.toml", mosquitto, redis_cluster.url, True, gw)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    try:
        gateway.start()
        gateway.wait_log("ready")
        sender = _publish_all(mosquitto, readings)
        sender.join(0.3)
        gateway.kill()
        mark = len(gateway.log())
        gateway.start()
        gateway.wait_log("ready", after=mark)
        sender.join(120)
        client = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
        _check_end_state(client, readings, base, gw)
        client.close()
        assert gateway.terminate() == 0
    finally:
        gateway.ensure_stopped()
