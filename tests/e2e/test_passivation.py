"""An idle device actor is passivated: its state goes to the store's parked snapshots, the
next checkpoint drops it (the runtime hands the store only the change), and after a restart
its next reading brings it back with its windows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.config import config_from_dict
from gateway.state import SqliteGatewayStore
from tests.gateway_runner import gateway_config, running_gateway
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

SIZE = 10_000


def _base() -> int:
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


async def test_a_passivated_device_leaves_the_checkpoint_and_comes_back_after_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    path = tmp_path / "s.db"
    data: dict[str, Any] = gateway_config(
        mosquitto.port, path, state={"checkpoint_interval": "100ms"},
        actors={"passivate_after": "300ms"},
    )
    config = config_from_dict(data)
    #   d1: 1 2 3 | restart | 4 5 in [base, base + 10s), then one in the next window
    async with running_gateway(config) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/status") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i in range(1, 4):
                    pub.send("site/d1/temperature", {"temp": float(i), "ts": base + 1_000 * i})
                await out.until(lambda _: gateway.actors.is_passivated("d1"), what="passivated")
                taken = gateway.counters.checkpoints
                # the second checkpoint from now was taken after the passivation
                await out.until(lambda _: gateway.counters.checkpoints >= taken + 2,
                                what="a checkpoint without d1")
    async with SqliteGatewayStore(path, now_ms=lambda: 0) as store:
        checkpoint = await store.load_checkpoint()
        assert checkpoint is not None
        assert "d1" not in checkpoint.snapshots
        assert await store.load_checkpointed("d1") is None
        parked = await store.get_snapshot("d1")
        assert parked is not None
        assert parked["temperature"]["value"] == 3.0
    async with running_gateway(config_from_dict(data)) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/windows/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i in range(4, 6):
                    pub.send("site/d1/temperature", {"temp": float(i), "ts": base + 1_000 * i})
                pub.send("site/d1/temperature", {"temp": 0.0, "ts": base + SIZE + 6_000})
            await out.until(lambda c: len(c.json("/windows/d1/")) >= 1, what="the window")
    (window,) = out.json("/windows/d1/")
    assert (window["window_start"], window["count"], window["sum"]) == (base, 5, 15.0)
