"""Fixtures of the sync tests: an outbox, configs, a Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import RedisConfig, SyncConfig
from gateway.state import SqliteGatewayStore
from gateway.state.redis_connect import AnyRedis, connect_redis
from tests.services import RedisServer
from tests.sync._support import now_ms


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[SqliteGatewayStore]:
    """The real durable store (SQLite file), opened; the sinks register their cursors."""
    async with SqliteGatewayStore(tmp_path / "state.db", now_ms=now_ms) as store:
        yield store


@pytest.fixture
def sync_cfg() -> SyncConfig:
    return SyncConfig(batch_size=200, retry_max="500ms", heartbeat_interval="60s")


@pytest.fixture
def redis_cfg(redis_server: RedisServer) -> RedisConfig:
    return RedisConfig(url=redis_server.url, socket_timeout="2s")


@pytest.fixture
async def client(redis_cfg: RedisConfig) -> AsyncIterator[AnyRedis]:
    redis = connect_redis(redis_cfg)
    yield redis
    await redis.aclose()
