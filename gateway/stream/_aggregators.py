"""Incremental aggregators: ``create / add / merge / result``.

An aggregator is a frozen configuration object; the state it works on (the *accumulator*) is a
plain JSON-serialisable value (number, list or ``None``) owned by the window, so windows can be
snapshotted. ``add`` and ``merge`` may mutate a list accumulator in place and must return the
accumulator to keep (immutable accumulators such as the ``int`` of :class:`Count` are returned
anew).

``field=None`` aggregates the item itself; ``field="temp"`` reads ``item["temp"]``
(:class:`~gateway.stream.StreamEvent` items resolve fields in ``data``).

Count, Sum, Average, Min, Max and StdDev hold O(1) state; Percentile keeps the values.
First and Last pick the value with the smallest / largest *timestamp* (not arrival order), so
results do not depend on arrival order; on equal timestamps the earliest arrival wins for
First and the latest for Last.

Custom aggregators subclass :class:`Aggregator` and implement the four methods; ``merge`` is
needed by session windows (and may raise ``NotImplementedError`` otherwise).
"""

from __future__ import annotations

import dataclasses
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


def field_getter(field: str | None) -> Callable[[Any], Any] | None:
    """Return a function reading ``item[field]``, or ``None`` for the item itself.

    The getter is :func:`operator.itemgetter` (C speed); callers turn its bare ``KeyError`` /
    ``TypeError`` into a message with :func:`field_error`.
    """
    return None if field is None else operator.itemgetter(field)


def field_error(fields: Iterable[str | None], item: Any) -> KeyError | None:
    """The error naming the first of ``fields`` that ``item`` lacks (``None``: it has all)."""
    for field in fields:
        if field is None:
            continue
        try:
            item[field]
        except (KeyError, IndexError, TypeError):
            return KeyError(
                f"field {field!r}: not found in item of type {type(item).__name__}: {item!r:.80}"
            )
    return None


@dataclass(frozen=True, slots=True)
class Aggregator(ABC):
    """Base of aggregators.

    Attributes:
        field: name of the item field to aggregate; ``None`` = the item itself.
    """

    field: str | None = None

    @property
    def name(self) -> str:
        """Default result name when the aggregator is not given one (``values`` key)."""
        return type(self).__name__.lower()

    @abstractmethod
    def create(self) -> Any:
        """Return a fresh, empty accumulator (JSON-serialisable)."""

    @abstractmethod
    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Add ``value`` (event time ``timestamp``) and return the accumulator to keep."""

    @abstractmethod
    def merge(self, acc: Any, other: Any) -> Any:
        """Combine two accumulators (session merges); return the accumulator to keep."""

    @abstractmethod
    def result(self, acc: Any) -> Any:
        """Return the result of an accumulator (``None`` for an empty one where undefined)."""


@dataclass(frozen=True, slots=True)
class Count(Aggregator):
    """Number of items. Accumulator: ``int``."""

    @property
    def name(self) -> str:
        """``"count"``."""
        return "count"

    def create(self) -> int:
        """Return 0."""
        return 0

    def add(self, acc: int, value: Any, timestamp: int) -> int:
        """Return ``acc + 1``."""
        return acc + 1

    def merge(self, acc: int, other: int) -> int:
        """Return the sum of both counts."""
        return acc + other

    def result(self, acc: int) -> int:
        """Return the count."""
        return acc


@dataclass(frozen=True, slots=True)
class Sum(Aggregator):
    """Sum of the values (0 for an empty window). Accumulator: the running sum."""

    @property
    def name(self) -> str:
        """``"sum"``."""
        return "sum"

    def create(self) -> float:
        """Return 0."""
        return 0

    def add(self, acc: float, value: float, timestamp: int) -> float:
        """Return ``acc + value``."""
        return acc + value

    def merge(self, acc: float, other: float) -> float:
        """Return ``acc + other``."""
        return acc + other

    def result(self, acc: float) -> float:
        """Return the sum."""
        return acc


@dataclass(frozen=True, slots=True)
class Average(Aggregator):
    """Arithmetic mean (``None`` for an empty window). Accumulator: ``[sum, count]``."""

    @property
    def name(self) -> str:
        """``"mean"``."""
        return "mean"

    def create(self) -> list[float]:
        """Return ``[0, 0]``."""
        return [0, 0]

    def add(self, acc: list[float], value: float, timestamp: int) -> list[float]:
        """Add ``value`` to the sum and count it."""
        acc[0] += value
        acc[1] += 1
        return acc

    def merge(self, acc: list[float], other: list[float]) -> list[float]:
        """Add sums and counts."""
        acc[0] += other[0]
        acc[1] += other[1]
        return acc

    def result(self, acc: list[float]) -> float | None:
        """Return ``sum / count``."""
        return acc[0] / acc[1] if acc[1] else None


@dataclass(frozen=True, slots=True)
class Min(Aggregator):
    """Smallest value (``None`` for an empty window). Accumulator: the value or ``None``."""

    @property
    def name(self) -> str:
        """``"min"``."""
        return "min"

    def create(self) -> Any:
        """Return ``None``."""
        return None

    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Return the smaller of both."""
        return value if acc is None or value < acc else acc

    def merge(self, acc: Any, other: Any) -> Any:
        """Return the smaller of both."""
        return acc if other is None else self.add(acc, other, 0)

    def result(self, acc: Any) -> Any:
        """Return the minimum."""
        return acc


