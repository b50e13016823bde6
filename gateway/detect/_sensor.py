"""All the detectors of one (device, sensor): what the device actor drives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.detect._detectors import Detector, build_detector
from gateway.detect._finding import Finding
from gateway.detect.config import DetectorConfig

_SNAPSHOT_VERSION = 1


class SensorDetectors:
    """The detectors configured for one sensor, with state for one device.

    Inputs are processed in call order; time is passed in (epoch ms), never read from a clock:

    - :meth:`on_reading` feeds every detector with ``on = "reading"`` (and ``missing``, which
      only notes that a reading arrived);
    - :meth:`on_window` feeds every detector with ``on = "window"`` the window aggregate named
      by its ``field`` (a detector whose field is absent from the result is skipped, counted in
      ``skipped``);
    - :meth:`on_time` lets processing-time detectors (``missing``) check the clock.

    :attr:`score` is the combined current anomaly score: the maximum of the detectors' latest
    scores.
    """

    # Slots and tuples: one per device and sensor (an empty list is 56 bytes, the empty tuple
    # is shared).
    __slots__ = ("_reading", "_timed", "_window", "detectors", "skipped")

    def __init__(self, detectors: Sequence[Detector]) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            msg = f"detector names must be unique per sensor, got {names}"
            raise ValueError(msg)
        self.detectors = list(detectors)
        self._reading = tuple(d for d in self.detectors if d.on == "reading" or _is_missing(d))
        self._window = tuple(d for d in self.detectors if d.on == "window" and not _is_missing(d))
        self._timed = tuple(d for d in self.detectors if _is_missing(d))
        self.skipped = 0  # window inputs skipped because the result lacked a detector's field

    @property
    def names(self) -> list[str]:
        """The detectors' names, in configuration order."""
        return [d.name for d in self.detectors]

    @property
    def score(self) -> float:
        """The combined current anomaly score in [0, 1] (max over the detectors)."""
        return max((d.score for d in self.detectors), default=0.0)

    @property
    def scores(self) -> dict[str, float]:
        """Each detector's latest score, by name."""
        return {d.name: d.score for d in self.detectors}

    def on_reading(self, value: float, timestamp: int) -> list[Finding]:
        """Feed one raw reading (event time ``timestamp``, epoch ms)."""
        findings = []
        for detector in self._reading:
            finding = detector.update(value, timestamp)
            if finding is not None:
                findings.append(finding)
        return findings

    def on_window(self, values: dict[str, float], start: int, end: int) -> list[Finding]:
        """Feed one closed window result ``[start, end)``; findings carry ``start`` as time."""
        del end
        findings = []
        for detector in self._window:
            value = values.get(detector.field)
            if value is None:
                self.skipped += 1
                continue
            finding = detector.update(float(value), start)
            if finding is not None:
                findings.append(finding)
        return findings

    def on_time(self, now_ms: int) -> list[Finding]:
        """Processing-time check (``missing``)."""
        findings = []
        for detector in self._timed:
            finding = detector.tick(now_ms)
            if finding is not None:
                findings.append(finding)
        return findings

    def snapshot(self) -> dict[str, Any]:
        """Every detector's state, as a JSON-serialisable dict."""
        return {
            "version": _SNAPSHOT_VERSION,
            "skipped": self.skipped,
            "detectors": {d.name: d.snapshot() for d in self.detectors},
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load states from :meth:`snapshot`; detectors absent from it start fresh.

        A detector whose configuration changed type since the snapshot cannot read the old
        state: it starts fresh too, rather than failing the device.
        """
        if snap.get("version") != _SNAPSHOT_VERSION:
            msg = (
                f"detector snapshot version {snap.get('version')!r} is not supported "
                f"(expected {_SNAPSHOT_VERSION})"
            )
            raise ValueError(msg)
        self.skipped = int(snap.get("skipped", 0))
        states = snap["detectors"]
        for detector in self.detectors:
            state = states.get(detector.name)
            if state is None:
                continue
            try:
                detector.restore(state)
            except (KeyError, TypeError, ValueError):
                fresh = build_detector(detector.config)
                detector.__dict__.update(fresh.__dict__)


def _is_missing(detector: Detector) -> bool:
    return detector.config.type == "missing"


def build_detectors(configs: Sequence[DetectorConfig]) -> SensorDetectors:
    """Fresh detectors for one (device, sensor) from its ``[[sensors.detectors]]`` entries."""
    return SensorDetectors([build_detector(c) for c in configs])
