"""The gateway's durable store: journal, checkpoints, parked devices and the outbox.

One interface, :class:`GatewayStore`, three implementations chosen by ``[state] backend``
(:func:`open_store`). The runtime uses it like this (see ``docs/architecture.md``,
"Durability")::

    async with open_store(cfg) as store:
        checkpoint = await store.load_checkpoint()          # newest complete one, or None
        async for entry in store.replay_journal(checkpoint.journal_seq if checkpoint else 0):
            ...                                               # feed the actors again
        while running:
            await store.commit_batch(journal, outbox)         # one transaction, durable on return
            ...
            await store.write_checkpoint(changed, journal_seq, removed=gone)

Lifecycle: a store is opened by ``async with`` exactly once (not reusable, not re-entrant);
every method raises :class:`~gateway.state.StateUsageError` outside that block.
"""

from __future__ import annotations

import abc
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.state._errors import StateUsageError
from gateway.state._lifecycle import Lifecycle
from gateway.state._types import Checkpoint, JournalEntry, OutboxEntry, OutboxStats

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

__all__ = [
    "ROW_OVERHEAD_BYTES",
    "EncodedSnapshot",
    "GatewayStore",
    "encode_snapshot",
    "new_epoch",
    "open_store",
]

ROW_OVERHEAD_BYTES = 64
"""Estimated per-entry cost on disk beyond payload and dedupe key (row header, index entry)."""

NowMs = Callable[[], int]


def new_epoch() -> str:
    """A fresh outbox epoch (64 random bits, hex; never ``"0"``, the pre-epoch one)."""
    return f"{secrets.randbits(63) | 1 << 62:016x}"


def wall_clock_ms() -> int:
    """Epoch milliseconds from the system clock."""
    return time.time_ns() // 1_000_000


def entry_size(entry: OutboxEntry) -> int:
    """What one outbox entry counts against the disk quota."""
    return len(entry.payload) + len(entry.dedupe_key.encode()) + ROW_OVERHEAD_BYTES


class EncodedSnapshot(bytes):
    """A snapshot already serialised by :func:`encode_snapshot`; stores write it as it is
    (a device's JSON is several times smaller than its decoded dicts and lists, so an owner
    that must hold a snapshot for a while holds it encoded)."""


def encode_snapshot(key: str, snapshot: Any) -> EncodedSnapshot:
    """:func:`dump_snapshot`, marked as done; :func:`load_snapshot` reads it back."""
    return EncodedSnapshot(dump_snapshot(key, snapshot))


def dump_snapshot(key: str, snapshot: Any) -> bytes:
    """Serialise one snapshot as JSON (NaN and infinities kept, unlike strict JSON)."""
    if isinstance(snapshot, EncodedSnapshot):
        return snapshot
    try:
        return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        msg = f"snapshot of {key!r} must be JSON-serialisable: {exc}"
        raise StateUsageError(msg) from exc


def load_snapshot(data: bytes) -> Any:
    """Inverse of :func:`dump_snapshot`."""
    return json.loads(data)