@dataclass(frozen=True, slots=True)
class Max(Aggregator):
    """Largest value (``None`` for an empty window). Accumulator: the value or ``None``."""

    @property
    def name(self) -> str:
        """``"max"``."""
        return "max"

    def create(self) -> Any:
        """Return ``None``."""
        return None

    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Return the larger of both."""
        return value if acc is None or value > acc else acc

    def merge(self, acc: Any, other: Any) -> Any:
        """Return the larger of both."""
        return acc if other is None else self.add(acc, other, 0)

    def result(self, acc: Any) -> Any:
        """Return the maximum."""
        return acc


@dataclass(frozen=True, slots=True)
class StdDev(Aggregator):
    """Standard deviation by Welford's method; accumulator ``[n, mean, m2]``.

    Population deviation by default (``sample=False``: divides by ``n``); ``sample=True``
    divides by ``n - 1``. ``None`` when there are too few values (0, or 1 for a sample).
    """

    sample: bool = False

    @property
    def name(self) -> str:
        """``"stddev"``."""
        return "stddev"

    def create(self) -> list[float]:
        """Return ``[0, 0.0, 0.0]``."""
        return [0, 0.0, 0.0]

    def add(self, acc: list[float], value: float, timestamp: int) -> list[float]:
        """Welford update."""
        n = acc[0] + 1
        delta = value - acc[1]
        mean = acc[1] + delta / n
        acc[0] = n
        acc[1] = mean
        acc[2] += delta * (value - mean)
        return acc

    def merge(self, acc: list[float], other: list[float]) -> list[float]:
        """Chan et al.'s parallel combination."""
        n_b = other[0]
        if not n_b:
            return acc
        n_a = acc[0]
        if not n_a:
            acc[:] = other
            return acc
        n = n_a + n_b
        delta = other[1] - acc[1]
        acc[2] = acc[2] + other[2] + delta * delta * n_a * n_b / n
        acc[1] = acc[1] + delta * n_b / n
        acc[0] = n
        return acc

    def result(self, acc: list[float]) -> float | None:
        """Return the deviation, or ``None`` with too few values."""
        n = acc[0]
        denominator = n - 1 if self.sample else n
        if denominator <= 0:
            return None
        return math.sqrt(max(acc[2], 0.0) / denominator)


