"""The unit of data between decoding and the device actors."""

from __future__ import annotations

from typing import NamedTuple


class Reading(NamedTuple):
    """One decoded sensor value.

    A named tuple (immutable): one is made per reading, and a frozen dataclass's ``__init__``
    (an ``object.__setattr__`` per field) costs three times as much.

    Attributes:
        device: device id, taken from the topic (or from the payload for multi-device formats).
        sensor: the sensor's configured ``name``.
        value: the measured value, always a finite float.
        timestamp: event time in epoch milliseconds, or ``None`` when the payload carried none
            (ingest then stamps the arrival time).
        historical: backfilled data (e.g. Sparkplug ``is_historical``): it feeds windows but
            never overwrites the device's latest value.
    """

    device: str
    sensor: str
    value: float
    timestamp: int | None
    historical: bool = False


class DecodeError(ValueError):
    """A payload that a decoder refuses.

    ``reason`` is one line naming what was wrong and what was expected, e.g.
    ``"field 'temp': expected a number, got a string"``. It never contains a secret.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
