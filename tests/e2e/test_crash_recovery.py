"""The gateway is killed with SIGKILL in the middle of an open window and restarted: the
window that finally fires holds every reading from before and after the crash, once."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import redis

from tests.gateway_runner import GatewayProcess, gateway_config
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto, RedisServer, wait_for

SIZE = 10_000


def _base() -> int:
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


def _write_config(path: Path, data: dict[str, object]) -> Path:
    import tomli_w

    path.write_bytes(tomli_w.dumps(data).encode())
    return path


def _open_count(messages: list[dict[str, object]], device: str) -> int:
    for view in reversed(messages):
        if view.get("device") == device:
            window = view["sensors"]["temperature"]["open_window"]  # type: ignore[index]
            return int(window["count"]) if window else 0  # type: ignore[index]
    return 0


def test_sigkill_mid_window_loses_nothing_and_counts_nothing_twice(
    mosquitto: Mosquitto, redis_server: RedisServer, tmp_path: Path
) -> None:
    base = _base()
    data = gateway_config(mosquitto.port, tmp_path / "state.db")
    data["state"]["checkpoint_interval"] = "1h"  # type: ignore[index]  # all from the journal
    data["redis"] = {"url": redis_server.url}
    config = _write_config(tmp_path / "gw.toml", data)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    before = [(base + 1_000 * i, float(i)) for i in range(1, 6)]  # 1..5 in [base, base+10s)
    after = [(base + 5_500 + 500 * i, float(10 * i)) for i in range(1, 4)]  # 10, 20, 30
    try:
        gateway.start()
        gateway.wait_log("ready")
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for ts, value in before:
                    pub.send("site/d1/temperature", {"temp": value, "ts": ts})
                # The device view shows the open window once its readings are durable.
                out.wait_for(lambda c: _open_count(c.json("/devices/"), "d1") == 5,
                             what="5 readings in the open window")
                gateway.kill()
                mark = len(gateway.log())
                gateway.start()
                gateway.wait_log("ready", after=mark)
                for ts, value in after:
                    pub.send("site/d1/temperature", {"temp": value, "ts": ts})
                pub.send("site/d1/temperature", {"temp": 0.0, "ts": base + SIZE + 6_000})
            out.wait_for(lambda c: len(c.json("/windows/")) >= 1, what="the window result")
            windows = out.json("/windows/")
        assert len(windows) == 1, windows
        (window,) = windows
        assert window["window_start"] == base
        assert window["count"] == 8
        assert window["sum"] == sum(v for _, v in before + after)
        assert (window["min"], window["max"]) == (1.0, 30.0)
        # Redis holds it exactly once too.
        client = redis.Redis(port=redis_server.port)
        wait_for(lambda: client.xlen("edge:{gw-test}:windows") >= 1, 20, "the window in Redis")
        entries = client.xrange("edge:{gw-test}:windows")
        assert len(entries) == 1
        fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
        assert orjson.loads(fields["count"]) == 8
        assert gateway.terminate() == 0
    finally:
        gateway.ensure_stopped()
