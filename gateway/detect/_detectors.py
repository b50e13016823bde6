"""The detectors: one class per ``type``, each online with bounded state.

Every detector has the same shape:

- ``update(value, t) -> Finding | None``: check one input (a reading, or a window aggregate)
  at event time ``t`` (epoch ms), then learn it. ``None`` while warming up.
- ``tick(now_ms) -> Finding | None``: processing-time check (only ``missing`` uses it).
- ``score``: the latest score in [0, 1]; ``snapshot()`` / ``restore()``: JSON-serialisable state.

Scores map each detector's statistic ``s`` against its raise level ``L`` as ``s / (s + L)``,
so the raise level sits at 0.5 and the score saturates towards 1. ``anomalous`` applies the
detector's hysteresis (raise at ``threshold``, clear below ``clear``).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.detect._auto import AutoScorer
from gateway.detect._finding import Finding
from gateway.detect._stats import RollingMeanVar, RollingMedian
from gateway.detect.config import (
    AutoConfig,
    CusumConfig,
    DetectorConfig,
    EwmaConfig,
    FlatlineConfig,
    MadConfig,
    MissingConfig,
    RateConfig,
    ThresholdConfig,
    ZScoreConfig,
)

_TINY = 1e-9  # relative floor of a scale, so rounding noise on a constant signal never raises


def _ratio(stat: float, level: float) -> float:
    """Map a non-negative statistic to [0, 1) with ``level`` at 0.5 (inf gives 1)."""
    if math.isinf(stat):
        return 1.0
    return stat / (stat + level)


def _floor(scale: float, centre: float) -> float:
    return max(scale, _TINY * max(1.0, abs(centre)))


class Detector:
    """Base class: name, severity, input selection and the latest score."""

    config: DetectorConfig

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.name = config.detector_name
        self.severity = config.severity
        self.on = config.on
        self.field = config.field
        self.score = 0.0
        self.alarm = False

    def update(self, value: float, t: int) -> Finding | None:
        """Check ``value`` at event time ``t`` and learn it."""
        raise NotImplementedError

    def tick(self, now_ms: int) -> Finding | None:
        """Processing-time check; most detectors have none."""
        del now_ms
        return None

    def _finding(self, score: float, value: float, t: int) -> Finding:
        self.score = score
        return Finding(self.name, score, self.alarm, self.severity, value, t)

    def _hysteresis(self, stat: float, level: float, clear: float | None) -> None:
        if self.alarm:
            self.alarm = stat >= (level if clear is None else clear)
        else:
            self.alarm = stat >= level

    def snapshot(self) -> dict[str, Any]:
        """The state as a JSON-serialisable dict."""
        return {"score": self.score, "alarm": self.alarm, **self._state()}

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a state produced by :meth:`snapshot`."""
        self.score = float(snap["score"])
        self.alarm = bool(snap["alarm"])
        self._load(snap)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, snap: dict[str, Any]) -> None:
        del snap


class Threshold(Detector):
    """Static limits with optional clear levels (hysteresis)."""

    config: ThresholdConfig

    def update(self, value: float, t: int) -> Finding:
        """Anomalous outside ``[min, max]``; once raised, until back inside the clear levels."""
        c = self.config
        low, high = c.min, c.max
        if self.alarm:
            low = c.clear_min if c.clear_min is not None else c.min
            high = c.clear_max if c.clear_max is not None else c.max
        self.alarm = (low is not None and value < low) or (high is not None and value > high)
        return self._finding(1.0 if self.alarm else 0.0, value, t)


class ZScore(Detector):
    """Rolling z-score over the previous ``window`` inputs."""

    config: ZScoreConfig

    def __init__(self, config: ZScoreConfig) -> None:
        super().__init__(config)
        self.stats = RollingMeanVar(config.window)

    def update(self, value: float, t: int) -> Finding | None:
        """Score ``value`` against the window, then add it."""
        c = self.config
        finding = None
        if len(self.stats) >= c.min_samples:
            mean = self.stats.mean
            d = abs(value - mean)
            z = d / _floor(self.stats.std, mean) if d > _TINY * max(1.0, abs(mean)) else 0.0
            self._hysteresis(z, c.threshold, c.clear)
            finding = self._finding(_ratio(z, c.threshold), value, t)
        self.stats.push(value)
        return finding

    def _state(self) -> dict[str, Any]:
        return {"stats": self.stats.state()}

    def _load(self, snap: dict[str, Any]) -> None:
        self.stats = RollingMeanVar.from_state(self.config.window, snap["stats"])


