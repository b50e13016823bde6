"""Shared benchmark helpers: time a callable N times, report rates against a ceiling.

Every benchmark measures its own ceiling in the same run (same machine, same moment), so a
figure is always read as "x events/s, y% of what plain Python manages here"::

    ceiling = measure("plain dict loop", loop, items=n, repeats=5)
    engine = measure("engine", run_engine, items=n, repeats=5)
    print(header())
    for m in (ceiling, engine):
        print(row(m, ceiling))
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measurement:
    """Rates (items per second) of one case, one per repeat."""

    name: str
    rates: tuple[float, ...]
    result: object = None

    @property
    def min(self) -> float:
        """Slowest repeat."""
        return min(self.rates)

    @property
    def median(self) -> float:
        """Median repeat (what ratios use)."""
        return statistics.median(self.rates)

    @property
    def max(self) -> float:
        """Fastest repeat."""
        return max(self.rates)


def measure(
    name: str, fn: Callable[[], object], *, items: int, repeats: int = 5, warmup: int = 0
) -> Measurement:
    """Run ``fn`` ``warmup`` + ``repeats`` times; the rate of a repeat is ``items / seconds``.

    A full garbage collection runs before each repeat (outside the timing); the collector stays
    enabled during it, as in production. The last return value of ``fn`` is kept in
    ``result`` so the caller can check that the cases computed the same thing.
    """
    result: object = None
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        rates.append(items / elapsed)
    return Measurement(name, tuple(rates), result)


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def header(unit: str = "events/s") -> str:
    """The markdown table header matching :func:`row`."""
    return (
        f"| case | min {unit} | median {unit} | max {unit} | vs ceiling (median) |\n"
        "|---|---:|---:|---:|---:|"
    )


def row(m: Measurement, ceiling: Measurement | None = None) -> str:
    """One markdown table row; the ratio is median over the ceiling's median."""
    ratio = "" if ceiling is None else f"{m.median / ceiling.median:.1%}"
    return f"| {m.name} | {_rate(m.min)} | {_rate(m.median)} | {_rate(m.max)} | {ratio} |"


def machine() -> str:
    """One line naming the interpreter and machine the figures come from."""
    return (
        f"Python {sys.version.split()[0]} ({platform.python_implementation()}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    )
