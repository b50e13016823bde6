"""RedisSync against a real 3-node Redis Cluster (shared by the session: unique gateway ids)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.config import RedisConfig, SyncConfig
from gateway.state import SqliteGatewayStore
from gateway.state.redis_connect import AnyRedis, connect_redis
from gateway.sync import REDIS_CURSOR, OutboxSignal, RedisSync, RedisWriter
from tests.services import RedisCluster, RedisServer, wait_for
from tests.sync._support import acked, alert, wait_until, window


@pytest.fixture
def cluster_cfg(redis_cluster: RedisCluster) -> RedisConfig:
    return RedisConfig(url=redis_cluster.url, cluster=True, socket_timeout="2s")


@pytest.fixture
async def cluster_client(cluster_cfg: RedisConfig) -> AsyncIterator[AnyRedis]:
    client = connect_redis(cluster_cfg)
    yield client
    await client.aclose()


def unique_gw() -> str:
    return f"gw-{uuid.uuid4().hex[:10]}"


def owner_of(cluster: RedisCluster, key: str) -> RedisServer:
    slot = int(cluster.nodes[0].cli("CLUSTER", "KEYSLOT", key).strip())
    for node in cluster.nodes:
        if int(node.cli("CLUSTER", "COUNTKEYSINSLOT", str(slot)).strip() or 0) > 0:
            return node
    raise AssertionError(f"no node holds slot {slot}")


async def test_drain_idempotent_and_ordered_on_cluster(
    redis_cluster: RedisCluster,
    cluster_cfg: RedisConfig,
    cluster_client: AnyRedis,
    sync_cfg: SyncConfig,
    outbox: SqliteGatewayStore,
) -> None:
    gw = unique_gw()
    expected = [(f"d{i % 6}", i * 1000) for i in range(3_000)]
    await outbox.commit_batch([], [window(d, s) for d, s in expected])
    await outbox.commit_batch([], [alert("d1", n) for n in range(20)])
    signal = OutboxSignal()
    sync = RedisSync(outbox, gateway_id=gw, redis=cluster_cfg, sync=sync_cfg, signal=signal)
    async with asyncio.TaskGroup() as tg, sync:
        sync.start(tg)
        await wait_until(acked(outbox, REDIS_CURSOR, 3_020), within=20, what="the cluster drain")
        # Scripts flushed on every node (a failover to a fresh node): EVAL loads it again.
        for node in redis_cluster.nodes:
            node.cli("SCRIPT", "FLUSH")
        await outbox.commit_batch([], [alert("d2", 99)])
        signal.notify()
        await wait_until(acked(outbox, REDIS_CURSOR, 3_021), within=10, what="the last alert")
    # A resend of everything (crash before the ack) adds nothing.
    # (3,000 entries: three script chunks in one cluster pipeline.)
    again = [window(d, s)._replace(id=i + 1) for i, (d, s) in enumerate(expected)]
    writer = RedisWriter(cluster_client, gw, target="cluster", windows_maxlen=100_000)
    resend = await writer.apply(again)
    assert (resend.applied, resend.skipped) == (0, 3_000)
    windows = [
        (f[b"device"].decode(), int(f[b"window_start"]))
        for _, f in await cluster_client.xrange(f"edge:{{{gw}}}:windows")
    ]
    assert windows == expected
    assert await cluster_client.xlen(f"edge:{{{gw}}}:alerts") == 21
    # One gateway, one slot.
    slots = {
        redis_cluster.nodes[0].cli("CLUSTER", "KEYSLOT", key).strip()
        for key in (f"edge:{{{gw}}}:windows", f"edge:{{{gw}}}:device:d1", f"edge:{{{gw}}}:sync")
    }
    assert len(slots) == 1
    assert await cluster_client.hexists("edge:gateways", gw)


async def test_cluster_node_killed_mid_drain_then_started(
    redis_cluster: RedisCluster,
    cluster_cfg: RedisConfig,
    cluster_client: AnyRedis,
    sync_cfg: SyncConfig,
    outbox: SqliteGatewayStore,
) -> None:
    gw = unique_gw()
    signal = OutboxSignal()
    expected = [(f"d{i % 4}", i * 1000) for i in range(8_000)]
    await outbox.commit_batch([], [window(d, s) for d, s in expected[:4_000]])
    sync = RedisSync(outbox, gateway_id=gw, redis=cluster_cfg, sync=sync_cfg, signal=signal)
    try:
        async with asyncio.TaskGroup() as tg, sync:
            sync.start(tg)
            await wait_until(acked(outbox, REDIS_CURSOR, 1_000), within=20, what="draining")
            node = owner_of(redis_cluster, f"edge:{{{gw}}}:windows")
            await asyncio.to_thread(node.kill)
            await outbox.commit_batch([], [window(d, s) for d, s in expected[4_000:]])
            signal.notify()
            await wait_until(lambda: not sync.connected, within=20, what="the outage")
            await asyncio.to_thread(node.start)
            await wait_until(acked(outbox, REDIS_CURSOR, 8_000), within=30, what="the drain")
    finally:
        await asyncio.to_thread(
            wait_for,
            lambda: all(
                "cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in redis_cluster.nodes
            ),
            30,
            "the cluster to be healthy again",
        )
    windows = [
        (f[b"device"].decode(), int(f[b"window_start"]))
        for _, f in await cluster_client.xrange(f"edge:{{{gw}}}:windows")
    ]
    assert windows == expected
