"""Differential property test of the outbox: random commits, reads and acks on two cursors
with a small quota give the same rows, ids and counters on the SQLite, memory and Redis
stores, and all keep the quota's rules (bytes bounded, alerts dropped only when nothing else
is left, ids increasing, a dedupe key never comes back)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import RedisConfig
from gateway.state import (
    ROW_OVERHEAD_BYTES,
    GatewayStore,
    MemoryGatewayStore,
    OutboxEntry,
    SqliteGatewayStore,
)
from gateway.state._redis_store import RedisGatewayStore
from tests.services import RedisServer

PAYLOAD = 40
QUOTA = 12 * (PAYLOAD + 3 + ROW_OVERHEAD_BYTES)  # about a dozen entries

entry = st.tuples(st.sampled_from(["window", "alert", "late", "device"]), st.integers(0, 60))
op = st.one_of(
    st.tuples(st.just("commit"), st.lists(entry, max_size=8)),
    st.tuples(st.just("ack"), st.sampled_from(["redis", "mqtt"]), st.integers(0, 6)),
)


async def _run(store: GatewayStore, ops: list[Any]) -> list[object]:
    """Apply ``ops`` and record what a consumer sees after each one."""
    trace: list[object] = []
    store.register_cursor("redis")
    store.register_cursor("mqtt")
    for step in ops:
        if step[0] == "commit":
            batch = [OutboxEntry(0, kind, f"k{n:02d}", b"p" * PAYLOAD, 1) for kind, n in step[1]]
            await store.commit_batch([], batch)
            stats = await store.outbox_stats()
            assert stats.bytes <= QUOTA
            pending = await store.outbox_read("redis", 1000)
            keys = [e.dedupe_key for e in pending]
            assert len(keys) == len(set(keys))
            assert [e.id for e in pending] == sorted(e.id for e in pending)
            trace.append(
                (
                    [(e.id, e.dedupe_key, e.kind) for e in pending],
                    stats.rows,
                    stats.bytes,
                    stats.dropped_windows,
                    stats.dropped_alerts,
                )
            )
        else:
            _, cursor, advance = step
            rows = await store.outbox_read(cursor, advance)
            if rows:
                await store.outbox_ack(cursor, rows[-1].id)
            stats = await store.outbox_stats()
            trace.append(([e.id for e in rows], stats.rows, stats.bytes))
    return trace


async def _all(ops: list[Any], redis_url: str) -> list[list[object]]:
    traces = []
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteGatewayStore(
            Path(tmp) / "s.db", max_outbox_bytes=QUOTA, now_ms=lambda: 1
        ) as lite:
            traces.append(await _run(lite, ops))
    async with MemoryGatewayStore(max_outbox_bytes=QUOTA, now_ms=lambda: 1) as memory:
        traces.append(await _run(memory, ops))
    gateway_id = f"gw-{uuid.uuid4().hex[:10]}"  # a fresh key space per example
    async with RedisGatewayStore(
        RedisConfig(url=redis_url), gateway_id, max_outbox_bytes=QUOTA, now_ms=lambda: 1
    ) as remote:
        traces.append(await _run(remote, ops))
    return traces


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for every example (hypothesis runs many per test)."""
    server = RedisServer(tmp_path_factory.mktemp("redis-model"))
    server.start()
    yield server
    server.kill()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, max_size=25))
def test_sqlite_memory_and_redis_outboxes_agree(ops: list[Any], shared_redis: RedisServer) -> None:
    sqlite_trace, memory_trace, redis_trace = asyncio.run(_all(ops, shared_redis.url))
    assert sqlite_trace == memory_trace
    assert redis_trace == memory_trace


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(entry, min_size=1, max_size=10), min_size=1, max_size=10))
def test_alerts_are_dropped_only_when_nothing_else_is_left(
    batches: list[list[tuple[Any, int]]],
) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteGatewayStore(
                Path(tmp) / "s.db", max_outbox_bytes=QUOTA, now_ms=lambda: 1
            ) as store:
                store.register_cursor("redis")
                dropped_alerts = 0
                for batch in batches:
                    await store.commit_batch(
                        [],
                        [OutboxEntry(0, k, f"k{n}", b"p" * PAYLOAD, 1) for k, n in batch],
                    )
                    stats = await store.outbox_stats()
                    kinds = [e.kind for e in await store.outbox_read("redis", 1000)]
                    if stats.dropped_alerts > dropped_alerts:
                        # this commit had to drop alerts: every non-alert went before them
                        assert set(kinds) <= {"alert"}
                    dropped_alerts = stats.dropped_alerts
                    assert stats.bytes <= QUOTA

    asyncio.run(run())
