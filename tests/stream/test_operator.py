"""Unit tests of WindowOperator: each rule of the contract on a small, drawn example."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gateway.stream import (
    END_OF_TIME,
    AllowedLateness,
    Average,
    BoundedOutOfOrder,
    Count,
    Drop,
    Max,
    Min,
    MonotonicAscending,
    Periodic,
    RecomputeWindows,
    SessionWindow,
    SideOutput,
    SlidingWindow,
    Sum,
    TumblingWindow,
    WindowOperator,
    WindowOutput,
)


def spans(out: WindowOutput) -> list[tuple[int, int, int, int]]:
    """(start, end, revision, count) of each result."""
    return [(r.start, r.end, r.revision, r.count) for r in out.results]


def push_all(op: WindowOperator, key: str, timestamps: list[int]) -> list[Any]:
    fired = []
    for ts in timestamps:
        fired += spans(op.push(key, ts, ts))
    return fired


# ------------------------------------------------------------------ assignment


def test_tumbling_windows_are_half_open_and_epoch_aligned() -> None:
    #   [0,10)     [10,20)
    #   0 ..... 9  10 .... 19
    #   x       x  x
    op = WindowOperator(TumblingWindow(10), Count())
    push_all(op, "d", [0, 9, 10])
    assert op.open_windows("d") == [(10, 20, {"count": 1})]
    assert TumblingWindow(10).assign(-1) == [(-10, 0)]
    assert TumblingWindow(10, offset=3).assign(12) == [(3, 13)]
    assert TumblingWindow(10, offset=3).assign(13) == [(13, 23)]


def test_sliding_window_membership() -> None:
    #   [0,10)
    #        [5,15)
    #             [10,20)
    #          ^ ts 7 is in [0,10) and [5,15); ts 10 in [5,15) and [10,20)
    assert sorted(SlidingWindow(10, 5).assign(7)) == [(0, 10), (5, 15)]
    assert sorted(SlidingWindow(10, 5).assign(10)) == [(5, 15), (10, 20)]
    assert len(SlidingWindow(60, 10).assign(123)) == 6
    # slide > size: gaps between windows; ts 5 falls in no window
    assert SlidingWindow(5, 10).assign(5) == []
    assert SlidingWindow(5, 10).assign(4) == [(0, 5)]


def test_durations_accept_timedelta_and_refuse_nonsense() -> None:
    assert TumblingWindow(timedelta(seconds=10)).size == 10_000
    assert BoundedOutOfOrder(timedelta(milliseconds=250)).max_delay == 250
    assert AllowedLateness(timedelta(minutes=1)).max_lateness == 60_000
    with pytest.raises(ValueError, match=r"TumblingWindow.size must be > 0 ms; got 0"):
        TumblingWindow(0)
    with pytest.raises(TypeError, match=r"SessionWindow.gap must be an int .* got a float"):
        SessionWindow(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        TumblingWindow(timedelta(microseconds=10))
    with pytest.raises(ValueError, match="offset must be < size"):
        TumblingWindow(10, offset=10)


def test_configuration_objects_are_frozen_values() -> None:
    assert TumblingWindow(10) == TumblingWindow(10)
    assert hash(BoundedOutOfOrder(5)) == hash(BoundedOutOfOrder(5))
    with pytest.raises(AttributeError):
        TumblingWindow(10).size = 5  # type: ignore[misc]


# ------------------------------------------------------------------ firing


def test_window_fires_exactly_when_watermark_reaches_end() -> None:
    #   [0,10) fires when W = max_ts - 5 >= 10, i.e. at ts 15, not at 14
    op = WindowOperator(TumblingWindow(10), Sum(), watermark=BoundedOutOfOrder(5))
    assert not op.push("d", 2, 2).results
    assert not op.push("d", 14, 14).results
    assert op.watermark("d") == 9
    out = op.push("d", 15, 15)
    assert [(r.start, r.end, r.value, r.revision, r.count) for r in out.results] == [
        (0, 10, 2, 0, 1)
    ]


def test_event_behind_watermark_joins_an_open_window() -> None:
    #   W = 12 after ts 17 (delay 5); ts 11 < W but [10,20) is still open: it joins
    op = WindowOperator(TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(5))
    op.push("d", 17, 17)
    out = op.push("d", 11, 11)
    assert not out
    assert op.stats.late == 0
    assert op.open_windows("d") == [(10, 20, {"count": 2})]


def test_watermark_never_moves_backwards() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(5))
    op.push("d", 0, 50)
    op.push("d", 0, 20)
    assert op.watermark("d") == 45
    assert op.watermark("unknown") is None


def test_single_aggregator_gives_value_and_dict_gives_values() -> None:
    single = WindowOperator(TumblingWindow(10), Average())
    single.push("d", 1.0, 1)
    (res,) = single.finish().results
    assert res.value == 1.0
    assert res.values == {"mean": 1.0}
    many = WindowOperator(TumblingWindow(10), {"n": Count(), "hi": Max("t")})
    many.push("d", {"t": 3}, 1)
    (res,) = many.finish().results
    assert res.value is None
    assert res.values == {"n": 1, "hi": 3}


def test_results_ordered_by_end_then_start() -> None:
    #   [0,10) [5,15) [10,20) ... all fire at finish, ordered by end
    op = WindowOperator(SlidingWindow(10, 5), Count(), watermark=BoundedOutOfOrder(100))
    push_all(op, "d", [1, 7, 12])
    assert [(s, e) for s, e, _, _ in spans(op.finish())] == [(-5, 5), (0, 10), (5, 15), (10, 20)]


def test_finish_fires_everything_and_refuses_more() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(100))
    push_all(op, "a", [1, 25])
    op.push("b", 3, 3)
    out = op.finish()
    assert [(r.key, r.start) for r in out.results] == [("a", 0), ("b", 0), ("a", 20)]
    assert op.watermark("a") == END_OF_TIME
    with pytest.raises(RuntimeError, match="has finished"):
        op.push("a", 1, 1)


# ------------------------------------------------------------------ late data


def test_drop_counts_late_events() -> None:
    #   [0,10) fired at ts 10 (monotonic); ts 5 arrives after: late, dropped
    op = WindowOperator(TumblingWindow(10), Count(), late=Drop())
    assert spans(op.push("d", 0, 10)) == []  # no window before: nothing fires
    op = WindowOperator(TumblingWindow(10), Count(), late=Drop())
    op.push("d", 0, 1)
    assert spans(op.push("d", 0, 10)) == [(0, 10, 0, 1)]
    out = op.push("d", 0, 5)
    assert out.dropped == 1
    assert not out.results
    assert (op.stats.late, op.stats.dropped) == (1, 1)


def test_allowed_lateness_refires_with_revisions_then_discards() -> None:
    #   [0,10) fires at W 10 (rev 0); late ts 3 at W 15 -> rev 1; at W 30 = end + 20 it is
    #   purged and ts 4 is dropped
    op = WindowOperator(TumblingWindow(10), Sum(), late=AllowedLateness(20))
    op.push("d", 1, 1)
    assert spans(op.push("d", 0, 10)) == [(0, 10, 0, 1)]
    op.push("d", 0, 15)
    out = op.push("d", 3, 3)
    assert [(r.revision, r.value, r.count) for r in out.results] == [(1, 4, 2)]
    op.push("d", 0, 29)
    assert spans(op.push("d", 7, 7)) == [(0, 10, 2, 3)]  # W 29 < 30: still accepted
    op.push("d", 0, 30)
    out = op.push("d", 4, 4)
    assert out.dropped == 1
    assert not out.results
    assert op.stats.as_dict() == {
        "events": 8,
        "late": 3,
        "dropped": 1,
        "side_output": 0,
        "fired": 3,
        "updated": 2,
        "refused": 0,
    }


def test_sliding_late_event_is_discarded_only_when_all_its_windows_are_past_lateness() -> None:
    #   SlidingWindow(10, 5), lateness 5, W = 17:
    #     [0,10)   end + 5 = 15 <= 17  -> gone
    #     [5,15)   end + 5 = 20 >  17  -> takes ts 8, re-fires
    #   ts 8 is not dropped; ts 3 (only in [-5,5), [0,10)) is
    op = WindowOperator(SlidingWindow(10, 5), Count(), late=AllowedLateness(5))
    push_all(op, "d", [1, 6, 17])
    out = op.push("d", 8, 8)
    assert spans(out) == [(5, 15, 1, 2)]
    assert out.dropped == 0
    out = op.push("d", 3, 3)
    assert out.dropped == 1


def test_sliding_event_partly_late_joins_its_open_windows() -> None:
    #   W = 10: [0,10) fired; [5,15) open. ts 7 belongs to both: joins [5,15), not dropped
    op = WindowOperator(SlidingWindow(10, 5), Count(), late=Drop())
    push_all(op, "d", [1, 10])
    out = op.push("d", 7, 7)
    assert not out
    assert op.stats.late == 1
    assert op.stats.dropped == 0
    assert op.open_windows("d")[0] == (5, 15, {"count": 2})


def test_side_output_leaves_windows_untouched() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), late=SideOutput())
    push_all(op, "d", [1, 12])
    out = op.push("d", "late!", 4)
    assert [(e.key, e.timestamp, e.item, e.watermark) for e in out.late] == [("d", 4, "late!", 12)]
    assert not out.results
    assert out.dropped == 0
    assert op.stats.side_output == 1


def test_late_event_for_a_window_that_never_existed_within_lateness_fires_revision_0() -> None:
    #   W = 25; [10,20) had no event; ts 15 within lateness 10 -> emitted at once, revision 0
    op = WindowOperator(TumblingWindow(10), Count(), late=AllowedLateness(10))
    push_all(op, "d", [1, 25])
    assert spans(op.push("d", 15, 15)) == [(10, 20, 0, 1)]


def test_recompute_windows_recomputes_in_timestamp_order() -> None:
    op = WindowOperator(
        TumblingWindow(10), [Sum(), Count()], late=RecomputeWindows(timedelta(seconds=1))
    )
    push_all(op, "d", [5, 10])
    (res,) = op.push("d", 1e16, 2).results  # float sum recomputed from sorted raw values
    assert res.revision == 1
    assert res.values == {"sum": 1e16 + 5, "count": 2}


# ------------------------------------------------------------------ sessions


def test_sessions_merge_when_overlapping_and_split_at_exactly_gap() -> None:
    #   gap 5: 0 -> [0,5); 3 -> [3,8) overlaps -> [0,8); 8 -> [8,13) only touches -> separate
    #   [0 . . . . . . 8)[8 . . . . 13)      [20 . . . 25)
    op = WindowOperator(SessionWindow(5), Count())
    for ts in [0, 3, 8, 20]:
        op.push("d", ts, ts)
    assert [(s, e, v["count"]) for s, e, v in op.open_windows("d")] == [(20, 25, 1)]
    op2 = WindowOperator(SessionWindow(5), Count(), watermark=Periodic(1))
    for ts in [8, 20, 0, 3]:
        op2.push("d", ts, ts)
    assert spans(op2.finish()) == [(0, 8, 0, 2), (8, 13, 0, 1), (20, 25, 0, 1)]


def test_late_event_bridging_two_fired_sessions_merges_them_with_a_new_revision() -> None:
    #   [0,5) and [10,15) fired; W = 30 - 0; late ts 6 -> [6,11) overlaps [10,15) and
    #   not [0,5); then ts 3 -> [3,8) bridges [0,5) and [6,15) -> [0,15), revision 2
    op = WindowOperator(SessionWindow(5), [Count(), Min(), Max()], late=AllowedLateness(100))
    push_all(op, "d", [0, 10, 30])
    assert spans(op.push("d", 6, 6)) == [(6, 15, 1, 2)]
    (res,) = op.push("d", 3, 3).results
    assert (res.start, res.end, res.revision, res.count) == (0, 15, 2, 4)
    assert res.values == {"count": 4, "min": 0, "max": 10}


# ------------------------------------------------------------------ processing time


def test_idle_timeout_fires_the_open_windows_of_a_silent_key() -> None:
    #   key "a" sends ts 1 and 12 at now 100; nothing for 30 ms of processing time:
    #   W(a) jumps to 20, the end of its newest open window; "b" is not idle yet
    op = WindowOperator(
        TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(100, idle_timeout=30)
    )
    op.push("a", 0, 1, now=100)
    op.push("a", 0, 12, now=100)
    op.push("b", 0, 5, now=120)
    assert not op.advance(129).results
    out = op.advance(130)
    assert [(r.key, r.start, r.end) for r in out.results] == [("a", 0, 10), ("a", 10, 20)]
    assert op.watermark("a") == 20
    assert op.watermark("b") == -95
    assert not op.advance(200).results or op.open_windows("b") == []


def test_periodic_watermark_moves_on_processing_time_ticks() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), watermark=Periodic(100, max_delay=2))
    op.push("d", 0, 5, now=1_000)
    op.push("d", 0, 15, now=1_050)
    assert op.watermark("d") is None  # no tick yet
    out = op.advance(1_100)
    assert op.watermark("d") == 13
    assert spans(out) == [(0, 10, 0, 1)]
    # a push after a due tick publishes the watermark of the events before it
    op.push("d", 0, 40, now=1_150)
    op.push("d", 0, 41, now=1_200)
    assert op.watermark("d") == 38


def test_processing_time_going_backwards_is_clamped() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), watermark=MonotonicAscending(idle_timeout=10))
    op.push("d", 0, 1, now=1_000)
    assert not op.advance(500).results  # clock stays at 1000
    op.push("d", 0, 2, now=400)  # treated as now 1000: last seen 1000
    assert not op.advance(1_009).results
    assert spans(op.advance(1_010)) == [(0, 10, 0, 2)]


# ------------------------------------------------------------------ state


def test_snapshot_is_plain_json_and_independent() -> None:
    op = WindowOperator(
        TumblingWindow(10), {"mean": Average(), "n": Count()}, late=AllowedLateness(5)
    )
    push_all(op, "d", [1, 2, 11])
    snap = op.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    op.push("d", 100, 3)  # must not change the snapshot taken before
    assert json.loads(json.dumps(snap)) == snap
    fresh = WindowOperator(
        TumblingWindow(10), {"mean": Average(), "n": Count()}, late=AllowedLateness(5)
    )
    fresh.restore(snap)
    assert fresh.open_windows("d") == [(10, 20, {"mean": 11.0, "n": 1})]
    with pytest.raises(ValueError, match="snapshot version"):
        fresh.restore({"version": 99})


def test_per_key_passivation() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(5))
    op.push(("site", 1), 0, 3)
    op.push("b", 0, 4)
    assert op.keys() == [("site", 1), "b"]
    snap = json.loads(json.dumps(op.snapshot_key(("site", 1))))
    assert op.drop_key(("site", 1))
    assert not op.drop_key(("site", 1))
    assert op.keys() == ["b"]
    assert op.snapshot_key(("site", 1)) is None
    op.restore_key(("site", 1), snap)
    assert op.watermark(("site", 1)) == -2
    restored = WindowOperator(TumblingWindow(10), Count(), watermark=BoundedOutOfOrder(5))
    restored.restore(json.loads(json.dumps(op.snapshot())))
    assert restored.keys() == ["b", ("site", 1)]  # tuple keys survive JSON


def test_operator_refuses_wrong_configuration() -> None:
    with pytest.raises(TypeError, match="window must be a WindowAssigner"):
        WindowOperator(10, Count())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"aggregate\['x'\] must be an Aggregator"):
        WindowOperator(TumblingWindow(1), {"x": len})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="share a name"):
        WindowOperator(TumblingWindow(1), [Sum(), Sum("t")])
    with pytest.raises(TypeError, match="watermark must be"):
        WindowOperator(TumblingWindow(1), Sum(), watermark=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="late must be"):
        WindowOperator(TumblingWindow(1), Sum(), late="drop")  # type: ignore[arg-type]


def test_field_errors_name_the_field() -> None:
    op = WindowOperator(TumblingWindow(10), Average("temp"))
    with pytest.raises(KeyError, match="field 'temp': not found in item of type dict"):
        op.push("d", {"hum": 1}, 1)


def test_max_keys_refuses_and_counts_new_keys() -> None:
    op = WindowOperator(TumblingWindow(10), Count(), max_keys=2)
    op.push("a", 0, 1)
    op.push("b", 0, 1)
    out = op.push("c", 0, 1)
    assert out.refused == 1
    assert bool(out)
    assert op.keys() == ["a", "b"]
    assert op.stats.refused == 1
    assert op.push("a", 0, 2).refused == 0  # known keys still flow
    op.drop_key("a")
    assert op.push("c", 0, 1).refused == 0
    with pytest.raises(ValueError, match="max_keys must be >= 1"):
        WindowOperator(TumblingWindow(10), Count(), max_keys=0)


def test_push_refuses_a_non_int_timestamp() -> None:
    op = WindowOperator(TumblingWindow(10), Count())
    with pytest.raises(TypeError, match="timestamp must be an int of epoch ms; got a float"):
        op.push("a", 0, 1.5)  # type: ignore[arg-type]
