"""The ``auto`` score: several online statistics combined into one anomaly score in [0, 1].

Design (see ``docs/detection.md``):

1. **Raw surprise per reading**, the largest of
   - a *spike* score: distance of the value from a slow exponentially weighted mean, in slow
     standard deviations;
   - a *level shift* score: distance of a fast EW mean from the slow mean, in slow standard
     deviations (catches shifts smaller than a spike that persist);
   - a *novelty* score: ``-log`` probability of the value's bin in a decayed histogram of the
     values seen so far (catches values in ranges the signal never visits, whatever its shape:
     square waves, daily cycles, multi-modal signals);
   each computed *before* the value is learnt.
2. **Self-normalisation** (as HTM's "anomaly likelihood"): the raw surprise is compared with its
   own long-run distribution (EW mean and variance); a short average of it that is far in the
   tail gives ``score = -log10(tail probability) / 10`` (1.0 = one in 10^10). So one threshold
   suits every signal: noisy signals raise their own bar.
3. **One detection per region**: once the score reaches ``threshold``, later scores are capped
   just below it for ``suppress`` readings unless they grow by a margin, so a long anomaly gives
   one alert, not hundreds.
4. **Probation**: the first ``probation`` readings only learn (score 0).

Everything is O(1) per reading (the histogram has a fixed number of bins) and the state is a
fixed-size JSON-serialisable dict.
"""

from __future__ import annotations

import math
from typing import Any

_SQRT2 = math.sqrt(2.0)

# Tuned on the NAB dev split only (bench/nab.py); see docs/detection.md.
DEFAULT_PARAMS: dict[str, float] = {
    "slow_alpha": 0.002,  # slow EW mean/variance of the value (~500 readings)
    "fast_alpha": 0.2,  # fast EW mean (level shifts)
    "shift_weight": 1.5,  # weight of the level-shift score against the spike score
    "novelty_weight": 1.0,  # weight of the histogram novelty score
    "bins": 40,  # histogram bins over the running range
    "hist_decay": 0.999,  # histogram decay per reading
    "raw_alpha": 0.001,  # long-run EW stats of the raw surprise
    "avg_alpha": 0.3,  # short EW average of the raw surprise
}


def _tail(z: float) -> float:
    """Upper tail probability of a standard normal at ``z``."""
    return 0.5 * math.erfc(z / _SQRT2)


