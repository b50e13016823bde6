"""The public surface of gateway.detect is small, sorted and complete."""

from __future__ import annotations

import gateway.detect


def test_all_is_sorted_and_complete() -> None:
    exported = gateway.detect.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(gateway.detect).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("gateway")
    }
    assert public <= set(exported)
    for name in exported:
        assert hasattr(gateway.detect, name)


def test_required_runtime_api() -> None:
    for name in (
        "build_detectors",
        "SensorDetectors",
        "Finding",
        "AlertTracker",
        "AlertChange",
        "alert_id",
        "DetectorConfig",
    ):
        assert name in gateway.detect.__all__
