"""A reload that adds a sensor subscribes to its topic and keeps every window's state."""

from __future__ import annotations

import time
from pathlib import Path

import tomli_w

from gateway.config import load_config
from tests.gateway_runner import gateway_config, running_gateway
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

SIZE = 10_000


async def test_reload_subscribes_to_a_new_sensor_and_keeps_window_state(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = (time.time_ns() // 1_000_000 - 3_600_000) // SIZE * SIZE
    data = gateway_config(mosquitto.port, tmp_path / "s.db")
    path = tmp_path / "gw.toml"
    path.write_text(tomli_w.dumps(data))
    async with running_gateway(load_config(path), config_path=path) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/windows/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send("site/d1/temperature", {"temp": 1.0, "ts": base + 1_000})
                await out.until(lambda _: gateway.counters.readings_in == 1, what="1 reading")
                humidity = {**data["sensors"][0], "name": "humidity",
                            "topic": "site/+/humidity", "value": "rh"}
                path.write_text(tomli_w.dumps({**data, "sensors": [*data["sensors"], humidity]}))
                assert gateway.mqtt is not None
                subacks = gateway.mqtt.stats.subacks
                gateway.request_reload()
                await out.until(lambda _: gateway.mqtt is not None
                                and gateway.mqtt.stats.subacks > subacks, what="the new SUBACK")
                assert len(gateway.config.sensors) == 2
                pub.send("site/d1/humidity", {"rh": 40.0, "ts": base + 2_000})
                pub.send("site/d1/temperature", {"temp": 3.0, "ts": base + 3_000})
                await out.until(lambda _: gateway.counters.readings_in == 3, what="3 readings")
                pub.send("site/d1/humidity", {"rh": 0.0, "ts": base + SIZE + 6_000})
                pub.send("site/d1/temperature", {"temp": 0.0, "ts": base + SIZE + 6_000})
            await out.until(lambda c: len(c.json()) >= 2, what="both sensors' windows")
    windows = {m["sensor"]: m for m in out.json()}
    assert (windows["temperature"]["count"], windows["temperature"]["sum"]) == (2, 4.0)
    assert (windows["humidity"]["count"], windows["humidity"]["sum"]) == (1, 40.0)