class AutoScorer:
    """The state and update rule of the ``auto`` score (see the module docstring)."""

    __slots__ = (
        "_p",
        "det_at",
        "det_score",
        "fast",
        "hi",
        "hist",
        "hist_total",
        "last",
        "lo",
        "n",
        "probation",
        "raw_avg",
        "raw_mean",
        "raw_var",
        "slow",
        "slow_var",
        "suppress",
        "threshold",
    )

    def __init__(
        self,
        threshold: float,
        probation: int,
        suppress: int,
        params: dict[str, float] | None = None,
    ) -> None:
        self._p = {**DEFAULT_PARAMS, **(params or {})}
        self.threshold = threshold
        self.probation = probation
        self.suppress = suppress
        self.n = 0
        self.slow = 0.0
        self.slow_var = 0.0
        self.fast = 0.0
        self.lo = 0.0
        self.hi = 0.0
        self.hist: list[float] = [0.0] * int(self._p["bins"])
        self.hist_total = 0.0
        self.raw_mean = 0.0
        self.raw_var = 0.0
        self.raw_avg = 0.0
        self.det_at = -(10**12)
        self.det_score = 0.0
        self.last = 0.0
        """The latest score before suppression (what ``anomalous`` is judged on)."""

    # -- the update ---------------------------------------------------------------------------

    def update(self, x: float) -> float:
        """Learn ``x`` and return the (post-processed) anomaly score in [0, 1]."""
        p = self._p
        self.n += 1
        n = self.n
        if n == 1:
            self.slow = self.fast = self.lo = self.hi = x
            self._hist_add(x)
            return 0.0
        raw = self._raw(x, p)
        self._learn(x, p)
        # self-normalise the raw surprise against its own history
        a_raw = max(1.0 / (n - 1), p["raw_alpha"])
        avg = self.raw_avg + p["avg_alpha"] * (raw - self.raw_avg)
        self.raw_avg = avg
        sd = math.sqrt(self.raw_var)
        if n > 10 and sd > 0.0:
            z = (avg - self.raw_mean) / sd
            tail = _tail(z)
            score = min(1.0, -math.log10(tail) / 10.0) if tail > 1e-300 else 1.0
        else:
            score = 0.0
        d = raw - self.raw_mean
        self.raw_mean += a_raw * d
        self.raw_var = (1.0 - a_raw) * (self.raw_var + a_raw * d * d)
        if n <= self.probation:
            self.last = 0.0
            return 0.0
        self.last = score
        return self._post(score)

    def _raw(self, x: float, p: dict[str, float]) -> float:
        sd = math.sqrt(self.slow_var)
        scale = sd + 1e-9 * (abs(self.slow) + 1.0)
        spike = abs(x - self.slow) / scale
        fast = self.fast + p["fast_alpha"] * (x - self.fast)
        shift = p["shift_weight"] * abs(fast - self.slow) / scale
        novelty = p["novelty_weight"] * self._novelty(x)
        return math.log1p(min(max(spike, shift, novelty), 1e9))

    def _learn(self, x: float, p: dict[str, float]) -> None:
        a = max(1.0 / self.n, p["slow_alpha"])
        d = x - self.slow
        self.slow += a * d
        self.slow_var = (1.0 - a) * (self.slow_var + a * d * d)
        self.fast += p["fast_alpha"] * (x - self.fast)
        self._hist_add(x)

    # -- histogram novelty ----------------------------------------------------------------------

    def _bin(self, x: float) -> int:
        bins = len(self.hist)
        width = self.hi - self.lo
        if width <= 0.0:
            return 0
        return min(bins - 1, max(0, int((x - self.lo) / width * bins)))

    def _novelty(self, x: float) -> float:
        bins = len(self.hist)
        if self.hist_total <= 0.0:
            return 0.0
        if x < self.lo or x > self.hi:
            count = 0.0
        else:
            count = self.hist[self._bin(x)]
        prob = (count + 0.5) / (self.hist_total + 0.5 * bins)
        return -math.log(prob) - math.log(bins)

    def _hist_add(self, x: float) -> None:
        decay = self._p["hist_decay"]
        if x < self.lo or x > self.hi:
            self._rebin(min(x, self.lo), max(x, self.hi))
        hist = self.hist
        # lazy decay: scale the total and bins (O(bins), bins is a small constant)
        for i in range(len(hist)):
            hist[i] *= decay
        hist[self._bin(x)] += 1.0
        self.hist_total = self.hist_total * decay + 1.0

    def _rebin(self, lo: float, hi: float) -> None:
        """Stretch the histogram range to ``[lo, hi]``, moving old counts to their new bins."""
        old = self.hist
        bins = len(old)
        old_lo, old_width = self.lo, self.hi - self.lo
        new = [0.0] * bins
        width = hi - lo
        for i, count in enumerate(old):
            if count:
                centre = old_lo + (i + 0.5) * old_width / bins
                new[min(bins - 1, max(0, int((centre - lo) / width * bins)))] += count
        self.hist = new
        self.lo, self.hi = lo, hi

    # -- post-processing ------------------------------------------------------------------------

    def _post(self, score: float) -> float:
        thr = self.threshold
        if score < thr:
            return score
        if self.n - self.det_at > self.suppress:
            self.det_at = self.n
            self.det_score = score
            return score
        return min(score, thr * 0.999)

    # -- state ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state as a JSON-serialisable dict."""
        return {
            "n": self.n,
            "slow": self.slow,
            "slow_var": self.slow_var,
            "fast": self.fast,
            "lo": self.lo,
            "hi": self.hi,
            "hist": list(self.hist),
            "hist_total": self.hist_total,
            "raw_mean": self.raw_mean,
            "raw_var": self.raw_var,
            "raw_avg": self.raw_avg,
            "det_at": self.det_at,
            "det_score": self.det_score,
            "last": self.last,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a state produced by :meth:`snapshot`."""
        self.n = int(snap["n"])
        self.slow = float(snap["slow"])
        self.slow_var = float(snap["slow_var"])
        self.fast = float(snap["fast"])
        self.lo = float(snap["lo"])
        self.hi = float(snap["hi"])
        self.hist = [float(v) for v in snap["hist"]]
        self.hist_total = float(snap["hist_total"])
        self.raw_mean = float(snap["raw_mean"])
        self.raw_var = float(snap["raw_var"])
        self.raw_avg = float(snap["raw_avg"])
        self.det_at = int(snap["det_at"])
        self.det_score = float(snap["det_score"])
        self.last = float(snap["last"])
