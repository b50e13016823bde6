"""The `auto` scorer: false detections on anomaly-free noise, state shape, snapshot layouts."""

from __future__ import annotations

import json
import math
import random
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import load_config
from gateway.detect._auto import _EPOCH, AutoScorer
from gateway.detect.config import AutoConfig

STEP_MS = 300_000
"""One reading every 5 minutes, as most NAB series."""

T0 = 1_700_000_000_000

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "nab.toml"


def detections(scorer: AutoScorer, xs: list[float]) -> int:
    """Readings whose reported score reaches the scorer's threshold."""
    return sum(scorer.update(x, T0 + i * STEP_MS) >= scorer.threshold for i, x in enumerate(xs))


def next_novelty(scorer: AutoScorer, x: float) -> float:
    """The novelty term alone for the scorer's next reading ``x``."""
    scorer.n += 1
    return scorer._novelty(x)


def numbers(state: Any) -> int:
    """How many numbers a snapshot holds."""
    if isinstance(state, dict):
        return sum(numbers(v) for v in state.values())
    if isinstance(state, list):
        return sum(numbers(v) for v in state)
    return 1


def test_anomaly_free_white_noise_gives_few_detections() -> None:
    # 10 series x 2,850 scored readings of Gaussian noise: nothing to detect. The five-component
    # version (with the histogram novelty) made 41 detections here (up to 7 in one series), the
    # version without the extra bars on *jump* and *season* 15 (up to 3), version 3 made 6.
    # This one (version 4) makes 15, at most 2 a series: on i.i.d. noise the rare tail values
    # keep making transitions between levels that are new, and a new transition lifts a small
    # statistical surprise over the threshold. That is the price of the novelty term, paid
    # for fewer false detections on real series (NAB: 181 -> 122 rows on dev, 157 -> 90 on
    # the holdout) and on heavy-tailed noise (next test).
    counts = []
    for seed in range(10):
        rng = random.Random(seed)
        counts.append(
            detections(AutoScorer(0.45, 150, 150), [rng.gauss(20.0, 2.0) for _ in range(3000)])
        )
    assert sum(counts) <= 16
    assert max(counts) <= 2


def test_heavy_tailed_noise_gives_fewer_detections_than_without_novelty() -> None:
    # Log-normal noise (tweet counts, request sizes): version 3 made 60 detections in these
    # 10 series, this one 41: bursts to levels seen before count for less.
    total = 0
    for seed in range(10):
        rng = random.Random(seed)
        xs = [math.exp(rng.gauss(0.0, 1.0)) for _ in range(3000)]
        total += detections(AutoScorer(0.45, 150, 150), xs)
    assert total <= 48


def test_a_familiar_excursion_counts_less_than_a_novel_one() -> None:
    # A signal around 0 that visits ~+8 for 4 readings every 97, then once goes to ~-8: as
    # large a departure, in a direction never seen. Over 20 series, version 3 (no novelty)
    # detected the late +8 visits 99 times and the -8 one in 3 series; this one 11 and 12.
    late_familiar = novel = 0
    for seed in range(20):
        rng = random.Random(seed)
        xs = [rng.gauss(8.0 if i % 97 < 4 else 0.0, 1.0) for i in range(3000)]
        xs += [rng.gauss(-8.0, 1.0) for _ in range(4)] + [rng.gauss(0.0, 1.0) for _ in range(200)]
        scorer = AutoScorer(0.45, 150, 150)
        hits = [i for i, x in enumerate(xs) if scorer.update(x, T0 + i * STEP_MS) >= 0.45]
        late_familiar += sum(1 for i in hits if 1000 <= i < 3000)
        novel += any(3000 <= i < 3004 for i in hits)
    assert late_familiar <= 25
    assert novel >= 8


