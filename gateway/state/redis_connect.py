"""One place that turns ``[redis]`` settings into a redis-py asyncio client, and Redis errors
into the state layer's exceptions.

:func:`connect_redis` builds a :class:`redis.asyncio.Redis` (one server) or a
:class:`redis.asyncio.RedisCluster` (``cluster = true``) with a connection pool, socket
timeouts, health checks, a short jittered retry on connection errors, TLS for ``rediss://``
(CA, client certificate and key, hostname check) and ACL user/password. It does no I/O: the
first command connects. :func:`ping_redis` connects and checks the credentials up front.

:func:`key_for` names keys with the gateway id as a hash tag (``edge:{gw1}:alerts``), so all of
one gateway's keys live in one Cluster slot and multi-key commands, ``MULTI`` and Lua scripts
over them work on a Cluster.

:func:`redis_errors` is the seam: wrap every Redis call in it and a redis-py (or socket, TLS,
asyncio timeout) error leaves as one of::

    StateError
    ├── StateConfigError     TLS certificate rejected, ``rediss://`` without TLS, bad URL
    ├── StateAuthError       WRONGPASS / NOAUTH / NOPERM: fix the credentials or the ACL
    ├── StateUnavailable     connection refused or reset, cluster down, loading, read-only
    │   └── StateTimeout     a command or a connection attempt timed out
    └── StateUsageError      a value redis-py refuses to send (DataError)

with the original exception as ``__cause__``. Messages name the server (URL without
credentials) and never contain the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from gateway.config import RedisConfig
from gateway.state._errors import (
    StateAuthError,
    StateConfigError,
    StateError,
    StateTimeout,
    StateUnavailable,
    StateUsageError,
)

__all__ = [
    "GATEWAYS_KEY",
    "AnyRedis",
    "connect_redis",
    "key_for",
    "ping_redis",
    "redacted_url",
    "redis_errors",
]

AnyRedis = aioredis.Redis | aioredis.RedisCluster
"""What :func:`connect_redis` returns: a single-server client or a Cluster client."""

GATEWAYS_KEY = "edge:gateways"
"""The one key shared by every gateway: gateway id -> last heartbeat JSON."""

HEALTH_CHECK_INTERVAL_S = 30
"""A pooled connection idle for this long is PINGed before it is used again."""

_USERINFO = re.compile(r"^(rediss?://)[^@/]*@")
_AUTH_MARKERS = ("WRONGPASS", "NOAUTH", "NOPERM", "invalid password", "invalid username")


def key_for(gateway_id: str, *parts: str) -> str:
    """Name a Redis key of one gateway: ``key_for("gw1", "device", "d7")`` ->
    ``"edge:{gw1}:device:d7"``.

    The ``{gateway_id}`` hash tag puts every key of the gateway in the same Cluster slot.

    Raises:
        StateUsageError: ``gateway_id`` is empty or contains a brace (it would break the tag).
    """
    if not gateway_id or "{" in gateway_id or "}" in gateway_id:
        msg = f"gateway_id for a Redis key must be non-empty and without braces, got {gateway_id!r}"
        raise StateUsageError(msg)
    key = "edge:{" + gateway_id + "}"
    for part in parts:
        key += ":" + part
    return key


def redacted_url(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for a log line."""
    return _USERINFO.sub(r"\1", url)


