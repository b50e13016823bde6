"""Fixtures of the sync tests: an outbox, configs, a Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.config import RedisConfig, SyncConfig
from gateway.state.redis_connect import AnyRedis, connect_redis
from tests.services import RedisServer
from tests.sync._support import ListOutbox


@pytest.fixture
def outbox() -> ListOutbox:
    return ListOutbox()


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
