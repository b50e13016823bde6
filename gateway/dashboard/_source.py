"""Where the dashboard's messages come from: the gateway's MQTT outputs, read with paho-mqtt 2.x.

paho runs its network loop in its own thread. Nothing it calls touches the UI: messages go into
a thread-safe, coalescing :class:`Inbox` (the newest ``P/status`` or ``P/devices/<d>`` replaces
an unread older one; alerts and window results are kept in order), and connection changes go
to a :class:`Sink`, which the app implements with ``loop.call_soon_threadsafe``. The app
drains the inbox on a timer, so the screen refreshes at most a few times a second whatever the
message rate.

Connection states, as the operator sees them::

    CONNECTING ──► CONNECTED ──► SYNCED (retained messages delivered)
        ▲   │            │
        │   ▼            ▼
      DISCONNECTED (broker down: paho retries with backoff, capped)
    REFUSED (credentials or authorisation refused: retrying will not help)
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import ssl
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

log = logging.getLogger(__name__)

#: Topic the dashboard publishes to itself after subscribing: when it comes back, the broker
#: has delivered every retained message of the subscriptions made before it.
PROBE_PREFIX = "edge-gateway-dashboard"
DEFAULT_INBOX_LIMIT = 200_000

# MQTT v5 reason codes (paho maps v3.1.1 CONNACK codes onto them) that retrying cannot fix.
_FATAL_CONNACK = {
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x8A: "banned",
}


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SYNCED = "synced"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Connection:
    """The dashboard's own link to the broker; ``detail`` says why when it is down."""

    state: ConnectionState
    detail: str = ""

    @property
    def up(self) -> bool:
        return self.state in (ConnectionState.CONNECTED, ConnectionState.SYNCED)


class Sink(Protocol):
    """What a source delivers into; both methods may be called from any thread."""

    def put(self, topic: str, payload: bytes) -> None: ...

    def connection(self, connection: Connection) -> None: ...


class Source(Protocol):
    """A feed of gateway messages the app starts on mount and stops on exit."""

    @property
    def description(self) -> str:
        """Where the messages come from, for the operator: ``127.0.0.1:1883``."""
        ...

    def start(self, sink: Sink, subscriptions: Sequence[str]) -> None: ...

    def stop(self) -> None: ...

    def publish(self, topic: str, payload: bytes) -> bool:
        """Send a command (QoS 1); False when it could not be handed to the broker."""
        ...


class Inbox:
    """Messages waiting for the next screen refresh, coalesced by topic where that is safe.

    ``coalesce(topic)`` says whether only the newest message of a topic matters. Order is kept:
    a coalesced topic moves to the end when it is replaced. Holds at most ``limit`` entries;
    anything beyond is dropped and counted in ``dropped``. ``wake`` is called (from the
    putting thread) when the inbox goes from empty to non-empty.
    """

    def __init__(
        self,
        coalesce: Callable[[str], bool],
        wake: Callable[[], None],
        limit: int = DEFAULT_INBOX_LIMIT,
    ) -> None:
        self._coalesce = coalesce
        self._wake = wake
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: dict[object, tuple[str, bytes]] = {}
        self._sequence = itertools.count()
        self.dropped = 0

    def put(self, topic: str, payload: bytes) -> None:
        with self._lock:
            was_empty = not self._pending
            key: object = topic if self._coalesce(topic) else next(self._sequence)
            replaced = self._pending.pop(key, None) if isinstance(key, str) else None
            if replaced is None and len(self._pending) >= self._limit:
                self.dropped += 1
                return
            self._pending[key] = (topic, payload)
        if was_empty:
            self._wake()

    def drain(self) -> list[tuple[str, bytes]]:
        with self._lock:
            items = list(self._pending.values())
            self._pending = {}
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


class MqttSource:
    """The gateway's outputs on an MQTT broker, through a paho client in its own thread.

    A clean session with a random client id: the dashboard is a viewer and leaves no session
    behind. paho reconnects by itself (backoff 1 s doubling to ``reconnect_max_s``); every
    (re)connect subscribes again, so retained status and active alerts arrive anew.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        keepalive_s: int = 15,
        reconnect_max_s: int = 10,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._keepalive_s = keepalive_s
        self._reconnect_max_s = reconnect_max_s
        self._client_id = f"edge-gateway-dashboard-{uuid.uuid4().hex[:12]}"
        self._probe_topic = f"{PROBE_PREFIX}/{self._client_id}/synced"
        self._client: Any = None
        self._sink: Sink | None = None
        self._subscriptions: list[str] = []
        self._connected = threading.Event()
        self._stopping = False

    @property
    def description(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, sink: Sink, subscriptions: Sequence[str]) -> None:
        if self._client is not None:
            raise RuntimeError("MqttSource is started once: make a new one to start again")
        self._sink = sink
        self._subscriptions = list(subscriptions)
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=self._reconnect_max_s)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        sink.connection(Connection(ConnectionState.CONNECTING, f"connecting to {self.description}"))
        client.connect_async(self.host, self.port, keepalive=self._keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        """Disconnect and join paho's thread; safe to call twice."""
        client, self._client = self._client, None
        if client is None or self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(Exception):  # already disconnected is fine
            client.disconnect()
        client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> bool:
        client = self._client
        if client is None or not self._connected.is_set():
            return False
        info = client.publish(topic, payload, qos=1)
        return bool(info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS)

    # --- paho callbacks (paho's thread): report, never raise into paho's loop ---------------

    def _report(self, connection: Connection) -> None:
        if self._sink is not None and not self._stopping:
            self._sink.connection(connection)

    def _on_connect(
        self, client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        try:
            if reason.is_failure:
                fatal = _FATAL_CONNACK.get(int(reason.value))
                state = ConnectionState.REFUSED if fatal else ConnectionState.DISCONNECTED
                self._report(
                    Connection(state, f"the broker at {self.description} refused: {reason}")
                )
                return
            self._connected.set()
            client.subscribe([(topic, 1) for topic in self._subscriptions])
            client.subscribe(self._probe_topic, qos=0)
            client.publish(self._probe_topic, b"", qos=0)
            self._report(Connection(ConnectionState.CONNECTED, f"connected to {self.description}"))
        except Exception:
            log.exception("dashboard: handling the broker's CONNACK failed")

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        self._connected.clear()
        detail = f"cannot reach the broker at {self.description}"
        self._report(Connection(ConnectionState.DISCONNECTED, detail))

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        self._connected.clear()
        self._report(
            Connection(
                ConnectionState.DISCONNECTED,
                f"lost the broker at {self.description} ({reason})",
            )
        )

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            topic = str(message.topic)
            if topic == self._probe_topic:
                self._report(Connection(ConnectionState.SYNCED, f"connected to {self.description}"))
            elif self._sink is not None:
                self._sink.put(topic, bytes(message.payload))
        except Exception:
            log.exception("dashboard: taking a message from paho failed")
