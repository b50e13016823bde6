"""Shared builders for the detector tests."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from gateway.detect import DetectorConfig, DetectorList, SensorDetectors, build_detectors

_ADAPTER: TypeAdapter[list[DetectorConfig]] = TypeAdapter(DetectorList)

STEP_MS = 60_000
"""One reading a minute in the synthetic series."""


def configs(*entries: dict[str, Any]) -> list[DetectorConfig]:
    """Validated detector configs, as `[[sensors.detectors]]` would give them."""
    return _ADAPTER.validate_python(list(entries))


def detectors(*entries: dict[str, Any]) -> SensorDetectors:
    """Fresh detectors for one sensor."""
    return build_detectors(configs(*entries))


SCORED: list[dict[str, Any]] = [
    {"type": "zscore"},
    {"type": "mad"},
    {"type": "ewma"},
    {"type": "cusum"},
    {"type": "auto", "probation": 20},
]
"""One entry of every statistical detector (the ones that learn the signal)."""

ALL: list[dict[str, Any]] = [
    {"type": "threshold", "min": -100.0, "max": 100.0},
    *SCORED,
    {"type": "rate", "max_rise": 1.0, "max_fall": 1.0},
    {"type": "flatline", "duration": "30m"},
    {"type": "missing", "after": "5m"},
]
"""One entry of every detector type."""
