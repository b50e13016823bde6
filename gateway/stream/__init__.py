"""The streaming engine: event-time windows, watermarks, late data and aggregators.

Pure Python, standard library only, no I/O. Two ways to run the same semantics:

- incrementally, one event at a time, with :class:`WindowOperator` (what the device actors
  use): ``push`` an event and get back the results it releases; ``advance`` processing time
  for idle timeouts and periodic watermarks; ``snapshot``/``restore`` the state;
- over a bounded iterable with the fluent :class:`DataStream` API
  (``DataStream.from_events(events).key_by(...).window(...).aggregate(...).run()``).

Semantics (Apache Flink's event-time model, as fixed in the gateway's DESIGN.md):

- windows are half-open ``[start, end)``; tumbling and sliding windows are epoch-aligned;
  session windows ``[first, last + gap)`` merge when they overlap;
- the watermark ``W`` of a key never moves backwards; a window fires once ``W >= end``
  (revision 0); at the end of a bounded input ``W`` becomes +infinity;
- an event is late for a window that has already fired; an event with ``ts < W`` whose window
  is still open joins it; late events are dropped, re-fire their window (revision + 1),
  go to a side output, or trigger a recomputation, according to the late strategy.

See ``docs/stream.md`` for the user guide.
"""

from ._aggregators import (
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
from ._datastream import (
    AggregateResult,
    DataStream,
    GroupedStream,
    KeyedStream,
    ProcessContext,
    ProcessFunction,
    RunResult,
    RunStats,
    WindowedStream,
)
from ._events import StreamEvent
from ._late import AllowedLateness, Drop, LateStrategy, RecomputeWindows, SideOutput
from ._operator import LateEvent, OperatorStats, WindowOperator, WindowOutput, WindowResult
from ._time import END_OF_TIME, Duration
from ._watermarks import BoundedOutOfOrder, MonotonicAscending, Periodic, WatermarkStrategy
from ._windows import SessionWindow, SlidingWindow, TumblingWindow, WindowAssigner

__all__ = [
    "END_OF_TIME",
    "AggregateResult",
    "Aggregator",
    "AllowedLateness",
    "Average",
    "BoundedOutOfOrder",
    "Collect",
    "Count",
    "DataStream",
    "Drop",
    "Duration",
    "First",
    "GroupedStream",
    "KeyedStream",
    "Last",
    "LateEvent",
    "LateStrategy",
    "Max",
    "Min",
    "MonotonicAscending",
    "OperatorStats",
    "Percentile",
    "Periodic",
    "ProcessContext",
    "ProcessFunction",
    "RecomputeWindows",
    "Reduce",
    "RunResult",
    "RunStats",
    "SessionWindow",
    "SideOutput",
    "SlidingWindow",
    "StdDev",
    "StreamEvent",
    "Sum",
    "TumblingWindow",
    "WatermarkStrategy",
    "WindowAssigner",
    "WindowOperator",
    "WindowOutput",
    "WindowResult",
    "WindowedStream",
]