def connect_redis(cfg: RedisConfig, *, client_name: str | None = None) -> AnyRedis:
    """A client for the ``[redis]`` section; no I/O happens until the first command.

    Args:
        cfg: the ``[redis]`` settings (URL, ``cluster``, TLS, username/password, timeout).
        client_name: shown by ``CLIENT LIST`` on the server (e.g. ``edge-gateway:site-a-gw1``).

    Raises:
        StateConfigError: the settings cannot work (TLS set on a ``redis://`` URL, a Cluster
            over a unix socket, a URL redis-py cannot parse).
    """
    url = cfg.url
    timeout_s = cfg.socket_timeout / 1000
    tls = url.startswith("rediss://")
    if cfg.tls is not None and not tls:
        msg = (
            f"[redis] tls is set but url {redacted_url(url)!r} is not rediss://; "
            "use a rediss:// URL for TLS"
        )
        raise StateConfigError(msg)
    if cfg.cluster and url.startswith("unix://"):
        raise StateConfigError("[redis] cluster = true needs a redis:// or rediss:// URL")
    options: dict[str, Any] = {
        "username": cfg.username,
        "password": cfg.password_value(),
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "client_name": client_name,
    }
    if tls:
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
        if cfg.tls is not None:
            options["ssl_check_hostname"] = cfg.tls.check_hostname
            if cfg.tls.ca_file is not None:
                options["ssl_ca_certs"] = str(cfg.tls.ca_file)
            if cfg.tls.cert_file is not None and cfg.tls.key_file is not None:
                options["ssl_certfile"] = str(cfg.tls.cert_file)
                options["ssl_keyfile"] = str(cfg.tls.key_file)
    try:
        if cfg.cluster:
            return aioredis.RedisCluster.from_url(
                url,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
                **options,
            )
        return aioredis.Redis.from_url(
            url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 2),
            retry_on_error=[rexc.ConnectionError],
            **options,
        )
    except (ValueError, TypeError, rexc.RedisError) as exc:
        msg = f"[redis] url {redacted_url(url)!r} cannot be used: {_scrub(str(exc), cfg)}"
        raise StateConfigError(msg) from exc


async def ping_redis(client: AnyRedis, cfg: RedisConfig) -> None:
    """Connect (for a Cluster: discover the slots) and PING, converting failures.

    Raises:
        StateAuthError: the credentials were refused.
        StateUnavailable: the server cannot be reached (``StateTimeout`` for a timeout).
        StateConfigError: the server's TLS certificate was rejected.
    """
    with redis_errors(redacted_url(cfg.url), secrets=_secrets(cfg)):
        if isinstance(client, aioredis.RedisCluster):
            await client.initialize()
        await client.ping()


@contextlib.contextmanager
def redis_errors(target: str, *, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Convert redis-py, socket, TLS and timeout errors raised inside into :class:`StateError`.

    Use it around every Redis command (``with redis_errors(url): await client.xadd(...)``).
    ``target`` names the server in the message; any of ``secrets`` is masked out of it.
    ``asyncio.CancelledError`` passes through untouched.
    """
    try:
        yield
    except StateError:
        raise
    except Exception as exc:  # every library error is classified here, once
        raise _convert(exc, target, secrets) from exc


def _convert(exc: BaseException, target: str, secrets: Sequence[str]) -> StateError:
    text = str(exc) or type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    where = f"redis {target}"
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return StateConfigError(f"{where}: TLS certificate rejected: {text}")
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError | rexc.NoPermissionError):
        return StateAuthError(f"{where}: credentials refused: {text}")
    if isinstance(exc, rexc.ResponseError) and any(m in text for m in _AUTH_MARKERS):
        return StateAuthError(f"{where}: credentials refused: {text}")
    if isinstance(exc, rexc.TimeoutError | asyncio.TimeoutError | TimeoutError):
        return StateTimeout(f"{where}: timed out: {text}")
    if isinstance(
        exc,
        rexc.ConnectionError
        | rexc.BusyLoadingError
        | rexc.ClusterDownError
        | rexc.TryAgainError
        | rexc.MasterDownError
        | rexc.ReadOnlyError
        | rexc.SlotNotCoveredError
        | rexc.MaxConnectionsError
        | rexc.RedisClusterException
        | OSError,
    ):
        return StateUnavailable(f"{where}: unavailable: {text}")
    if isinstance(exc, rexc.DataError):
        return StateUsageError(f"{where}: value refused: {text}")
    return StateError(f"{where}: {type(exc).__name__}: {text}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _secrets(cfg: RedisConfig) -> tuple[str, ...]:
    password = cfg.password_value()
    return (password,) if password else ()


def _scrub(text: str, cfg: RedisConfig) -> str:
    for secret in _secrets(cfg):
        text = text.replace(secret, "***")
    return text
