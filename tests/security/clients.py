"""Blocking paho-mqtt 2.x helpers for the security tests (real broker, deadlines, no sleeps)."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.security import close_sockets_of, use_with_paho

DEADLINE_S = 10.0


@dataclass
class Received:
    """Messages a test client received, with a condition to wait on."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def add(self, topic: str, payload: bytes) -> None:
        with self.condition:
            self.messages.append((topic, payload))
            self.condition.notify_all()

    def wait_until(
        self,
        predicate: Callable[[list[tuple[str, bytes]]], bool],
        what: str,
        timeout: float = DEADLINE_S,
    ) -> list[tuple[str, bytes]]:
        """Wait until ``predicate(messages so far)``; return the messages."""
        with self.condition:
            if not self.condition.wait_for(lambda: predicate(self.messages), timeout):
                raise TimeoutError(f"{what}: not seen within {timeout}s")
            return list(self.messages)

    def wait_for(self, payload: bytes, timeout: float = DEADLINE_S) -> list[tuple[str, bytes]]:
        """Wait until ``payload`` has arrived; return everything received so far."""
        with self.condition:
            arrived = self.condition.wait_for(
                lambda: any(p == payload for _, p in self.messages), timeout
            )
            if not arrived:
                raise TimeoutError(f"{payload!r} not received within {timeout}s")
            return list(self.messages)


class TestClient:
    """A paho client (MQTT 5, VERSION2 callbacks) whose connect waits for the CONNACK."""

    __test__ = False  # not a pytest test class

    def __init__(self, username: str | None, password: str | None, context: ssl.SSLContext) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sec-test-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        use_with_paho(self.client, context)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._published: dict[int, ReasonCode] = {}
        self._publish_done = threading.Condition()
        self.received = Received()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(30, 60)  # a refused client must not hammer the broker

    def _on_connect(self, client: object, userdata: object, flags: object,
                    reason_code: ReasonCode, properties: object) -> None:
        if self.connack is None:
            self.connack = reason_code
        self._connected.set()

    def _on_subscribe(self, client: object, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: object) -> None:
        self.suback = reason_codes
        self._subscribed.set()

    def _on_publish(self, client: object, userdata: object, mid: int,
                    reason_code: ReasonCode, properties: object) -> None:
        with self._publish_done:
            self._published[mid] = reason_code
            self._publish_done.notify_all()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.received.add(message.topic, bytes(message.payload))

    def connect(self, host: str, port: int) -> ReasonCode:
        """TLS handshake (raises ``ssl`` errors here), then wait for the CONNACK."""
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:  # ssl.SSLError is an OSError
            close_sockets_of(exc)
            raise
        self.client.loop_start()
        if not self._connected.wait(DEADLINE_S):
            raise TimeoutError(f"no CONNACK from {host}:{port} within {DEADLINE_S}s")
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        if not self._subscribed.wait(DEADLINE_S):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self._publish_done:
            if not self._publish_done.wait_for(lambda: info.mid in self._published, DEADLINE_S):
                raise TimeoutError(f"no PUBACK for a publish on {topic}")
            return self._published[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def connected(
    host: str, port: int, username: str | None, password: str | None, context: ssl.SSLContext
) -> Iterator[TestClient]:
    """A connected client (asserting the CONNACK succeeded), closed on exit."""
    client = TestClient(username, password, context)
    try:
        code = client.connect(host, port)
        assert not code.is_failure, f"connect refused: {code}"
        yield client
    finally:
        client.close()
