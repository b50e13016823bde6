"""connect_redis against real servers: single, Cluster, ACL user, refused, unreachable."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from gateway.config import RedisConfig
from gateway.state import (
    StateAuthError,
    StateConfigError,
    StateUnavailable,
    StateUsageError,
    connect_redis,
    key_for,
    ping_redis,
    redis_errors,
)
from tests.services import RedisCluster, RedisServer, free_port


def test_key_for_uses_the_gateway_id_as_hash_tag() -> None:
    assert key_for("gw1", "alerts") == "edge:{gw1}:alerts"
    assert key_for("gw1", "device", "d7") == "edge:{gw1}:device:d7"
    assert key_for("gw1") == "edge:{gw1}"
    with pytest.raises(StateUsageError, match="braces"):
        key_for("g{w}")


async def test_single_server_round_trip(redis_server: RedisServer) -> None:
    cfg = RedisConfig(url=redis_server.url)
    client = connect_redis(cfg, client_name="edge-gateway:test")
    try:
        await ping_redis(client, cfg)
        with redis_errors(cfg.url):
            await client.set(key_for("gw1", "x"), b"1")
            assert await client.get(key_for("gw1", "x")) == b"1"
    finally:
        await client.aclose()


async def test_cluster_keeps_one_gateway_in_one_slot(redis_cluster: RedisCluster) -> None:
    cfg = RedisConfig(url=redis_cluster.url, cluster=True)
    client = connect_redis(cfg)
    assert isinstance(client, aioredis.RedisCluster)
    gw = f"gw-{uuid.uuid4().hex[:8]}"
    try:
        await ping_redis(client, cfg)
        keys = [key_for(gw, "alerts"), key_for(gw, "windows"), key_for(gw, "device", "d1")]
        slots = {client.keyslot(k) for k in keys}
        assert len(slots) == 1
        with redis_errors(cfg.url):
            # a multi-key transaction only works when every key is in one slot
            async with client.pipeline(transaction=True) as pipe:
                for k in keys[:2]:
                    pipe.set(k, b"v")
                await pipe.execute()
            assert await client.get(keys[0]) == b"v"
    finally:
        await client.aclose()


async def test_acl_user_and_refused_password(redis_server: RedisServer) -> None:
    redis_server.cli("ACL", "SETUSER", "edge", "on", ">s3cret-pw", "~edge:*", "+@all")
    good = RedisConfig(url=redis_server.url, username="edge", password=SecretStr("s3cret-pw"))
    client = connect_redis(good)
    try:
        await ping_redis(client, good)
        with redis_errors(good.url):
            await client.set("edge:{gw}:k", b"1")
        with pytest.raises(StateAuthError, match="credentials refused"), redis_errors(good.url):
            await client.set("other:k", b"1")  # outside the ACL key pattern: NOPERM
    finally:
        await client.aclose()
    bad = RedisConfig(url=redis_server.url, username="edge", password=SecretStr("wrong-pw"))
    client = connect_redis(bad)
    try:
        with pytest.raises(StateAuthError) as info:
            await ping_redis(client, bad)
        assert "wrong-pw" not in str(info.value)
        assert isinstance(info.value.__cause__, Exception)
    finally:
        await client.aclose()


async def test_unreachable_server_is_transient() -> None:
    cfg = RedisConfig(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout=500)
    client = connect_redis(cfg)
    try:
        with pytest.raises(StateUnavailable, match="unavailable"):
            await ping_redis(client, cfg)
    finally:
        await client.aclose()


def test_tls_settings_need_a_rediss_url(tmp_path: object) -> None:
    from gateway.config import TlsConfig

    cfg = RedisConfig(url="redis://127.0.0.1:1/0", tls=TlsConfig())
    with pytest.raises(StateConfigError, match="rediss://"):
        connect_redis(cfg)
