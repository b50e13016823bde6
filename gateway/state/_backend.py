"""The generic state backend: namespaced key -> bytes with an optional expiry, batched writes
and named checkpoints.

A :class:`StateBackend` is the durable half of a :class:`~gateway.state.StatefulOperator`:
the operator keeps the working state in a dict and hands the backend one batch of changes at
a time, so the backend sees a round trip per *batch* (one SQLite transaction, one Redis
``MULTI``/``EXEC`` pipeline), never per operation.

Every backend honours expiry: an entry whose ``expires_at`` (epoch ms) has passed is never
returned by :meth:`StateBackend.load` or :meth:`StateBackend.restore`; memory and SQLite also
delete such entries in :meth:`StateBackend.sweep`, Redis expires them itself (``PX``).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.state._errors import StateUsageError
from gateway.state._lifecycle import Lifecycle

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

__all__ = ["CheckpointInfo", "Entry", "StateBackend", "open_backend"]

Entry = tuple[bytes, int | None]
"""A stored value and its expiry (epoch ms) or ``None``."""


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """A named checkpoint of one operator's state.

    Attributes:
        id: checkpoint id, increasing per backend.
        name: the name given to ``checkpoint``.
        created_at: epoch ms.
        keys: entries it holds.
    """

    id: int
    name: str
    created_at: int
    keys: int


class StateBackend(Lifecycle, abc.ABC):
    """Where operator state is persisted. Open with ``async with``; one per process and file
    or server, shared by any number of operators (each has its own namespace)."""

    kind: str = "abstract"

    def __init__(self, *, keep_checkpoints: int = 3) -> None:
        self.keep_checkpoints = keep_checkpoints

    @abc.abstractmethod
    async def load(self, ns: str, now_ms: int) -> dict[str, Entry]:
        """Every unexpired entry of namespace ``ns``."""

    @abc.abstractmethod
    async def write_batch(
        self, ns: str, upserts: Mapping[str, Entry], deletes: Collection[str], now_ms: int
    ) -> None:
        """Apply upserts and deletes atomically; durable (as far as the backend is) on return.

        An upsert whose expiry is at or before ``now_ms`` is a delete.
        """

    @abc.abstractmethod
    async def checkpoint(
        self, ns: str, name: str, entries: Mapping[str, Entry], now_ms: int
    ) -> int:
        """Store ``entries`` as a complete checkpoint; prune beyond ``keep_checkpoints``."""

    @abc.abstractmethod
    async def restore(self, ns: str, checkpoint_id: int, now_ms: int) -> dict[str, Entry]:
        """Replace the live state of ``ns`` by the checkpoint's (minus expired entries) and
        return it.

        Raises:
            StateUsageError: no such checkpoint for ``ns``.
        """

    @abc.abstractmethod
    async def list_checkpoints(self, ns: str) -> list[CheckpointInfo]:
        """The checkpoints of ``ns``, oldest first."""

    async def sweep(self, ns: str, now_ms: int) -> int:
        """Delete expired entries of ``ns``; return how many (0 where the backend expires
        entries itself)."""
        return 0


def open_backend(cfg: GatewayConfig, *, keep_checkpoints: int | None = None) -> StateBackend:
    """The backend ``[state] backend`` names, to be opened with ``async with``.

    ``sqlite`` uses ``[state] path`` (the same file as the gateway store is fine); ``redis``
    uses ``[redis]`` with keys under ``edge:{<gateway_id>}:kv...``.
    """
    keep = cfg.state.keep_checkpoints if keep_checkpoints is None else keep_checkpoints
    if cfg.state.backend == "memory":
        from gateway.state._memory_backend import MemoryBackend

        return MemoryBackend(keep_checkpoints=keep)
    if cfg.state.backend == "sqlite":
        from gateway.state._sqlite_backend import SqliteBackend

        return SqliteBackend(cfg.state.path, keep_checkpoints=keep)
    if cfg.redis is None:  # config validation already refuses this
        raise StateUsageError("state.backend = 'redis' needs a [redis] section")
    from gateway.state._redis_backend import RedisBackend

    return RedisBackend(cfg.redis, cfg.gateway_id, keep_checkpoints=keep)
