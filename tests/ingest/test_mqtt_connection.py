"""MqttConnection's lean paths against a real Mosquitto: QoS 0 publishes sent in batches, and
incoming PUBLISH packets taken straight from the read buffer, for both protocol versions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from gateway.ingest.mqtt import Message, MqttConnection, MqttSettings
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

PROTOCOLS = ["5", "3.1.1"]


async def _until(predicate: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_qos0_publishes_of_one_step_arrive_whole_and_in_order(
    mosquitto: Mosquitto, protocol: str
) -> None:
    # Sizes around the remaining-length boundaries (127/128, 16383/16384 bytes) and past the
    # 64 KiB at which a batch is cut, then a QoS 1 publish queued behind them.
    payloads = [b"x" * n for n in (0, 1, 120, 127, 128, 300, 16_380, 16_384, 70_000)]
    payloads += [b"%d" % i for i in range(500)]
    with collector("127.0.0.1", mosquitto.port, "lean/#") as seen:
        settings = MqttSettings(host="127.0.0.1", port=mosquitto.port,
                                client_id=f"lean-pub-{protocol}", protocol=protocol)
        async with MqttConnection(settings) as mqtt:
            await mqtt.wait_connected(within=10)
            for i, payload in enumerate(payloads):
                assert mqtt.publish(f"lean/q0/{i}", payload, qos=0) == 0
            mqtt.publish("lean/retained", b"kept", qos=0, retain=True)
            mqtt.publish("lean/q1", b"last", qos=1)
            await _until(lambda: any(t == "lean/q1" for t, _, _ in seen.messages), "lean/q1")
    got = [(t, p) for t, p, _ in seen.messages]
    assert got == [(f"lean/q0/{i}", p) for i, p in enumerate(payloads)] + [
        ("lean/retained", b"kept"), ("lean/q1", b"last")
    ]
    # The retain flag went out with it: a later subscriber gets the message.
    with collector("127.0.0.1", mosquitto.port, "lean/retained") as later:
        later.wait_for(lambda c: len(c.messages) == 1, what="the retained message")
        assert later.messages == [("lean/retained", b"kept", True)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_incoming_publishes_arrive_whole_and_in_order(
    mosquitto: Mosquitto, protocol: str
) -> None:
    # Many small packets share each read; the large ones span reads of the 64 KiB buffer.
    sent = [(f"lean/in/{i % 7}", b"%d:" % i + b"v" * (i * 37 % 400), i % 2) for i in range(3000)]
    sent += [("lean/in/big", bytes(range(256)) * 400, 1), ("lean/in/end", b"end", 1)]
    received: list[Message] = []

    def on_messages(batch: list[Message]) -> None:
        received.extend(batch)

    settings = MqttSettings(host="127.0.0.1", port=mosquitto.port,
                            client_id=f"lean-sub-{protocol}", protocol=protocol,
                            subscriptions=[("lean/in/#", 1)], manual_ack=False)
    async with MqttConnection(settings, on_messages=on_messages) as mqtt:
        await mqtt.wait_connected(within=10)
        await _until(lambda: mqtt.stats.subacks > 0, "the subscription")
        with publisher("127.0.0.1", mosquitto.port) as pub:
            for topic, payload, qos in sent:
                pub.client.publish(topic, payload, qos=qos)
            pub.send("lean/in/done", b"", qos=1)
        await _until(lambda: len(received) == len(sent) + 1, f"{len(sent) + 1} messages")
    got = [(m.topic, m.payload, m.qos) for m in received[:-1]]
    # The publisher holds QoS 1 messages back behind its in-flight window, QoS 0 not: the
    # order is kept within each QoS.
    for qos in (0, 1):
        assert [m for m in got if m[2] == qos] == [m for m in sent if m[2] == qos]
    assert all(m.mid > 0 for m in received if m.qos == 1)
