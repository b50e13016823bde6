"""Alerts republished to an upstream MQTT broker: :class:`MqttForwarder`.

A second paho-mqtt 2.x connection with its own TLS and credentials (``[forward.mqtt]``),
bridged to asyncio the way aiomqtt does it: paho's network thread only ever reaches the loop
through ``call_soon_threadsafe``; each QoS 1 publish has a future keyed by its message id,
resolved by the PUBACK and removed in ``finally``. The outbox cursor moves only past alerts
the broker acknowledged. Delivery upstream is at-least-once (a PUBACK lost in a disconnect
means a resend); consumers dedupe by ``alert_id`` + ``state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import SyncConfig, UpstreamMqttConfig
from gateway.security.tls import client_ssl_context, use_with_paho
from gateway.sync._drain import DrainLoop, wall_ms
from gateway.sync._errors import SinkRefused, SinkUnavailable
from gateway.sync._outbox import Outbox, OutboxEntryLike, OutboxSignal

__all__ = ["MQTT_FORWARD_CURSOR", "MqttForwarder"]

MQTT_FORWARD_CURSOR = "forward.mqtt"
"""The outbox cursor of the upstream MQTT sink."""

_log = logging.getLogger("gateway.sync.forward.mqtt")


class MqttForwarder(DrainLoop):
    """Publishes every alert of the outbox to ``[forward.mqtt]`` with QoS 1, in order.

    Args:
        outbox: the state store.
        gateway_id: this gateway (``{gateway_id}`` in the topic, default client id).
        cfg: the ``[forward.mqtt]`` section.
        sync: the ``[sync]`` section (batch size, retry cap).
        signal: notified by the runtime after each outbox commit.
        ack_timeout_s: a PUBACK not back within this is a failure (the batch is retried).
    """

    sink_name = "forward.mqtt"

    def __init__(
        self,
        outbox: Outbox,
        *,
        gateway_id: str,
        cfg: UpstreamMqttConfig,
        sync: SyncConfig,
        signal: OutboxSignal | asyncio.Event | None = None,
        ack_timeout_s: float = 10.0,
        keepalive_s: int = 30,
        now_ms: Callable[[], int] = wall_ms,
        cursor: str = MQTT_FORWARD_CURSOR,
    ) -> None:
        super().__init__(
            outbox,
            cursor=cursor,
            batch_size=sync.batch_size,
            retry_max_ms=sync.retry_max,
            signal=signal,
            now_ms=now_ms,
            logger=_log,
        )
        self._cfg = cfg
        self._sync_cfg = sync
        self._topic = cfg.topic.replace("{gateway_id}", gateway_id)
        self._client_id = cfg.client_id or f"edge-gateway-{gateway_id}-forward"[:64]
        self._ack_timeout = ack_timeout_s
        self._keepalive = keepalive_s
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._up = asyncio.Event()
        self._refused: str | None = None

    def describe(self) -> str:
        return f"alert forwarding to mqtt {self._cfg.host}:{self._cfg.port}"

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    # -- paho, in its thread: only call_soon_threadsafe from here ---------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._call(self._connected, not rc.is_failure, str(rc))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._call(self._connected, False, f"disconnected: {rc}")

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._call(self._published, mid, None if not rc.is_failure else str(rc))

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(func, *args)

    # -- on the event loop ----------------------------------------------------------------

    def _connected(self, up: bool, reason: str) -> None:
        if up:
            self._refused = None
            self._up.set()
            return
        self._up.clear()
        if reason and not reason.startswith("disconnected"):
            self._refused = f"upstream broker refused the connection: {reason}"
        error = SinkUnavailable(f"{self.describe()}: {reason}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    def _published(self, mid: int, failure: str | None) -> None:
        future = self._pending.get(mid)
        if future is None or future.done():
            return
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(SinkRefused(f"{self.describe()}: publish refused: {failure}"))

    async def on_open(self) -> None:
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.reconnect_delay_set(1, max(1, self._sync_cfg.retry_max // 1000))
        client.max_inflight_messages_set(max(20, min(1000, self._sync_cfg.batch_size)))
        if self._cfg.username is not None:
            client.username_pw_set(self._cfg.username, self._cfg.password_value())
        if self._cfg.tls is not None or self._cfg.port == 8883:
            # Reading the CA and key files blocks: do it off the loop.
            context = await asyncio.to_thread(client_ssl_context, self._cfg.tls)
            use_with_paho(client, context)
        self._client = client
        client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._keepalive)
        client.loop_start()  # paho's thread connects, and reconnects with backoff

    async def on_close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    async def deliver(self, entries: Sequence[OutboxEntryLike]) -> int:
        alerts = [e for e in entries if e.kind == "alert"]
        if not alerts:
            return entries[-1].id
        client = self._client
        if client is None:
            msg = f"{self.describe()}: not open"
            raise SinkUnavailable(msg)
        if not self._up.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(2.0, self._ack_timeout)):
                    await self._up.wait()
            if not self._up.is_set():
                msg = f"{self.describe()}: {self._refused or 'not connected'}"
                raise SinkUnavailable(msg)
        loop = asyncio.get_running_loop()
        sent: list[tuple[int, asyncio.Future[None]]] = []
        mids: list[int] = []
        try:
            for entry in alerts:
                info = client.publish(self._topic, entry.payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    break  # queue full etc.: what went so far is awaited, the rest retried
                future: asyncio.Future[None] = loop.create_future()
                self._pending[info.mid] = future  # same loop step as publish: no race
                mids.append(info.mid)
                sent.append((entry.id, future))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ack_timeout):
                    await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        finally:
            for mid in mids:
                self._pending.pop(mid, None)
        return self._confirmed_upto(entries, dict(sent))

    def _confirmed_upto(
        self, entries: Sequence[OutboxEntryLike], futures: dict[int, asyncio.Future[None]]
    ) -> int:
        upto = 0
        for entry in entries:
            if entry.kind == "alert":
                future = futures.get(entry.id)
                if future is None or not future.done() or future.cancelled():
                    break
                error = future.exception()
                if error is not None:
                    raise SinkUnavailable(str(error), done_upto=upto) from error
            upto = entry.id
        if upto != entries[-1].id:
            msg = f"{self.describe()}: no PUBACK within {self._ack_timeout:g}s"
            raise SinkUnavailable(msg, done_upto=upto)
        return upto

    def status(self) -> dict[str, Any]:
        return {**super().status(), "topic": self._topic}
