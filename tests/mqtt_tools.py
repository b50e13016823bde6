"""Small real-broker helpers for tests: a collecting subscriber and a confirmed publisher."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class Collector:
    """Subscribes to topic filters and keeps every message received, in order."""

    def __init__(self, host: str, port: int, *filters: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("collector did not get its subscription acknowledged")

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def json(self, topic_part: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [orjson.loads(p) for t, p, _ in self.messages if topic_part in t]

    def wait_for(
        self, predicate: Callable[[Collector], bool], timeout: float = 20.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what or 'messages'}; got "
                                   f"{[t for t, _, _ in self.messages][-20:]}")
            time.sleep(0.02)

    async def until(
        self, predicate: Callable[[Collector], bool], within: float = 20.0, what: str = ""
    ) -> None:
        """Like :meth:`wait_for`, without blocking an in-process gateway on the same loop."""
        deadline = time.monotonic() + within
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {within}s waiting for {what or 'messages'}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def collector(host: str, port: int, *filters: str) -> Iterator[Collector]:
    c = Collector(host, port, *filters)
    try:
        yield c
    finally:
        c.close()


class Publisher:
    """Publishes with QoS 1 and waits for each PUBACK, so order and delivery are known."""

    def __init__(self, host: str, port: int) -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def publisher(host: str, port: int) -> Iterator[Publisher]:
    p = Publisher(host, port)
    try:
        yield p
    finally:
        p.close()