def test_novelty_learns_its_span_and_transitions_then_scores_new_ones_and_forgets() -> None:
    scorer = AutoScorer(0.45, 10, 10)
    novelty = partial(next_novelty, scorer)

    # One probation learns the span (0..9, widened to -9..18: six levels of 5.4), the next
    # learns transitions without scoring them.
    assert [novelty(float(i)) for i in range(10)] == [-1.0] * 10
    assert [novelty(float(i % 3)) for i in range(10)] == [-1.0] * 10
    assert novelty(17.0) == 1.0  # into the top level: both orders new
    assert novelty(0.0) == 1.0
    assert novelty(17.0) == 0.5  # 0 -> 17 seen a step ago, after 17 -> 0 it is new
    assert [novelty(x) for x in (0.0, 17.0, 0.0)] == [0.0, 0.0, 0.0]
    assert novelty(-50.0) == 1.0  # below the span: a symbol of its own
    assert novelty(1e300) == 1.0  # above it, and no overflow
    for _ in range(2 * _EPOCH):  # two epochs of a constant
        novelty(5.0)
    assert novelty(17.0) == 1.0  # 5 -> 17 never seen; the alternation forgotten:
    assert novelty(0.0) == 1.0
    assert scorer.nov_from == 0  # inside the span all along: the span is kept


def test_a_signal_that_leaves_the_span_for_good_gets_a_new_span() -> None:
    scorer = AutoScorer(0.45, 10, 10)
    novelty = partial(next_novelty, scorer)
    for i in range(20):  # span 0..9 and its transitions
        novelty(float(i % 10))
    # A new setpoint far above: the "above" symbol for most of an epoch, so at the epoch's
    # end the span and its transitions are learnt again, around the new level.
    for i in range(_EPOCH):
        novelty(1000.0 + (i % 10))
    assert 20 < scorer.nov_from <= scorer.n  # learning again since the epoch ended
    for i in range(20):
        novelty(1000.0 + (i % 10))
    assert (scorer.lo, scorer.hi) == (1000.0, 1009.0)
    assert novelty(1000.0) == 0.0  # a transition of the new range, familiar
    assert novelty(1000.0 + 50.0) == 1.0  # above the new span: new


@settings(max_examples=50, deadline=None)
@given(xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=60))
def test_novelty_takes_any_finite_value(xs: list[float]) -> None:
    scorer = AutoScorer(0.45, 5, 5)
    for x in xs:
        assert next_novelty(scorer, x) in (-1.0, 0.0, 0.5, 1.0)


def test_a_break_in_a_smooth_daily_signal_is_detected_at_once() -> None:
    # A level shift of a third of the daily swing, well inside the range of values: *jump* and
    # *season* see it, *spike* hardly does, so their extra bars must not hide it.
    rng = random.Random(5)
    xs = [10.0 + 3.0 * math.sin(2 * math.pi * i / 288) + rng.gauss(0.0, 0.05) for i in range(3000)]
    xs = [x + (1.0 if i >= 2500 else 0.0) for i, x in enumerate(xs)]
    scorer = AutoScorer(0.45, 150, 150)
    hits = [i for i, x in enumerate(xs) if scorer.update(x, T0 + i * STEP_MS) >= 0.45]
    assert 2500 in hits
    assert len([i for i in hits if i < 2500]) <= 1


def test_a_step_in_white_noise_is_still_detected() -> None:
    rng = random.Random(3)
    xs = [rng.gauss(20.0, 2.0) for _ in range(2000)]
    xs += [rng.gauss(35.0, 2.0) for _ in range(200)]
    scorer = AutoScorer(0.45, 150, 150)
    hits = [i for i, x in enumerate(xs) if scorer.update(x, T0 + i * STEP_MS) >= 0.45]
    assert any(2000 <= i < 2010 for i in hits)


