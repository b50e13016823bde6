"""Fixtures for dashboard tests: an MQTT publisher and command listener on the test's broker,
and apps built with a fixed clock, UTC and no cursor blink."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from textual.pilot import Pilot

from gateway.dashboard import DashboardApp, MqttSource
from gateway.dashboard._source import ConnectionState
from tests.dashboard.recorded import GATEWAY, PREFIX, T0, dumps
from tests.services import Mosquitto

DEADLINE_S = 15.0


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], what: str, within_s: float = DEADLINE_S
) -> None:
    """Let the app run until ``predicate()`` holds; fail naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await pilot.pause(0.05)


async def synced(pilot: Pilot[Any], app: DashboardApp) -> None:
    """Wait until the broker has delivered the retained messages: live ones published after
    this reach the app (``P/devices`` and window results are not retained)."""
    await wait_until(
        pilot,
        lambda: app.view.connection.state is ConnectionState.SYNCED,
        "the dashboard subscribed and synced",
    )


class MqttPeer:
    """A plain paho client standing in for the gateway: publishes and records what it hears."""

    def __init__(self, broker: Mosquitto, client_id: str) -> None:
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
        )
        self._lock = threading.Lock()
        self._received: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.connect(broker.host, broker.port, keepalive=30)
        self._client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._lock:
            self._received.append((str(message.topic), bytes(message.payload)))

    def publish(self, topic: str, payload: bytes | Any, *, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else dumps(payload)
        info = self._client.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(timeout=DEADLINE_S)
        assert info.is_published(), f"{topic} was not published"

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish in order; status and the active-alerts list retained, as the gateway does."""
        for topic, payload in messages:
            retain = topic.endswith(("/status", "/alerts/active"))
            self.publish(topic, payload, retain=retain)

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self._client.subscribe(topic, qos=1)
        assert self._subscribed.wait(DEADLINE_S), f"no SUBACK for {topic}"

    @property
    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Fail a test that leaves a thread running (a paho loop the app did not stop)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads left running: {[t.name for t in extra]}")
        time.sleep(0.02)


@pytest.fixture
def gateway(mosquitto: Mosquitto) -> Iterator[MqttPeer]:
    """Publishes recorded gateway messages to the test's broker."""
    peer = MqttPeer(mosquitto, "test-gateway")
    yield peer
    peer.close()


@pytest.fixture
def make_app(mosquitto: Mosquitto) -> Callable[..., DashboardApp]:
    """A dashboard on the test's broker with a fixed clock; keywords override the defaults."""

    def make(**overrides: Any) -> DashboardApp:
        settings: dict[str, Any] = {
            "prefix": PREFIX,
            "gateway_id": GATEWAY,
            "source": MqttSource(host=mosquitto.host, port=mosquitto.port, reconnect_max_s=1),
            "now": lambda: T0,
            "tz": UTC,
            "ack_by": "dashboard@test",
            "cursor_blink": False,
        }
        settings.update(overrides)
        return DashboardApp(**settings)

    return make
