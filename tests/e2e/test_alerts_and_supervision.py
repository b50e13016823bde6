"""Alerts through the real broker, and a failing device actor contained to its device."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.actors.device import default_detectors
from gateway.config import SensorConfig, config_from_dict
from gateway.detect import Finding, SensorDetectors
from tests.gateway_runner import gateway_config, running_gateway
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

SIZE = 10_000
POISON = 666.0


def _base() -> int:
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


def _sensor(**extra: Any) -> dict[str, Any]:
    return {
        "name": "temperature", "topic": "site/+/temperature", "device": "{1}",
        "format": "json", "value": "temp", "timestamp": "ts",
        "window": {"type": "tumbling", "size": "10s"},
        "watermark": {"strategy": "bounded", "max_delay": "1s", "idle_timeout": "1h"},
        **extra,
    }


async def test_a_spike_raises_exactly_one_alert_and_one_resolution(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    detector = {"type": "threshold", "max": 50.0, "clear_max": 45.0, "resolve_after": 3,
                "severity": "critical"}
    config = gateway_config(mosquitto.port, tmp_path / "s.db",
                            sensors=[_sensor(detectors=[detector])])
    #   value: 20 20 90 95 80 20 20 20 20   (three readings over the limit, then normal)
    values = [20.0, 20.0, 90.0, 95.0, 80.0, 20.0, 20.0, 20.0, 20.0]
    async with running_gateway(config):
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/alerts") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i, value in enumerate(values):
                    pub.send("site/boiler/temperature", {"temp": value, "ts": base + 100 * i})
            await out.until(lambda c: len(c.json("/alerts")) >= 2, what="raise and resolve")
    raised, resolved = out.json("/alerts")[:2]
    assert len([m for m in out.json("/alerts") if m.get("state")]) == 2
    assert raised["state"] == "raised"
    assert raised["severity"] == "critical"
    assert raised["device"] == "boiler"
    assert raised["detector"] == "threshold"
    assert raised["value"] == 90.0
    assert raised["event_time"] == base + 200
    assert resolved["state"] == "resolved"
    assert resolved["alert_id"] == raised["alert_id"]


class _PoisonedDetectors:
    """A custom detector bank that throws on one value: a bug in a user's detector."""

    def __init__(self, inner: SensorDetectors) -> None:
        self._inner = inner

    def on_reading(self, value: float, timestamp: int) -> list[Finding]:
        if value == POISON:
            raise RuntimeError("custom detector bug")
        return self._inner.on_reading(value, timestamp)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _poisoned(sensor: SensorConfig) -> Any:
    return _PoisonedDetectors(default_detectors(sensor))


async def test_a_crashing_detector_is_contained_to_its_device(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    data = gateway_config(mosquitto.port, tmp_path / "s.db", sensors=[_sensor()],
                          actors={"max_restarts": 2, "backoff_initial": "1ms"})
    config = config_from_dict(data)
    async with running_gateway(config, detector_factory=_poisoned) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/windows/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i in range(10):
                    ts = base + 500 * i
                    pub.send("site/good/temperature", {"temp": float(i), "ts": ts})
                    # The bad device fails on every other reading until it is parked.
                    value = POISON if i % 2 else 1.0
                    pub.send("site/bad/temperature", {"temp": value, "ts": ts})
                pub.send("site/good/temperature", {"temp": 0.0, "ts": base + SIZE + 2_000})
            await out.until(lambda c: len(c.json("/windows/good/")) >= 1, what="good's window")
            await out.until(lambda _: bool(gateway.actors.parked), what="bad to be parked")
        status = gateway.status()
    (window,) = out.json("/windows/good/")
    assert (window["count"], window["sum"]) == (10, 45.0)
    assert status["devices"]["restarts"] == 3
    assert status["devices"]["parked_ids"] == ["bad"]
    assert gateway.actors.stats.failed_readings == 3


async def test_a_failed_actor_is_rebuilt_from_its_checkpoint_in_the_store(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The gateway keeps no copy of a device's checkpointed state: a failed actor is rebuilt
    from the store's checkpoint plus the readings it handled since (the failing one excluded).
    A rebuild from anything else (nothing, or the state at the failure) changes the window.
    """
    base = _base()
    data = gateway_config(mosquitto.port, tmp_path / "s.db", sensors=[_sensor()],
                          state={"checkpoint_interval": "100ms"},
                          actors={"backoff_initial": "1ms"})
    async with running_gateway(config_from_dict(data), detector_factory=_poisoned) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/windows/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i in range(5):
                    pub.send("site/dev/temperature", {"temp": float(i), "ts": base + 500 * i})
                await out.until(lambda _: gateway.counters.readings_in == 5, what="5 readings")
                taken = gateway.counters.checkpoints
                # the second checkpoint from now was taken after the five readings
                await out.until(lambda _: gateway.counters.checkpoints >= taken + 2,
                                what="a checkpoint with them")
                for i in range(5, 10):  # the reading at i = 6 fails its actor
                    value = POISON if i == 6 else float(i)
                    pub.send("site/dev/temperature", {"temp": value, "ts": base + 500 * i})
                pub.send("site/dev/temperature", {"temp": 0.0, "ts": base + SIZE + 2_000})
            await out.until(lambda c: len(c.json("/windows/dev/")) >= 1, what="the window")
    (window,) = out.json("/windows/dev/")
    assert (window["count"], window["sum"]) == (9, 45.0 - 6.0)
    assert (gateway.actors.stats.restarts, gateway.actors.stats.failed_readings) == (1, 1)
    assert gateway.actors.parked == []


async def test_an_acknowledgement_is_republished_and_kept_across_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    detector = {"type": "threshold", "max": 50.0, "resolve_after": 3}
    config = gateway_config(mosquitto.port, tmp_path / "s.db",
                            sensors=[_sensor(detectors=[detector])])
    async with running_gateway(config):
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/alerts") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send("site/boiler/temperature", {"temp": 90.0, "ts": base + 100})
                await out.until(lambda c: len(c.json("/alerts")) >= 1, what="the alert")
                (raised,) = out.json("/alerts")
                pub.send("edge-gateway/gw-test/commands",
                         {"command": "ack", "alert_id": raised["alert_id"], "by": "op@panel"})
                await out.until(lambda c: len(c.json("/alerts")) >= 2, what="the ack")
    acked = out.json("/alerts")[1]
    assert acked["alert_id"] == raised["alert_id"]
    assert acked["state"] == "raised"
    assert (acked["acknowledged"], acked["acknowledged_by"]) == (True, "op@panel")
    # After a restart the retained list of active alerts still shows it acknowledged.
    async with running_gateway(config):
        with collector(mosquitto.host, mosquitto.port,
                       "edge-gateway/gw-test/alerts/active") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send("site/boiler/temperature", {"temp": 91.0, "ts": base + 200})
            await out.until(lambda c: any(m and m[0].get("acknowledged") for m in c.json()
                                          if isinstance(m, list)), what="acked after restart")