class Mad(Detector):
    """Rolling median / MAD (modified z-score), robust to outliers in the window."""

    config: MadConfig

    def __init__(self, config: MadConfig) -> None:
        super().__init__(config)
        self.stats = RollingMedian(config.window)

    def update(self, value: float, t: int) -> Finding | None:
        """Score ``value`` against the window's median and MAD, then add it."""
        c = self.config
        finding = None
        if len(self.stats) >= c.min_samples:
            med = self.stats.median
            d = abs(value - med)
            if d > _TINY * max(1.0, abs(med)):
                z = 0.6745 * d / _floor(self.stats.mad(), med)
            else:
                z = 0.0
            self._hysteresis(z, c.threshold, c.clear)
            finding = self._finding(_ratio(z, c.threshold), value, t)
        self.stats.push(value)
        return finding

    def _state(self) -> dict[str, Any]:
        return {"values": list(self.stats.values)}

    def _load(self, snap: dict[str, Any]) -> None:
        self.stats = RollingMedian(self.config.window, [float(v) for v in snap["values"]])


class Ewma(Detector):
    """EWMA control chart against a slowly learnt in-control mean and variance."""

    config: EwmaConfig

    def __init__(self, config: EwmaConfig) -> None:
        super().__init__(config)
        self.n = 0
        self.ewma = 0.0
        self.mean = 0.0
        self.var = 0.0

    def update(self, value: float, t: int) -> Finding | None:
        """Chart ``value``: anomalous while the EWMA is outside ``threshold`` control limits."""
        c = self.config
        self.n += 1
        finding = None
        if self.n == 1:
            self.ewma = self.mean = value
        else:
            self.ewma += c.alpha * (value - self.ewma)
            if self.n > c.min_samples:
                d = abs(self.ewma - self.mean)
                sigma = math.sqrt(self.var * c.alpha / (2.0 - c.alpha))
                stat = d / _floor(sigma, self.mean) if d > _TINY * max(1.0, abs(self.mean)) else 0
                self._hysteresis(stat, c.threshold, c.clear)
                finding = self._finding(_ratio(stat, c.threshold), value, t)
            a = max(1.0 / self.n, c.baseline_alpha)
            d = value - self.mean
            self.mean += a * d
            self.var = (1.0 - a) * (self.var + a * d * d)
        return finding

    def _state(self) -> dict[str, Any]:
        return {"n": self.n, "ewma": self.ewma, "mean": self.mean, "var": self.var}

    def _load(self, snap: dict[str, Any]) -> None:
        self.n = int(snap["n"])
        self.ewma = float(snap["ewma"])
        self.mean = float(snap["mean"])
        self.var = float(snap["var"])


class Cusum(Detector):
    """Two-sided tabular CUSUM in units of the in-control standard deviation."""

    config: CusumConfig

    def __init__(self, config: CusumConfig) -> None:
        super().__init__(config)
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.hi = 0.0
        self.lo = 0.0

    def update(self, value: float, t: int) -> Finding | None:
        """Accumulate standardised deviations beyond the slack ``k``; raise at ``threshold``."""
        c = self.config
        self.n += 1
        known = c.target is not None and c.sigma is not None
        if not known and self.n <= c.min_samples:  # learn target/sigma (Welford) over warm-up
            d = value - self.mean
            self.mean += d / self.n
            self.m2 += d * (value - self.mean)
            return None
        target = c.target if c.target is not None else self.mean
        sigma = c.sigma if c.sigma is not None else math.sqrt(self.m2 / c.min_samples)
        sigma = _floor(sigma, target)
        dev = value - target
        z = dev / sigma if abs(dev) > _TINY * max(1.0, abs(target)) else 0.0
        cap = 2.0 * c.threshold  # bounded, so recovery after a long excursion takes bounded time
        self.hi = min(cap, max(0.0, self.hi + z - c.k))
        self.lo = min(cap, max(0.0, self.lo - z - c.k))
        stat = max(self.hi, self.lo)
        self._hysteresis(stat, c.threshold, c.clear)
        return self._finding(_ratio(stat, c.threshold), value, t)

    def _state(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "m2": self.m2, "hi": self.hi, "lo": self.lo}

    def _load(self, snap: dict[str, Any]) -> None:
        self.n = int(snap["n"])
        self.mean = float(snap["mean"])
        self.m2 = float(snap["m2"])
        self.hi = float(snap["hi"])
        self.lo = float(snap["lo"])


