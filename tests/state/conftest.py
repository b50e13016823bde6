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

STORE_KINDS = ["memory", "sqlite"]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    store_kind: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> StoreFactory:
    """Build (not open) a store of the parametrized kind; the same file/keys on every call."""
    if store_kind == "redis":
        from gateway.state._redis_store import RedisGatewayStore

        from gateway.config import RedisConfig

        server = request.getfixturevalue("redis_server")
        cfg = RedisConfig(url=server.url)

        def redis_factory(**kw: object) -> GatewayStore:
            return RedisGatewayStore(cfg, "gw-test", now_ms=clock, **kw)  # type: ignore[arg-type]

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
