"""A brute-force reference model of the engine's semantics (DESIGN.md "Streaming semantics").

Deliberately naive: every window keeps the raw list of its events and every result is computed
from scratch with textbook formulas (``statistics``, ``numpy.percentile``); window membership is
found by scanning candidate starts. It is slow and obviously correct, which is the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INF = float("inf")


@dataclass(frozen=True)
class Spec:
    """What to model: ``window`` is ('tumbling', size, offset) | ('sliding', size, slide, offset)
    | ('session', gap) | ('custom', assign_fn); watermark ('bounded'|'monotonic'|'periodic',
    delay, interval, idle); late ('drop'|'allowed'|'side'|'recompute', lateness); aggregators
    by name -> (kind, arg)."""

    window: tuple[Any, ...]
    watermark: tuple[str, int, int | None, int | None]
    late: tuple[str, int]
    aggregators: dict[str, tuple[str, Any]]
    single: bool


@dataclass
class Win:
    start: int
    end: int
    events: list[tuple[int, int, Any]] = field(default_factory=list)  # (ts, seq, value)
    rev: int = -1


@dataclass
class KeyState:
    wm: float = -INF
    max_ts: float = -INF
    last_seen: int | None = None
    next_tick: int | None = None
    windows: list[Win] = field(default_factory=list)


def aggregate(kind: str, arg: Any, events: list[tuple[int, int, Any]]) -> Any:
    values = [v for _, _, v in events]
    if kind == "count":
        return len(values)
    if kind == "sum":
        return sum(values)
    if kind == "mean":
        return sum(values) / len(values) if values else None
    if kind == "min":
        return min(values) if values else None
    if kind == "max":
        return max(values) if values else None
    if kind == "stddev":  # two-pass textbook formula; arg = sample deviation
        n = len(values) - (1 if arg else 0)
        if n <= 0:
            return None
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    if kind == "percentile":
        return float(np.percentile(values, arg)) if values else None
    if kind == "first":
        return min(events, key=lambda e: (e[0], e[1]))[2] if events else None
    if kind == "last":
        return max(events, key=lambda e: (e[0], e[1]))[2] if events else None
    raise AssertionError(kind)


class Reference:
    """Apply the contract's rules to one event or clock step at a time."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.keys: dict[Any, KeyState] = {}
        self.now: int | None = None
        self.seq = 0
        self.stats = {
            "events": 0,
            "late": 0,
            "dropped": 0,
            "side_output": 0,
            "fired": 0,
            "updated": 0,
            "refused": 0,
        }

    # --- windows by brute force
    def windows_of(self, ts: int) -> list[tuple[int, int]]:
        kind = self.spec.window[0]
        if kind == "custom":
            return list(self.spec.window[1](ts))
        if kind == "tumbling":
            _, size, offset = self.spec.window
            slide = size
        else:
            _, size, slide, offset = self.spec.window
        out = []
        k = (ts - offset) // slide
        for i in range(k - size // slide - 2, k + 2):
            start = offset + i * slide
            if start <= ts < start + size:
                out.append((start, start + size))
        return out

    def result(self, key: Any, win: Win, out: list[tuple[Any, ...]]) -> None:
        win.rev += 1
        values = {
            name: aggregate(kind, arg, win.events)
            for name, (kind, arg) in self.spec.aggregators.items()
        }
        value = next(iter(values.values())) if self.spec.single else None
        out.append((key, win.start, win.end, win.rev, len(win.events), value, values))

    def set_watermark(self, key: Any, st: KeyState, wm: float, out: list[Any]) -> None:
        old = st.wm
        st.wm = wm
        lateness = self.spec.late[1]
        for win in sorted(st.windows, key=lambda w: (w.end, w.start)):
            if old < win.end <= wm:
                self.result(key, win, out)
                self.stats["fired"] += 1
        st.windows = [w for w in st.windows if w.end + lateness > wm]

    def tick(self, key: Any, st: KeyState, now: int, out: list[Any]) -> None:
        _, delay, interval, _ = self.spec.watermark
        assert interval is not None
        if st.next_tick is None:
            st.next_tick = (now // interval + 1) * interval
        elif now >= st.next_tick:
            st.next_tick = (now // interval + 1) * interval
            if st.max_ts - delay > st.wm:
                self.set_watermark(key, st, st.max_ts - delay, out)

    def push(
        self, key: Any, ts: int, value: Any, now: int | None
    ) -> tuple[list[Any], list[Any], int]:
        out: list[Any] = []
        late_out: list[Any] = []
        st = self.keys.setdefault(key, KeyState())
        _kind, delay, interval, _ = self.spec.watermark
        if now is not None:
            self.now = now if self.now is None else max(self.now, now)
            now = self.now
            if interval is not None:
                self.tick(key, st, now, out)
        self.seq += 1
        self.stats["events"] += 1
        event = (ts, self.seq, value)
        wm = st.wm
        lateness = self.spec.late[1]
        late = accepted = False
        if self.spec.window[0] == "session":
            gap = self.spec.window[1]
            start, end = ts, ts + gap
            overlapping = [w for w in st.windows if w.start < end and start < w.end]
            if not overlapping and end <= wm:
                late = True
            if overlapping or end + lateness > wm:
                accepted = True
                if any(w.end <= wm for w in overlapping):
                    late = True
                merged = Win(
                    min([start] + [w.start for w in overlapping]),
                    max([end] + [w.end for w in overlapping]),
                    [e for w in overlapping for e in w.events] + [event],
                    max([-1] + [w.rev for w in overlapping]),
                )
                st.windows = [w for w in st.windows if w not in overlapping] + [merged]
                if merged.end <= wm:
                    self.result(key, merged, out)
                    self.stats["updated"] += 1
        else:
            for start, end in self.windows_of(ts):
                win = next((w for w in st.windows if (w.start, w.end) == (start, end)), None)
                if end > wm:
                    if win is None:
                        win = Win(start, end)
                        st.windows.append(win)
                    win.events.append(event)
                    accepted = True
                else:
                    late = True
                    if end + lateness > wm:
                        if win is None:
                            win = Win(start, end)
                            st.windows.append(win)
                        win.events.append(event)
                        self.result(key, win, out)
                        self.stats["updated"] += 1
                        accepted = True
        if late:
            self.stats["late"] += 1
        dropped = 0
        if late and not accepted:
            if self.spec.late[0] == "side":
                late_out.append((key, ts, value, wm))
                self.stats["side_output"] += 1
            else:
                dropped = 1
                self.stats["dropped"] += 1
        if now is not None:
            st.last_seen = now
        if ts > st.max_ts:
            st.max_ts = ts
            if interval is None and ts - delay > st.wm:
                self.set_watermark(key, st, ts - delay, out)
        out.sort(key=lambda r: (r[2], r[1]))
        return out, late_out, dropped

    def advance(self, now: int) -> list[Any]:
        self.now = now if self.now is None else max(self.now, now)
        now = self.now
        _, _, interval, idle = self.spec.watermark
        out: list[Any] = []
        for key, st in self.keys.items():
            if interval is not None:
                self.tick(key, st, now, out)
            if idle is not None and st.last_seen is not None and now - st.last_seen >= idle:
                open_ends = [w.end for w in st.windows if w.end > st.wm]
                if open_ends:
                    self.set_watermark(key, st, max(open_ends), out)
        out.sort(key=lambda r: (r[2], r[1]))
        return out

    def finish(self) -> list[Any]:
        out: list[Any] = []
        for key, st in self.keys.items():
            self.set_watermark(key, st, INF, out)
        out.sort(key=lambda r: (r[2], r[1]))
        return out

    def watermark(self, key: Any) -> float | None:
        st = self.keys.get(key)
        return None if st is None or st.wm == -INF else st.wm
