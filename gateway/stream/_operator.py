"""The keyed event-time window operator (the incremental form the device actors use).

:class:`WindowOperator` is built from configuration objects (a window spec, aggregators, a
watermark strategy, a late-data strategy) and keeps private per-key state: the key's watermark,
its largest timestamp, and its windows' accumulators. Time is injected: event time comes with
each event, processing time only as the ``now`` arguments; the engine never reads a clock.

Per key and per call the order is fixed, so results are deterministic:

1. ``now`` (if given) is clamped so processing time never goes backwards; a due
   :class:`Periodic` tick publishes the watermark of the events seen so far;
2. the event is assigned to its windows and checked against the key's *current* watermark
   ``W``: a window with ``end > W`` is open and the event joins it; a window with
   ``end <= W`` has fired and the event is late for it (see :mod:`._late`);
3. the watermark moves (never backwards) from the event's timestamp; every open window with
   ``end <= W`` fires with ``revision`` 0; windows with ``end + lateness <= W`` are purged.

Results of one call are ordered by ``(end, start)``, then by key in first-seen order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._aggregators import Aggregator, field_error, field_getter
from ._late import Drop, LateStrategy, RecomputeWindows, SideOutput
from ._time import END_OF_TIME, NO_WATERMARK
from ._watermarks import MonotonicAscending, WatermarkStrategy
from ._windows import SessionWindow, TumblingWindow, WindowAssigner, WindowSpec

SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class WindowResult:
    """A fired (or re-fired) window.

    Attributes:
        key: the key (device) the window belongs to.
        start: inclusive start, epoch ms.
        end: exclusive end, epoch ms.
        value: the aggregator's result when a single aggregator was given, else ``None``.
        values: every aggregator's result by name.
        revision: 0 for the first result of the window, +1 for each late update.
        count: number of events in the window.
    """

    key: Any
    start: int
    end: int
    value: Any
    values: dict[str, Any]
    revision: int
    count: int


@dataclass(frozen=True, slots=True)
class LateEvent:
    """An event routed to the side output (:class:`SideOutput`).

    Attributes:
        key: its key.
        timestamp: its event time, epoch ms.
        item: the event as pushed.
        watermark: the key's watermark when it arrived.
    """

    key: Any
    timestamp: int
    item: Any
    watermark: int


class WindowOutput(NamedTuple):
    """What one ``push``/``advance``/``finish`` call released.

    A named tuple (immutable): one is made per ``push``, and a frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field) costs three times as much.

    Attributes:
        results: windows fired or re-fired by the call, ordered by ``(end, start)``.
        late: events routed to the side output by the call.
        dropped: number of late events the call discarded.
        refused: number of events refused by the ``max_keys`` limit (0 or 1 for ``push``).
    """

    results: list[WindowResult]
    late: list[LateEvent]
    dropped: int
    refused: int = 0

    def __bool__(self) -> bool:
        return bool(self.results or self.late or self.dropped or self.refused)


@dataclass(slots=True)
class OperatorStats:
    """Running counters of an operator (all keys).

    Attributes:
        events: events pushed.
        late: events that arrived late for at least one of their windows.
        dropped: late events discarded (no window could take them).
        side_output: late events routed to the side output.
        fired: results emitted because the watermark passed a window's end (revision 0, or
            a session that absorbed late data firing on time).
        updated: results emitted because of a late event (re-fires).
        refused: events of new keys refused because ``max_keys`` keys hold state.
    """

    events: int = 0
    late: int = 0
    dropped: int = 0
    side_output: int = 0
    fired: int = 0
    updated: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return {
            "events": self.events,
            "late": self.late,
            "dropped": self.dropped,
            "side_output": self.side_output,
            "fired": self.fired,
            "updated": self.updated,
            "refused": self.refused,
        }


class _Window:
    """One window's private state."""

    __slots__ = ("accs", "count", "end", "raw", "rev", "start")

    def __init__(self, start: int, end: int, accs: list[Any], raw: list[Any] | None) -> None:
        self.start = start
        self.end = end
        self.accs = accs
        self.count = 0
        self.rev = -1  # last emitted revision
        self.raw = raw  # [[ts, seq, values], ...] under RecomputeWindows


