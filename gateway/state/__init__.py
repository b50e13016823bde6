"""State: backends (memory, SQLite file, Redis / Redis Cluster), TTL, checkpoints, the
gateway's durable store (journal, checkpoints, outbox) and the Redis connection factory.

See ``docs/state.md`` for the operator's view and :mod:`gateway.state._errors` for the
exception hierarchy.

The Redis parts (:class:`RedisBackend`, the connection factory) are imported on first use: the
client library is ~8 MB of a gateway's memory, wasted on one that uses no Redis.
"""

import typing as _typing

from gateway._lazy import lazy_attributes as _lazy_attributes
from gateway.state._backend import CheckpointInfo, StateBackend, open_backend
from gateway.state._errors import (
    StateAuthError,
    StateConfigError,
    StateCorruptError,
    StateError,
    StateTimeout,
    StateUnavailable,
    StateUsageError,
)
from gateway.state._memory_backend import MemoryBackend
from gateway.state._memory_store import MemoryGatewayStore
from gateway.state._operator import StatefulOperator
from gateway.state._sqlite_backend import SqliteBackend
from gateway.state._sqlite_store import SqliteGatewayStore
from gateway.state._store import (
    ROW_OVERHEAD_BYTES,
    EncodedSnapshot,
    GatewayStore,
    encode_snapshot,
    load_snapshot,
    open_store,
)
from gateway.state._types import Checkpoint, JournalEntry, OutboxEntry, OutboxKind, OutboxStats

if _typing.TYPE_CHECKING:
    from gateway.state._redis_backend import RedisBackend
    from gateway.state.redis_connect import connect_redis, key_for, ping_redis, redis_errors

_LAZY = {
    "RedisBackend": "gateway.state._redis_backend",
    "connect_redis": "gateway.state.redis_connect",
    "key_for": "gateway.state.redis_connect",
    "ping_redis": "gateway.state.redis_connect",
    "redis_errors": "gateway.state.redis_connect",
}

__all__ = [
    "ROW_OVERHEAD_BYTES",
    "Checkpoint",
    "CheckpointInfo",
    "EncodedSnapshot",
    "GatewayStore",
    "JournalEntry",
    "MemoryBackend",
    "MemoryGatewayStore",
    "OutboxEntry",
    "OutboxKind",
    "OutboxStats",
    "RedisBackend",
    "SqliteBackend",
    "SqliteGatewayStore",
    "StateAuthError",
    "StateBackend",
    "StateConfigError",
    "StateCorruptError",
    "StateError",
    "StateTimeout",
    "StateUnavailable",
    "StateUsageError",
    "StatefulOperator",
    "connect_redis",
    "encode_snapshot",
    "key_for",
    "load_snapshot",
    "open_backend",
    "open_store",
    "ping_redis",
    "redis_errors",
]


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals())
