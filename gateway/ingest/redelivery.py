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

from collections import deque
from collections.abc import Iterable

from gateway.ingest.reading import Reading

_MASK = (1 << 60) - 1


def _key(device: str, sensor: str, value: float, timestamp: int) -> int:
    """The reading's hash in 60 bits: an int below 2**60 is a 32-byte object, a full 64-bit
    hash a 48-byte one."""
    return hash((device, sensor, value, timestamp)) & _MASK


class RecentReadings:
    """A bounded set of the newest journalled readings (FIFO eviction).

    A reading is remembered by a 60-bit hash of ``(device, sensor, value, timestamp)``, not
    by that tuple: the tuple kept its float, its int and the message's device string alive,
    about 240 bytes a reading by tracemalloc against about 70 (one int in a set and a deque);
    at QoS 1 the set holds 100,000-200,000 readings (``bench/bench_memory.py``). String hashes
    are salted per process (the set is rebuilt from the journal after a restart), so an
    unrelated reading matches with a probability of about ``len(self) / 2**60``, and a DUP
    message is dropped only if *all* its readings match.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, device: str, sensor: str, value: float, timestamp: int) -> None:
        key = _key(device, sensor, value, timestamp)
        if key in self._seen:
            return
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())

    def add_all(self, readings: Iterable[Reading]) -> None:
        for r in readings:
            if r.timestamp is not None:
                self.add(r.device, r.sensor, r.value, r.timestamp)

    def already_journalled(self, readings: list[Reading]) -> bool:
        """Whether a DUP message's readings were all journalled before."""
        if not readings:
            return False
        seen = self._seen
        for r in readings:
            if r.timestamp is None or _key(r.device, r.sensor, r.value, r.timestamp) not in seen:
                return False
        self.duplicates += 1
        return True
