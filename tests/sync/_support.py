"""Test support for sync: outbox entries like the runtime makes them, waiting on conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson

from gateway.state import OutboxEntry as Entry
from gateway.sync import Outbox

GW = "gw-test"


async def first_unread(store: Outbox, cursor: str) -> int | None:
    """Id of the first entry ``cursor`` has not acknowledged (``None``: all acknowledged)."""
    entries = await store.outbox_read(cursor, 1)
    return entries[0].id if entries else None


def acked(store: Outbox, cursor: str, upto: int) -> Callable[[], Awaitable[bool]]:
    """A condition for :func:`wait_until`: ``cursor`` acknowledged every id up to ``upto``
    (ids of a fresh store are 1, 2, 3, ...)."""

    async def check() -> bool:
        first = await first_unread(store, cursor)
        return first is None or first > upto

    return check


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