class _KeyState:
    """One key's private state."""

    __slots__ = (
        "cur",
        "last_seen",
        "max_ts",
        "min_open",
        "min_purge",
        "next_tick",
        "windows",
        "wm",
    )

    def __init__(self) -> None:
        self.wm = NO_WATERMARK
        self.max_ts = NO_WATERMARK
        self.last_seen: int | None = None
        self.next_tick: int | None = None
        self.min_open = END_OF_TIME  # smallest end of a window that has not fired
        self.min_purge = END_OF_TIME  # smallest end + lateness of a stored window
        self.windows: dict[tuple[int, int], _Window] = {}
        self.cur: _Window | None = None  # the fast path's last window (cleared on purge)


AggregateSpec = Aggregator | Mapping[str, Aggregator] | Sequence[Aggregator]


def _normalise_aggregate(
    aggregate: AggregateSpec,
) -> tuple[bool, tuple[str, ...], tuple[Aggregator, ...]]:
    if isinstance(aggregate, Aggregator):
        return True, (aggregate.name,), (aggregate,)
    if isinstance(aggregate, Mapping):
        pairs = list(aggregate.items())
    elif isinstance(aggregate, Sequence) and not isinstance(aggregate, str):
        pairs = [(agg.name if isinstance(agg, Aggregator) else "?", agg) for agg in aggregate]
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            msg = f"aggregate: two aggregators share a name in {names}; pass a dict to name them"
            raise ValueError(msg)
    else:
        msg = (
            "aggregate must be an Aggregator, a dict of them by name or a list of them; "
            f"got a {type(aggregate).__name__} instead"
        )
        raise TypeError(msg)
    if not pairs:
        raise ValueError("aggregate: at least one aggregator is needed")
    for name, agg in pairs:
        if not isinstance(agg, Aggregator):
            msg = f"aggregate[{name!r}] must be an Aggregator; got a {type(agg).__name__} instead"
            raise TypeError(msg)
    return False, tuple(str(n) for n, _ in pairs), tuple(a for _, a in pairs)


def _plain(value: Any) -> Any:
    """A deep copy of a JSON-like value with tuples as lists."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _hashable(value: Any) -> Any:
    """Keys come back from JSON with tuples turned into lists: make them hashable again."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


