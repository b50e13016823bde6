"""Test support for sync: an outbox with the store's Protocol, payload builders, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import orjson

GW = "gw-test"


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    kind: str
    dedupe_key: str
    payload: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class Stats:
    rows: int
    bytes: int
    oldest_created_at: int | None
    dropped_windows: int
    dropped_alerts: int


class ListOutbox:
    """An in-memory outbox with the store's outbox methods (the Protocol sync depends on).

    ``commit_batch(journal, outbox)`` mirrors the real store: ids assigned in order, a
    dedupe key seen before is ignored; rows are deleted once every cursor passed them.
    """

    def __init__(self) -> None:
        self.rows: list[Entry] = []
        self.cursors: dict[str, int] = {}
        self.seen: set[str] = set()
        self.next_id = 1
        self.acks: list[tuple[str, int]] = []

    def register_cursor(self, name: str) -> None:
        self.cursors.setdefault(name, 0)

    async def commit_batch(self, journal: Sequence[object], outbox: Sequence[Entry]) -> None:
        for entry in outbox:
            if entry.dedupe_key in self.seen:
                continue
            self.seen.add(entry.dedupe_key)
            self.rows.append(replace(entry, id=self.next_id))
            self.next_id += 1

    async def outbox_read(self, cursor: str, limit: int) -> list[Entry]:
        position = self.cursors[cursor]
        return [e for e in self.rows if e.id > position][:limit]

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        self.cursors[cursor] = max(self.cursors[cursor], upto_id)
        self.acks.append((cursor, upto_id))
        floor = min(self.cursors.values())
        self.rows = [e for e in self.rows if e.id > floor]

    async def outbox_stats(self) -> Stats:
        return Stats(
            rows=len(self.rows),
            bytes=sum(len(e.payload) for e in self.rows),
            oldest_created_at=self.rows[0].created_at if self.rows else None,
            dropped_windows=0,
            dropped_alerts=0,
        )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def window(device: str, start: int, *, sensor: str = "temperature", revision: int = 0) -> Entry:
    obj = {
        "device": device,
        "sensor": sensor,
        "window_start": start,
        "window_end": start + 10_000,
        "count": 3,
        "sum": 63.0,
        "mean": 21.0,
        "min": 20.5,
        "max": 21.5,
        "revision": revision,
    }
    key = f"w|{device}|{sensor}|{start}|{revision}"
    return Entry(0, "window", key, orjson.dumps(obj), now_ms())


def alert(device: str, n: int, state: str = "raised", *, sensor: str = "temperature") -> Entry:
    obj = {
        "alert_id": f"{GW}:{device}:{sensor}:threshold:{n}",
        "gateway_id": GW,
        "device": device,
        "sensor": sensor,
        "detector": "threshold",
        "severity": "critical",
        "state": state,
        "value": 91.5,
        "score": 1.0,
        "event_time": 1_764_300_000_000 + n,
        "raised_at": 1_764_300_000_100 + n,
    }
    return Entry(0, "alert", f"a|{obj['alert_id']}|{state}", orjson.dumps(obj), now_ms())


def device_summary(device: str, ts: int, value: float) -> Entry:
    obj = {
        "device": device,
        "ts": ts,
        "active_alerts": 0,
        "sensors": {"temperature": {"value": value, "event_time": ts - 50, "last_seen": ts}},
    }
    return Entry(0, "device", f"d|{device}|{ts}", orjson.dumps(obj), now_ms())


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    within: float,
    what: str,
) -> None:
    """Poll ``predicate`` (sync or async) until true; fail naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def decode_fields(fields: dict[bytes, bytes]) -> dict[str, object]:
    """A stream entry back to the JSON object it came from (non-strings are JSON text)."""
    out: dict[str, object] = {}
    for key, value in fields.items():
        text = value.decode()
        try:
            out[key.decode()] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key.decode()] = text
    return out
