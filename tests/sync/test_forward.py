"""Alert forwarders against a real Mosquitto and a real local HTTP server."""

from __future__ import annotations

import asyncio
import http.server
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import RedisConfig, SyncConfig, UpstreamMqttConfig, WebhookConfig
from gateway.state import SqliteGatewayStore
from gateway.state.redis_connect import AnyRedis
from gateway.sync import (
    MQTT_FORWARD_CURSOR,
    REDIS_CURSOR,
    WEBHOOK_CURSOR,
    MqttForwarder,
    OutboxSignal,
    RedisSync,
    WebhookForwarder,
)
from tests.services import Mosquitto, free_port
from tests.sync._support import GW, acked, alert, first_unread, wait_until, window


class Subscriber:
    """A plain paho subscriber collecting payloads (QoS 1) on one topic."""

    def __init__(self, broker: Mosquitto, topic: str, *, persistent: bool = False) -> None:
        self.payloads: list[bytes] = []
        self._ready = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sub-{uuid.uuid4()}",
            clean_session=not persistent,
        )
        self._client.reconnect_delay_set(0.1, 0.5)
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = lambda _c, _u, m: self.payloads.append(m.payload)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._ready.wait(10), "the test subscriber did not subscribe"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto, f"edge-gateway/{GW}/alerts")
    yield sub
    sub.close()


def upstream(broker: Mosquitto) -> UpstreamMqttConfig:
    return UpstreamMqttConfig(host=broker.host, port=broker.port)


def no_rows(outbox: SqliteGatewayStore) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await outbox.outbox_stats()).rows == 0

    return check


def alert_ids(payloads: list[bytes]) -> list[str]:
    return [orjson.loads(p)["alert_id"] for p in payloads]


async def test_mqtt_forwarder_publishes_alerts_in_order_and_acks_after_puback(
    mosquitto: Mosquitto, subscriber: Subscriber, outbox: SqliteGatewayStore, sync_cfg: SyncConfig
) -> None:
    signal = OutboxSignal()
    entries = [alert("d1", n) if n % 3 == 0 else window("d1", n * 1000) for n in range(300)]
    await outbox.commit_batch([], entries)
    sent = [orjson.loads(e.payload)["alert_id"] for e in entries if e.kind == "alert"]
    forwarder = MqttForwarder(
        outbox, gateway_id=GW, cfg=upstream(mosquitto), sync=sync_cfg, signal=signal
    )
    async with asyncio.TaskGroup() as tg, forwarder:
        assert forwarder.task_name == "gateway[sync].forward.mqtt"
        forwarder.start(tg)
        await wait_until(acked(outbox, MQTT_FORWARD_CURSOR, 300), within=15, what="all acked")
        await wait_until(lambda: len(subscriber.payloads) >= 100, within=10, what="delivery")
        assert forwarder.status()["connected"] is True
    assert alert_ids(subscriber.payloads) == sent


async def test_dead_upstream_broker_does_not_hold_back_redis_sync(
    mosquitto: Mosquitto,
    outbox: SqliteGatewayStore,
    redis_cfg: RedisConfig,
    sync_cfg: SyncConfig,
    client: AnyRedis,
) -> None:
    await asyncio.to_thread(mosquitto.kill)
    signal = OutboxSignal()
    await outbox.commit_batch([], [alert("d1", n) for n in range(50)])
    sync = RedisSync(outbox, gateway_id=GW, redis=redis_cfg, sync=sync_cfg, signal=signal)
    forwarder = MqttForwarder(
        outbox, gateway_id=GW, cfg=upstream(mosquitto), sync=sync_cfg, signal=signal
    )
    async with asyncio.TaskGroup() as tg, sync, forwarder:
        sync.start(tg)
        forwarder.start(tg)
        await wait_until(acked(outbox, REDIS_CURSOR, 50), within=10, what="redis")
        await wait_until(lambda: forwarder.last_error is not None, within=10, what="mqtt error")
        assert await first_unread(outbox, MQTT_FORWARD_CURSOR) == 1
        assert forwarder.status()["connected"] is False
        assert sync.status()["backlog_rows"] == 50  # kept for the forwarder
        await asyncio.to_thread(mosquitto.start)
        await wait_until(acked(outbox, MQTT_FORWARD_CURSOR, 50), within=20, what="forwarding")
        await wait_until(no_rows(outbox), within=5, what="rows deleted")
    assert await client.xlen(f"edge:{{{GW}}}:alerts") == 50


