"""Fixtures of the sync tests: an outbox, configs, a Redis client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.config import RedisConfig, SyncConfig
from gateway.state import SqliteGatewayStore
from gateway.state.redis_connect import AnyRedis, connect_redis
from tests.services import RedisCluster, RedisServer
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


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is valid: tests.services.free_port can
    return ports above 55535, which redis-server refuses in cluster mode."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port <= 55_535:
            return port
    raise RuntimeError("no free port at or below 55535 for a cluster node")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """The 3-node Redis Cluster of tests/conftest.py, on ports that leave room for the
    cluster bus (shared by the sync tests; each test uses its own gateway id)."""
    cluster = RedisCluster(tmp_path_factory.mktemp("sync-redis-cluster"))
    for node in cluster.nodes:
        node.port = _cluster_port()
    cluster.start()
    yield cluster
    cluster.kill()
