"""Alerts from ``auto`` on synthetic series, with ``raise_after`` = 1, 2, 3.

    python bench/auto_alerts.py                  # 20 series of 3,000 readings per row
    python bench/auto_alerts.py --series 50

The NAB figures score ``auto``'s *score*; an operator sees its *alerts*. This counts both
sides of the pending period (``raise_after``): alerts raised on anomaly-free series (false
alerts, per 3,000 readings), and series whose anomaly (injected at reading 2,000) raised an
alert within the next 100 readings. Deterministic: series ``i`` uses seed ``i``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
from collections.abc import Callable

from pydantic import TypeAdapter

from gateway.detect import AlertTracker, build_detectors
from gateway.detect.config import DetectorConfig

READINGS = 3_000
AT = 2_000  # where an anomaly is injected
WITHIN = 100  # readings after it in which the alert must come
STEP_MS = 60_000

Series = Callable[[random.Random], list[float]]


def _iid(draw: Callable[[random.Random], float]) -> Series:
    return lambda r: [draw(r) for _ in range(READINGS)]


def _random_walk(r: random.Random) -> list[float]:
    return list(itertools.accumulate(r.gauss(0, 1) for _ in range(READINGS)))


NORMAL: dict[str, Series] = {
    "white noise": _iid(lambda r: r.gauss(0, 1)),
    "noisy daily sine": lambda r: [
        10 * math.sin(2 * math.pi * i / 288) + r.gauss(0, 1) for i in range(READINGS)
    ],
    "log-normal": _iid(lambda r: math.exp(r.gauss(0, 1))),
    "exponential": _iid(lambda r: r.expovariate(1.0)),
    "random walk": _random_walk,
}


def _with(change: Callable[[int, float], float]) -> Series:
    def series(r: random.Random) -> list[float]:
        return [change(i, r.gauss(0, 1)) for i in range(READINGS)]

    return series


ANOMALOUS: dict[str, Series] = {
    "spike 6 sd": _with(lambda i, x: x + 6 if i == AT else x),
    "spike 10 sd": _with(lambda i, x: x + 10 if i == AT else x),
    "shift 3 sd": _with(lambda i, x: x + 3 if i >= AT else x),
    "shift 6 sd": _with(lambda i, x: x + 6 if i >= AT else x),
    "variance x4": _with(lambda i, x: 4 * x if i >= AT else x),
}

_DETECTORS = TypeAdapter(list[DetectorConfig])


def raises(values: list[float], raise_after: int) -> list[int]:
    """Indices of the readings at which ``auto`` (defaults) raised an alert."""
    configs = _DETECTORS.validate_python(
        [{"type": "auto", "raise_after": raise_after, "flap_count": 1_000_000}]
    )
    detectors = build_detectors(configs)
    tracker = AlertTracker("bench", "device", "sensor", configs)
    out: list[int] = []
    for i, value in enumerate(values):
        t = i * STEP_MS
        changes = tracker.update(detectors.on_reading(value, t), now_ms=t)
        out.extend(i for c in changes if c.state == "raised")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20, help="series per row (default 20)")
    parser.add_argument("--raise-after", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    n, levels = args.series, args.raise_after
    head = " | ".join(f"raise_after = {k}" for k in levels)
    print(f"| false alerts per {READINGS:,} readings (mean of {n} series) | {head} |")
    print("|---|" + "---|" * len(levels))
    for name, make in NORMAL.items():
        runs = [make(random.Random(seed)) for seed in range(n)]
        cells = [f"{sum(len(raises(v, k)) for v in runs) / n:.2f}" for k in levels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n| alert within {WITHIN} readings of the anomaly ({n} series) | {head} |")
    print("|---|" + "---|" * len(levels))
    for name, make in ANOMALOUS.items():
        runs = [make(random.Random(seed)) for seed in range(n)]
        cells = []
        for k in levels:
            hit = sum(any(AT <= i < AT + WITHIN for i in raises(v, k)) for v in runs)
            cells.append(f"{hit} / {n}")
        print(f"| {name} in white noise | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
