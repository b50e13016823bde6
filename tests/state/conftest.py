"""Fixtures for the state tests: a store of each kind, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.state import GatewayStore, MemoryGatewayStore, SqliteGatewayStore


class FakeClock:
    """Epoch milliseconds that only move when a test says so."""

    def __init__(self, start: int = 1_764_300_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


StoreFactory = Callable[..., GatewayStore]

STORE_KINDS = ["memory", "sqlite", "redis", "redis-cluster"]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    store_kind: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> StoreFactory:
    """Build (not open) a store of the parametrized kind; the same file/keys on every call."""
    if store_kind.startswith("redis"):
        import uuid

        from gateway.config import RedisConfig
        from gateway.state._redis_store import RedisGatewayStore

        if store_kind == "redis":
            cfg = RedisConfig(url=request.getfixturevalue("redis_server").url)
        else:
            cluster = request.getfixturevalue("redis_cluster")
            cfg = RedisConfig(url=cluster.url, cluster=True)
        gateway_id = f"gw-{uuid.uuid4().hex[:8]}"  # own keys on the shared cluster

        def redis_factory(**kw: object) -> GatewayStore:
            return RedisGatewayStore(cfg, gateway_id, now_ms=clock, **kw)  # type: ignore[arg-type]

        return redis_factory
    if store_kind == "memory":
        shared: dict[str, GatewayStore] = {}

        def memory_factory(**kw: object) -> GatewayStore:
            # a memory store does not survive a reopen; tests that reopen skip it
            store = MemoryGatewayStore(now_ms=clock, **kw)  # type: ignore[arg-type]
            shared["last"] = store
            return store

        return memory_factory
    path = tmp_path / "state.db"

    def sqlite_factory(**kw: object) -> GatewayStore:
        return SqliteGatewayStore(path, now_ms=clock, **kw)  # type: ignore[arg-type]

    return sqlite_factory


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[GatewayStore]:
    async with make_store() as opened:
        yield opened


async def eventually(
    predicate: Callable[[], object], what: str, deadline_s: float = 5.0, interval: float = 0.005
) -> None:
    """Await until ``predicate()`` (sync or async) is true; fail naming ``what`` at the deadline.

    Polls without blocking the event loop, so background tasks keep running meanwhile.
    """
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {deadline_s}s waiting for {what}")
        await asyncio.sleep(interval)
