"""Property tests: the engine against the brute-force reference model.

Every window kind x watermark strategy x late strategy is a parametrised case; hypothesis
draws the sizes, the aggregators (all of them by name, or a single one) and a random
out-of-order stream of pushes interleaved with processing-time steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stream import (
    Aggregator,
    AllowedLateness,
    Average,
    BoundedOutOfOrder,
    Count,
    Drop,
    First,
    Last,
    LateStrategy,
    Max,
    Min,
    MonotonicAscending,
    Percentile,
    Periodic,
    RecomputeWindows,
    SessionWindow,
    SideOutput,
    SlidingWindow,
    StdDev,
    Sum,
    TumblingWindow,
    WatermarkStrategy,
    WindowAssigner,
    WindowOperator,
    WindowOutput,
)
from tests.stream.reference_model import Reference, Spec


@dataclass(frozen=True, slots=True)
class TwoScales(WindowAssigner):
    """A custom assigner: overlapping windows of two sizes (6 and 15)."""

    def assign(self, timestamp: int) -> list[tuple[int, int]]:
        small = timestamp - timestamp % 6
        big = timestamp - timestamp % 15
        return [(small, small + 6), (big, big + 15)]


AGGREGATORS: dict[str, tuple[Aggregator, tuple[str, Any]]] = {
    "count": (Count(), ("count", None)),
    "sum": (Sum(), ("sum", None)),
    "mean": (Average(), ("mean", None)),
    "min": (Min(), ("min", None)),
    "max": (Max(), ("max", None)),
    "stddev": (StdDev(), ("stddev", False)),
    "stddev_sample": (StdDev(sample=True), ("stddev", True)),
    "p50": (Percentile(50), ("percentile", 50)),
    "p90": (Percentile(90), ("percentile", 90)),
    "first": (First(), ("first", None)),
    "last": (Last(), ("last", None)),
}

WINDOWS = ["tumbling", "sliding", "session", "custom"]
WATERMARKS = ["bounded", "monotonic", "periodic"]
LATES = ["drop", "allowed", "side", "recompute"]


@st.composite
def window_specs(draw: st.DrawFn, kind: str) -> tuple[Any, tuple[Any, ...]]:
    if kind == "tumbling":
        size = draw(st.integers(1, 20))
        offset = draw(st.integers(0, size - 1))
        return TumblingWindow(size, offset), ("tumbling", size, offset)
    if kind == "sliding":
        slide = draw(st.integers(1, 10))
        size = draw(st.integers(1, 25))
        offset = draw(st.integers(0, slide - 1))
        return SlidingWindow(size, slide, offset), ("sliding", size, slide, offset)
    if kind == "session":
        gap = draw(st.integers(1, 12))
        return SessionWindow(gap), ("session", gap)
    assigner = TwoScales()
    return assigner, ("custom", assigner.assign)


@st.composite
def watermark_specs(draw: st.DrawFn, kind: str) -> tuple[WatermarkStrategy, tuple[Any, ...]]:
    idle = draw(st.none() | st.integers(1, 40))
    delay = draw(st.integers(0, 12))
    if kind == "bounded":
        return BoundedOutOfOrder(delay, idle_timeout=idle), ("bounded", delay, None, idle)
    if kind == "monotonic":
        return MonotonicAscending(idle_timeout=idle), ("monotonic", 0, None, idle)
    interval = draw(st.integers(1, 10))
    return Periodic(interval, delay, idle_timeout=idle), ("periodic", delay, interval, idle)


@st.composite
def late_specs(draw: st.DrawFn, kind: str) -> tuple[LateStrategy, tuple[str, int]]:
    if kind == "drop":
        return Drop(), ("drop", 0)
    if kind == "side":
        return SideOutput(), ("side", 0)
    lateness = draw(st.integers(0, 30))
    if kind == "allowed":
        return AllowedLateness(lateness), ("allowed", lateness)
    return RecomputeWindows(lateness), ("recompute", lateness)


@st.composite
def aggregate_specs(draw: st.DrawFn) -> tuple[Any, dict[str, tuple[str, Any]], bool]:
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(AGGREGATORS)))
        agg, ref = AGGREGATORS[name]
        return agg, {agg.name: ref}, True
    return (
        {name: agg for name, (agg, _) in AGGREGATORS.items()},
        {name: ref for name, (_, ref) in AGGREGATORS.items()},
        False,
    )


Op = tuple[Any, ...]


@st.composite
def streams(draw: st.DrawFn) -> list[Op]:
    """Pushes with processing time ``now`` rising and event time trailing it by a random
    delay (so arrival order differs from event-time order), plus bare clock steps."""
    ops: list[Op] = []
    now = draw(st.integers(0, 50))
    for _ in range(draw(st.integers(0, 40))):
        now += draw(st.integers(0, 6))
        if draw(st.integers(0, 7)) == 0:
            ops.append(("advance", now + draw(st.integers(0, 40))))
            continue
        key = draw(st.sampled_from(["a", "b", "c"]))
        ts = now - draw(st.integers(0, 8) | st.integers(0, 60))
        value = draw(st.integers(-50, 50))
        ops.append(("push", key, ts, value, now))
    return ops


def close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return bool(a == b)


def engine_rows(out: WindowOutput) -> list[tuple[Any, ...]]:
    return [(r.key, r.start, r.end, r.revision, r.count, r.value, r.values) for r in out.results]


def assert_same(engine: list[tuple[Any, ...]], reference: list[tuple[Any, ...]]) -> None:
    assert [row[:5] for row in engine] == [row[:5] for row in reference]
    for got, want in zip(engine, reference, strict=True):
        assert close(got[5], want[5]), (got, want)
        assert close(got[6], want[6]), (got, want)


def run_both(op: WindowOperator, ref: Reference, ops: list[Op]) -> None:
    for operation in ops:
        if operation[0] == "advance":
            out = op.advance(operation[1])
            assert_same(engine_rows(out), ref.advance(operation[1]))
            continue
        _, key, ts, value, now = operation
        out = op.push(key, value, ts, now=now)
        rows, late, dropped = ref.push(key, ts, value, now)
        assert_same(engine_rows(out), rows)
        assert [(e.key, e.timestamp, e.item, e.watermark) for e in out.late] == late
        assert out.dropped == dropped
        assert op.watermark(key) == ref.watermark(key)


def build(data: st.DataObject, window: str, watermark: str, late: str) -> tuple[Any, Spec]:
    window_obj, window_ref = data.draw(window_specs(window))
    wm_obj, wm_ref = data.draw(watermark_specs(watermark))
    late_obj, late_ref = data.draw(late_specs(late))
    agg_obj, agg_ref, single = data.draw(aggregate_specs())

    def make() -> WindowOperator:
        return WindowOperator(window_obj, agg_obj, watermark=wm_obj, late=late_obj)

    return make, Spec(window_ref, wm_ref, late_ref, agg_ref, single)


@pytest.mark.parametrize("late", LATES)
@pytest.mark.parametrize("watermark", WATERMARKS)
@pytest.mark.parametrize("window", WINDOWS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_engine_matches_reference(window: str, watermark: str, late: str, data: Any) -> None:
    make, spec = build(data, window, watermark, late)
    op, ref = make(), Reference(spec)
    run_both(op, ref, data.draw(streams()))
    assert_same(engine_rows(op.finish()), ref.finish())
    assert op.stats.as_dict() == ref.stats


def apply(op: WindowOperator, operation: Op) -> WindowOutput:
    if operation[0] == "advance":
        return op.advance(operation[1])
    _, key, ts, value, now = operation
    return op.push(key, value, ts, now=now)


def same_output(a: WindowOutput, b: WindowOutput) -> None:
    assert_same(engine_rows(a), engine_rows(b))
    assert a.late == b.late
    assert a.dropped == b.dropped


@pytest.mark.parametrize("window", WINDOWS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_snapshot_restore_continues_identically(window: str, data: Any) -> None:
    """Split a stream at a random point, snapshot (through JSON), restore into a fresh
    operator: the rest of the stream gives the same outputs as the uninterrupted operator;
    the same holds for per-key snapshots (``snapshot_key``/``restore_key``)."""
    make, _ = build(
        data, window, data.draw(st.sampled_from(WATERMARKS)), data.draw(st.sampled_from(LATES))
    )
    ops = data.draw(streams())
    cut = data.draw(st.integers(0, len(ops)))
    whole = make()
    for operation in ops[:cut]:
        apply(whole, operation)
    snapshot = json.loads(json.dumps(whole.snapshot()))
    resumed = make()
    resumed.restore(snapshot)
    # Per-key checkpoints: the operator-wide part (clock, counters) from a snapshot without
    # keys, then every key from its own snapshot.
    per_key = make()
    per_key.restore({**snapshot, "keys": []})
    for key in whole.keys():
        per_key.restore_key(key, json.loads(json.dumps(whole.snapshot_key(key))))
    for operation in ops[cut:]:
        expected = apply(whole, operation)
        same_output(apply(resumed, operation), expected)
        same_output(apply(per_key, operation), expected)
        for key in whole.keys():
            assert resumed.watermark(key) == whole.watermark(key)
            assert resumed.open_windows(key) == whole.open_windows(key)
    expected = whole.finish()
    same_output(resumed.finish(), expected)
    same_output(per_key.finish(), expected)
    assert resumed.stats == whole.stats


@st.composite
def event_sets(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    return draw(
        st.lists(
            st.tuples(st.sampled_from(["a", "b"]), st.integers(-30, 120), st.integers(-9, 9)),
            max_size=40,
        )
    )


def batch(window: Any, events: list[tuple[str, int, int]]) -> dict[tuple[Any, int, int], list[int]]:
    """The obvious group-by: every (key, window) with the values of its events."""
    groups: dict[tuple[Any, int, int], list[int]] = {}
    for key, ts, value in events:
        for start, end in window.assign(ts):
            groups.setdefault((key, start, end), []).append(value)
    return groups


@pytest.mark.parametrize("window", [TumblingWindow(7, 2), SlidingWindow(10, 4), TwoScales()])
@settings(max_examples=60, deadline=None)
@given(events=event_sets(), data=st.data())
def test_final_revisions_equal_a_batch_group_by(window: Any, events: Any, data: Any) -> None:
    """With lateness longer than any disorder, the last revision of every window is the
    batch aggregate of all its events, whatever the arrival order."""
    ops = data.draw(st.permutations(events))
    op = WindowOperator(
        window,
        {"sum": Sum(), "count": Count(), "min": Min()},
        watermark=BoundedOutOfOrder(data.draw(st.integers(0, 20))),
        late=data.draw(st.sampled_from([AllowedLateness(1000), RecomputeWindows(1000)])),
    )
    final: dict[tuple[Any, int, int], Any] = {}
    for key, ts, value in ops:
        for r in op.push(key, value, ts).results:
            final[(r.key, r.start, r.end)] = r
    for r in op.finish().results:
        final[(r.key, r.start, r.end)] = r
    groups = batch(window, events)
    assert set(final) == set(groups)
    for wkey, values in groups.items():
        assert final[wkey].values == {"sum": sum(values), "count": len(values), "min": min(values)}
    revisions = [r.revision for r in final.values()]
    assert all(rev >= 0 for rev in revisions)
    assert op.stats.dropped == 0


@pytest.mark.parametrize("window", [TumblingWindow(7), SlidingWindow(9, 3), SessionWindow(5)])
@settings(max_examples=60, deadline=None)
@given(events=event_sets(), data=st.data())
def test_results_do_not_depend_on_arrival_order(window: Any, events: Any, data: Any) -> None:
    """Same events, any order, same watermark history (a Periodic watermark with no
    processing time moves only at finish): the same results, revision 0 each."""

    def run(order: list[tuple[str, int, int]]) -> list[Any]:
        op = WindowOperator(
            window,
            [Count(), Sum(), First(), Last(), Percentile(50), StdDev()],
            watermark=Periodic(1000),
            late=RecomputeWindows(0),
        )
        for key, ts, value in order:
            assert not op.push(key, value, ts).results
        return sorted(
            ((r.key, r.start, r.end, r.revision, r.count, r.values) for r in op.finish().results),
            key=repr,
        )

    # Equal timestamps make First/Last depend on arrival order (documented): keep them unique.
    unique = list({(key, ts): (key, ts, value) for key, ts, value in events}.values())
    assert run(unique) == run(data.draw(st.permutations(unique)))
