"""Benchmark: key_by -> TumblingWindow -> Average over 1,000 keys with bounded disorder.

Cases, all in the same run over the same events:

- ``plain dict loop``: the ceiling for pure Python: one dict of ``[sum, count]`` per
  (key, window), no watermark, no firing, means computed at the end;
- ``DataStream (fused)``: ``DataStream.from_events(...).key_by("source")
  .window(TumblingWindow(10 s)).aggregate(Average("value"))`` -- the bounded runner, which fuses
  source, key_by and a tumbling window into one loop;
- ``DataStream (generic stages)``: the same pipeline with a ``filter`` in front, which defeats
  the fusion: every element goes through the general per-event path;
- ``WindowOperator.push``: the incremental form the device actors use, one call per event
  (with a ``WindowOutput`` per call);
- ``Bytewax 0.21``: ``fold_window`` with an ``EventClock`` (5 s wait, clock pinned so the
  watermark is ``max_ts - 5 s`` as for the engine) and a ``TumblingWindower``, run with
  ``run_main`` (single worker) from a ``TestingSource`` with batches of 1,000; its items are
  pre-built tuples with aware ``datetime`` timestamps, so the conversion is not timed.

The events: key ``d<i % 1000>``, every key emits every 100 ms of event time (so a 10 s
window holds ~100 events per key), timestamps shifted back by up to 2 s at random (disorder
below the 5 s bound: nothing is late). Every case's windows are checked against the ceiling's.

Usage: ``python bench/bench_engine.py [--quick] [--events N] [--repeats N] [--no-bytewax]``
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Measurement, header, machine, measure, row

from gateway.stream import (
    Average,
    BoundedOutOfOrder,
    StreamEvent,
    TumblingWindow,
    WindowOperator,
)
from gateway.stream._datastream import DataStream

KEYS = 1_000
WINDOW_MS = 10_000
DELAY_MS = 5_000
DISORDER_MS = 2_000
BASE_MS = 1_764_300_000_000  # 2025-11-28, aligned to the window size

Windows = dict[tuple[str, int], tuple[int, float]]  # (key, start) -> (count, mean)


def make_events(n: int, seed: int = 7) -> list[StreamEvent]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        ts = BASE_MS + (i // KEYS) * 100 - rng.randrange(DISORDER_MS)
        events.append(StreamEvent("reading", {"value": rng.uniform(15, 30)}, ts, f"d{i % KEYS}"))
    return events


def plain_loop(events: list[StreamEvent]) -> Windows:
    acc: dict[tuple[str, int], list[float]] = {}
    for e in events:
        ts = e.timestamp
        k = (e.source, ts - ts % WINDOW_MS)
        a = acc.get(k)
        if a is None:
            acc[k] = [e.data["value"], 1]
        else:
            a[0] += e.data["value"]
            a[1] += 1
    return {k: (int(c), s / c) for k, (s, c) in acc.items()}


def datastream(events: list[StreamEvent], *, fused: bool = True) -> Windows:
    stream = DataStream.from_events(events, watermark=BoundedOutOfOrder(DELAY_MS))
    if not fused:
        stream = stream.filter(lambda e: True)
    results = (
        stream.key_by("source").window(TumblingWindow(WINDOW_MS)).aggregate(Average("value"))
    ).collect()
    return {(r.key, r.start): (r.count, r.value) for r in results}


def operator_push(events: list[StreamEvent]) -> Windows:
    op = WindowOperator(
        TumblingWindow(WINDOW_MS), Average("value"), watermark=BoundedOutOfOrder(DELAY_MS)
    )
    out: Windows = {}
    push = op.push
    for e in events:
        for r in push(e.source, e, e.timestamp).results:
            out[(r.key, r.start)] = (r.count, r.value)
    for r in op.finish().results:
        out[(r.key, r.start)] = (r.count, r.value)
    return out


def bytewax_case(events: list[StreamEvent]) -> Any:
    """Return a callable running the Bytewax dataflow, or ``None`` with the reason printed."""
    try:
        import bytewax.operators as op
        from bytewax.dataflow import Dataflow
        from bytewax.operators import windowing as win
        from bytewax.testing import TestingSink, TestingSource, run_main
    except ImportError as exc:
        print(f"Bytewax not available ({exc}); `pip install bytewax==0.21.1` to compare.")
        return None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    items = [
        (e.source, epoch + timedelta(milliseconds=e.timestamp), e.data["value"]) for e in events
    ]
    pinned = epoch  # constant "system time": the watermark is max_ts - wait, as for the engine

    def run() -> Windows:
        flow = Dataflow("bench_engine")
        up = op.input("in", flow, TestingSource(items, batch_size=1000))
        keyed = op.key_on("key", up, lambda x: x[0])
        clock = win.EventClock(
            ts_getter=lambda x: x[1],
            wait_for_system_duration=timedelta(milliseconds=DELAY_MS),
            now_getter=lambda: pinned,
            to_system_utc=lambda _: None,
        )
        windower = win.TumblingWindower(length=timedelta(milliseconds=WINDOW_MS), align_to=epoch)

        def fold(acc: list[float], x: Any) -> list[float]:
            acc[0] += x[2]
            acc[1] += 1
            return acc

        out = win.fold_window(
            "avg",
            keyed,
            clock,
            windower,
            lambda: [0.0, 0],
            fold,
            lambda a, b: [a[0] + b[0], a[1] + b[1]],
        )
        collected: list[Any] = []
        op.output("out", out.down, TestingSink(collected))
        run_main(flow)
        meta = {}
        # down items: (key, (window_id, acc)); window ids count windows from align_to
        for key, (window_id, (total, count)) in collected:
            meta[(key, window_id * WINDOW_MS)] = (int(count), total / count)
        return meta

    return run


def same(a: Windows, b: Windows) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and math.isclose(a[k][1], b[k][1], rel_tol=1e-9) for k in a
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k events, 3 repeats")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-bytewax", action="store_true")
    args = parser.parse_args()
    n = args.events or (100_000 if args.quick else 1_000_000)
    repeats = args.repeats or (3 if args.quick else 5)
    events = make_events(n)
    print(
        f"key_by -> TumblingWindow(10 s) -> Average: {n:,} events, {KEYS:,} keys, "
        f"{repeats} repeats; {machine()}\n"
    )

    ceiling = measure(
        "plain dict loop (ceiling)", lambda: plain_loop(events), items=n, repeats=repeats
    )
    cases: list[Measurement] = [
        measure("DataStream (fused)", lambda: datastream(events), items=n, repeats=repeats),
        measure(
            "DataStream (generic stages)",
            lambda: datastream(events, fused=False),
            items=n,
            repeats=repeats,
        ),
        measure("WindowOperator.push", lambda: operator_push(events), items=n, repeats=repeats),
    ]
    bytewax = None if args.no_bytewax else bytewax_case(events)
    if bytewax is not None:
        cases.append(
            measure(
                "Bytewax 0.21.1 fold_window", bytewax, items=n, repeats=max(1, repeats // 2 + 1)
            )
        )
    expected = ceiling.result
    assert isinstance(expected, dict)
    for case in cases:
        assert isinstance(case.result, dict)
        if not same(case.result, expected):
            print(f"MISMATCH: {case.name} computed different windows than the plain loop")
            return 1
    print(header())
    print(row(ceiling, ceiling))
    for case in cases:
        print(row(case, ceiling))
    fused = cases[0]
    if bytewax is not None:
        print(
            f"\nDataStream (fused) / Bytewax: {fused.median / cases[-1].median:.1f}x (target >= 5x)"
        )
    print(f"DataStream (fused) / plain loop: {fused.median / ceiling.median:.1%} (target >= 25%)")
    print(f"windows: {len(expected):,}; all cases agree on every window's count and mean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
