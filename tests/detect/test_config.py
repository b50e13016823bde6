"""`[[sensors.detectors]]` validation: a discriminated union with named errors."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from gateway.detect import (
    AutoConfig,
    DetectorConfig,
    FlatlineConfig,
    MissingConfig,
    ThresholdConfig,
    ZScoreConfig,
)
from tests.detect.helpers import ALL, configs


def test_every_type_validates_with_defaults() -> None:
    parsed = configs(*ALL)
    assert [c.type for c in parsed] == [e["type"] for e in ALL]
    assert all(c.severity == "warning" and c.on == "reading" for c in parsed)
    assert all(c.detector_name == c.type for c in parsed)


def test_type_selects_the_model() -> None:
    threshold, auto = configs({"type": "threshold", "max": 1}, {"type": "auto"})
    assert isinstance(threshold, ThresholdConfig)
    assert isinstance(auto, AutoConfig)


def test_usable_as_a_list_field_of_the_main_config() -> None:
    class Sensor(BaseModel):
        detectors: list[DetectorConfig] = []

    sensor = Sensor.model_validate({"detectors": [{"type": "zscore", "window": 30}]})
    assert isinstance(sensor.detectors[0], ZScoreConfig)
    assert sensor.detectors[0].window == 30


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"type": "zscore", "windw": 3}, "windw"),
        ({"type": "nope"}, "nope"),
        ({"type": "threshold"}, "at least one of 'min' or 'max'"),
        ({"type": "threshold", "min": 5, "max": 1}, "must not exceed"),
        ({"type": "threshold", "max": 5, "clear_max": 6}, "clear_max"),
        ({"type": "zscore", "threshold": 3, "clear": 4}, "clear"),
        ({"type": "rate"}, "max_rise"),
        ({"type": "auto", "severity": "fatal"}, "severity"),
        ({"type": "missing", "after": "ten seconds"}, "duration"),
    ],
)
def test_bad_entries_name_the_problem(entry: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        configs(entry)


def test_names_must_be_unique_per_sensor() -> None:
    with pytest.raises(ValidationError, match="two detectors are named 'zscore'"):
        configs({"type": "zscore"}, {"type": "zscore", "window": 10})
    assert len(configs({"type": "zscore"}, {"type": "zscore", "name": "z-slow"})) == 2


def test_durations_are_milliseconds() -> None:
    missing, flatline = configs(
        {"type": "missing", "after": "90s"}, {"type": "flatline", "duration": 2}
    )
    assert isinstance(missing, MissingConfig)
    assert isinstance(flatline, FlatlineConfig)
    assert missing.after == 90_000
    assert flatline.duration == 2_000
    assert configs({"type": "zscore", "cooldown": "5m"})[0].cooldown == 300_000
