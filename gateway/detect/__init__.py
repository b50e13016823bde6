"""Online anomaly detectors and the alert lifecycle (pure: no I/O, no wall clock)."""

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
    ThresholdConfig,
    ZScoreConfig,
)

__all__ = [
    "AutoConfig",
    "CusumConfig",
    "DetectorConfig",
    "DetectorList",
    "EwmaConfig",
    "FlatlineConfig",
    "MadConfig",
    "MissingConfig",
    "RateConfig",
    "ThresholdConfig",
    "ZScoreConfig",
]