class WindowOperator:
    """Keyed event-time windows with a per-key watermark, late-data handling and snapshots.

    Windows are half-open ``[start, end)``; a window fires once its key's watermark
    ``W >= end`` (revision 0); an event is late for a window that has already fired. See
    :mod:`gateway.stream` for the full semantics.

    Args:
        window: a :class:`WindowAssigner` (tumbling, sliding, custom) or a :class:`SessionWindow`.
        aggregate: one :class:`Aggregator` (its result is ``WindowResult.value``), or a dict of
            them by name, or a list of them (named by their ``name``).
        watermark: the watermark strategy; default :class:`MonotonicAscending`.
        late: the late-data strategy; default :class:`Drop`.
        max_keys: at most this many keys hold state (``None``: no limit); an event of a new
            key beyond it is refused and counted (``stats.refused``, ``WindowOutput.refused``).
            Use ``drop_key`` to passivate keys.

    Example::

        op = WindowOperator(window=TumblingWindow(10_000), aggregate=Average(),
                            watermark=BoundedOutOfOrder(5_000), late=AllowedLateness(20_000))
        out = op.push(key="d1", value=21.5, timestamp=1764300000123, now=now_ms)
        for result in out.results: ...
    """

    def __init__(
        self,
        window: WindowSpec,
        aggregate: AggregateSpec,
        watermark: WatermarkStrategy | None = None,
        late: LateStrategy | None = None,
        *,
        max_keys: int | None = None,
    ) -> None:
        if max_keys is not None and max_keys < 1:
            msg = f"max_keys must be >= 1 or None; got {max_keys}"
            raise ValueError(msg)
        if not isinstance(window, WindowAssigner | SessionWindow):
            msg = (
                "window must be a WindowAssigner (TumblingWindow, SlidingWindow, custom) or a "
                f"SessionWindow; got a {type(window).__name__} instead"
            )
            raise TypeError(msg)
        watermark = MonotonicAscending() if watermark is None else watermark
        late = Drop() if late is None else late
        if not isinstance(watermark, WatermarkStrategy):
            msg = (
                "watermark must be BoundedOutOfOrder, MonotonicAscending or Periodic; "
                f"got a {type(watermark).__name__} instead"
            )
            raise TypeError(msg)
        if not isinstance(late, LateStrategy):
            msg = (
                "late must be Drop, AllowedLateness, SideOutput or RecomputeWindows; "
                f"got a {type(late).__name__} instead"
            )
            raise TypeError(msg)
        self.window = window
        self.watermark_strategy = watermark
        self.late_strategy = late
        single, names, aggs = _normalise_aggregate(aggregate)
        self.aggregators: dict[str, Aggregator] = dict(zip(names, aggs, strict=True))
        self._single = single
        self._names = names
        self._aggs = aggs
        self._getters = tuple(field_getter(agg.field) for agg in aggs)
        # push's fast path: the aggregators' bound ``add``s, and whether each takes the item
        # as it is (``field=None``, the gateway's case) so that no getter is looked up.
        self._adds = tuple(agg.add for agg in aggs)
        self._whole_items = all(get is None for get in self._getters)
        self._session_gap = window.gap if isinstance(window, SessionWindow) else None
        self._assign = window.assign if isinstance(window, WindowAssigner) else None
        self._tumbling = window if type(window) is TumblingWindow else None
        # A key's last window can be reused while events keep falling into it (one window per
        # event, incremental accumulators): the fast path of push and of the bounded runner.
        self._cache_window = self._tumbling is not None and not isinstance(late, RecomputeWindows)
        self._delay = watermark.max_delay
        self._interval = watermark.interval
        self._idle = watermark.idle_timeout
        self._lateness = late.lateness
        self._recompute = isinstance(late, RecomputeWindows)
        self._side = isinstance(late, SideOutput)
        self._max_keys = max_keys
        self._states: dict[Any, _KeyState] = {}
        self._now: int | None = None
        self._seq = 0
        self._finished = False
        self.stats = OperatorStats()

    # ------------------------------------------------------------------ public API

    def push(
        self, key: Hashable, value: Any, timestamp: int, now: int | None = None
    ) -> WindowOutput:
        """Add one event (``value`` is the item aggregated) and return what it released.

        Args:
            key: the key (device); each key has its own windows and watermark.
            value: the item; aggregators with ``field=None`` aggregate it as it is, others
                read ``value[field]``.
            timestamp: event time, ``int`` epoch ms.
            now: processing time, epoch ms (drives :class:`Periodic` ticks and the idle
                timeout; a value older than one seen before is treated as that one).
        """
        if self._finished:
            raise RuntimeError(
                "WindowOperator.push: the operator has finished (its watermark is +infinity); "
                "build a new one or restore a snapshot taken before finish()"
            )
        if type(timestamp) is not int:
            msg = (
                f"WindowOperator.push: timestamp must be an int of epoch ms; "
                f"got a {type(timestamp).__name__} ({timestamp!r:.40})"
            )
            raise TypeError(msg)
        results: list[WindowResult] = []
        late: list[LateEvent] = []
        stats = self.stats
        dropped, refused = stats.dropped, stats.refused
        self._push(key, value, timestamp, now, results, late)
        if len(results) > 1:
            results.sort(key=_result_order)
        return WindowOutput(results, late, stats.dropped - dropped, stats.refused - refused)

    def advance(self, now: int) -> WindowOutput:
        """Move processing time to ``now``: run due :class:`Periodic` ticks and idle timeouts."""
        now = self._clock(now)
        results: list[WindowResult] = []
        interval = self._interval
        idle = self._idle
        if interval is None and idle is None:
            return WindowOutput(results, [], 0)
        for key, st in self._states.items():
            if interval is not None:
                self._tick(st, key, now, results)
            if (
                idle is not None
                and st.last_seen is not None
                and now - st.last_seen >= idle
                and st.min_open != END_OF_TIME
            ):
                newest = max(w.end for w in st.windows.values() if w.end > st.wm)
                self._advance_watermark(st, key, newest, results)
        if len(results) > 1:
            results.sort(key=_result_order)
        return WindowOutput(results, [], 0)

    def finish(self) -> WindowOutput:
        """End of a bounded input: every key's watermark becomes +infinity; all windows fire."""
        results: list[WindowResult] = []
        for key, st in self._states.items():
            self._advance_watermark(st, key, END_OF_TIME, results)
        self._finished = True
        if len(results) > 1:
            results.sort(key=_result_order)
        return WindowOutput(results, [], 0)

    def watermark(self, key: Hashable) -> int | None:
        """The key's watermark (``None`` before its first event; ``END_OF_TIME`` after finish)."""
        st = self._states.get(key)
        if st is None or st.wm == NO_WATERMARK:
            return None
        return st.wm

    def open_windows(self, key: Hashable) -> list[tuple[int, int, dict[str, Any]]]:
        """The key's windows that have not fired yet: ``(start, end, current values)``."""
        st = self._states.get(key)
        if st is None:
            return []
        wins = sorted(
            (w for w in st.windows.values() if w.end > st.wm), key=lambda w: (w.start, w.end)
        )
        return [(w.start, w.end, self._values(w)) for w in wins]

    def keys(self) -> list[Any]:
        """Every key with state, in first-seen order."""
        return list(self._states)

    def drop_key(self, key: Hashable) -> bool:
        """Forget a key's state (passivation); return whether it had any."""
        return self._states.pop(key, None) is not None

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """Return all state as a JSON-serialisable dict (an independent copy)."""
        return {
            "version": SNAPSHOT_VERSION,
            "now": self._now,
            "seq": self._seq,
            "finished": self._finished,
            "stats": self.stats.as_dict(),
            "keys": [[_plain(key), self._snapshot_state(st)] for key, st in self._states.items()],
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace all state with ``snapshot`` (from :meth:`snapshot` of the same spec)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            msg = f"snapshot version must be {SNAPSHOT_VERSION}; got {snapshot.get('version')!r}"
            raise ValueError(msg)
        self._now = snapshot["now"]
        self._seq = snapshot["seq"]
        self._finished = snapshot["finished"]
        self.stats = OperatorStats(**snapshot["stats"])
        self._states = {
            _hashable(key): self._restore_state(state) for key, state in snapshot["keys"]
        }

    def snapshot_key(self, key: Hashable) -> dict[str, Any] | None:
        """Return one key's state as a JSON-serialisable dict, or ``None`` for an unknown key."""
        st = self._states.get(key)
        return None if st is None else self._snapshot_state(st)

    def restore_key(self, key: Hashable, snapshot: Mapping[str, Any]) -> None:
        """Replace one key's state with ``snapshot`` (from :meth:`snapshot_key`)."""
        self._states[key] = self._restore_state(snapshot)

    # ------------------------------------------------------------------ internals

    def _clock(self, now: int) -> int:
        if self._now is None or now > self._now:
            self._now = now
            return now
        return self._now

    def _extract(self, item: Any) -> list[Any]:
        try:
            return [item if get is None else get(item) for get in self._getters]
        except (KeyError, IndexError, TypeError) as exc:
            error = field_error((agg.field for agg in self._aggs), item)
            if error is None:
                raise
            raise error from exc

    def _new_window(self, st: _KeyState, start: int, end: int) -> _Window:
        raw: list[Any] | None = [] if self._recompute else None
        win = _Window(start, end, [agg.create() for agg in self._aggs], raw)
        st.windows[(start, end)] = win
        if end > st.wm and end < st.min_open:
            st.min_open = end
        purge = end + self._lateness
        if purge < st.min_purge:
            st.min_purge = purge
        return win

    def _add(self, win: _Window, values: list[Any], timestamp: int) -> None:
        win.count += 1
        if win.raw is not None:
            win.raw.append([timestamp, self._seq, values])
            return
        accs = win.accs
        for i, agg in enumerate(self._aggs):
            accs[i] = agg.add(accs[i], values[i], timestamp)

    def _values(self, win: _Window) -> dict[str, Any]:
        accs = win.accs
        if win.raw is not None:
            accs = [agg.create() for agg in self._aggs]
            for timestamp, _, values in sorted(win.raw, key=lambda r: (r[0], r[1])):
                for i, agg in enumerate(self._aggs):
                    accs[i] = agg.add(accs[i], values[i], timestamp)
        return {
            name: agg.result(acc)
            for name, agg, acc in zip(self._names, self._aggs, accs, strict=True)
        }

    def _emit(self, key: Any, win: _Window, results: list[WindowResult]) -> None:
        win.rev += 1
        values = self._values(win)
        value = values[self._names[0]] if self._single else None
        results.append(WindowResult(key, win.start, win.end, value, values, win.rev, win.count))

    def _push(
        self,
        key: Any,
        item: Any,
        timestamp: int,
        now: int | None,
        results: list[WindowResult],
        late_out: list[LateEvent],
    ) -> None:
        st = self._states.get(key)
        if st is None:
            if self._max_keys is not None and len(self._states) >= self._max_keys:
                self.stats.refused += 1
                return
            st = self._states[key] = _KeyState()
        if now is not None:
            now = self._clock(now)
            if self._interval is not None:
                self._tick(st, key, now, results)
        self._seq += 1
        stats = self.stats
        stats.events += 1
        win = st.cur
        if win is not None and win.start <= timestamp < win.end and win.end > st.wm:
            # Tumbling, same open window as the key's previous event: add directly.
            win.count += 1
            accs = win.accs
            if self._whole_items:
                for i, add in enumerate(self._adds):
                    accs[i] = add(accs[i], item, timestamp)
            else:
                for i, add in enumerate(self._adds):
                    get = self._getters[i]
                    try:
                        value = item if get is None else get(item)
                    except (KeyError, IndexError, TypeError):
                        self._extract(item)  # raises the error naming the field
                        raise
                    accs[i] = add(accs[i], value, timestamp)
            accepted, late = True, False
        elif self._session_gap is not None:
            values = self._extract(item)
            accepted, late = self._session_event(st, key, values, timestamp, results)
        else:
            values = self._extract(item)
            accepted, late = self._window_event(st, key, values, timestamp, results)
        if late:
            stats.late += 1
            if not accepted:
                if self._side:
                    stats.side_output += 1
                    late_out.append(LateEvent(key, timestamp, item, st.wm))
                else:
                    stats.dropped += 1
        if now is not None:
            st.last_seen = now
        if timestamp > st.max_ts:
            st.max_ts = timestamp
            if self._interval is None:
                wm = timestamp - self._delay
                if wm > st.wm:
                    if wm >= st.min_open or wm >= st.min_purge:
                        self._advance_watermark(st, key, wm, results)
                    else:  # nothing fires or is purged: what _advance_watermark would do
                        st.wm = wm

    def _window_event(
        self,
        st: _KeyState,
        key: Any,
        values: list[Any],
        timestamp: int,
        results: list[WindowResult],
    ) -> tuple[bool, bool]:
        wm = st.wm
        windows = st.windows
        accepted = late = False
        assert self._assign is not None
        for start, end in self._assign(timestamp):
            if end > wm:
                win = windows.get((start, end))
                if win is None:
                    win = self._new_window(st, start, end)
                self._add(win, values, timestamp)
                accepted = True
                if self._cache_window:
                    st.cur = win
            else:
                late = True
                if end + self._lateness > wm:
                    win = windows.get((start, end))
                    if win is None:
                        win = self._new_window(st, start, end)
                    self._add(win, values, timestamp)
                    self._emit(key, win, results)
                    self.stats.updated += 1
                    accepted = True
        return accepted, late

    def _session_event(
        self,
        st: _KeyState,
        key: Any,
        values: list[Any],
        timestamp: int,
        results: list[WindowResult],
    ) -> tuple[bool, bool]:
        assert self._session_gap is not None
        wm = st.wm
        lateness = self._lateness
        start, end = timestamp, timestamp + self._session_gap
        windows = st.windows
        touching = sorted(
            (w for w in windows.values() if w.start < end and start < w.end),
            key=lambda w: (w.start, w.end),
        )
        late = False
        if not touching:
            if end <= wm:
                late = True
                if end + lateness <= wm:
                    return False, True
            win = self._new_window(st, start, end)
        else:
            win = touching[0]
            late = any(w.end <= wm for w in touching)
            del windows[(win.start, win.end)]
            for other in touching[1:]:
                del windows[(other.start, other.end)]
                win.count += other.count
                win.rev = max(win.rev, other.rev)
                if win.raw is not None and other.raw is not None:
                    win.raw.extend(other.raw)
                else:
                    win.accs = [
                        agg.merge(a, b)
                        for agg, a, b in zip(self._aggs, win.accs, other.accs, strict=True)
                    ]
                win.end = max(win.end, other.end)
            win.start = min(win.start, start)
            win.end = max(win.end, end)
            windows[(win.start, win.end)] = win
            self._refresh_bounds(st)
        self._add(win, values, timestamp)
        if win.end <= wm:
            self._emit(key, win, results)
            self.stats.updated += 1
        return True, late

    def _refresh_bounds(self, st: _KeyState) -> None:
        wm = st.wm
        lateness = self._lateness
        min_open = min_purge = END_OF_TIME
        for win in st.windows.values():
            if wm < win.end < min_open:
                min_open = win.end
            if win.end + lateness < min_purge:
                min_purge = win.end + lateness
        st.min_open = min_open
        st.min_purge = min_purge

    def _tick(self, st: _KeyState, key: Any, now: int, results: list[WindowResult]) -> None:
        interval = self._interval
        assert interval is not None
        if st.next_tick is None:
            st.next_tick = (now // interval + 1) * interval
            return
        if now >= st.next_tick:
            st.next_tick = (now // interval + 1) * interval
            if st.max_ts != NO_WATERMARK:
                wm = st.max_ts - self._delay
                if wm > st.wm:
                    self._advance_watermark(st, key, wm, results)

    def _advance_watermark(
        self, st: _KeyState, key: Any, wm: int, results: list[WindowResult]
    ) -> None:
        st.wm = wm
        if wm >= st.min_open:
            due = [w for w in st.windows.values() if w.end <= wm and w.end >= st.min_open]
            if len(due) > 1:
                due.sort(key=lambda w: (w.end, w.start))
            for win in due:
                self._emit(key, win, results)
            self.stats.fired += len(due)
        if wm >= st.min_purge:
            lateness = self._lateness
            windows = st.windows
            for wkey in [k for k, w in windows.items() if w.end + lateness <= wm]:
                del windows[wkey]
            st.cur = None
        if wm >= st.min_open or wm >= st.min_purge:
            self._refresh_bounds(st)

    def _feed_tumbling(
        self,
        items: Iterable[Any],
        timestamp_of: Callable[[Any], int],
        key_of: Callable[[Any], Any],
        results: list[WindowResult],
        late_out: list[LateEvent],
    ) -> None:
        """The bounded runner's hot loop: :meth:`_push` specialised for a tumbling window, a
        watermark without processing time and incremental aggregation (no ``now``, no raw
        values). Events late for their window take the general path."""
        tumbling = self._tumbling
        assert tumbling is not None
        assert self._interval is None
        assert self._idle is None
        assert not self._recompute
        size, offset, delay = tumbling.size, tumbling.offset, self._delay
        states = self._states
        stats = self.stats
        aggs, getters = self._aggs, self._getters
        single = len(aggs) == 1
        add0, get0 = aggs[0].add, getters[0]
        new_state = _KeyState
        max_keys = self._max_keys
        new_window = self._new_window
        advance = self._advance_watermark
        push = self._push
        seq = self._seq
        count = 0
        try:
            for item in items:
                ts = timestamp_of(item)
                key = key_of(item)
                st = states.get(key)
                if st is None:
                    if max_keys is not None and len(states) >= max_keys:
                        stats.refused += 1
                        continue
                    st = states[key] = new_state()
                win = st.cur
                if win is None or not win.start <= ts < win.end or win.end <= st.wm:
                    start = ts - (ts - offset) % size
                    if start + size <= st.wm:  # late for its only window: general path
                        self._seq = seq
                        stats.events += count
                        count = 0
                        before = len(results)
                        push(key, item, ts, None, results, late_out)
                        if len(results) - before > 1:  # same order as push(): (end, start)
                            results[before:] = sorted(results[before:], key=_result_order)
                        seq = self._seq
                        continue
                    win = st.windows.get((start, start + size))
                    if win is None:
                        win = new_window(st, start, start + size)
                    st.cur = win
                seq += 1
                count += 1
                win.count += 1
                accs = win.accs
                if single:
                    accs[0] = add0(accs[0], item if get0 is None else get0(item), ts)
                else:
                    for i, agg in enumerate(aggs):
                        get = getters[i]
                        accs[i] = agg.add(accs[i], item if get is None else get(item), ts)
                if ts > st.max_ts:
                    st.max_ts = ts
                    wm = ts - delay
                    if wm > st.wm:
                        if wm >= st.min_open or wm >= st.min_purge:
                            advance(st, key, wm, results)
                        else:
                            st.wm = wm
        except (KeyError, IndexError, TypeError) as exc:
            error = field_error((agg.field for agg in aggs), item)
            if error is None or (isinstance(exc, KeyError) and str(exc).startswith("'field ")):
                raise
            raise error from exc
        finally:
            self._seq = seq
            stats.events += count

    def _snapshot_state(self, st: _KeyState) -> dict[str, Any]:
        return {
            "wm": None if st.wm == NO_WATERMARK else st.wm,
            "max_ts": None if st.max_ts == NO_WATERMARK else st.max_ts,
            "last_seen": st.last_seen,
            "next_tick": st.next_tick,
            "windows": [
                [w.start, w.end, w.rev, w.count, _plain(w.accs), _plain(w.raw)]
                for w in st.windows.values()
            ],
        }

    def _restore_state(self, snap: Mapping[str, Any]) -> _KeyState:
        st = _KeyState()
        st.wm = NO_WATERMARK if snap["wm"] is None else snap["wm"]
        st.max_ts = NO_WATERMARK if snap["max_ts"] is None else snap["max_ts"]
        st.last_seen = snap["last_seen"]
        st.next_tick = snap["next_tick"]
        for start, end, rev, count, accs, raw in snap["windows"]:
            win = _Window(start, end, _plain(accs), _plain(raw))
            win.rev = rev
            win.count = count
            st.windows[(start, end)] = win
        self._refresh_bounds(st)
        return st


def _result_order(result: WindowResult) -> tuple[int, int]:
    return (result.end, result.start)


def feed(
    operator: WindowOperator,
    events: Iterable[tuple[Any, Any, int]],
    results: list[WindowResult],
    late: list[LateEvent],
) -> None:
    """Push ``(key, item, timestamp)`` triples without processing time (the bounded runner)."""
    push = operator._push
    for key, item, timestamp in events:
        push(key, item, timestamp, None, results, late)
