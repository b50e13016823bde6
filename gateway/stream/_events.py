"""The event record of the DataStream API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_MISSING: Any = object()
_ATTRIBUTES = frozenset({"timestamp", "source", "event_type"})


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event: a type, a payload, an event time and where it came from.

    ``event["temp"]`` reads ``data["temp"]``; ``event["timestamp"]``, ``event["source"]`` and
    ``event["event_type"]`` fall back to the attributes when ``data`` has no such key. That is
    how field-based aggregators (``Average("temp")``) and ``key_by("source")`` read events.

    Attributes:
        event_type: what kind of event this is, e.g. ``"reading"``.
        data: the payload.
        timestamp: event time, epoch milliseconds.
        source: where the event came from, e.g. the device id.
    """

    event_type: str
    data: dict[str, Any] = field(hash=False)
    timestamp: int
    source: str = ""

    def __getitem__(self, name: str) -> Any:
        value = self.data.get(name, _MISSING)
        if value is not _MISSING:
            return value
        if name in _ATTRIBUTES:
            return getattr(self, name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        """Like ``dict.get`` over :meth:`__getitem__`."""
        try:
            return self[name]
        except KeyError:
            return default
