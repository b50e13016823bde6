"""Records the gateway's durable store takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

__all__ = ["Checkpoint", "JournalEntry", "OutboxEntry", "OutboxKind", "OutboxStats"]

OutboxKind = Literal["window", "alert", "device", "late"]


class JournalEntry(NamedTuple):
    """One accepted reading, kept until a checkpoint covers it.

    A named tuple, as :class:`OutboxEntry`: the pipeline makes one per reading, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) cost 6% of the gateway's
    CPU at QoS 0.

    Attributes:
        seq: position in the journal; give 0, the store assigns it (monotonic across restarts).
        device: device id.
        sensor: the sensor's configured name.
        value: the reading's value.
        timestamp: event time, epoch ms.
        arrival: processing time the gateway received it, epoch ms.
        historical: backfilled data (see :class:`gateway.ingest.reading.Reading`).
    """

    seq: int
    device: str
    sensor: str
    value: float
    timestamp: int
    arrival: int
    historical: bool = False


class OutboxEntry(NamedTuple):
    """One output waiting to be delivered (store-and-forward).

    A named tuple (immutable, like the other records): a store reads entries by the
    hundred thousand while a backlog drains, and a tuple is made in C from a row, without
    a Python ``__init__`` per entry.

    Attributes:
        id: position in the outbox; give 0, the store assigns it (never reused).
        kind: ``window``, ``alert``, ``device`` or ``late``; alerts are dropped last when the
            disk quota is reached.
        dedupe_key: deterministic key of the output; an entry whose key the store has already
            seen (pending, delivered or dropped, as long as a restart from the newest
            checkpoint could make that output again) is ignored, so a replay after a crash
            adds nothing.
        payload: the bytes to deliver (JSON).
        created_at: processing time it was made, epoch ms.
    """

    id: int
    kind: OutboxKind
    dedupe_key: str
    payload: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A complete, consistent snapshot of every device's state.

    Attributes:
        id: checkpoint id (increasing).
        journal_seq: the last journal entry whose effect the snapshots include; replay the
            journal after it.
        snapshots: key (device) -> JSON value, as given to ``write_checkpoint``.
        created_at: when it was written, epoch ms.
    """

    id: int
    journal_seq: int
    snapshots: dict[str, Any]
    created_at: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The outbox's backlog and what the quota has cost so far.

    Attributes:
        rows: entries not yet passed by every registered cursor.
        bytes: their size as counted against ``[sync] max_outbox_mb`` (payload, key, overhead).
        oldest_created_at: ``created_at`` of the oldest entry, or ``None`` when empty.
        dropped_windows: non-alert entries dropped by the quota since the file was created.
        dropped_alerts: alerts dropped by the quota (only once nothing else was left).
    """

    rows: int
    bytes: int
    oldest_created_at: int | None
    dropped_windows: int
    dropped_alerts: int
