"""Unit tests of the fluent DataStream API, one (or a few) per operator."""

from __future__ import annotations

import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.stream
from gateway.stream import (
    AggregateResult,
    AllowedLateness,
    Average,
    BoundedOutOfOrder,
    Count,
    DataStream,
    Drop,
    GroupedStream,
    KeyedStream,
    Max,
    MonotonicAscending,
    Periodic,
    ProcessContext,
    ProcessFunction,
    RecomputeWindows,
    SessionWindow,
    SideOutput,
    SlidingWindow,
    StreamEvent,
    Sum,
    TumblingWindow,
    WindowedStream,
    WindowResult,
)


def ev(ts: int, source: str = "d1", **data: Any) -> StreamEvent:
    return StreamEvent("reading", data or {"v": ts}, ts, source)


def windows(results: list[WindowResult]) -> list[tuple[Any, int, int, Any, int]]:
    return [(r.key, r.start, r.end, r.value, r.revision) for r in results]


# ------------------------------------------------------------------ package surface


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(gateway.stream).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}
    assert set(gateway.stream.__all__) == public
    assert gateway.stream.__all__ == sorted(
        gateway.stream.__all__, key=lambda n: (not n.isupper(), n)
    )


def test_stream_event_fields() -> None:
    e = StreamEvent("reading", {"temp": 21.5, "source": "payload"}, 5, "d1")
    assert e["temp"] == 21.5
    assert e["source"] == "payload"  # data first
    assert e["timestamp"] == 5
    assert e["event_type"] == "reading"
    assert e.get("nope", 0) == 0
    with pytest.raises(KeyError):
        e["nope"]


# ------------------------------------------------------------------ element-wise


def test_map_filter_flat_map() -> None:
    out = (
        DataStream.from_events([ev(1), ev(2), ev(3)])
        .map(lambda e: e["v"])
        .filter(lambda v: v != 2)
        .flat_map(lambda v: [v] * v)
        .collect()
    )
    assert out == [1, 3, 3, 3]


def test_tap_and_inspect_see_every_element_unchanged() -> None:
    seen: list[int] = []
    out = DataStream.from_events([ev(1), ev(2)]).map(lambda e: e.timestamp).tap(seen.append)
    assert out.inspect(seen.append).collect() == [1, 2]
    assert seen == [1, 1, 2, 2]


def test_assign_timestamps_and_timestamped() -> None:
    items = [{"t": 5, "x": "a"}, {"t": 7, "x": "b"}]
    stream = DataStream.from_events(items, timestamp="t")
    assert stream.timestamped().map(lambda p: p[0]).collect() == [5, 7]
    restamped = stream.assign_timestamps(lambda i: i["t"] * 10).timestamped()
    assert restamped.map(lambda p: p[0]).collect() == [50, 70]


def test_default_timestamp_from_mapping_or_error() -> None:
    assert DataStream.from_events([{"timestamp": 3}]).timestamped().collect() == [
        (3, {"timestamp": 3})
    ]
    with pytest.raises(TypeError, match="from_events: no event time in int"):
        DataStream.from_events([1]).collect()


def test_take_and_enumerate() -> None:
    stream = DataStream.from_events([ev(t) for t in range(5)]).map(lambda e: e.timestamp)
    assert stream.take(2).collect() == [0, 1]
    assert stream.limit(1).enumerate(10).collect() == [(10, 0)]


def test_a_stream_can_run_twice_and_is_not_changed_by_derivation() -> None:
    base = DataStream.from_events([ev(1), ev(2)]).map(lambda e: e.timestamp)
    base.filter(lambda t: t > 1)
    assert base.collect() == [1, 2]
    assert base.collect() == [1, 2]


# ------------------------------------------------------------------ stateful


def test_distinct_per_key_and_within() -> None:
    events = [ev(1, "a", v=1), ev(2, "b", v=1), ev(3, "a", v=1), ev(50, "a", v=1)]
    stream = DataStream.from_events(events).key_by("source")
    result = stream.distinct("v").map(lambda e: e.timestamp).run()
    assert result.results == [1, 2]
    assert result.stats.duplicates == 2
    windowed = stream.distinct("v", within=10).map(lambda e: e.timestamp).collect()
    assert windowed == [1, 2, 50]


