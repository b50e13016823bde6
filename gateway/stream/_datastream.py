"""The fluent DataStream API over a bounded input.

A pipeline is described lazily and runs when a sink is called (``run``, ``collect``,
``for_each``)::

    result = (
        DataStream.from_events(events, watermark=BoundedOutOfOrder(5_000), late=SideOutput())
        .filter(lambda e: e.event_type == "reading")
        .key_by("source")
        .window(TumblingWindow(10_000))
        .aggregate({"mean": Average("temp"), "n": Count()})
        .run()
    )
    result.results  # list[WindowResult]; result.late: side output; result.stats: counters

Semantics:

- Every element carries an event timestamp: at the source it comes from the ``timestamp``
  argument (a field name or a function), by default ``event.timestamp`` of a
  :class:`StreamEvent` or ``item["timestamp"]`` of a mapping; ``assign_timestamps`` replaces it;
  ``map``/``filter``/... keep it; a window result is stamped ``end - 1`` (its last instant).
- Watermarks are **per key**: after ``key_by``/``group_by`` each key has its own watermark (as in
  the gateway, one per device, and as in Bytewax); on a stream that is not keyed (``window``
  straight on a ``DataStream``) all elements share one key, ``None``, hence one watermark for
  the whole stream.
- Processing time, which drives :class:`Periodic` watermarks and idle timeouts, is by default a
  replay clock: the largest event timestamp seen so far in the input (as if the events
  arrived in real time); pass ``processing_time=`` to ``from_events`` to read it from the
  events instead.
- At the end of the bounded input every watermark becomes +infinity: every window fires, every
  timer of ``process`` fires.
- Stages are fused into one pass over the input; elements flow one at a time, so memory is the
  operators' state, not the input.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

from ._aggregators import Aggregator, Collect, Count, Reduce, Sum, field_getter
from ._events import StreamEvent
from ._late import Drop, LateStrategy
from ._operator import AggregateSpec, LateEvent, WindowOperator, WindowResult, _normalise_aggregate
from ._time import END_OF_TIME, NO_WATERMARK, Duration, to_ms
from ._watermarks import MonotonicAscending, WatermarkStrategy
from ._windows import WindowSpec

T = TypeVar("T")
Record = tuple[Any, int, Any]  # (item, timestamp, key)
KeySpec = str | Callable[[Any], Hashable]


def _default_timestamp(item: Any) -> int:
    if isinstance(item, StreamEvent):
        return item.timestamp
    try:
        return int(item["timestamp"])
    except (KeyError, TypeError, IndexError):
        pass
    ts = getattr(item, "timestamp", None)
    if isinstance(ts, int):
        return ts
    msg = (
        f"from_events: no event time in {type(item).__name__} {item!r:.60}; expected a "
        "StreamEvent, an item with a 'timestamp' field, or pass timestamp=<field or function>"
    )
    raise TypeError(msg)


def _key_function(key: KeySpec, where: str) -> Callable[[Any], Hashable]:
    if isinstance(key, str):
        getter = field_getter(key)
        assert getter is not None
        return getter
    if callable(key):
        return key
    msg = f"{where}: key must be a field name or a function; got a {type(key).__name__}"
    raise TypeError(msg)


@dataclass(slots=True)
class RunStats:
    """Counters of one run.

    Attributes:
        events: elements read from the source(s).
        late: elements late for at least one window (all window stages together).
        dropped: late elements discarded.
        side_output: late elements routed to ``RunResult.late``.
        fired: window results released by the watermark.
        updated: window results re-fired by late elements.
        throttled: elements discarded by ``throttle``.
        duplicates: elements discarded by ``distinct``.
    """

    events: int = 0
    late: int = 0
    dropped: int = 0
    side_output: int = 0
    fired: int = 0
    updated: int = 0
    throttled: int = 0
    duplicates: int = 0


@dataclass(slots=True)
class RunResult(Generic[T]):
    """What ``run()`` returns.

    Attributes:
        results: the elements that reached the end of the pipeline, in order.
        late: the side output (:class:`LateEvent`), from every window stage with
            :class:`SideOutput`.
        stats: the run's counters.
    """

    results: list[T]
    late: list[LateEvent] = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """A running or final aggregate of a key (``KeyedStream.aggregate``, ``GroupedStream``).

    Attributes:
        key: the key (``None`` for a stream that is not keyed).
        value: the single aggregator's result, or ``None`` with several.
        values: every aggregator's result by name.
        count: elements aggregated so far.
    """

    key: Any
    value: Any
    values: dict[str, Any]
    count: int


class _Run:
    """The state of one run, shared by the stages."""

    __slots__ = ("late", "stats")

    def __init__(self) -> None:
        self.late: list[LateEvent] = []
        self.stats = RunStats()


Stage = Callable[[_Run], Iterator[Record]]


@dataclass(frozen=True, slots=True)
class _Source:
    """How a plain ``from_events(...).key_by(...)`` reads its input (the fused fast path)."""

    events: Iterable[Any]
    timestamp: Callable[[Any], int]
    key: Callable[[Any], Hashable] | None


class ProcessContext:
    """What a ``process`` function sees for the current element or timer.

    Attributes:
        key: the current key (``None`` on a stream that is not keyed).
        timestamp: the element's event time (the timer's time in ``on_timer``).
        watermark: the key's watermark before this element (``None`` before the first).
        state: a dict private to the key, kept across elements (the function's state).
    """

    __slots__ = ("_timers", "key", "state", "timestamp", "watermark")

    def __init__(self) -> None:
        self.key: Any = None
        self.timestamp = 0
        self.watermark: int | None = None
        self.state: dict[str, Any] = {}
        self._timers: list[int] = []

    def register_timer(self, timestamp: int) -> None:
        """Call ``on_timer`` once the key's watermark reaches ``timestamp`` (event time)."""
        if timestamp not in self._timers:
            heapq.heappush(self._timers, timestamp)

    def delete_timer(self, timestamp: int) -> None:
        """Cancel a timer registered for ``timestamp`` (no error if there is none)."""
        if timestamp in self._timers:
            self._timers.remove(timestamp)
            heapq.heapify(self._timers)


class ProcessFunction:
    """A custom operator with per-key state and event-time timers (Flink's
    ``KeyedProcessFunction``). Override :meth:`process` and, for timers, :meth:`on_timer`;
    both return the elements to emit (an iterable, or ``None`` for nothing)."""

    def process(self, item: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        """Handle one element."""
        raise NotImplementedError

    def on_timer(self, timestamp: int, ctx: ProcessContext) -> Iterable[Any] | None:
        """Handle a timer whose time the watermark has reached."""
        return None


class _ProcessCallable(Protocol):
    def __call__(self, item: Any, ctx: ProcessContext, /) -> Iterable[Any] | None: ...


class DataStream(Generic[T]):
    """A lazily described stream of elements, each with an event timestamp.

    Build one with :meth:`from_events`; chain operators; run it with a sink
    (:meth:`run`, :meth:`collect`, :meth:`for_each`). Transformations return new streams;
    the original is unchanged and can be run again (if its source can be iterated again).
    """

    def __init__(
        self,
        stage: Stage,
        *,
        watermark: WatermarkStrategy,
        late: LateStrategy,
        clock: Callable[[Any], int] | None,
        source: _Source | None = None,
    ) -> None:
        self._stage = stage
        self._watermark = watermark
        self._late = late
        self._clock = clock
        self._source = source

    # ------------------------------------------------------------------ sources

    @classmethod
    def from_events(
        cls,
        events: Iterable[Any],
        *,
        timestamp: str | Callable[[Any], int] | None = None,
        watermark: WatermarkStrategy | None = None,
        late: LateStrategy | None = None,
        processing_time: str | Callable[[Any], int] | None = None,
    ) -> DataStream[Any]:
        """A stream over a bounded iterable.

        Args:
            events: the input, read once per run (a list can be run many times).
            timestamp: a field name or a function giving each element's event time (epoch
                ms); default: ``StreamEvent.timestamp`` or the ``"timestamp"`` field.
            watermark: the watermark strategy of window and process stages (default
                :class:`MonotonicAscending`); per key after ``key_by``.
            late: the late-data strategy of window stages (default :class:`Drop`).
            processing_time: a field name or a function giving each element's arrival time;
                default: the replay clock (the largest event timestamp so far).
        """
        if timestamp is None:
            ts_of: Callable[[Any], int] = _default_timestamp
        elif isinstance(timestamp, str):
            get = field_getter(timestamp)
            assert get is not None
            ts_of = get
        else:
            ts_of = timestamp
        clock: Callable[[Any], int] | None
        if processing_time is None or callable(processing_time):
            clock = processing_time
        else:
            clock = field_getter(processing_time)

        def stage(run: _Run) -> Iterator[Record]:
            stats = run.stats
            for item in events:
                stats.events += 1
                yield item, ts_of(item), None

        return DataStream(
            stage,
            watermark=MonotonicAscending() if watermark is None else watermark,
            late=Drop() if late is None else late,
            clock=clock,
            source=_Source(events, ts_of, None),
        )

    # ------------------------------------------------------------------ plumbing

    def _derive(self, stage: Stage, *, source: _Source | None = None) -> Self:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._stage = stage
        new._source = source
        return new

    def _as(self, cls: type[Any], **extra: Any) -> Any:
        new = object.__new__(cls)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(extra)
        return new

    def _pipe(self, transform: Callable[[_Run, Iterator[Record]], Iterator[Record]]) -> Self:
        upstream = self._stage
        return self._derive(lambda run: transform(run, upstream(run)))

    # ------------------------------------------------------------------ element-wise

    def map(self, fn: Callable[[Any], Any]) -> DataStream[Any]:
        """Replace each element by ``fn(element)`` (timestamp and key kept)."""
        return self._pipe(lambda run, up: ((fn(i), t, k) for i, t, k in up))

    def filter(self, predicate: Callable[[Any], bool]) -> Self:
        """Keep the elements for which ``predicate(element)`` is true."""
        return self._pipe(lambda run, up: (r for r in up if predicate(r[0])))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> DataStream[Any]:
        """Replace each element by the elements of ``fn(element)`` (0..n, same timestamp)."""
        return self._pipe(lambda run, up: ((o, t, k) for i, t, k in up for o in fn(i)))

    def tap(self, fn: Callable[[Any], object]) -> Self:
        """Call ``fn(element)`` for its side effect and pass the element on unchanged."""

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            for record in up:
                fn(record[0])
                yield record

        return self._pipe(transform)

    inspect = tap
    """Alias of :meth:`tap` (Bytewax's name)."""

    def assign_timestamps(self, fn: Callable[[Any], int]) -> Self:
        """Re-stamp each element with the event time ``fn(element)`` (epoch ms)."""
        return self._pipe(lambda run, up: ((i, fn(i), k) for i, _, k in up))

    def with_watermark(self, strategy: WatermarkStrategy) -> Self:
        """Use ``strategy`` for the window and process stages downstream."""
        new = self._derive(self._stage, source=self._source)
        new._watermark = strategy
        return new

    def with_late(self, strategy: LateStrategy) -> Self:
        """Use ``strategy`` for the window stages downstream."""
        new = self._derive(self._stage, source=self._source)
        new._late = strategy
        return new

    def take(self, n: int) -> Self:
        """Only the first ``n`` elements (the rest of the input is still read)."""
        return self._pipe(lambda run, up: (r for idx, r in enumerate(up) if idx < n))

    limit = take
    """Alias of :meth:`take`."""

    def enumerate(self, start: int = 0) -> DataStream[Any]:
        """Pair each element with its position: ``(index, element)``."""
        return self._pipe(lambda run, up: (((n, i), t, k) for n, (i, t, k) in enumerate(up, start)))

    # ------------------------------------------------------------------ stateful (per key)

    def distinct(
        self, by: str | Callable[[Any], Hashable] | None = None, *, within: Duration | None = None
    ) -> Self:
        """Drop elements whose ``by(element)`` (default: the element) was already seen for
        the same key. With ``within``, an element is a duplicate only when the previous one
        is less than ``within`` of event time older (and the memory is pruned to that span).
        Without it the memory of seen values grows with the number of distinct values."""
        ident = (lambda x: x) if by is None else _key_function(by, "distinct")
        horizon = None if within is None else to_ms(within, "distinct.within", allow_zero=False)

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            seen: dict[tuple[Any, Any], int] = {}
            newest = NO_WATERMARK
            for item, ts, key in up:
                marker = (key, ident(item))
                previous = seen.get(marker)
                if previous is not None and (horizon is None or abs(ts - previous) < horizon):
                    run.stats.duplicates += 1
                    continue
                seen[marker] = ts
                if horizon is not None and ts > newest:
                    newest = ts
                    if len(seen) > 1024:
                        cutoff = newest - horizon
                        seen = {m: t for m, t in seen.items() if t > cutoff}
                yield item, ts, key

        return self._pipe(transform)

    def throttle(self, count: int, per: Duration) -> Self:
        """At most ``count`` elements per key in each epoch-aligned ``per`` of event time
        (``[start, start + per)``); the excess is discarded and counted (``stats.throttled``)."""
        period = to_ms(per, "throttle.per", allow_zero=False)
        if count < 1:
            msg = f"throttle.count must be >= 1; got {count}"
            raise ValueError(msg)

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            buckets: dict[Any, list[int]] = {}
            for item, ts, key in up:
                bucket = ts - ts % period
                state = buckets.get(key)
                if state is None or state[0] != bucket:
                    buckets[key] = [bucket, 1]
                elif state[1] < count:
                    state[1] += 1
                else:
                    run.stats.throttled += 1
                    continue
                yield item, ts, key

        return self._pipe(transform)

    def scan(self, fn: Callable[[Any, Any], Any], initial: Any) -> DataStream[Any]:
        """Running fold per key: ``state = fn(state, element)`` starting from ``initial``;
        emits each new state."""

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            states: dict[Any, Any] = {}
            for item, ts, key in up:
                state = fn(states.get(key, initial), item)
                states[key] = state
                yield state, ts, key

        return self._pipe(transform)

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DataStream[Any]:
        """Rolling reduce per key (Flink's): emits ``fn(previous, element)`` for each element
        (the element itself for the first of its key)."""

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            states: dict[Any, Any] = {}
            missing = object()
            for item, ts, key in up:
                previous = states.get(key, missing)
                state = item if previous is missing else fn(previous, item)
                states[key] = state
                yield state, ts, key

        return self._pipe(transform)

    def aggregate(self, aggregate: AggregateSpec, *, rolling: bool = False) -> DataStream[Any]:
        """Aggregate per key (the whole stream when not keyed) with incremental aggregators.

        Emits one :class:`AggregateResult` per key at the end of the input, in first-seen
        key order; with ``rolling=True`` one after every element instead (Flink's rolling
        aggregation).
        """
        single, names, aggs = _normalise_aggregate(aggregate)
        getters = [field_getter(agg.field) for agg in aggs]

        def result(key: Any, accs: list[Any], count: int) -> AggregateResult:
            values = {n: a.result(acc) for n, a, acc in zip(names, aggs, accs, strict=True)}
            return AggregateResult(key, values[names[0]] if single else None, values, count)

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            states: dict[Any, list[Any]] = {}
            last_ts: dict[Any, int] = {}
            for item, ts, key in up:
                state = states.get(key)
                if state is None:
                    state = states[key] = [[a.create() for a in aggs], 0]
                accs = state[0]
                for i, agg in enumerate(aggs):
                    get = getters[i]
                    accs[i] = agg.add(accs[i], item if get is None else get(item), ts)
                state[1] += 1
                last_ts[key] = max(ts, last_ts.get(key, ts))
                if rolling:
                    yield result(key, accs, state[1]), ts, key
            if not rolling:
                for key, (accs, count) in states.items():
                    yield result(key, accs, count), last_ts[key], key

        return self._pipe(transform)

    def process(self, fn: ProcessFunction | _ProcessCallable) -> DataStream[Any]:
        """A custom operator with per-key state and event-time timers.

        ``fn`` is a :class:`ProcessFunction` or a function ``(element, ctx) -> iterable``.
        Per key, after each element the watermark is updated by the stream's strategy and
        every timer whose time is ``<= W`` fires (in time order); at the end of the input all
        remaining timers fire. Emitted elements take the element's timestamp (the timer's
        time for ``on_timer``).
        """
        if isinstance(fn, ProcessFunction):
            on_element: Callable[[Any, ProcessContext], Iterable[Any] | None] = fn.process
            on_timer = fn.on_timer
        else:
            on_element = fn
            on_timer = ProcessFunction().on_timer
        delay = self._watermark.max_delay

        def transform(run: _Run, up: Iterator[Record]) -> Iterator[Record]:
            contexts: dict[Any, ProcessContext] = {}
            max_ts: dict[Any, int] = {}

            def fire(ctx: ProcessContext, wm: int) -> Iterator[Record]:
                timers = ctx._timers
                while timers and timers[0] <= wm:
                    when = heapq.heappop(timers)
                    ctx.timestamp = when
                    for out in on_timer(when, ctx) or ():
                        yield out, when, ctx.key

            for item, ts, key in up:
                ctx = contexts.get(key)
                if ctx is None:
                    ctx = contexts[key] = ProcessContext()
                    ctx.key = key
                ctx.timestamp = ts
                for out in on_element(item, ctx) or ():
                    yield out, ts, key
                if ts > max_ts.get(key, NO_WATERMARK):
                    max_ts[key] = ts
                    wm = ts - delay
                    if ctx.watermark is None or wm > ctx.watermark:
                        ctx.watermark = wm
                        yield from fire(ctx, wm)
            for ctx in contexts.values():
                ctx.watermark = END_OF_TIME
                yield from fire(ctx, END_OF_TIME)

        return self._pipe(transform)

    def union(self, *others: DataStream[Any]) -> DataStream[Any]:
        """Merge this stream with ``others``: elements are interleaved by timestamp (each
        input is read in its own order; ties keep the order of the arguments). Keys are kept;
        the merged stream keeps this stream's watermark and late strategies."""
        stages = [self._stage, *(o._stage for o in others)]

        def stage(run: _Run) -> Iterator[Record]:
            return heapq.merge(*(s(run) for s in stages), key=lambda r: r[1])

        return self._derive(stage)

    # ------------------------------------------------------------------ keys and windows

    def key_by(self, key: KeySpec) -> KeyedStream[Any]:
        """Partition by ``key`` (a field name or a function of the element): windows,
        watermarks and every stateful operator downstream are per key."""
        key_of = _key_function(key, "key_by")
        upstream = self._stage
        source = None
        if self._source is not None and self._source.key is None:
            source = _Source(self._source.events, self._source.timestamp, key_of)
        keyed = self._as(KeyedStream)
        keyed._stage = lambda run: ((i, t, key_of(i)) for i, t, _ in upstream(run))
        keyed._source = source
        return keyed  # type: ignore[no-any-return]

    def group_by(self, field: str) -> GroupedStream[Any]:
        """Group by the value of ``field`` (a key_by on a field) for final per-group results
        (``count()``, ``sum(field)``, ``aggregate(...)``) or windows."""
        grouped = self.key_by(field)._as(GroupedStream)
        return grouped  # type: ignore[no-any-return]

    def window(
        self,
        window: WindowSpec,
        *,
        watermark: WatermarkStrategy | None = None,
        late: LateStrategy | None = None,
    ) -> WindowedStream:
        """Event-time windows (on a stream that is not keyed: one window set and one
        watermark for all elements). ``watermark``/``late`` override the stream's strategies."""
        return WindowedStream(self, window, watermark or self._watermark, late or self._late)

    # ------------------------------------------------------------------ sinks

    def run(self) -> RunResult[T]:
        """Run the pipeline over the input; return results, side output and counters."""
        run = _Run()
        results = [item for item, _, _ in self._stage(run)]
        return RunResult(results, run.late, run.stats)

    def collect(self) -> list[T]:
        """``run().results``."""
        return self.run().results

    def for_each(self, fn: Callable[[T], object]) -> RunStats:
        """Run the pipeline, calling ``fn`` on each resulting element; return the counters."""
        run = _Run()
        for item, _, _ in self._stage(run):
            fn(item)
        return run.stats

    def timestamped(self) -> DataStream[Any]:
        """Make each element's timestamp visible: ``(timestamp, element)``."""
        return self._pipe(lambda run, up: (((t, i), t, k) for i, t, k in up))


class KeyedStream(DataStream[T]):
    """A stream partitioned by key (from :meth:`DataStream.key_by`).

    Element-wise operators keep the key; ``reduce``, ``scan``, ``aggregate``, ``distinct``,
    ``throttle``, ``process`` and ``window`` keep their state and watermark per key.
    """

    def keyed(self) -> DataStream[Any]:
        """Make each element's key visible: ``(key, element)``."""
        return self._pipe(lambda run, up: (((k, i), t, k) for i, t, k in up))


class GroupedStream(KeyedStream[T]):
    """A stream grouped by a field (from :meth:`DataStream.group_by`), with SQL-like final
    aggregates: each emits one :class:`AggregateResult` per group at the end of the input."""

    def count(self) -> DataStream[AggregateResult]:
        """Number of elements per group."""
        return self.aggregate(Count())

    def sum(self, field: str | None = None) -> DataStream[AggregateResult]:
        """Sum of ``field`` per group."""
        return self.aggregate(Sum(field))


class WindowedStream:
    """A (keyed) stream with a window spec (from ``window``); its aggregations return a
    :class:`DataStream` of :class:`WindowResult`, stamped with ``end - 1``."""

    def __init__(
        self,
        stream: DataStream[Any],
        window: WindowSpec,
        watermark: WatermarkStrategy,
        late: LateStrategy,
    ) -> None:
        self._stream = stream
        self._window = window
        self._watermark = watermark
        self._late = late

    def aggregate(self, aggregate: AggregateSpec) -> DataStream[WindowResult]:
        """Aggregate each window incrementally (see :class:`WindowOperator`)."""
        stream = self._stream
        window, watermark, late = self._window, self._watermark, self._late
        clock = stream._clock
        upstream = stream._stage
        source = stream._source

        def stage(run: _Run) -> Iterator[Record]:
            op = WindowOperator(window, aggregate, watermark=watermark, late=late)
            try:
                if source is not None and source.key is not None:
                    yield from _fused(op, source, clock, run)
                else:
                    yield from _windowed(op, upstream(run), clock, run)
            finally:
                _add_stats(run, op)

        return stream._derive(stage)

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DataStream[WindowResult]:
        """Reduce each window's elements with an associative ``fn(a, b)``."""
        return self.aggregate(Reduce(fn))

    def count(self) -> DataStream[WindowResult]:
        """Number of elements per window."""
        return self.aggregate(Count())

    def apply(self, fn: Callable[[list[Any]], Any]) -> DataStream[WindowResult]:
        """``fn(elements of the window in timestamp order)`` per window (keeps every element
        of the window in memory)."""
        collect = Collect()

        class _Apply(Aggregator):
            __slots__ = ()

            @property
            def name(self) -> str:
                return "apply"

            def create(self) -> Any:
                return collect.create()

            def add(self, acc: Any, value: Any, timestamp: int) -> Any:
                return collect.add(acc, value, timestamp)

            def merge(self, acc: Any, other: Any) -> Any:
                return collect.merge(acc, other)

            def result(self, acc: Any) -> Any:
                return fn(collect.result(acc))

        return self.aggregate(_Apply())


def _add_stats(run: _Run, op: WindowOperator) -> None:
    stats, own = run.stats, op.stats
    stats.late += own.late
    stats.dropped += own.dropped
    stats.side_output += own.side_output
    stats.fired += own.fired
    stats.updated += own.updated


def _windowed(
    op: WindowOperator,
    upstream: Iterator[Record],
    clock: Callable[[Any], int] | None,
    run: _Run,
) -> Iterator[Record]:
    """The general window stage: push every element, with processing time when needed."""
    results: list[WindowResult] = []
    late = run.late
    push = op._push
    strategy = op.watermark_strategy
    timed = strategy.interval is not None or strategy.idle_timeout is not None
    step = min(v for v in (strategy.interval, strategy.idle_timeout, END_OF_TIME) if v)
    replay = NO_WATERMARK
    next_check = NO_WATERMARK
    for item, ts, key in upstream:
        now: int | None = None
        if timed:
            if clock is None:
                replay = max(replay, ts)
                now = replay
            else:
                now = clock(item)
            if now >= next_check:
                if next_check != NO_WATERMARK:
                    for result in op.advance(now).results:  # already (end, start) ordered
                        yield result, result.end - 1, result.key
                next_check = now + step
        push(key, item, ts, now, results, late)
        if results:
            if len(results) > 1:
                results.sort(key=lambda r: (r.end, r.start))
            for result in results:
                yield result, result.end - 1, result.key
            results.clear()
    for result in op.finish().results:
        yield result, result.end - 1, result.key


def _fused(
    op: WindowOperator, source: _Source, clock: Callable[[Any], int] | None, run: _Run
) -> Iterator[Record]:
    """``from_events -> key_by -> window``: read the source directly (no per-stage hop)."""
    stats = run.stats
    ts_of = source.timestamp
    key_of = source.key
    assert key_of is not None

    def records() -> Iterator[Record]:
        for item in source.events:
            stats.events += 1
            yield item, ts_of(item), key_of(item)

    strategy = op.watermark_strategy
    if (
        strategy.interval is None
        and strategy.idle_timeout is None
        and op._tumbling is not None
        and not op._recompute
    ):
        results: list[WindowResult] = []
        for batch in _batches(source.events, 4096):
            stats.events += len(batch)
            op._feed_tumbling(batch, ts_of, key_of, results, run.late)
            if results:
                for result in results:
                    yield result, result.end - 1, result.key
                results.clear()
        for result in op.finish().results:
            yield result, result.end - 1, result.key
        return
    yield from _windowed(op, records(), clock, run)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
