"""Configuration models for a sensor's ``[[sensors.detectors]]`` entries.

Each entry is one detector; ``type`` selects the model (a pydantic discriminated union), so a
key that does not belong to that type is an error naming the key. ``gateway.config`` uses
:data:`DetectorConfig` as ``list[DetectorConfig]``.

Example::

    [[sensors.detectors]]
    type = "threshold"
    max = 80.0
    clear_max = 75.0          # hysteresis: raise above 80, clear below 75
    severity = "critical"

    [[sensors.detectors]]
    type = "auto"             # the untuned default: one score in [0, 1]

Every detector shares the alert-lifecycle keys (``raise_after``, ``resolve_after``,
``cooldown``, ``flap_window``, ``flap_count``); see ``docs/detection.md`` for the semantics.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.durations import Duration

Severity = Literal["warning", "critical"]
"""How urgent an alert from a detector is."""


class _DetectorBase(BaseModel):
    """Keys every detector accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1)
    """The detector's name in alerts and scores; defaults to its ``type``. Unique per sensor."""

    severity: Severity = "warning"
    """Severity of the alerts this detector raises: ``warning`` or ``critical``."""

    on: Literal["reading", "window"] = "reading"
    """What the detector looks at: each raw ``reading``, or each closed ``window`` result."""

    field: str = "mean"
    """With ``on = "window"``: which window aggregate to check (``mean``, ``min``, ``max``,
    ``count``, ``sum`` or any configured aggregate). Ignored for raw readings."""

    raise_after: int = Field(default=1, ge=1)
    """An alert is raised on the ``raise_after``-th consecutive anomalous input (readings or
    windows; for ``missing``, timer checks): a pending period, so a condition shorter than
    this raises nothing. ``1`` raises on the first."""

    resolve_after: int = Field(default=3, ge=1)
    """An active alert resolves after this many consecutive normal inputs (readings or windows)."""

    cooldown: Duration = 0
    """After an alert resolves, no new alert from this detector is raised for this long
    (event time). ``0`` disables the cool-down."""

    flap_window: Duration = 600_000
    """Span (event time) over which condition onsets are counted for flapping detection."""

    flap_count: int = Field(default=4, ge=2)
    """This many onsets of the condition within ``flap_window`` mark the alert as flapping:
    it is raised once with ``flapping = true`` and held active (no raise/resolve churn) until
    the onsets within ``flap_window`` fall below this count."""

    @property
    def detector_name(self) -> str:
        """The effective name: ``name`` or else the ``type``."""
        kind: str = getattr(self, "type")  # noqa: B009 - every subclass defines ``type``
        return self.name or kind