def test_throttle_per_key_per_event_time_bucket() -> None:
    #   per = 10: bucket [0,10) keeps 2 of a's 3 events; [10,20) starts afresh
    events = [ev(1, "a"), ev(2, "a"), ev(3, "a"), ev(4, "b"), ev(12, "a")]
    result = (
        DataStream.from_events(events)
        .key_by("source")
        .throttle(2, 10)
        .map(lambda e: (e.source, e.timestamp))
        .run()
    )
    assert result.results == [("a", 1), ("a", 2), ("b", 4), ("a", 12)]
    assert result.stats.throttled == 1
    with pytest.raises(ValueError, match=r"throttle\.count must be >= 1"):
        DataStream.from_events([]).throttle(0, 10)


def test_scan_and_reduce_are_rolling_per_key() -> None:
    events = [ev(1, "a"), ev(2, "b"), ev(3, "a")]
    keyed = DataStream.from_events(events).key_by("source").map(lambda e: e.timestamp)
    assert keyed.scan(lambda acc, t: [*acc, t], []).collect() == [[1], [2], [1, 3]]
    assert keyed.reduce(lambda a, b: a + b).collect() == [1, 2, 4]


def test_aggregate_final_and_rolling() -> None:
    events = [ev(1, "a", t=1.0), ev(2, "b", t=5.0), ev(3, "a", t=3.0)]
    keyed = DataStream.from_events(events).key_by("source")
    assert keyed.aggregate(Average("t")).collect() == [
        AggregateResult("a", 2.0, {"mean": 2.0}, 2),
        AggregateResult("b", 5.0, {"mean": 5.0}, 1),
    ]
    rolling = keyed.aggregate({"n": Count(), "hi": Max("t")}, rolling=True).collect()
    assert [(r.key, r.values) for r in rolling] == [
        ("a", {"n": 1, "hi": 1.0}),
        ("b", {"n": 1, "hi": 5.0}),
        ("a", {"n": 2, "hi": 3.0}),
    ]
    (total,) = DataStream.from_events(events).aggregate(Sum("t")).collect()
    assert (total.key, total.value, total.count) == (None, 9.0, 3)


def test_group_by_final_results() -> None:
    rows = [
        {"timestamp": 1, "room": "k", "w": 2},
        {"timestamp": 2, "room": "l", "w": 3},
        {"timestamp": 3, "room": "k", "w": 4},
    ]
    grouped = DataStream.from_events(rows).group_by("room")
    assert isinstance(grouped, GroupedStream)
    assert [(r.key, r.value) for r in grouped.count().collect()] == [("k", 2), ("l", 1)]
    assert [(r.key, r.value) for r in grouped.sum("w").collect()] == [("k", 6), ("l", 3)]


def test_process_with_state_and_event_time_timers() -> None:
    """Emit a key's running count 5 ms of event time after its first event (a timer),
    and every element that exceeds the previous maximum."""

    class Alarm(ProcessFunction):
        def process(self, item: Any, ctx: ProcessContext) -> list[Any]:
            state = ctx.state
            state["n"] = state.get("n", 0) + 1
            if state["n"] == 1:
                ctx.register_timer(ctx.timestamp + 5)
                ctx.register_timer(ctx.timestamp + 1000)
                ctx.delete_timer(ctx.timestamp + 1000)
            if item["v"] > state.get("max", float("-inf")):
                state["max"] = item["v"]
                return [("new max", ctx.key, item["v"])]
            return []

        def on_timer(self, timestamp: int, ctx: ProcessContext) -> list[Any]:
            return [("count", ctx.key, ctx.state["n"], timestamp)]

    events = [ev(1, "a", v=3), ev(2, "a", v=1), ev(6, "a", v=4), ev(3, "b", v=0)]
    out = DataStream.from_events(events).key_by("source").process(Alarm()).collect()
    assert out == [
        ("new max", "a", 3),
        ("new max", "a", 4),
        ("count", "a", 3, 6),  # W(a) = 6 after ts 6: the timer at 6 fires
        ("new max", "b", 0),
        ("count", "b", 1, 8),  # end of input: W = +inf
    ]


