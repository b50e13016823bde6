"""TLS and ACL users against a real TLS-only redis-server, with redis-py's asyncio client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_exc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.config import TlsConfig
from gateway.security import classify_connection_error, redis_ssl_kwargs
from tests.security.conftest import Credentials, TlsRedisServer
from tests.security.pki import Pki
from tests.services import RedisServer


def _client(
    server: RedisServer,
    username: str | None,
    password: str | None,
    tls: TlsConfig | None,
    connect_timeout: float = 5,
) -> aioredis.Redis:
    kwargs: dict[str, Any] = redis_ssl_kwargs(tls)
    return aioredis.Redis(
        host="127.0.0.1",
        port=server.port,
        username=username,
        password=password,
        ssl=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),  # one attempt: the failure itself is under test
        **kwargs,
    )


async def _failure_of(client: aioredis.Redis) -> BaseException:
    try:
        with pytest.raises(redis_exc.RedisError) as caught:
            await client.ping()
    finally:
        await client.aclose()
    return caught.value


async def test_connects_with_the_ca_and_the_acl_user(
    tls_redis: TlsRedisServer, pki: Pki, credentials: Credentials
) -> None:
    client = _client(
        tls_redis, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.ca.cert)
    )
    try:
        assert await client.ping()
        await client.xadd("edge:{gw-sec}:alerts", {"alert_id": "a1", "state": "raised"})
        assert await client.xlen("edge:{gw-sec}:alerts") == 1
        await client.hset("edge:{gw-sec}:device:d1", mapping={"value": "1.5"})
        assert await client.hget("edge:{gw-sec}:device:d1", "value") == b"1.5"
    finally:
        await client.aclose()


async def test_from_url_with_rediss_and_mutual_tls(
    tls_redis_factory: Callable[..., TlsRedisServer], pki: Pki, credentials: Credentials
) -> None:
    # TLS 1.2, so a missing client certificate fails the handshake itself (with TLS 1.3 the
    # refusal comes after it and looks like a reset connection).
    server = tls_redis_factory(auth_clients="yes", tls_protocols="TLSv1.2")
    tls = TlsConfig(ca_file=pki.ca.cert, cert_file=pki.client.cert, key_file=pki.client.key)
    client = aioredis.Redis.from_url(
        server.url, username="gateway", password=credentials.redis_gateway, **redis_ssl_kwargs(tls)
    )
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    without_cert = _client(
        server, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.ca.cert)
    )
    failure = classify_connection_error(await _failure_of(without_cert))
    assert failure.fatal, failure
    assert failure.kind in {"client_cert", "protocol"}, failure


async def test_the_acl_user_is_confined_to_its_keys_and_safe_commands(
    tls_redis: TlsRedisServer, pki: Pki, credentials: Credentials
) -> None:
    client = _client(
        tls_redis, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.ca.cert)
    )
    try:
        with pytest.raises(redis_exc.NoPermissionError) as other_key:
            await client.set("not-edge:x", "1")
        with pytest.raises(redis_exc.NoPermissionError):
            await client.xadd("edge:{another-gateway}:alerts", {"alert_id": "forged"})
        with pytest.raises(redis_exc.NoPermissionError) as dangerous:
            await client.flushall()
    finally:
        await client.aclose()
    for error in (other_key.value, dangerous.value):
        failure = classify_connection_error(error)
        assert failure.kind == "permission"
        assert "NOPERM" in failure.reason


@pytest.mark.parametrize(
    ("username", "password_of"),
    [
        ("gateway", lambda c: c.redis_gateway + "x"),
        ("nobody", lambda c: c.redis_gateway),
        ("default", lambda c: "anything"),
    ],
)
async def test_wrong_password_is_a_clear_fatal_reason(
    tls_redis: TlsRedisServer,
    pki: Pki,
    credentials: Credentials,
    username: str,
    password_of: Callable[[Credentials], str],
) -> None:
    password = password_of(credentials)
    client = _client(tls_redis, username, password, TlsConfig(ca_file=pki.ca.cert))
    error = await _failure_of(client)
    failure = classify_connection_error(error, secrets=[password])
    assert failure.kind == "credentials", failure
    assert failure.fatal
    assert "WRONGPASS" in failure.reason
    assert password not in failure.reason


async def test_no_credentials_is_a_clear_fatal_reason(tls_redis: TlsRedisServer, pki: Pki) -> None:
    client = _client(tls_redis, None, None, TlsConfig(ca_file=pki.ca.cert))
    failure = classify_connection_error(await _failure_of(client))
    assert failure.kind == "credentials", failure
    assert "NOAUTH" in failure.reason


async def test_wrong_ca_is_a_clear_fatal_reason(
    tls_redis: TlsRedisServer, pki: Pki, credentials: Credentials
) -> None:
    client = _client(
        tls_redis, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.other_ca.cert)
    )
    error = await _failure_of(client)
    failure = classify_connection_error(error)
    assert failure.kind == "untrusted", failure
    assert failure.fatal
    assert "tls.ca_file" in failure.reason


async def test_certificate_for_another_host_is_a_clear_fatal_reason(
    tls_redis_factory: Callable[..., TlsRedisServer], pki: Pki, credentials: Credentials
) -> None:
    server = tls_redis_factory(server_cert=pki.server_other_host)
    client = _client(server, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.ca.cert))
    failure = classify_connection_error(await _failure_of(client))
    assert failure.kind == "hostname", failure


async def test_expired_certificate_is_a_clear_fatal_reason(
    tls_redis_factory: Callable[..., TlsRedisServer], pki: Pki, credentials: Credentials
) -> None:
    server = tls_redis_factory(server_cert=pki.server_expired)
    client = _client(server, "gateway", credentials.redis_gateway, TlsConfig(ca_file=pki.ca.cert))
    failure = classify_connection_error(await _failure_of(client))
    assert failure.kind == "expired", failure


async def test_tls_to_a_plain_redis_port_times_out_and_is_retried(
    redis_server: RedisServer,
) -> None:
    # A plain Redis waits for the end of an inline command that a TLS ClientHello never
    # sends: the client sees a connect timeout, retryable (the operator sees it in status).
    client = _client(redis_server, None, None, None, connect_timeout=0.5)
    failure = classify_connection_error(await _failure_of(client))
    assert failure.kind == "unreachable", failure
    assert "timed out" in failure.reason


async def test_nothing_listening_is_retryable(tls_redis: TlsRedisServer, pki: Pki) -> None:
    tls_redis.kill()
    client = _client(tls_redis, "gateway", "x", TlsConfig(ca_file=pki.ca.cert))
    failure = classify_connection_error(await _failure_of(client))
    assert failure.kind == "unreachable", failure
    assert not failure.fatal