class ThresholdConfig(_DetectorBase):
    """Static limits: anomalous when the value leaves ``[min, max]``."""

    type: Literal["threshold"]
    """Discriminator."""

    min: float | None = None
    """Lower limit: a value below it raises. ``None`` = no lower limit."""

    max: float | None = None
    """Upper limit: a value above it raises. ``None`` = no upper limit."""

    clear_min: float | None = None
    """Hysteresis: once below ``min``, the condition clears only when the value is back at or
    above ``clear_min`` (default ``min``). Must be >= ``min``."""

    clear_max: float | None = None
    """Hysteresis: once above ``max``, the condition clears only when the value is back at or
    below ``clear_max`` (default ``max``). Must be <= ``max``."""

    @model_validator(mode="after")
    def _check_limits(self) -> ThresholdConfig:
        if self.min is None and self.max is None:
            raise ValueError("threshold needs at least one of 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            msg = f"'min' ({self.min}) must not exceed 'max' ({self.max})"
            raise ValueError(msg)
        if self.clear_min is not None and (self.min is None or self.clear_min < self.min):
            raise ValueError("'clear_min' needs 'min' and must be >= 'min'")
        if self.clear_max is not None and (self.max is None or self.clear_max > self.max):
            raise ValueError("'clear_max' needs 'max' and must be <= 'max'")
        return self


class _ScoredBase(_DetectorBase):
    """Keys of detectors that compare a statistic with a raise level and a clear level."""

    threshold: float = Field(default=3.0, gt=0)
    """Raise level of the detector's statistic (e.g. number of standard deviations)."""

    clear: float | None = Field(default=None, ge=0)
    """Hysteresis: the condition clears when the statistic falls below this (default
    ``threshold``). Must be <= ``threshold``."""

    min_samples: int = Field(default=10, ge=2)
    """Warm-up: no finding until this many inputs have been seen."""

    @model_validator(mode="after")
    def _check_clear(self) -> _ScoredBase:
        if self.clear is not None and self.clear > self.threshold:
            msg = f"'clear' ({self.clear}) must be <= 'threshold' ({self.threshold})"
            raise ValueError(msg)
        return self


class ZScoreConfig(_ScoredBase):
    """Rolling z-score: ``|x - mean| / std`` over the previous ``window`` inputs."""

    type: Literal["zscore"]
    """Discriminator."""

    window: int = Field(default=60, ge=2, le=100_000)
    """Number of previous inputs the mean and standard deviation are taken over."""


class MadConfig(_ScoredBase):
    """Robust rolling score: ``0.6745 * |x - median| / MAD`` over the previous ``window``."""

    type: Literal["mad"]
    """Discriminator."""

    threshold: float = Field(default=3.5, gt=0)
    """Raise level of the modified z-score (Iglewicz and Hoaglin recommend 3.5)."""

    window: int = Field(default=60, ge=3, le=100_000)
    """Number of previous inputs the median and MAD are taken over."""


class EwmaConfig(_ScoredBase):
    """EWMA control chart: the smoothed value leaves ``threshold`` control limits."""

    type: Literal["ewma"]
    """Discriminator."""

    alpha: float = Field(default=0.3, gt=0, le=1)
    """Smoothing factor (lambda) of the charted EWMA; 1 charts raw values."""

    baseline_alpha: float = Field(default=0.01, gt=0, le=1)
    """Smoothing factor of the slowly tracked in-control mean and variance."""


class CusumConfig(_ScoredBase):
    """Two-sided tabular CUSUM: slow drift away from the target mean."""

    type: Literal["cusum"]
    """Discriminator."""

    threshold: float = Field(default=5.0, gt=0)
    """Decision interval ``h``, in standard deviations of the in-control signal."""

    k: float = Field(default=0.5, ge=0)
    """Slack (allowance) ``k`` per input, in standard deviations."""

    target: float | None = None
    """In-control mean; ``None`` = learned over the first ``min_samples`` inputs."""

    sigma: float | None = Field(default=None, gt=0)
    """In-control standard deviation; ``None`` = learned over the first ``min_samples``."""

    min_samples: int = Field(default=30, ge=2)
    """Warm-up inputs used to learn ``target`` and ``sigma`` when they are not given."""


class RateConfig(_DetectorBase):
    """Rate of change between consecutive inputs, in units per second (event time)."""

    type: Literal["rate"]
    """Discriminator."""

    max_rise: float | None = Field(default=None, gt=0)
    """A rise faster than this many units per second raises. ``None`` = not checked."""

    max_fall: float | None = Field(default=None, gt=0)
    """A fall faster than this many units per second raises. ``None`` = not checked."""

    @model_validator(mode="after")
    def _check_limits(self) -> RateConfig:
        if self.max_rise is None and self.max_fall is None:
            raise ValueError("rate needs at least one of 'max_rise' or 'max_fall'")
        return self


class FlatlineConfig(_DetectorBase):
    """A stuck sensor: the value stays within ``tolerance`` for at least ``duration``."""

    type: Literal["flatline"]
    """Discriminator."""

    duration: Duration = 600_000
    """How long (event time) the value must stay unchanged to raise."""

    tolerance: float = Field(default=0.0, ge=0)
    """Largest change still counted as "unchanged"."""

    min_count: int = Field(default=3, ge=2)
    """At least this many unchanged inputs are needed as well (one reading is no flatline)."""


class MissingConfig(_DetectorBase):
    """No reading for ``after`` (processing time, checked by the actor's timer)."""

    type: Literal["missing"]
    """Discriminator."""

    after: Duration = 300_000
    """Raise when no reading has arrived for this long."""


class AutoConfig(_DetectorBase):
    """The untuned default: several detectors combined into one anomaly score in [0, 1].

    The defaults are the configuration measured on the Numenta Anomaly Benchmark
    (``docs/detection.md``); they suit signals sampled every few seconds to every hour.
    """

    type: Literal["auto"]
    """Discriminator."""

    threshold: float = Field(default=0.45, gt=0, le=1)
    """The combined score at or above which the sensor is anomalous (raises an alert)."""

    probation: int = Field(default=150, ge=10)
    """Warm-up inputs during which the score stays 0 while the statistics settle."""

    suppress: int = Field(default=150, ge=0)
    """After a detection, the reported score is capped just below ``threshold`` until this
    many inputs pass with no score at or above it: one detection per anomalous region. Alerts
    are unaffected (they follow the uncapped score, with ``resolve_after``)."""


DetectorConfig = Annotated[
    ThresholdConfig
    | ZScoreConfig
    | MadConfig
    | EwmaConfig
    | CusumConfig
    | RateConfig
    | FlatlineConfig
    | MissingConfig
    | AutoConfig,
    Field(discriminator="type"),
]
"""One ``[[sensors.detectors]]`` entry; use as ``list[DetectorConfig]``."""


def _unique_names(detectors: list[DetectorConfig]) -> list[DetectorConfig]:
    seen: set[str] = set()
    for detector in detectors:
        name = detector.detector_name
        if name in seen:
            msg = (
                f"two detectors are named {name!r}; give one a different 'name' "
                "(names default to the type and must be unique per sensor)"
            )
            raise ValueError(msg)
        seen.add(name)
    return detectors


DetectorList = Annotated[list[DetectorConfig], AfterValidator(_unique_names)]
"""A sensor's detectors: ``list[DetectorConfig]`` whose effective names are unique."""