@dataclass(frozen=True, slots=True, init=False)
class Percentile(Aggregator):
    """The ``q``-th percentile, ``0 <= q <= 100``, linear interpolation (numpy's default).

    Keeps every value of the window (accumulator: ``list``). ``None`` for an empty window.

    Args:
        q: the percentile, e.g. ``95`` or ``50`` (the median).
        field: as for every aggregator.
    """

    q: float = dataclasses.field(kw_only=True)

    def __init__(self, q: float, field: str | None = None) -> None:
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
            msg = f"Percentile.q must be a number in [0, 100]; got {q!r}"
            raise ValueError(msg)
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "field", field)

    @property
    def name(self) -> str:
        """``"p<q>"``, e.g. ``"p95"``, ``"p99.9"``."""
        q = self.q
        return f"p{int(q)}" if q == int(q) else f"p{q}"

    def create(self) -> list[Any]:
        """Return ``[]``."""
        return []

    def add(self, acc: list[Any], value: Any, timestamp: int) -> list[Any]:
        """Keep ``value``."""
        acc.append(value)
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        """Concatenate."""
        acc.extend(other)
        return acc

    def result(self, acc: list[Any]) -> Any:
        """Sort and interpolate between the two nearest ranks."""
        if not acc:
            return None
        values = sorted(acc)
        rank = (len(values) - 1) * self.q / 100
        low = math.floor(rank)
        high = min(low + 1, len(values) - 1)
        fraction = rank - low
        if fraction == 0:
            return values[low]
        return values[low] + (values[high] - values[low]) * fraction


@dataclass(frozen=True, slots=True)
class First(Aggregator):
    """The value with the smallest timestamp. Accumulator: ``[timestamp, value]`` or ``None``."""

    @property
    def name(self) -> str:
        """``"first"``."""
        return "first"

    def create(self) -> Any:
        """Return ``None``."""
        return None

    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Keep the earlier of both (the incumbent on a tie)."""
        if acc is None or timestamp < acc[0]:
            return [timestamp, value]
        return acc

    def merge(self, acc: Any, other: Any) -> Any:
        """Keep the earlier of both (``acc`` on a tie)."""
        if acc is None or (other is not None and other[0] < acc[0]):
            return other
        return acc

    def result(self, acc: Any) -> Any:
        """Return the value."""
        return None if acc is None else acc[1]


@dataclass(frozen=True, slots=True)
class Last(Aggregator):
    """The value with the largest timestamp. Accumulator: ``[timestamp, value]`` or ``None``."""

    @property
    def name(self) -> str:
        """``"last"``."""
        return "last"

    def create(self) -> Any:
        """Return ``None``."""
        return None

    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Keep the later of both (the newcomer on a tie)."""
        if acc is None or timestamp >= acc[0]:
            return [timestamp, value]
        return acc

    def merge(self, acc: Any, other: Any) -> Any:
        """Keep the later of both (``other`` on a tie)."""
        if acc is None or (other is not None and other[0] >= acc[0]):
            return other
        return acc

    def result(self, acc: Any) -> Any:
        """Return the value."""
        return None if acc is None else acc[1]


@dataclass(frozen=True, slots=True, init=False)
class Reduce(Aggregator):
    """Fold the values with an associative ``fn(a, b)`` (what ``WindowedStream.reduce`` uses).

    Accumulator: ``None`` or the reduced value (JSON-serialisable if the values are).
    """

    fn: Callable[[Any, Any], Any] = dataclasses.field(kw_only=True)

    def __init__(self, fn: Callable[[Any, Any], Any], field: str | None = None) -> None:
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "field", field)

    @property
    def name(self) -> str:
        """``"reduce"``."""
        return "reduce"

    def create(self) -> Any:
        """Return ``None``."""
        return None

    def add(self, acc: Any, value: Any, timestamp: int) -> Any:
        """Return ``fn(acc, value)`` (``value`` for the first one)."""
        return value if acc is None else self.fn(acc, value)

    def merge(self, acc: Any, other: Any) -> Any:
        """Return ``fn(acc, other)``."""
        if acc is None:
            return other
        return acc if other is None else self.fn(acc, other)

    def result(self, acc: Any) -> Any:
        """Return the reduced value."""
        return acc


@dataclass(frozen=True, slots=True)
class Collect(Aggregator):
    """All values in timestamp order (arrival order on ties). Accumulator: ``[[ts, value]...]``."""

    @property
    def name(self) -> str:
        """``"collect"``."""
        return "collect"

    def create(self) -> list[Any]:
        """Return ``[]``."""
        return []

    def add(self, acc: list[Any], value: Any, timestamp: int) -> list[Any]:
        """Keep ``[timestamp, value]``."""
        acc.append([timestamp, value])
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        """Concatenate."""
        acc.extend(other)
        return acc

    def result(self, acc: list[Any]) -> list[Any]:
        """Return the values sorted by timestamp (stable)."""
        return [value for _, value in sorted(acc, key=lambda pair: pair[0])]
