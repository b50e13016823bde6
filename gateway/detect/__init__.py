"""Online anomaly detectors and the alert lifecycle (pure: no I/O, no wall clock).

The device actor builds, per (device, sensor), one :class:`SensorDetectors` with
:func:`build_detectors` and one :class:`AlertTracker`; it feeds readings, window results and
timer ticks to the detectors and their :class:`Finding` s to the tracker, which returns the
:class:`AlertChange` s to publish. Both snapshot to JSON-serialisable dicts.
"""

from gateway.detect._alerts import AlertChange, AlertTracker, alert_id
from gateway.detect._finding import Finding
from gateway.detect._sensor import SensorDetectors, build_detectors
from gateway.detect.config import (
    AutoConfig,
    CusumConfig,
    DetectorConfig,
    DetectorList,
    EwmaConfig,
    FlatlineConfig,
    MadConfig,
    MissingConfig,
    RateConfig,
    Severity,
    ThresholdConfig,
    ZScoreConfig,
)

__all__ = [
    "AlertChange",
    "AlertTracker",
    "AutoConfig",
    "CusumConfig",
    "DetectorConfig",
    "DetectorList",
    "EwmaConfig",
    "Finding",
    "FlatlineConfig",
    "MadConfig",
    "MissingConfig",
    "RateConfig",
    "SensorDetectors",
    "Severity",
    "ThresholdConfig",
    "ZScoreConfig",
    "alert_id",
    "build_detectors",
]
