"""RedisSync against a real redis-server: draining, wake-up, outage and recovery, status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from gateway.config import RedisConfig, SyncConfig
from gateway.state import OutboxEntry, OutboxStats, SqliteGatewayStore, StateUnavailable
from gateway.state.redis_connect import AnyRedis
from gateway.sync import REDIS_CURSOR, OutboxSignal, RedisSync, redis_status_unconfigured
from tests.services import RedisServer
from tests.sync._support import GW, acked, alert, first_unread, wait_until, window

WINDOWS = f"edge:{{{GW}}}:windows"
ALERTS = f"edge:{{{GW}}}:alerts"


def make_sync(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, signal: OutboxSignal
) -> RedisSync:
    return RedisSync(
        outbox,
        gateway_id=GW,
        redis=redis_cfg,
        sync=sync_cfg,
        signal=signal,
        heartbeat=lambda: {"readings": {"in": 42}},
        outbox_epoch="test",
    )


def drained(outbox: SqliteGatewayStore, upto: int) -> Callable[[], Awaitable[bool]]:
    return acked(outbox, REDIS_CURSOR, upto)


async def stream_starts(client: AnyRedis) -> list[tuple[str, int]]:
    return [
        (f[b"device"].decode(), int(f[b"window_start"])) for _, f in await client.xrange(WINDOWS)
    ]


async def test_drains_in_order_acks_and_wakes_on_commit(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, client: AnyRedis
) -> None:
    signal = OutboxSignal()
    await outbox.commit_batch([], [window(f"d{i % 4}", i * 1000) for i in range(1000)])
    async with asyncio.TaskGroup() as tg, make_sync(outbox, redis_cfg, sync_cfg, signal) as sync:
        task = sync.start(tg)
        assert task.get_name() == "gateway[sync].redis"
        await wait_until(drained(outbox, 1000), within=10, what="the backlog to drain")
        # Idle now (the heartbeat is 60 s away): only the commit signal can wake it.
        await outbox.commit_batch([], [alert("d1", 1)])
        signal.notify()
        await wait_until(drained(outbox, 1001), within=5, what="the alert to drain")
        status = sync.status()
    assert await stream_starts(client) == [(f"d{i % 4}", i * 1000) for i in range(1000)]
    assert await client.xlen(ALERTS) == 1
    assert status["connected"] is True
    assert status["backlog_rows"] == 0
    assert status["last_error"] is None
    assert status["delivered"] == 1001


async def test_heartbeat_in_gateways_hash_and_stopped_on_exit(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, client: AnyRedis
) -> None:
    async with (
        asyncio.TaskGroup() as tg,
        make_sync(outbox, redis_cfg, sync_cfg, OutboxSignal()) as sync,
    ):
        sync.start(tg)
        await wait_until(
            lambda: client.hexists("edge:gateways", GW), within=5, what="the heartbeat"
        )
        beat = orjson.loads(await client.hget("edge:gateways", GW))
        assert beat["state"] == "online"
        assert beat["readings"] == {"in": 42}
        assert beat["outbox"]["backlog_rows"] == 0
        assert abs(beat["ts"] - time.time() * 1000) < 60_000
    assert orjson.loads(await client.hget("edge:gateways", GW))["state"] == "stopped"


async def test_redis_killed_mid_drain_then_started_ends_exactly_once_in_order(
    outbox: SqliteGatewayStore,
    redis_server: RedisServer,
    redis_cfg: RedisConfig,
    sync_cfg: SyncConfig,
    client: AnyRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sync")
    signal = OutboxSignal()
    expected = [(f"d{i % 5}", i * 1000) for i in range(20_000)]
    await outbox.commit_batch([], [window(d, s) for d, s in expected[:15_000]])
    async with asyncio.TaskGroup() as tg, make_sync(outbox, redis_cfg, sync_cfg, signal) as sync:
        sync.start(tg)
        await wait_until(drained(outbox, 2_000), within=10, what="draining to start")
        await asyncio.to_thread(redis_server.kill)
        # Results keep arriving while Redis is down: they wait in the outbox.
        await outbox.commit_batch([], [window(d, s) for d, s in expected[15_000:]])
        signal.notify()
        await wait_until(lambda: not sync.connected, within=10, what="the outage to be seen")
        status = sync.status()
        assert status["last_error"]
        assert status["backlog_rows"] > 0
        assert await first_unread(outbox, REDIS_CURSOR) is not None  # nothing lost: waiting
        await asyncio.to_thread(redis_server.start)
        await wait_until(drained(outbox, 20_000), within=20, what="the backlog to drain")
        assert sync.connected
    assert await stream_starts(client) == expected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if "delivering again" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert len(recoveries) == 1
    assert "redis sync to redis://127.0.0.1" in warnings[0].getMessage()


async def test_redis_down_from_the_start(
    outbox: SqliteGatewayStore,
    redis_server: RedisServer,
    redis_cfg: RedisConfig,
    sync_cfg: SyncConfig,
    client: AnyRedis,
) -> None:
    await asyncio.to_thread(redis_server.kill)
    signal = OutboxSignal()
    async with asyncio.TaskGroup() as tg, make_sync(outbox, redis_cfg, sync_cfg, signal) as sync:
        sync.start(tg)
        await outbox.commit_batch([], [alert("d1", n) for n in range(10)])
        signal.notify()
        await wait_until(lambda: sync.last_error is not None, within=10, what="a failure")
        assert sync.status()["connected"] is False
        assert await first_unread(outbox, REDIS_CURSOR) == 1  # nothing acknowledged
        await asyncio.to_thread(redis_server.start)
        await wait_until(drained(outbox, 10), within=15, what="the alerts to drain")
    assert await client.xlen(ALERTS) == 10


async def test_backlog_drain_does_not_starve_the_event_loop(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig
) -> None:
    await outbox.commit_batch([], [window(f"d{i % 10}", i) for i in range(30_000)])
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with asyncio.TaskGroup() as tg:
        tick = tg.create_task(ticker(), name="test.ticker")
        async with make_sync(outbox, redis_cfg, sync_cfg, OutboxSignal()) as sync:
            sync.start(tg)
            await wait_until(drained(outbox, 30_000), within=30, what="the drain")
            assert sync.drain_per_s() > 0
        tick.cancel()
    assert max(gaps) < 0.25, f"the event loop was blocked for {max(gaps):.3f}s"


async def test_status_when_not_configured() -> None:
    assert redis_status_unconfigured()["configured"] is False


async def test_not_reentrant(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig
) -> None:
    sync = make_sync(outbox, redis_cfg, sync_cfg, OutboxSignal())
    async with sync:
        pass
    with pytest.raises(RuntimeError, match="not reusable"):
        async with sync:
            pass


class AckFailsFirst:
    """The real store, except that its first acknowledgements fail: what Redis sees is the
    same as a crash between applying a batch and acknowledging it (the batch comes again)."""

    def __init__(self, store: SqliteGatewayStore, failures: int) -> None:
        self._store = store
        self.failures = failures

    def register_cursor(self, name: str) -> None:
        self._store.register_cursor(name)

    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        return await self._store.outbox_read(cursor, limit, after=after)

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StateUnavailable("state file busy (test)")
        await self._store.outbox_ack(cursor, upto_id)

    async def outbox_stats(self) -> OutboxStats:
        return await self._store.outbox_stats()


async def test_applied_but_not_acknowledged_is_resent_and_skipped(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, client: AnyRedis
) -> None:
    expected = [(f"d{i % 3}", i * 1000) for i in range(3_000)]
    await outbox.commit_batch([], [window(d, s) for d, s in expected])
    await outbox.commit_batch([], [alert("d1", n) for n in range(30)])
    flaky = AckFailsFirst(outbox, failures=3)
    sync = RedisSync(flaky, gateway_id=GW, redis=redis_cfg, sync=sync_cfg, signal=OutboxSignal())
    async with asyncio.TaskGroup() as tg, sync:
        sync.start(tg)
        await wait_until(drained(outbox, 3_030), within=20, what="the drain")
        status = sync.status()
    assert flaky.failures == 0
    assert status["skipped"] > 0  # resent entries Redis already had
    assert await stream_starts(client) == expected
    assert await client.xlen(ALERTS) == 30


class CountingAcks(AckFailsFirst):
    """The real store, recording every acknowledgement."""

    def __init__(self, store: SqliteGatewayStore) -> None:
        super().__init__(store, failures=0)
        self.acks: list[int] = []

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        self.acks.append(upto_id)
        await super().outbox_ack(cursor, upto_id)


async def test_backlog_acknowledged_in_groups_and_all_of_it_at_the_end(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, client: AnyRedis
) -> None:
    expected = [(f"d{i % 7}", i * 1000) for i in range(10_000)]
    await outbox.commit_batch([], [window(d, s) for d, s in expected])
    counting = CountingAcks(outbox)
    sync = RedisSync(counting, gateway_id=GW, redis=redis_cfg, sync=sync_cfg, signal=None)
    async with asyncio.TaskGroup() as tg, sync:
        sync.start(tg)
        await wait_until(drained(outbox, 10_000), within=30, what="the drain")
    # One transaction (and fsync) per ack_every entries, not one per batch; the tail too.
    assert len(counting.acks) <= 10_000 // sync.ack_every + 1
    assert counting.acks == sorted(counting.acks)
    assert counting.acks[-1] == 10_000
    assert sync.delivered == 10_000
    assert await stream_starts(client) == expected


async def test_stopped_mid_backlog_acknowledges_what_redis_confirmed(
    outbox: SqliteGatewayStore, redis_cfg: RedisConfig, sync_cfg: SyncConfig, client: AnyRedis
) -> None:
    await outbox.commit_batch([], [window(f"d{i % 7}", i * 1000) for i in range(40_000)])
    sync = make_sync(outbox, redis_cfg, sync_cfg, OutboxSignal())
    async with asyncio.TaskGroup() as tg, sync:
        sync.start(tg)
        await wait_until(lambda: sync.delivered > 0, within=30, what="a first acknowledgement")
    first = await first_unread(outbox, REDIS_CURSOR)
    position = 40_000 if first is None else first - 1
    high_water = int(await client.hget(f"edge:{{{GW}}}:sync", "applied:test") or 0)
    # Redis may have applied the chunk that was in flight when the loop stopped (a resend of
    # it is skipped), but every chunk it confirmed is acknowledged, not only whole groups.
    assert 0 <= high_water - position <= sync_cfg.batch_size
    assert sync.delivered == position
