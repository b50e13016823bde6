"""Aggregators: merge agrees with adding everything, results match textbook formulas."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stream import (
    Aggregator,
    Average,
    Collect,
    Count,
    First,
    Last,
    Max,
    Min,
    Percentile,
    Reduce,
    StdDev,
    Sum,
)

ALL: list[Aggregator] = [
    Count(),
    Sum(),
    Average(),
    Min(),
    Max(),
    StdDev(),
    StdDev(sample=True),
    Percentile(0),
    Percentile(37.5),
    Percentile(100),
    First(),
    Last(),
    Reduce(max),
    Collect(),
]

values_with_times = st.lists(
    st.tuples(st.integers(-1000, 1000), st.integers(-100, 100).map(float)), max_size=30
)


def fold(agg: Aggregator, pairs: list[tuple[int, Any]]) -> Any:
    acc = agg.create()
    for ts, value in pairs:
        acc = agg.add(acc, value, ts)
    return acc


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


@pytest.mark.parametrize("agg", ALL, ids=lambda a: repr(a))
@settings(max_examples=60, deadline=None)
@given(pairs=values_with_times, cut=st.integers(0, 30))
def test_merge_of_parts_equals_the_whole(agg: Aggregator, pairs: Any, cut: int) -> None:
    # Unique timestamps: with ties First/Last depend on which part came first (documented).
    pairs = list({ts: (ts, v) for ts, v in pairs}.values())
    whole = agg.result(fold(agg, pairs))
    left = json.loads(json.dumps(fold(agg, pairs[:cut])))  # accumulators are plain JSON
    right = fold(agg, pairs[cut:])
    assert close(agg.result(agg.merge(left, right)), whole)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
def test_results_match_textbook_formulas(values: list[float]) -> None:
    pairs = list(enumerate(values))
    assert fold(Count(), pairs) == len(values)
    assert math.isclose(fold(Sum(), pairs), math.fsum(values), abs_tol=1e-6)
    mean = Average().result(fold(Average(), pairs))
    assert mean is not None
    assert math.isclose(mean, np.mean(values), abs_tol=1e-6)
    assert Min().result(fold(Min(), pairs)) == min(values)
    assert Max().result(fold(Max(), pairs)) == max(values)
    deviation = StdDev().result(fold(StdDev(), pairs))
    assert deviation is not None
    assert math.isclose(deviation, np.std(values), abs_tol=1e-4)
    for q in (0, 25, 50, 90, 99.5, 100):
        got = Percentile(q).result(fold(Percentile(q), pairs))
        assert math.isclose(got, np.percentile(values, q), rel_tol=1e-9, abs_tol=1e-6)


def test_empty_windows_and_edge_cases() -> None:
    assert Average().result(Average().create()) is None
    assert StdDev().result(fold(StdDev(), [(0, 5.0)])) == 0.0
    assert StdDev(sample=True).result(fold(StdDev(sample=True), [(0, 5.0)])) is None
    assert Percentile(50).result([]) is None
    assert Sum().result(Sum().create()) == 0
    assert [First().result(None), Last().result(None), Min().result(None)] == [None, None, None]


def test_first_and_last_go_by_timestamp_then_arrival() -> None:
    pairs = [(5, "b"), (1, "a"), (9, "z"), (1, "a2"), (9, "z2")]
    assert First().result(fold(First(), pairs)) == "a"
    assert Last().result(fold(Last(), pairs)) == "z2"
    assert Collect().result(fold(Collect(), pairs)) == ["a", "a2", "b", "z", "z2"]


def test_names_and_validation() -> None:
    assert [a.name for a in (Count(), Sum(), Average(), StdDev(), Percentile(95))] == [
        "count",
        "sum",
        "mean",
        "stddev",
        "p95",
    ]
    assert Percentile(99.9).name == "p99.9"
    with pytest.raises(ValueError, match=r"Percentile.q must be a number in \[0, 100\]"):
        Percentile(101)
    assert Sum("temp").field == "temp"
