"""One conformance suite for StatefulOperator over every StateBackend: memory, SQLite file,
a real redis-server and a real 3-node Redis Cluster."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.config import RedisConfig
from gateway.state import (
    MemoryBackend,
    RedisBackend,
    SqliteBackend,
    StateBackend,
    StatefulOperator,
    StateUsageError,
)
from tests.services import RedisCluster
from tests.state.conftest import FakeClock, eventually

BackendFactory = Callable[[], StateBackend]
BACKENDS = ["memory", "sqlite", "redis", "redis-cluster"]


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> BackendFactory:
    """A factory of backends over the same storage (file, server, key prefix)."""
    if backend_kind == "memory":
        shared = MemoryBackend()
        return lambda: shared
    if backend_kind == "sqlite":
        return lambda: SqliteBackend(tmp_path / "state.db")
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"  # unique keys per test on a shared cluster
    if backend_kind == "redis":
        cfg = RedisConfig(url=request.getfixturevalue("redis_server").url)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        cfg = RedisConfig(url=cluster.url, cluster=True)
    return lambda: RedisBackend(cfg, gateway_id)


@pytest.fixture
async def backend(make_backend: BackendFactory) -> AsyncIterator[StateBackend]:
    async with make_backend() as opened:
        yield opened


@pytest.fixture
async def op(backend: StateBackend, clock: FakeClock) -> AsyncIterator[StatefulOperator]:
    async with StatefulOperator(backend, "actors", now_ms=clock, flush_interval=10) as opened:
        yield opened


def needs_durable(kind: str) -> None:
    if kind == "memory":
        pytest.skip("the memory backend does not outlive its process")


async def test_put_get_update_delete(op: StatefulOperator) -> None:
    assert op.get("d1") is None
    op.put("d1", {"sum": 1.5, "n": 1})
    assert op.get("d1") == {"sum": 1.5, "n": 1}
    new = op.update("d1", lambda s: {"sum": s["sum"] + 2, "n": s["n"] + 1})
    assert new == {"sum": 3.5, "n": 2}
    assert op.get("d1") == new
    assert op.update("d2", lambda s: 1 if s is None else s + 1) == 1
    assert op.update("d2", lambda s: None) is None  # None deletes
    op.delete("d1")
    op.delete("d1")
    assert op.get("d1") is None
    assert len(op) == 0
    with pytest.raises(StateUsageError, match="use delete"):
        op.put("d3", None)


async def test_flushed_state_survives_a_reopen(
    make_backend: BackendFactory, backend_kind: str, clock: FakeClock
) -> None:
    needs_durable(backend_kind)
    values = {f"d{i}": {"v": i, "inf": math.inf, "list": [i, "x"]} for i in range(300)}
    async with make_backend() as backend, StatefulOperator(backend, "a", now_ms=clock) as op:
        for key, value in values.items():
            op.put(key, value)
        op.delete("d7")
        assert await op.flush() == 300
        op.put("d8", "changed")
        op.delete("d9")
    # closing flushed the rest
    async with make_backend() as backend, StatefulOperator(backend, "a", now_ms=clock) as op:
        expected = {**values, "d8": "changed"}
        del expected["d7"], expected["d9"]
        assert {k: op.get(k) for k in op.keys()} == expected
    async with make_backend() as backend, StatefulOperator(backend, "b", now_ms=clock) as other:
        assert len(other) == 0  # namespaces are separate


async def test_background_flush_persists_without_being_asked(
    make_backend: BackendFactory, backend_kind: str, clock: FakeClock
) -> None:
    async with make_backend() as backend:
        async with StatefulOperator(backend, "bg", now_ms=clock, flush_interval=5) as op:
            op.put("k", 1)

            async def persisted() -> bool:
                return "k" in await backend.load("bg", clock.now)

            await eventually(persisted, "the background flush to reach the backend")
            assert await backend.load("bg", clock.now) == {"k": (b"1", None)}
            assert op.pending == 0
            assert op.flushed_batches >= 1


async def test_ttl_is_never_returned(
    make_backend: BackendFactory, backend_kind: str, clock: FakeClock
) -> None:
    async with make_backend() as backend:
        async with StatefulOperator(backend, "ttl", now_ms=clock) as op:
            op.put("short", "s", ttl=1_000)
            op.put("long", "l", ttl=60_000)
            op.put("forever", "f")
            await op.flush()
            clock.advance(999)
            assert op.get("short") == "s"
            clock.advance(1)
            assert op.get("short") is None  # lazy expiry at the exact deadline
            assert "short" not in op
            assert sorted(op.keys()) == ["forever", "long"]
            loaded = await backend.load("ttl", clock.now)
            assert sorted(loaded) == ["forever", "long"]
            assert loaded["long"][1] is not None
            assert abs(loaded["long"][1] - (clock.now - 1_000 + 60_000)) < 50
            await backend.sweep("ttl", clock.now)
            # an upsert that has already expired is a delete
            await backend.write_batch("ttl", {"late": (b"1", clock.now - 1)}, (), clock.now)
            assert "late" not in await backend.load("ttl", clock.now)
            op.update("long", lambda v: v + "!")  # keeps its expiry
            clock.advance(59_000)
            assert op.get("long") is None


async def test_redis_expires_natively(make_backend: BackendFactory, backend_kind: str) -> None:
    if not backend_kind.startswith("redis"):
        pytest.skip("PEXPIRE is Redis-only")
    async with make_backend() as backend:
        assert isinstance(backend, RedisBackend)
        now = 1_000
        await backend.write_batch("px", {"k": (b"v", now + 60_000)}, (), now)
        ttl = await backend.client.pttl(backend._key("px", "k"))
        assert 59_000 < ttl <= 60_000


async def test_checkpoint_restore_and_list(op: StatefulOperator, clock: FakeClock) -> None:
    op.put("a", 1)
    op.put("b", {"x": [1, 2]}, ttl=10_000)
    first = await op.checkpoint("before")
    op.put("a", 2)
    op.delete("b")
    op.put("c", 3)
    clock.advance(5)
    second = await op.checkpoint("after")
    assert second > first
    infos = await op.list_checkpoints()
    assert [(i.id, i.name, i.keys) for i in infos] == [(first, "before", 2), (second, "after", 2)]
    assert infos[1].created_at == clock.now
    op.put("a", 99)  # not flushed: discarded by restore
    await op.restore(first)
    assert {k: op.get(k) for k in op.keys()} == {"a": 1, "b": {"x": [1, 2]}}
    clock.advance(10_000)
    assert op.get("b") is None  # the restored expiry still holds
    await op.restore(second)
    assert {k: op.get(k) for k in op.keys()} == {"a": 2, "c": 3}
    with pytest.raises(StateUsageError, match="no checkpoint 424242"):
        await op.restore(424242)


async def test_restore_is_persisted(
    make_backend: BackendFactory, backend_kind: str, clock: FakeClock
) -> None:
    needs_durable(backend_kind)
    async with make_backend() as backend, StatefulOperator(backend, "r", now_ms=clock) as op:
        op.put("a", 1)
        cid = await op.checkpoint("one")
        op.put("a", 2)
        op.put("z", 26)
        await op.flush()
        await op.restore(cid)
    async with make_backend() as backend, StatefulOperator(backend, "r", now_ms=clock) as op:
        assert {k: op.get(k) for k in op.keys()} == {"a": 1}


async def test_old_checkpoints_are_pruned(backend: StateBackend, clock: FakeClock) -> None:
    backend.keep_checkpoints = 2
    async with StatefulOperator(backend, "p", now_ms=clock) as op:
        ids = []
        for i in range(4):
            op.put("k", i)
            ids.append(await op.checkpoint(f"c{i}"))
        assert [c.id for c in await op.list_checkpoints()] == ids[-2:]
        with pytest.raises(StateUsageError):
            await op.restore(ids[0])


async def test_operator_lifecycle(backend: StateBackend, clock: FakeClock) -> None:
    op = StatefulOperator(backend, "life", now_ms=clock)
    with pytest.raises(StateUsageError, match="inside `async with`"):
        await op.flush()
    async with op:
        pass
    with pytest.raises(StateUsageError, match="not reusable"):
        await op.__aenter__()


async def test_unserialisable_value_does_not_poison_later_batches(
    op: StatefulOperator, backend: StateBackend, clock: FakeClock
) -> None:
    op.put("bad", {1, 2})  # a set is not JSON
    op.put("good", [1, 2])
    with pytest.raises(StateUsageError, match=r"not JSON-serialisable.*'bad'"):
        await op.flush()
    assert op.refused_values == 1
    assert await backend.load("actors", clock.now) == {"good": (b"[1,2]", None)}
    op.put("next", 3)
    assert await op.flush() == 1  # the refused value is not retried
    assert op.get("bad") == {1, 2}  # still in memory


async def test_close_is_prompt_after_a_pending_limit_wakeup(
    backend: StateBackend, clock: FakeClock
) -> None:
    # Regression: the wake-up event firing as close() cancelled the flush task used to lose the
    # cancellation (asyncio.wait_for on 3.11), and close() then waited a whole interval.
    async with asyncio.timeout(10):
        for round_ in range(3):
            op = StatefulOperator(
                backend, "prompt", now_ms=clock, flush_interval=3_600_000, max_pending=10
            )
            async with op:
                for i in range(50):
                    op.put(f"k{i}", round_)
                await op.flush()
            assert op.pending == 0
