"""paho-mqtt 2.x on the asyncio event loop, with manual acknowledgement.

paho runs without a thread of its own: its socket is watched by the event loop
(``add_reader``/``add_writer``, as in paho's ``loop_asyncio`` example and aiomqtt), so every
paho callback runs on the loop thread and no message crosses a thread boundary. Only the
blocking ``connect`` (DNS, TCP and TLS handshakes) runs in an executor.

:class:`MqttConnection` is an async context manager: entering starts a named task that keeps
the connection up (capped, jittered exponential backoff) and renews the subscriptions on every
connect, since the broker may have lost the session. Incoming messages are handed, in
arrival order, to the ``on_messages`` callback in batches; with ``manual_ack`` the owner
acknowledges each one (:meth:`MqttConnection.ack`) once its effect is durable.

Errors, by what the operator must do:

    MqttError
     └── MqttAuthError      credentials or certificate refused: fix the config (no retry storm)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.security import classify_connack, classify_connection_error
from gateway.security.tls import close_sockets_of

log = logging.getLogger(__name__)

_MISC_INTERVAL_S = 1.0


class MqttError(Exception):
    """A broker connection problem."""


class MqttAuthError(MqttError):
    """The broker refused our credentials or certificate; retrying will not help."""


class Message(NamedTuple):
    """One received message; ``mid`` and ``qos`` are what :meth:`MqttConnection.ack` needs.

    A named tuple (immutable): one is made per message on the read path, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) costs three times as much.
    """

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    dup: bool


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass
class MqttSettings:
    """What a connection needs; built from the config by the owner."""

    host: str
    port: int
    client_id: str
    subscriptions: Sequence[tuple[str, int]] = ()
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    protocol: str = "auto"
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    clean_start: bool = False
    manual_ack: bool = True
    will: Will | None = None
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    receive_maximum: int = 65_535
    name: str = "mqtt"


@dataclass
class ConnectionStats:
    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    last_error: str | None = None
    messages: int = 0
    last_message: float = 0.0  # time.monotonic() of the newest message (or of the connect)
    resubscribes: int = 0
    subacks: int = 0  # subscriptions the broker has confirmed
    protocol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_READ_CHUNK = 65_536
_MESSAGES_PER_READ = 256  # messages taken per wake-up of the reader before the loop gets a turn
_WRITE_CHUNK = 65_536  # QoS 0 publishes sent with one send() up to this many bytes


def _variable_byte_int(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int] | None:
    """The MQTT variable-byte integer at ``buf[pos:end]`` and the position after it; ``None``
    when it is cut at ``end`` or longer than the 4 bytes MQTT allows."""
    value = shift = 0
    while pos < end and shift < 28:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos
    return None


class _FastClient(paho.Client):
    """paho's client with a buffered socket read and a lean PUBLISH path.

    Measured (bench/bench_e2e.py, py-spy): stock paho spends about 40% of the gateway's CPU on
    an incoming message -- three ``recv`` calls per packet (command byte, length, body), MQTT 5
    properties parsed into objects nobody reads, a ``MQTTMessage`` and a topic-filter match per
    message. Here a packet's bytes come from one ``recv`` of up to 64 KiB shared by every packet
    in it, and a QoS 0/1 PUBLISH goes straight to ``publish_sink`` (topic, payload, qos, mid,
    retain, dup). Acknowledgement is unchanged (manual ack, or paho's PUBACK). Anything
    unusual (QoS 2, an empty or non-UTF-8 topic) takes paho's own path.

    Outgoing, a QoS 0 PUBLISH (window results, device views) is :meth:`publish_qos0`: its
    bytes join the QoS 0 packets queued since the last write, sent with one ``send`` (paho:
    a ``send`` per message, and a ``MQTTMessageInfo`` with a ``threading.Condition``, a
    ``ReasonCode`` and a ``Properties`` per message: 13% of the gateway's CPU at QoS 0 in
    bench/bench_e2e.py, py-spy).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.publish_sink: Callable[[str, bytes, int, int, bool, bool], None] | None = None
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None
        self._qos0: dict[str, Any] | None = None  # the queued packet QoS 0 publishes join

    def publish_qos0(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Queue a QoS 0 PUBLISH; ``False`` (nothing queued) without a socket or for a topic
        paho would refuse, whose publish is then left to paho.

        The packet's bytes are appended to the last packet in paho's out queue when that is
        a batch of ours not yet being written (so the order of everything queued is kept),
        else they start a new batch.
        """
        topic_bytes = topic.encode()
        if self._sock is None or b"+" in topic_bytes or b"#" in topic_bytes or not (
            0 < len(topic_bytes) <= 65_535
        ):
            return False
        extra = 1 if self._protocol == MQTTProtocolVersion.MQTTv5 else 0  # no properties
        length = 2 + len(topic_bytes) + extra + len(payload)
        header = bytearray((0x30 | retain,))
        while True:  # the remaining length, as a variable-byte integer
            byte, length = length & 0x7F, length >> 7
            header.append(byte | 0x80 if length else byte)
            if not length:
                break
        header += len(topic_bytes).to_bytes(2, "big")
        header += topic_bytes
        if extra:
            header.append(0)
        out = self._out_packet
        batch = self._qos0
        if (
            batch is None
            or not out
            or out[-1] is not batch
            or batch["pos"]
            or batch["to_process"] >= _WRITE_CHUNK
        ):
            batch = self._qos0 = {
                "command": paho.PUBLISH, "mid": 0, "qos": 0, "pos": 0, "to_process": 0,
                "packet": bytearray(), "info": paho.MQTTMessageInfo(0),
            }
            out.append(batch)  # type: ignore[arg-type]
        packet: bytearray = batch["packet"]
        packet += header
        packet += payload
        batch["to_process"] = len(packet)
        self._call_socket_register_write()
        return True

    @property
    def buffered(self) -> bool:
        """Bytes read from the socket and not yet handed to paho (no readiness event for them)."""
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: forget the old one's bytes
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        pos = self._rpos
        end = pos + bufsize
        self._rpos = end
        return self._rbuf[pos:end]

    def _packet_read(self) -> MQTTErrorCode:
        """Complete QoS 0/1 PUBLISH packets at the head of the read buffer go to the sink
        straight from it, up to ``_MESSAGES_PER_READ`` per call: no per-packet ``recv`` calls for
        the command byte, length and body, nor paho's per-packet state dict, lock and clock
        reads (18% of the gateway's CPU at QoS 0 in bench/bench_e2e.py, py-spy). Anything
        else -- another packet type, QoS 2, a packet split across reads -- takes paho's path.
        """
        sink = self.publish_sink
        if sink is None or self._in_packet["command"] or self._rsock is not self._sock:
            return super()._packet_read()
        buf, pos, size = self._rbuf, self._rpos, len(self._rbuf)
        handled = 0
        while pos < size and handled < _MESSAGES_PER_READ:
            command = buf[pos]
            if command & 0xF0 != 0x30 or command & 0x06 > 0x02:
                break  # not a QoS 0/1 PUBLISH
            remaining = _variable_byte_int(buf, pos + 1, size)
            if remaining is None:
                break  # the length itself is cut (or malformed: paho reports it)
            length, start = remaining
            end = start + length
            if end > size:
                break  # the body is cut: paho's path reads the rest
            rc = self._publish(command, buf[start:end], sink)
            if rc is None:
                break  # a topic alias or a topic that is not UTF-8: paho's path reports it
            pos = self._rpos = end
            handled += 1
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        if not handled:
            return super()._packet_read()
        self._last_bytes_received = time.monotonic()  # paho's keep-alive reads it
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_publish(self) -> MQTTErrorCode:
        sink = self.publish_sink
        command = self._in_packet["command"]
        if sink is None or (command & 0x06) >> 1 > 1:
            return super()._handle_publish()
        rc = self._publish(command, self._in_packet["packet"], sink)
        return super()._handle_publish() if rc is None else rc

    def _publish(
        self,
        command: int,
        packet: bytes | bytearray,
        sink: Callable[[str, bytes, int, int, bool, bool], None],
    ) -> MQTTErrorCode | None:
        """Hand a QoS 0/1 PUBLISH's fields (``packet``: its variable header and payload) to
        ``sink`` and acknowledge it unless acks are manual; ``None`` for one paho's own path
        must see (a topic alias, a topic that is not UTF-8)."""
        qos = (command & 0x06) >> 1
        end = 2 + int.from_bytes(packet[:2], "big")
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return None
        if not topic:
            return None  # MQTT 5 topic alias: paho's path reports it
        mid = 0
        if qos:
            mid = int.from_bytes(packet[end : end + 2], "big")
            end += 2
        if self._protocol == MQTTProtocolVersion.MQTTv5:  # the properties are skipped
            properties = _variable_byte_int(packet, end, len(packet))
            if properties is None:
                return None  # malformed: paho's path reports it
            length, end = properties
            end += length
        payload = packet[end:]
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        sink(topic, payload, qos, mid, bool(command & 0x01), bool(command & 0x08))
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class MqttConnection:
    """One broker connection on the running event loop. Reusable, not reentrant."""

    def __init__(
        self,
        settings: MqttSettings,
        on_messages: Callable[[list[Message]], None] | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ConnectionStats()
        self._on_messages = on_messages
        self._on_connect_hook = on_connect
        self._protocol = (
            MQTTProtocolVersion.MQTTv311
            if settings.protocol == "3.1.1"
            else MQTTProtocolVersion.MQTTv5
        )
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._batch: list[Message] = []
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_publish: dict[int, asyncio.Future[None]] = {}
        self._entered = False
        self._closing = False
        self._loop_thread = 0
        self._auth_failure: str | None = None

    # -- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> MqttConnection:
        if self._entered:
            raise RuntimeError("MqttConnection is reusable but not reentrant: exit it first")
        self._entered = True
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = self._make_client()
        name = self.settings.name
        self._tasks = [
            asyncio.create_task(self._keep_connected(), name=f"gateway[{name}].connection"),
            asyncio.create_task(self._misc_loop(), name=f"gateway[{name}].misc"),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client = self._client
        self._closing = True
        if client is not None and self.stats.connected:
            with contextlib.suppress(Exception):
                client.disconnect()
                client.loop_write()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if client is not None:
            sock = client.socket()
            if sock is not None and self._loop is not None:
                self._remove_socket(sock)
                with contextlib.suppress(OSError):
                    sock.close()
        for future in self._pending_publish.values():
            if not future.done():
                future.set_exception(MqttError("connection closed before the broker confirmed"))
        self._pending_publish.clear()
        self.stats.connected = False
        self._entered = False

    async def wait_connected(self, within: float | None = None) -> None:
        """Wait until connected; raise :class:`MqttAuthError` if the broker refuses us."""
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            async with asyncio.timeout(within):
                while not connected.done():
                    if self._auth_failure is not None:
                        raise MqttAuthError(self._auth_failure)
                    await asyncio.wait({connected}, timeout=0.05)
        finally:
            connected.cancel()
        if self._auth_failure is not None and not self.stats.connected:
            raise MqttAuthError(self._auth_failure)

    @property
    def connected(self) -> bool:
        return self.stats.connected

    # -- publishing and acknowledging -----------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> int:
        """Queue a publish; returns its mid (0 for QoS 0). Never blocks; paho queues while
        disconnected."""
        client = self._client
        assert client is not None, "publish() needs the connection to be entered"
        if qos == 0 and isinstance(client, _FastClient) and client.publish_qos0(
            topic, payload, retain
        ):
            return 0
        info = client.publish(topic, payload, qos=qos, retain=retain)
        return info.mid

    async def publish_confirmed(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1)."""
        assert self._client is not None
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return
        self._pending_publish[info.mid] = future
        try:
            await future
        finally:
            self._pending_publish.pop(info.mid, None)

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge messages whose effect is durable (manual-ack mode)."""
        client = self._client
        if client is None or not self.settings.manual_ack:
            return
        for message in messages:
            if message.qos:
                client.ack(message.mid, message.qos)

    # -- paho plumbing ---------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = _FastClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=self._protocol,
            clean_session=None if self._protocol == MQTTProtocolVersion.MQTTv5 else s.clean_start,
            reconnect_on_failure=False,
            manual_ack=s.manual_ack,
        )
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            client.tls_set_context(s.tls)
        if s.will is not None:
            client.will_set(s.will.topic, s.will.payload, qos=s.will.qos, retain=s.will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.publish_sink = self._on_publish_packet
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    async def _keep_connected(self) -> None:
        assert self._client is not None
        assert self._loop is not None
        delay = self.settings.reconnect_min_s
        failures = 0
        while True:
            self._disconnected.clear()
            try:
                await self._loop.run_in_executor(None, self._connect_blocking)
            except (OSError, ssl.SSLError, ValueError) as exc:
                close_sockets_of(exc)  # paho leaves the socket of a failed handshake open
                failures += 1
                failure = classify_connection_error(exc, secrets=[self.settings.password])
                reason = failure.reason
                if failures == 1 or reason != self.stats.last_error:
                    log.warning(
                        "MQTT broker %s:%d unreachable: %s; retrying with backoff",
                        self.settings.host, self.settings.port, reason,
                    )
                self.stats.last_error = reason
                if failure.fatal:
                    # A certificate or credential problem: retrying cannot help, but we keep
                    # retrying slowly (capped backoff) in case the operator fixes the broker.
                    self._auth_failure = reason
            else:
                await self._disconnected.wait()
                if self._auth_failure is None:
                    delay = self.settings.reconnect_min_s
            # Jitter keeps a fleet of gateways from reconnecting in lockstep after an outage.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _connect_blocking(self) -> None:
        assert self._client is not None
        s = self.settings
        properties = None
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
            properties.ReceiveMaximum = s.receive_maximum
            rc = self._client.connect(
                s.host, s.port, keepalive=s.keepalive_s, clean_start=s.clean_start,
                properties=properties,
            )
        else:
            rc = self._client.connect(s.host, s.port, keepalive=s.keepalive_s)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise OSError(f"connect failed: {paho.error_string(rc)}")

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            code = reason.value
            text = f"broker refused the connection: {reason.getName()}"
            if code == 1 and self.settings.protocol == "auto" and (
                self._protocol == MQTTProtocolVersion.MQTTv5
            ):
                # An MQTT 3.1.1-only broker answers "unacceptable protocol version".
                log.info("broker does not speak MQTT 5; falling back to 3.1.1")
                self._protocol = MQTTProtocolVersion.MQTTv311
                self._client = self._make_client()
            elif classify_connack(reason).fatal:
                self._auth_failure = classify_connack(reason).reason
                text = self._auth_failure
            self.stats.last_error = text
            log.error("%s", text)
            return
        self.stats.connected = True
        self.stats.connects += 1
        self.stats.protocol = "5" if self._protocol == MQTTProtocolVersion.MQTTv5 else "3.1.1"
        self._auth_failure = None
        self.stats.last_message = time.monotonic()
        if self.stats.connects > 1 or self.stats.last_error:
            log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)
        self.stats.last_error = None
        # Subscribe on every connect: the broker may have lost our session.
        if self.settings.subscriptions:
            client.subscribe(list(self.settings.subscriptions))
        self._connected.set()
        if self._on_connect_hook is not None:
            self._on_connect_hook()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.stats.connected
        self.stats.connected = False
        self._connected.clear()
        self._disconnected.set()
        if was_connected and not self._closing:
            self.stats.disconnects += 1
            log.warning("MQTT connection to %s:%d lost (%s); reconnecting",
                        self.settings.host, self.settings.port, reason.getName())

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        self._batch.append(
            Message(
                msg.topic, bytes(msg.payload), msg.qos, msg.mid, bool(msg.retain), bool(msg.dup)
            )
        )
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _on_publish_packet(
        self, topic: str, payload: bytes, qos: int, mid: int, retain: bool, dup: bool
    ) -> None:
        self._batch.append(Message(topic, payload, qos, mid, retain, dup))
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def set_subscriptions(self, subscriptions: Sequence[tuple[str, int]]) -> None:
        """Replace the subscriptions (config reload): drop the old filters, add the new."""
        old = {topic for topic, _ in self.settings.subscriptions}
        self.settings.subscriptions = list(subscriptions)
        new = {topic for topic, _ in subscriptions}
        client = self._client
        if client is None or not self.stats.connected:
            return  # the next connect subscribes to the new set
        if old - new:
            client.unsubscribe(sorted(old - new))
        added = [(t, q) for t, q in subscriptions if t not in old]
        if added:
            client.subscribe(added)

    def resubscribe(self) -> None:
        """Renew every subscription (a stalled intake: the broker may have dropped them)."""
        if self._client is not None and self.stats.connected and self.settings.subscriptions:
            self.stats.resubscribes += 1
            self.stats.last_message = time.monotonic()
            self._client.subscribe(list(self.settings.subscriptions))

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        self.stats.messages += len(batch)
        self.stats.last_message = time.monotonic()
        if batch and self._on_messages is not None:
            self._on_messages(batch)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused a subscription: %s (check the broker's ACL)",
                      refused[0].getName())
        self.stats.subacks += 1

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        future = self._pending_publish.get(mid)
        if future is not None and not future.done():
            if reason.is_failure:
                future.set_exception(MqttError(f"broker refused publish: {reason.getName()}"))
            else:
                future.set_result(None)

    def _on_loop(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn`` on the loop: now when paho calls from the loop thread (the socket may be
        closed right after the callback returns), else thread-safely (connect's executor)."""
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        # paho leaves Nagle on: a lone alert then waits for the broker's delayed ACK (~40 ms
        # p50 reading->alert at light load, bench/bench_latency.py); acks and alerts are small.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._on_loop(self._loop.add_reader, sock, self._read)

    def _read(self) -> None:
        client = self._client
        if client is None:
            return
        # Drain what the socket holds (several packets per wake-up) but give the loop back
        # regularly; SSL sockets may hold decrypted bytes that select() does not report.
        start = len(self._batch)
        for _ in range(_MESSAGES_PER_READ):
            before = len(self._batch)
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            sock = client.socket()
            if sock is None:
                return
            if len(self._batch) == before and not (hasattr(sock, "pending") and sock.pending()):
                return
            if len(self._batch) - start >= _MESSAGES_PER_READ:
                break  # one read call takes up to that many at once (_FastClient._packet_read)
        if isinstance(client, _FastClient) and client.buffered and self._loop is not None:
            # Bytes already read from the socket will not wake the loop again: come back.
            self._loop.call_soon(self._read)

    def _on_socket_close(self, client: paho.Client, userdata: object, sock: Any) -> None:
        self._on_loop(self._remove_socket, sock)

    def _remove_socket(self, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)

    def _on_socket_register_write(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        self._on_loop(self._add_writer, sock)

    def _add_writer(self, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.add_writer(sock, self._write)

    def _write(self) -> None:
        if self._client is not None:
            self._client.loop_write()

    def _on_socket_unregister_write(
        self, client: paho.Client, userdata: object, sock: Any
    ) -> None:
        assert self._loop is not None
        self._on_loop(self._remove_writer, sock)

    def _remove_writer(self, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if self._client is not None and self.stats.connected:
                # Keep-alive pings and retries of unacknowledged publishes.
                self._client.loop_misc()
