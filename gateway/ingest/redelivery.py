"""Recognise QoS 1 redeliveries of readings that were already made durable.

A reading is acknowledged to the broker right after the transaction that journals it. If the
gateway dies (or the connection drops) between that commit and the broker receiving the
PUBACK, the broker sends the message again, flagged DUP. Such a message is dropped (and
acknowledged) when every reading it decodes to is among the recently journalled ones. Only
DUP messages are checked: a sensor that sends the same value twice is never second-guessed.

After a restart the set is refilled from the journal entries replayed since the checkpoint,
which covers every reading whose acknowledgement may have been lost (the checkpoint is only
written after the acknowledgements of the batches before it were handed to the socket).
Readings without an event time get the arrival time, which differs on redelivery: for them
the guarantee stays at-least-once.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from gateway.ingest.reading import Reading

_MASK = (1 << 60) - 1


def _key(device: str, sensor: str, value: float, timestamp: int) -> int:
    """The reading's hash in 60 bits (salted per process: the ring is rebuilt from the journal
    after a restart)."""
    return hash((device, sensor, value, timestamp)) & _MASK


class RecentReadings:
    """The newest ``capacity`` journalled readings (FIFO), for recognising redeliveries.

    A reading is remembered by a 60-bit hash of ``(device, sensor, value, timestamp)``, 8
    bytes in a ring (``array('q')``). A set of Python ints, or of the tuples before it, cost
    70-240 bytes a reading, and at QoS 1 the ring holds 100,000-200,000 readings
    (``bench/bench_memory.py``: 7-24 MB of the gateway's RSS). DUP messages are rare (after a
    reconnection, a burst of up to the broker's in-flight window), so the set that answers
    them is built from the ring on the first one (~10 ms for 200,000) and kept while
    readings keep coming, then dropped after ``capacity // 4`` more readings. An unrelated
    reading matches with a probability of about ``len(self) / 2**60``, and a DUP message is
    dropped only if *all* its readings match.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ring = array("q")
        self._next = 0  # the slot the next reading overwrites once the ring is full
        self._lookup: set[int] | None = None
        self._lookup_left = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._ring)

    def add(self, device: str, sensor: str, value: float, timestamp: int) -> None:
        key = _key(device, sensor, value, timestamp)
        ring = self._ring
        if len(ring) < self.capacity:
            ring.append(key)
        else:
            ring[self._next] = key
            self._next = (self._next + 1) % self.capacity
        lookup = self._lookup
        if lookup is not None:
            # Kept current while a burst of DUPs is being answered; an evicted reading still
            # in it was journalled all the same.
            lookup.add(key)
            self._lookup_left -= 1
            if self._lookup_left <= 0:
                self._lookup = None

    def add_all(self, readings: Iterable[Reading]) -> None:
        for r in readings:
            if r.timestamp is not None:
                self.add(r.device, r.sensor, r.value, r.timestamp)

    def already_journalled(self, readings: list[Reading]) -> bool:
        """Whether a DUP message's readings were all journalled before."""
        if not readings:
            return False
        seen = self._lookup
        if seen is None:
            seen = self._lookup = set(self._ring)
            self._lookup_left = max(1, self.capacity // 4)
        for r in readings:
            if r.timestamp is None or _key(r.device, r.sensor, r.value, r.timestamp) not in seen:
                return False
        self.duplicates += 1
        return True