class GatewayStore(Lifecycle, abc.ABC):
    """Journal, checkpoints, parked devices and outbox behind one transactional interface.

    ``commit_batch`` is the group commit of the ingest path: journal entries and outbox
    entries of one batch in one transaction, durable when it returns. ``next_seq`` is the
    sequence number the first journal entry of the next batch will get (the entries of a batch
    get consecutive numbers in order).
    """

    def __init__(self, *, keep_checkpoints: int, max_outbox_bytes: int, now_ms: NowMs) -> None:
        if keep_checkpoints < 1:
            msg = f"keep_checkpoints must be at least 1, got {keep_checkpoints}"
            raise StateUsageError(msg)
        self.keep_checkpoints = keep_checkpoints
        self.max_outbox_bytes = max_outbox_bytes
        self._now_ms = now_ms
        self._cursors: dict[str, int] = {}
        self._registered: set[str] = set()
        self._epoch: str | None = None

    @property
    def epoch(self) -> str:
        """Identity of this store's outbox: made once when the store's storage is created (a
        new state file, new Redis keys, every memory store) and the same after every restart.

        Outbox ids start at 1 again in new storage; a sink that remembers "delivered up to
        id N" (the Redis sink's high-water mark, ``applied:<epoch>``) keys that by the epoch,
        so a new file's entries are not mistaken for resends of the old one's. Storage from
        before epochs existed reports ``"0"``, the epoch its marks were kept under.
        """
        self._check_open()
        assert self._epoch is not None, "a store sets its epoch when it opens"
        return self._epoch

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    # -- journal and outbox ----------------------------------------------------------------

    @property
    @abc.abstractmethod
    def next_seq(self) -> int:
        """Sequence number the next journal entry gets (monotonic, survives restarts)."""

    @abc.abstractmethod
    async def commit_batch(
        self, journal: Sequence[JournalEntry], outbox: Sequence[OutboxEntry]
    ) -> None:
        """Append a batch to the journal and the outbox in one transaction.

        Journal entries get ``next_seq``, ``next_seq + 1``, ... in order (their ``seq`` is
        ignored); outbox entries get increasing ids, except an entry whose ``dedupe_key`` was
        seen before, which is ignored. Past the disk quota the oldest non-alert entries are
        dropped (counted), alerts last. Durable when it returns.
        """

    @abc.abstractmethod
    def replay_journal(self, after_seq: int) -> AsyncIterator[JournalEntry]:
        """The journal entries with ``seq > after_seq``, in seq order."""

    # -- checkpoints -----------------------------------------------------------------------

    @abc.abstractmethod
    async def write_checkpoint(
        self, changed: Mapping[str, Any], journal_seq: int, *, removed: Collection[str] = ()
    ) -> int:
        """Write a checkpoint covering the journal up to ``journal_seq``: the newest
        checkpoint's snapshots with each key of ``changed`` set to its new snapshot (added
        when new) and each key of ``removed`` gone (ignored when absent; a key may not be in
        both). Prune checkpoints beyond ``keep_checkpoints`` atomically with it and the
        journal up to it before returning (possibly in later transactions: replay starts after
        the newest checkpoint anyway). Returns its id.

        Incremental by contract: the caller hands over only what changed since its previous
        call, and the store keeps no copy of the snapshots in memory (read one back with
        :meth:`load_checkpointed`). All or nothing: when it raises, nothing of this checkpoint
        is stored, and the changes belong in the next call.
        """

    @abc.abstractmethod
    async def load_checkpoint(self) -> Checkpoint | None:
        """The newest complete checkpoint, or ``None`` when there is none."""

    @abc.abstractmethod
    async def load_checkpointed(self, key: str) -> Any | None:
        """One key's snapshot in the newest checkpoint, or ``None`` when it holds none: what
        ``load_checkpoint()`` would give for that key, reading only that key (a failed actor
        is rebuilt from it)."""

    def _check_checkpoint(
        self, changed: Mapping[str, Any], journal_seq: int, removed: Collection[str]
    ) -> None:
        """Refuse a checkpoint beyond the journal, or one that changes and removes a key."""
        self._check_open()
        if journal_seq >= self.next_seq:
            msg = (
                f"checkpoint journal_seq {journal_seq} is beyond the journal "
                f"(last assigned seq is {self.next_seq - 1})"
            )
            raise StateUsageError(msg)
        both = [key for key in removed if key in changed]
        if both:
            msg = f"a checkpoint cannot both change and remove {both[0]!r}"
            raise StateUsageError(msg)

    # -- parked (passivated) devices -------------------------------------------------------

    @abc.abstractmethod
    async def put_snapshot(self, key: str, snapshot: Any) -> None:
        """Write one device's state out (passivation); durable when it returns."""

    @abc.abstractmethod
    async def get_snapshot(self, key: str) -> Any | None:
        """The state written by ``put_snapshot``, or ``None``."""

    @abc.abstractmethod
    async def delete_snapshot(self, key: str) -> None:
        """Forget a parked device's state (no error when absent)."""

    # -- outbox consumers ------------------------------------------------------------------

    def register_cursor(self, name: str) -> None:
        """Declare a consumer of the outbox (``"redis"``, ``"forward.mqtt"``...).

        Rows are deleted once every registered cursor has acknowledged them; a cursor that is
        not registered holds nothing back. Its position persists across restarts.
        """
        self._check_open()
        if not name:
            raise StateUsageError("an outbox cursor needs a non-empty name")
        self._registered.add(name)
        self._cursors.setdefault(name, 0)

    def _check_cursor(self, cursor: str) -> int:
        self._check_open()
        if cursor not in self._registered:
            known = ", ".join(sorted(self._registered)) or "none"
            msg = f"outbox cursor {cursor!r} is not registered (registered: {known})"
            raise StateUsageError(msg)
        return self._cursors[cursor]

    def _floor(self) -> int | None:
        if not self._registered:
            return None
        return min(self._cursors[name] for name in self._registered)

    @abc.abstractmethod
    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        """Up to ``limit`` entries after the cursor's position and after id ``after`` (a
        consumer reading ahead of what it acknowledged), in id order."""

    @abc.abstractmethod
    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        """Move the cursor to ``upto_id`` (never backwards); rows every registered cursor has
        passed are deleted and their disk space is reclaimed."""

    @abc.abstractmethod
    async def outbox_stats(self) -> OutboxStats:
        """Backlog size and quota drop counters."""


def open_store(cfg: GatewayConfig, *, now_ms: NowMs = wall_clock_ms) -> GatewayStore:
    """The store ``[state] backend`` names, to be opened with ``async with``.

    ``memory`` keeps nothing across restarts; ``sqlite`` is one file at ``[state] path``;
    ``redis`` keeps everything in the ``[redis]`` server under ``edge:{<gateway_id>}:...``.
    """
    keep = cfg.state.keep_checkpoints
    quota = int(cfg.sync.max_outbox_mb * 1024 * 1024)
    if cfg.state.backend == "memory":
        from gateway.state._memory_store import MemoryGatewayStore

        return MemoryGatewayStore(keep_checkpoints=keep, max_outbox_bytes=quota, now_ms=now_ms)
    if cfg.state.backend == "sqlite":
        from gateway.state._sqlite_store import SqliteGatewayStore

        return SqliteGatewayStore(
            cfg.state.path, keep_checkpoints=keep, max_outbox_bytes=quota, now_ms=now_ms
        )
    if cfg.redis is None:  # config validation already refuses this
        raise StateUsageError("state.backend = 'redis' needs a [redis] section")
    from gateway.state._redis_store import RedisGatewayStore

    return RedisGatewayStore(
        cfg.redis, cfg.gateway_id, keep_checkpoints=keep, max_outbox_bytes=quota, now_ms=now_ms
    )
