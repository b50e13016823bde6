"""Bounded rolling statistics used by the detectors (pure Python, no numpy)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from typing import Any


class RollingMeanVar:
    """Mean and variance of the last ``size`` values: O(1) per value (sliding Welford)."""

    __slots__ = ("_m2", "_mean", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque()
        self._mean = 0.0
        self._m2 = 0.0

    def state(self) -> dict[str, Any]:
        """The exact state, JSON-serialisable (re-adding the values would round differently)."""
        return {"values": list(self.values), "mean": self._mean, "m2": self._m2}

    @classmethod
    def from_state(cls, size: int, state: dict[str, Any]) -> RollingMeanVar:
        """The inverse of :meth:`state`."""
        stats = cls(size)
        stats.values = deque(float(v) for v in state["values"])
        stats._mean = float(state["mean"])
        stats._m2 = float(state["m2"])
        return stats

    def __len__(self) -> int:
        return len(self.values)

    def push(self, x: float) -> None:
        """Add ``x``, dropping the oldest value once ``size`` are held."""
        if len(self.values) == self.size:
            old = self.values.popleft()
            n = len(self.values)
            if n == 0:
                self._mean = 0.0
                self._m2 = 0.0
            else:
                delta = old - self._mean
                self._mean -= delta / n
                self._m2 -= delta * (old - self._mean)
        self.values.append(x)
        n = len(self.values)
        delta = x - self._mean
        self._mean += delta / n
        self._m2 += delta * (x - self._mean)
        if self._m2 < 0.0:
            self._m2 = 0.0

    @property
    def mean(self) -> float:
        """The mean of the values held."""
        return self._mean

    @property
    def std(self) -> float:
        """The population standard deviation of the values held."""
        n = len(self.values)
        return math.sqrt(self._m2 / n) if n else 0.0


class RollingMedian:
    """Median and median absolute deviation of the last ``size`` values.

    The values are kept in arrival order (to expire them) and sorted (bisect): the median is
    O(1) and the MAD O(log n) as the k-th smallest of two sorted sequences (distances below
    and above the median), plus one list insertion and deletion per value.
    """

    __slots__ = ("size", "sorted", "values")

    def __init__(self, size: int, values: list[float] | None = None) -> None:
        self.size = size
        self.values: deque[float] = deque()
        self.sorted: list[float] = []
        for v in values or []:
            self.push(v)

    def __len__(self) -> int:
        return len(self.values)

    def push(self, x: float) -> None:
        """Add ``x``, dropping the oldest value once ``size`` are held."""
        if len(self.values) == self.size:
            old = self.values.popleft()
            del self.sorted[bisect_left(self.sorted, old)]
        self.values.append(x)
        insort(self.sorted, x)

    @property
    def median(self) -> float:
        """The median of the values held."""
        s = self.sorted
        n = len(s)
        mid = n // 2
        return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])

    def mad(self) -> float:
        """The median absolute deviation from the median."""
        s = self.sorted
        n = len(s)
        m = self.median
        j = bisect_left(s, m)

        def below(i: int) -> float:  # i-th smallest distance among values < m
            return m - s[j - 1 - i]

        def above(i: int) -> float:  # i-th smallest distance among values >= m
            return s[j + i] - m

        mid = n // 2
        if n % 2:
            return _kth(below, j, above, n - j, mid)
        return 0.5 * (_kth(below, j, above, n - j, mid - 1) + _kth(below, j, above, n - j, mid))


def _kth(a: Callable[[int], float], na: int, b: Callable[[int], float], nb: int, k: int) -> float:
    """The ``k``-th smallest (0-based) of two ascending sequences given by index functions."""
    lo, hi = max(0, k + 1 - nb), min(k + 1, na)
    while lo < hi:
        i = (lo + hi) // 2
        if a(i) < b(k - i):
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    best = -math.inf
    if lo > 0:
        best = a(lo - 1)
    if j > 0:
        best = max(best, b(j - 1))
    return best