def test_process_accepts_a_plain_function() -> None:
    def double(item: Any, ctx: ProcessContext) -> list[Any]:
        return [item.timestamp, item.timestamp]

    assert DataStream.from_events([ev(1)]).process(double).collect() == [1, 1]


def test_union_interleaves_by_timestamp() -> None:
    a = DataStream.from_events([ev(1, "a"), ev(5, "a")])
    b = DataStream.from_events([ev(2, "b"), ev(9, "b")])
    merged = a.union(b).map(lambda e: (e.source, e.timestamp)).run()
    assert merged.results == [("a", 1), ("b", 2), ("a", 5), ("b", 9)]
    assert merged.stats.events == 4


# ------------------------------------------------------------------ windows


def test_key_by_window_aggregate_with_side_output() -> None:
    #   d1: [0,10) gets 1, 4; fires at W = 12 - 2 = 10; ts 3 then is late -> side output
    events = [ev(1), ev(4), ev(12), ev(3), ev(2, "d2")]
    result = (
        DataStream.from_events(events, watermark=BoundedOutOfOrder(2), late=SideOutput())
        .key_by("source")
        .window(TumblingWindow(10))
        .aggregate(Sum("v"))
        .run()
    )
    assert windows(result.results) == [
        ("d1", 0, 10, 5, 0),
        ("d2", 0, 10, 2, 0),
        ("d1", 10, 20, 12, 0),
    ]
    assert [(e.key, e.timestamp) for e in result.late] == [("d1", 3)]
    assert (result.stats.late, result.stats.side_output, result.stats.fired) == (1, 1, 3)


def test_watermark_is_per_key_after_key_by_and_per_stream_without() -> None:
    #   d1 races ahead to ts 100; d2's ts 5 is not late for d2 (own watermark) ...
    events = [ev(1, "d1"), ev(100, "d1"), ev(5, "d2")]
    keyed = DataStream.from_events(events).key_by("source").window(TumblingWindow(10)).count()
    assert keyed.run().stats.late == 0
    #   ... but with one watermark for the whole stream, ts 5 arrives after W = 100
    whole = DataStream.from_events(events).window(TumblingWindow(10)).count().run()
    assert whole.stats.dropped == 1
    assert windows(whole.results) == [(None, 0, 10, 1, 0), (None, 100, 110, 1, 0)]


def test_window_results_are_stamped_with_their_last_instant() -> None:
    stream = DataStream.from_events([ev(1), ev(25)]).key_by("source")
    out = stream.window(TumblingWindow(10)).count().timestamped().collect()
    assert [(ts, r.end) for ts, r in out] == [(9, 10), (29, 30)]


def test_windowed_reduce_apply_and_overrides() -> None:
    events = [ev(1, v=4), ev(3, v=2), ev(12, v=7), ev(2, v=9)]
    keyed = DataStream.from_events(events).key_by("source")
    assert isinstance(keyed, KeyedStream)
    win = keyed.window(SessionWindow(5), watermark=BoundedOutOfOrder(20))
    assert isinstance(win, WindowedStream)
    reduced = win.reduce(lambda a, b: {"v": max(a["v"], b["v"])}).collect()
    assert [r.value["v"] for r in reduced] == [9, 7]
    #   sessions: 1, 3, 2 -> [1,8); 12 -> [12,17); apply sees values in timestamp order
    applied = win.apply(lambda items: [e["v"] for e in items]).collect()
    assert [(r.start, r.end, r.value) for r in applied] == [(1, 8, [4, 9, 2]), (12, 17, [7])]
    late = keyed.window(TumblingWindow(10), late=AllowedLateness(100)).count().collect()
    assert [(r.start, r.value, r.revision) for r in late] == [(0, 2, 0), (0, 3, 1), (10, 1, 0)]