class Rate(Detector):
    """Change per second between consecutive inputs (by event time)."""

    config: RateConfig

    def __init__(self, config: RateConfig) -> None:
        super().__init__(config)
        self.prev: tuple[float, int] | None = None

    def update(self, value: float, t: int) -> Finding | None:
        """Compare the rise or fall since the previous input with ``max_rise`` / ``max_fall``."""
        c = self.config
        prev, self.prev = self.prev, (value, t)
        if prev is None or t <= prev[1]:
            if prev is not None and t < prev[1]:
                self.prev = prev  # an out-of-order input does not move the reference back
            return None
        rate = (value - prev[0]) * 1000.0 / (t - prev[1])
        stat = 0.0
        if rate > 0 and c.max_rise is not None:
            stat = rate / c.max_rise
        elif rate < 0 and c.max_fall is not None:
            stat = -rate / c.max_fall
        self.alarm = stat > 1.0
        return self._finding(_ratio(stat, 1.0), value, t)

    def _state(self) -> dict[str, Any]:
        return {"prev": list(self.prev) if self.prev is not None else None}

    def _load(self, snap: dict[str, Any]) -> None:
        prev = snap["prev"]
        self.prev = (float(prev[0]), int(prev[1])) if prev is not None else None


class Flatline(Detector):
    """A value stuck within ``tolerance`` for ``duration`` (event time) and ``min_count``."""

    config: FlatlineConfig

    def __init__(self, config: FlatlineConfig) -> None:
        super().__init__(config)
        self.run_value = 0.0
        self.run_start = 0
        self.run_count = 0

    def update(self, value: float, t: int) -> Finding:
        """Extend or restart the current run of unchanged values."""
        c = self.config
        if self.run_count and abs(value - self.run_value) <= c.tolerance:
            self.run_count += 1
        else:
            self.run_value, self.run_start, self.run_count = value, t, 1
        self.alarm = self.run_count >= c.min_count and t - self.run_start >= c.duration
        return self._finding(1.0 if self.alarm else 0.0, value, t)

    def _state(self) -> dict[str, Any]:
        return {"value": self.run_value, "start": self.run_start, "count": self.run_count}

    def _load(self, snap: dict[str, Any]) -> None:
        self.run_value = float(snap["value"])
        self.run_start = int(snap["start"])
        self.run_count = int(snap["count"])


class Missing(Detector):
    """No reading for ``after``: checked by :meth:`tick` with processing time."""

    config: MissingConfig

    def __init__(self, config: MissingConfig) -> None:
        super().__init__(config)
        self.last: int | None = None

    def update(self, value: float, t: int) -> Finding:
        """A reading arrived at ``t``: the silence (if any) is over."""
        self.last = t if self.last is None else max(self.last, t)
        self.alarm = False
        return self._finding(0.0, value, t)

    def tick(self, now_ms: int) -> Finding | None:
        """Anomalous once ``now_ms`` is ``after`` or more past the last reading.

        The clock starts at the first tick when no reading has been seen yet. The finding's
        event time is the moment the silence reached ``after`` (deterministic).
        """
        if self.last is None:
            self.last = now_ms
            return None
        silence = now_ms - self.last
        if silence < self.config.after:
            return None
        self.alarm = True
        return self._finding(1.0, silence / 1000.0, self.last + self.config.after)

    def _state(self) -> dict[str, Any]:
        return {"last": self.last}

    def _load(self, snap: dict[str, Any]) -> None:
        last = snap["last"]
        self.last = int(last) if last is not None else None


class Auto(Detector):
    """The untuned default; see :mod:`gateway.detect._auto`."""

    config: AutoConfig

    def __init__(self, config: AutoConfig) -> None:
        super().__init__(config)
        self.scorer = AutoScorer(config.threshold, config.probation, config.suppress)

    def update(self, value: float, t: int) -> Finding:
        """Score ``value``; anomalous while the unsuppressed score is at or above threshold."""
        score = self.scorer.update(value, t)
        self.alarm = self.scorer.last >= self.config.threshold
        return self._finding(score, value, t)

    def _state(self) -> dict[str, Any]:
        return {"scorer": self.scorer.snapshot()}

    def _load(self, snap: dict[str, Any]) -> None:
        self.scorer.restore(snap["scorer"])


def build_detector(config: DetectorConfig) -> Detector:
    """The detector for one config entry."""
    if isinstance(config, ThresholdConfig):
        return Threshold(config)
    if isinstance(config, ZScoreConfig):
        return ZScore(config)
    if isinstance(config, MadConfig):
        return Mad(config)
    if isinstance(config, EwmaConfig):
        return Ewma(config)
    if isinstance(config, CusumConfig):
        return Cusum(config)
    if isinstance(config, RateConfig):
        return Rate(config)
    if isinstance(config, FlatlineConfig):
        return Flatline(config)
    if isinstance(config, MissingConfig):
        return Missing(config)
    return Auto(config)