class Hook(http.server.BaseHTTPRequestHandler):
    """Answers from a script of statuses (then 200); records every body it got."""

    script: list[int]
    bodies: list[bytes]
    headers_seen: list[str]
    reject_ids: set[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append(body)
        self.headers_seen.append(self.headers.get("Authorization", ""))
        status = self.script.pop(0) if self.script else 200
        if orjson.loads(body).get("alert_id") in self.reject_ids:
            status = 422
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[http.server.ThreadingHTTPServer, type[Hook]]]:
    handler = type("ScriptedHook", (Hook,), {})
    handler.script, handler.bodies, handler.headers_seen, handler.reject_ids = [], [], [], set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-webhook", daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_webhook_retries_until_accepted_and_skips_a_refused_alert(
    hook: tuple[http.server.ThreadingHTTPServer, type[Hook]],
    outbox: SqliteGatewayStore,
    sync_cfg: SyncConfig,
) -> None:
    server, handler = hook
    handler.script = [503, 503, 429, 500]
    bad = alert("d1", 5)
    handler.reject_ids = {orjson.loads(bad.payload)["alert_id"]}
    entries = [alert("d1", n) for n in range(10)]
    await outbox.commit_batch([], [*entries[:3], window("d1", 0), *entries[3:]])
    cfg = WebhookConfig(
        url=f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token",
        timeout="2s",
        headers={"Authorization": "Bearer s3cret"},
    )
    forwarder = WebhookForwarder(outbox, cfg=cfg, sync=sync_cfg, signal=OutboxSignal())
    async with asyncio.TaskGroup() as tg, forwarder:
        forwarder.start(tg)
        await wait_until(acked(outbox, WEBHOOK_CURSOR, 11), within=20, what="all")
        status = forwarder.status()
    delivered = [orjson.loads(b)["alert_id"] for b in handler.bodies]
    # Four failures retried (the same alert each time), then each alert once, in order.
    assert delivered[:5] == [orjson.loads(entries[0].payload)["alert_id"]] * 5
    assert delivered[5:] == [orjson.loads(e.payload)["alert_id"] for e in entries[1:]]
    assert set(handler.headers_seen) == {"Bearer s3cret"}
    assert status["rejected"] == 1
    assert "secret-token" not in forwarder.describe()
    assert "s3cret" not in str(status)


async def test_webhook_down_then_up(outbox: SqliteGatewayStore, sync_cfg: SyncConfig) -> None:
    port = free_port()
    cfg = WebhookConfig(url=f"http://127.0.0.1:{port}/alerts", timeout="1s")
    await outbox.commit_batch([], [alert("d1", n) for n in range(3)])
    forwarder = WebhookForwarder(outbox, cfg=cfg, sync=sync_cfg, signal=OutboxSignal())
    handler = type("LateHook", (Hook,), {})
    handler.script, handler.bodies, handler.headers_seen, handler.reject_ids = [], [], [], set()
    async with asyncio.TaskGroup() as tg, forwarder:
        forwarder.start(tg)
        await wait_until(lambda: forwarder.last_error is not None, within=10, what="failure")
        assert "refused" in (forwarder.last_error or "").lower()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            await wait_until(acked(outbox, WEBHOOK_CURSOR, 3), within=15, what="up")
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    assert len(handler.bodies) == 3


async def test_upstream_broker_restart_mid_stream_delivers_every_alert(
    mosquitto: Mosquitto, outbox: SqliteGatewayStore, sync_cfg: SyncConfig
) -> None:
    # A persistent subscriber (clean_session off), so the broker keeps its queue over the stop.
    sub = Subscriber(mosquitto, f"edge-gateway/{GW}/alerts", persistent=True)
    entries = [alert("d1", n) for n in range(3_000)]
    sent = [orjson.loads(e.payload)["alert_id"] for e in entries]
    signal = OutboxSignal()
    forwarder = MqttForwarder(
        outbox, gateway_id=GW, cfg=upstream(mosquitto), sync=sync_cfg, signal=signal
    )
    try:
        async with asyncio.TaskGroup() as tg, forwarder:
            forwarder.start(tg)
            await outbox.commit_batch([], entries)
            signal.notify()
            await wait_until(lambda: len(sub.payloads) >= 300, within=15, what="some delivered")
            await asyncio.to_thread(mosquitto.stop)  # graceful: its queues are saved
            await wait_until(lambda: not forwarder.connected, within=10, what="the disconnect")
            await asyncio.to_thread(mosquitto.start)
            await wait_until(
                acked(outbox, MQTT_FORWARD_CURSOR, 3_000), within=30, what="all acknowledged"
            )
            await wait_until(lambda: set(sent) <= set(alert_ids(sub.payloads)), within=15,
                             what="every alert at the subscriber")  # fmt: skip
    finally:
        sub.close()
    received = alert_ids(sub.payloads)
    # At least once, and in order of first arrival.
    firsts = list(dict.fromkeys(received))
    assert firsts == sent
