"""What a detector says about one input."""

from __future__ import annotations

from typing import NamedTuple

from gateway.detect.config import Severity


class Finding(NamedTuple):
    """One detector's verdict on one input (a reading, a window, or a timer tick).

    A named tuple (immutable): every detector makes one per reading, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) costs three times as much.

    Attributes:
        detector: the detector's effective name (unique per sensor).
        score: anomaly score in [0, 1]; 0.5 and above is roughly "anomalous" for every
            detector, but ``anomalous`` is the authority (it applies hysteresis).
        anomalous: whether the detector's condition holds after this input.
        severity: the configured severity of the detector.
        value: the input value checked (for ``missing``: the silence so far, in seconds).
        event_time: epoch ms of the input (a window's start; for ``missing``: the moment the
            silence reached ``after``), used for deterministic alert ids.
    """

    detector: str
    score: float
    anomalous: bool
    severity: Severity
    value: float
    event_time: int