def test_from_events_periodic_watermark_uses_the_replay_clock() -> None:
    #   Periodic(10): the watermark moves when the replay clock (max ts so far) crosses a tick
    events = [ev(1), ev(4), ev(15), ev(31)]
    stream = DataStream.from_events(events, watermark=Periodic(10)).key_by("source")
    out = stream.window(TumblingWindow(10)).count().collect()
    assert [(r.start, r.value) for r in out] == [(0, 2), (10, 1), (30, 1)]


def test_from_events_idle_timeout_with_processing_time_field() -> None:
    #   d2 goes quiet; d1's arrivals advance processing time past d2's idle timeout, so d2's
    #   window fires before the end of the input
    rows = [
        {"timestamp": 1, "dev": "d2", "arrival": 1},
        {"timestamp": 2, "dev": "d1", "arrival": 2},
        {"timestamp": 3, "dev": "d1", "arrival": 40},
        {"timestamp": 4, "dev": "d1", "arrival": 70},
    ]
    stream = DataStream.from_events(
        rows,
        watermark=BoundedOutOfOrder(1000, idle_timeout=50),
        processing_time="arrival",
    )
    seen: list[Any] = []
    out = stream.key_by("dev").window(TumblingWindow(10)).count().tap(seen.append).collect()
    assert [(r.key, r.value) for r in out] == [("d2", 1), ("d1", 3)]


def test_for_each_returns_stats() -> None:
    got: list[Any] = []
    stats = DataStream.from_events([ev(1), ev(2)]).for_each(got.append)
    assert [e.timestamp for e in got] == [1, 2]
    assert stats.events == 2


def test_with_watermark_and_with_late_apply_downstream() -> None:
    events = [ev(1), ev(12), ev(3)]
    strict = DataStream.from_events(events).key_by("source")
    assert strict.window(TumblingWindow(10)).count().run().stats.dropped == 1
    relaxed = strict.with_watermark(BoundedOutOfOrder(5)).window(TumblingWindow(10))
    assert relaxed.count().run().stats.late == 0
    lenient = strict.with_late(AllowedLateness(50)).window(TumblingWindow(10)).count()
    assert lenient.run().stats.updated == 1


# ------------------------------------------------------------------ fast path = general path


@st.composite
def shuffled_events(draw: st.DrawFn) -> list[StreamEvent]:
    n = draw(st.integers(0, 60))
    out = []
    for i in range(n):
        ts = i * 3 - draw(st.integers(0, 8) | st.integers(0, 50))
        out.append(ev(ts, draw(st.sampled_from(["a", "b", "c"])), v=draw(st.integers(-9, 9))))
    return out


@settings(max_examples=80, deadline=None)
@given(
    events=shuffled_events(),
    late=st.sampled_from([Drop(), AllowedLateness(15), SideOutput(), RecomputeWindows(15)]),
    window=st.sampled_from([TumblingWindow(10), TumblingWindow(7, 3), SlidingWindow(10, 5)]),
    agg=st.sampled_from([Sum("v"), {"n": Count(), "mean": Average("v")}]),
)
def test_fused_runner_equals_the_general_path(
    events: list[StreamEvent], late: Any, window: Any, agg: Any
) -> None:
    """``from_events -> key_by -> window`` (fused loop) gives exactly what the same pipeline
    through the general per-event path gives (a no-op filter defeats the fusion)."""
    wm = BoundedOutOfOrder(5)
    fused = DataStream.from_events(events, watermark=wm, late=late).key_by("source")
    general = (
        DataStream.from_events(events, watermark=wm, late=late)
        .filter(lambda e: True)
        .key_by("source")
    )
    a = fused.window(window).aggregate(agg).run()
    b = general.window(window).aggregate(agg).run()
    assert a.results == b.results
    assert a.late == b.late
    assert a.stats == b.stats


def test_monotonic_is_the_default_watermark() -> None:
    stream = DataStream.from_events([ev(5), ev(1)]).key_by("source")
    assert stream.window(TumblingWindow(2)).count().run().stats.dropped == 1
    explicit = DataStream.from_events([ev(5), ev(1)], watermark=MonotonicAscending())
    assert explicit.key_by("source").window(TumblingWindow(2)).count().run().stats.dropped == 1