@settings(max_examples=30, deadline=None)
@given(
    xs=st.lists(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=400,
    ),
    gap=st.integers(min_value=1, max_value=7_200_000),
)
def test_state_holds_a_fixed_count_of_numbers(xs: list[float], gap: int) -> None:
    scorer = AutoScorer(0.45, 20, 20)
    size = numbers(scorer.snapshot())
    for i, x in enumerate(xs):
        score = scorer.update(x, T0 + i * gap)
        assert 0.0 <= score <= 1.0
    snap = scorer.snapshot()
    assert numbers(snap) == size <= 230
    assert len(json.dumps(snap)) < 5000  # a few KB per sensor, whatever the input


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 399))
def test_restore_of_a_snapshot_continues_identically(seed: int, cut: int) -> None:
    rng = random.Random(seed)
    xs = [rng.gauss(0.0, 1.0) + (30.0 if 300 <= i < 320 else 0.0) for i in range(400)]
    straight = AutoScorer(0.45, 50, 50)
    first = AutoScorer(0.45, 50, 50)
    a = [straight.update(x, T0 + i * STEP_MS) for i, x in enumerate(xs)]
    b = [first.update(x, T0 + i * STEP_MS) for i, x in enumerate(xs[:cut])]
    resumed = AutoScorer(0.45, 50, 50)
    for i in range(200):  # a scorer that learnt something else first: restore replaces it all
        resumed.update(1000.0 * i, T0 + i * STEP_MS)
    resumed.restore(json.loads(json.dumps(first.snapshot())))
    b += [resumed.update(x, T0 + (cut + i) * STEP_MS) for i, x in enumerate(xs[cut:])]
    assert a == b


def test_a_snapshot_of_the_earlier_layout_restores_as_a_fresh_state() -> None:
    old = {"n": 900, "prev": 1.0, "hist": [0.0] * 40, "avg": [0.0] * 5, "last": 0.0}
    scorer = AutoScorer(0.45, 150, 150)
    for i in range(10):
        scorer.update(float(i), T0 + i * STEP_MS)
    scorer.restore(old)
    assert scorer.snapshot() == AutoScorer(0.45, 150, 150).snapshot()
    assert scorer.update(5.0, T0) == 0.0  # learns again through probation


def test_the_nab_config_has_one_sensor_with_auto_defaults() -> None:
    config = load_config(CONFIG)
    sensor = config.sensor("nab")
    assert [d.type for d in sensor.detectors] == ["auto"]
    (auto,) = sensor.detectors
    assert isinstance(auto, AutoConfig)
    assert (auto.threshold, auto.probation, auto.suppress) == (0.45, 150, 150)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    burst=st.floats(min_value=50.0, max_value=1e6),
    base=st.floats(min_value=-1e4, max_value=1e4),
)
def test_the_usual_step_is_the_median_step_not_inflated_by_bursts(
    seed: int, burst: float, base: float
) -> None:
    # Steps of about 1 with a burst (up, then back down) every ~50 readings, as tweet volumes:
    # the usual step of the jump component stays near the median step (1), where the mean
    # absolute step (the earlier scale) would be at least 2 * 50 / 50 = 2 and up to 40,000.
    rng = random.Random(seed)
    scorer = AutoScorer(0.45, 150, 150)
    x = base
    for i in range(4000):
        x += rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5)
        spike = burst if rng.random() < 0.02 else 0.0
        scorer.update(x + spike, T0 + i * STEP_MS)
    assert 0.5 <= scorer.step <= 1.6


def test_a_snapshot_of_the_mean_step_layout_restores_as_a_fresh_state() -> None:
    scorer = AutoScorer(0.45, 150, 150)
    for i in range(300):
        scorer.update(float(i % 7), T0 + i * STEP_MS)
    old = scorer.snapshot()
    old["v"] = 2  # the same fields, but ``step`` was the EW mean absolute step
    restored = AutoScorer(0.45, 150, 150)
    restored.restore(old)
    assert restored.snapshot() == AutoScorer(0.45, 150, 150).snapshot()
    same = AutoScorer(0.45, 150, 150)
    same.restore(scorer.snapshot())
    assert same.snapshot() == scorer.snapshot()


def test_a_version_3_snapshot_keeps_its_statistics_and_learns_the_novelty_span_again() -> None:
    scorer = AutoScorer(0.45, 150, 150)
    for i in range(400):
        scorer.update(float(i % 7), T0 + i * STEP_MS)
    v3 = {k: v for k, v in scorer.snapshot().items() if k not in AutoScorer._NOVELTY}
    v3["v"] = 3
    restored = AutoScorer(0.45, 150, 150)
    restored.restore(v3)
    snap = restored.snapshot()
    assert {k: snap[k] for k in v3 if k != "v"} == {k: v for k, v in v3.items() if k != "v"}
    assert snap["nov_from"] == 400
    restored.n += 1
    assert restored._novelty(3.0) == -1.0  # learning its span over the next 150 readings
