"""What sync needs from the state store: the outbox, seen through a small Protocol.

The durable store (``gateway.state``) keeps every output (window result, alert change, device
summary, late reading) in an outbox, in commit order, with one cursor per consumer. Sync only
depends on the four methods below, so it can be built and tested on its own.

:class:`OutboxSignal` is how the runtime wakes the consumers after each commit: it calls
:meth:`OutboxSignal.notify`; each consumer waits on its own :class:`asyncio.Event`, so no
consumer polls while the outbox is idle and no consumer steals another's wake-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Outbox", "OutboxEntryLike", "OutboxSignal", "OutboxStatsLike"]


class OutboxEntryLike(Protocol):
    """One outbox row (``gateway.state``'s ``OutboxEntry`` has this shape)."""

    @property
    def id(self) -> int:
        """Strictly increasing in commit order."""

    @property
    def kind(self) -> str:
        """``window``, ``alert``, ``device`` or ``late``."""

    @property
    def dedupe_key(self) -> str:
        """Deterministic key of the output (the same output regenerated has the same key)."""

    @property
    def payload(self) -> bytes:
        """The output as JSON (the same object that is published on MQTT)."""

    @property
    def created_at(self) -> int:
        """Epoch ms when the row was committed."""


class OutboxStatsLike(Protocol):
    """Size of the outbox (``gateway.state``'s ``OutboxStats`` has this shape)."""

    @property
    def rows(self) -> int:
        """Rows not yet acknowledged by every cursor."""

    @property
    def bytes(self) -> int:
        """Bytes those rows take."""

    @property
    def oldest_created_at(self) -> int | None:
        """Epoch ms of the oldest row, ``None`` when empty."""

    @property
    def dropped_windows(self) -> int:
        """Non-alert rows dropped by the disk quota since the store was created."""

    @property
    def dropped_alerts(self) -> int:
        """Alert rows dropped by the disk quota (the last resort)."""


@runtime_checkable
class Outbox(Protocol):
    """The outbox methods of the state store that sync drains."""

    def register_cursor(self, name: str) -> object:
        """Declare a consumer; rows are kept until every registered cursor acknowledged them."""

    async def outbox_read(
        self, cursor: str, limit: int, *, after: int = 0
    ) -> Sequence[OutboxEntryLike]:
        """Up to ``limit`` rows after the cursor's position (and after id ``after``: reading
        ahead of what is acknowledged), in id order."""

    async def outbox_ack(self, cursor: str, upto_id: int) -> object:
        """Move the cursor to ``upto_id`` (every row up to it is done for this consumer)."""

    async def outbox_stats(self) -> OutboxStatsLike:
        """Current size of the outbox."""


class OutboxSignal:
    """Fan-out wake-up: the runtime calls :meth:`notify` after each commit.

    Each consumer calls :meth:`subscribe` once and waits on the event it gets back; every
    ``notify`` sets every subscriber's event. Not thread-safe: call it from the event loop.
    """

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def subscribe(self) -> asyncio.Event:
        """A new event, set on every later :meth:`notify` (and set now, to start draining)."""
        event = asyncio.Event()
        event.set()
        self._events.append(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        """Stop setting ``event``."""
        if event in self._events:
            self._events.remove(event)

    def notify(self) -> None:
        """New rows were committed to the outbox."""
        for event in self._events:
            event.set()
