"""The ``auto`` score: several online statistics combined into one anomaly score in [0, 1].

Design (details and NAB figures in ``docs/detection.md``):

1. **Three surprise components per reading**, each computed *before* the value is learnt:

   - ``spike``: distance of the value from a slow exponentially weighted (EW) mean, in slow
     EW standard deviations;
   - ``jump``: the step from the previous value, in units of the usual step (the tracked
     median absolute step plus ``slot_step`` times the EW mean step at this time of day), so a
     break in a smooth signal counts but a daily ramp does not, and the bursts of a
     heavy-tailed series do not inflate the scale;
   - ``season``: distance of the value from the EW mean of its time-of-day slot (48 slots of
     30 minutes, by event time), in that slot's EW standard deviations (a value normal for the
     day but not for the hour: a missing daily peak, a flat stretch in a cycle).

   (Earlier versions also had a ``shift`` component, a fast EW mean against the slow one, and
   a ``novelty`` component, the ``-log`` frequency of the value's bin in a decayed histogram.
   ``shift`` added nothing on NAB dev; ``novelty`` added 0.6 on dev but tripled the false
   detections on anomaly-free noise: on heavy-ish tails its sparse outer bins look novel.)

   Components are log-compressed (``log1p``) so one huge value cannot dominate the statistics.
   The value statistics are updated winsorised (at ``clip_value`` standard deviations), so an
   anomaly does not teach the detector that the next one is normal.
2. **Self-normalisation** (as HTM's "anomaly likelihood"): each component is smoothed by a short
   EW average and compared with the long-run EW mean and variance of that average. ``jump``'s
   and ``season``'s standardised excesses are lowered by fixed *bars* (``bar_jump``,
   ``bar_season``): ordinary data surprises them more often than ``spike`` (on Gaussian noise
   ``jump``'s 99.9th percentile of excess is about 0.5 above ``spike``'s), so without the bars
   they set the false-alarm rate. The largest (barred) excess ``z`` over the components gives
   ``score = -log10(P(Z > z)) / 10``, capped at 1 (1.0 = a one-in-10^10 event). One threshold
   suits every signal: noisy signals raise their own bar. A component counts only while it is
   above its own recent peak (decaying), so a surprise that keeps recurring stops counting.
3. **Novelty of coarse transitions** (after CAD OSE's idea of contexts): the value becomes one
   of 8 symbols, six equal levels of a span learnt once (the range of the first ``probation``
   readings, widened by its width each side) or below or above it, and the transitions from
   the previous one and two symbols are looked up in a 72-byte bitmap of those seen in the
   current and the previous epoch (10,000 readings). ``novelty`` is the share of the two that
   are new, and ``score = (statistical score + 0.8 * novelty) / 1.8``: a surprise in familiar
   territory counts for less, one that takes the signal somewhere new (or through its usual
   levels in a new order) for more. Transitions are learnt for one more ``probation`` before
   they count; until then the statistical score stands alone. When most of an epoch's
   readings fall outside the span (a new setpoint), the span and transitions are learnt anew.
4. **One detection per region**: once the score reaches ``threshold``, later scores are capped
   just below it until ``suppress`` readings pass without any score at or above it (but never
   for more than ``max_hold * suppress`` readings after the detection, so a noisy stretch
   cannot hide the next anomaly), so a long anomaly yields one detection rather than hundreds.
   ``last`` (the score before this cap) is what alerts use, so an alert stays raised while
   the condition lasts.
5. **Probation**: the first ``probation`` readings only learn (score 0).

Everything is O(1) per reading (fixed numbers of slots, components and transitions) and the
state is a fixed-size JSON-serialisable dict (222 numbers and two 72-byte bitmaps: about
2.5 KB in memory by tracemalloc, a 4.1 KB JSON snapshot; about 4.6 us per reading in CPython
3.11). A snapshot of layout 3 keeps its statistics and learns the novelty afresh; an earlier
layout restores as a fresh state: the scorer learns again through ``probation``.
"""

from __future__ import annotations

import math
from array import array
from math import log1p, log10, sqrt
from typing import Any

_SQRT2 = math.sqrt(2.0)
_N_COMPONENTS = 3
_TINY = 1e-9
_VERSION = 4
_SLOTS = 48  # PARAMS["slots"]: the state's layout depends on it
_LEVELS = 6  # levels of the learnt span in the novelty component's symbols
_SYMBOLS = _LEVELS + 2  # and one symbol each for below and above the span
_PAIRS = _SYMBOLS * _SYMBOLS  # bits of the first-order transitions; second-order ones follow
_NOVELTY_BYTES = (_PAIRS + _PAIRS * _SYMBOLS) // 8  # 576 bits: 72 bytes per generation
_EPOCH = 10_000  # readings: a transition unseen for one to two epochs is new again
# Offsets of the per-slot and per-component statistics in the scorer's one array of doubles.
_SN, _SM, _SV, _SS = 0, _SLOTS, 2 * _SLOTS, 3 * _SLOTS
_AVG = 4 * _SLOTS
_NM, _NV, _PK = _AVG + _N_COMPONENTS, _AVG + 2 * _N_COMPONENTS, _AVG + 3 * _N_COMPONENTS
_SIZE = _AVG + 4 * _N_COMPONENTS
_ARRAYS = {  # snapshot field -> (offset, length) in the array
    "slot_n": (_SN, _SLOTS),
    "slot_mean": (_SM, _SLOTS),
    "slot_var": (_SV, _SLOTS),
    "slot_step": (_SS, _SLOTS),
    "avg": (_AVG, _N_COMPONENTS),
    "norm_mean": (_NM, _N_COMPONENTS),
    "norm_var": (_NV, _N_COMPONENTS),
    "peak": (_PK, _N_COMPONENTS),
}
"""Layout of :meth:`AutoScorer.snapshot` (1: five components and a histogram; 2: ``step`` was
the EW mean absolute step, now its tracked median; 3: without the novelty term, restores with
its statistics kept and learns the novelty's span and transitions over two ``probation``s)."""

PARAMS: dict[str, float] = {
    "slow_alpha": 0.002,  # slow EW mean/variance of the value and of its steps (~500 readings)
    "clip_value": 3.0,  # winsorise value-statistic updates at this many standard deviations
    "slot_ms": 1_800_000,  # time-of-day slot of the seasonal component (30 min)
    "slots": 48,  # slots per cycle (48 x 30 min = one day)
    "slot_alpha": 0.1,  # EW weight of a slot's statistics
    "slot_step": 5.0,  # weight of the slot's usual step in the jump component's scale
    "step_tau": 0.5,  # quantile of the absolute step tracked as the usual step (the median)
    "step_eta": 0.01,  # relative adjustment per reading of that quantile
    "avg_alpha": 0.3,  # short EW average of each component
    "norm_alpha": 0.001,  # long-run EW mean/variance of each averaged component
    "warm": 30,  # readings before the components' statistics start to be learnt
    "peak_decay": 0.999,  # per-reading decay (towards the mean) of a component's recent peak
    "bar_jump": 0.5,  # extra standard deviations of excess a *jump* needs (its tail is heavier)
    "bar_season": 1.0,  # the same for *season*
    "scale": 10.0,  # score = -log10(tail probability) / scale
    "max_hold": 2.0,  # the capping lasts at most this many times ``suppress`` readings
    "novelty_pad": 1.0,  # the learnt span is the probation range widened by this many widths
    "novelty_weight": 0.8,  # score = (statistical score + weight * novelty) / (1 + weight)
}
"""The internal constants, tuned once on the NAB dev split (``bench/nab.py``)."""


def _tail(z: float) -> float:
    """Upper tail probability of a standard normal at ``z``."""
    return 0.5 * math.erfc(z / _SQRT2)


class AutoScorer:
    """The state and update rule of the ``auto`` score (see the module docstring).

    Memory layout (one per device and sensor, so 10,000 devices hold 10,000 of them): the
    scalars in ``__slots__`` and the 204 per-slot and per-component statistics in one
    ``array('d')`` (``_a``, offsets ``_SN``... above) rather than eight arrays and an instance
    dict: about 1.9 KB instead of 3.0 KB. The arithmetic is the same, value for value.
    """

    __slots__ = (
        "_a", "det_at", "det_first", "hi", "last", "lo", "n", "nov_base", "nov_count",
        "nov_from", "nov_h1", "nov_h2", "nov_level", "nov_old", "nov_out", "nov_seen", "prev",
        "probation", "slot", "slow", "slow_var", "step", "suppress", "threshold",
    )

    _FIELDS = (
        "n",
        "prev",
        "slow",
        "slow_var",
        "step",
        "slot_n",
        "slot_mean",
        "slot_var",
        "slot_step",
        "avg",
        "norm_mean",
        "norm_var",
        "peak",
        "det_at",
        "det_first",
        "last",
        "nov_from",
        "lo",
        "hi",
        "nov_h1",
        "nov_h2",
        "nov_count",
        "nov_out",
        "nov_seen",
        "nov_old",
    )
    _INTS = frozenset(
        {"n", "det_at", "det_first", "nov_from", "nov_h1", "nov_h2", "nov_count", "nov_out"}
    )
    _BITS = frozenset({"nov_seen", "nov_old"})
    _NOVELTY = (
        frozenset({"nov_from", "lo", "hi", "nov_h1", "nov_h2", "nov_count", "nov_out"}) | _BITS
    )

    def __init__(self, threshold: float, probation: int, suppress: int) -> None:
        self.threshold = threshold
        self.probation = probation
        self.suppress = suppress
        self._reset()

    def _reset(self) -> None:
        """The state before the first reading."""
        p = PARAMS
        self.n = 0
        self.prev = 0.0
        self.slow = 0.0
        self.slow_var = 0.0
        self.step = 0.0
        assert int(p["slots"]) == _SLOTS
        self.slot = 0
        self._a = array("d", bytes(8 * _SIZE))
        self.det_at = -(10**12)
        self.det_first = -(10**12)
        self.last = 0.0  # the latest score before suppression (what ``anomalous`` is judged on)
        self._reset_novelty(0)

    def _reset_novelty(self, start: int) -> None:
        """Learn the novelty's span over the ``probation`` readings after reading ``start``."""
        self.nov_from = start
        self.lo = self.hi = 0.0
        self.nov_base = self.nov_level = 0.0  # from lo and hi once learnt (not in snapshots)
        self.nov_h1 = self.nov_h2 = -1  # the previous two symbols (-1: none yet)
        self.nov_count = 0
        self.nov_out = 0  # readings of the current epoch outside the span
        self.nov_seen = bytearray(_NOVELTY_BYTES)
        self.nov_old = bytearray(_NOVELTY_BYTES)

    # -- the update ---------------------------------------------------------------------------

    def update(self, x: float, t: int) -> float:
        """Learn ``x`` (event time ``t``, epoch ms) and return the anomaly score in [0, 1]."""
        p = PARAMS
        n = self.n = self.n + 1
        self.slot = int(t // p["slot_ms"]) % int(p["slots"])
        if n == 1:
            self.slow = self.prev = x
            self._seasonal(x)
            self._novelty(x)
            return 0.0
        z = self._excess(self._components(x))
        self._learn(x)
        novelty = self._novelty(x)
        if n <= self.probation or (z <= 0.0 and novelty <= 0.0):
            self.last = 0.0
            return 0.0
        score = 0.0
        if z > 0.0:
            tail = _tail(z)
            score = min(1.0, -log10(tail) / p["scale"]) if tail > 1e-300 else 1.0
        if novelty >= 0.0:
            w = p["novelty_weight"]
            score = (score + w * novelty) / (1.0 + w)
        self.last = score
        return self._post(score)

    # The per-reading methods below run for every reading of every device (a third of the
    # gateway's CPU at QoS 0): locals instead of repeated attribute and global lookups, and
    # ``b if b < a else a`` for ``min(a, b)`` (``b if b > a else a`` for ``max(a, b)``),
    # which is what the builtins return, value for value, without a call.

    def _components(self, x: float) -> list[float]:
        slow = self.slow
        step = self.step
        centre = abs(slow) + 1.0
        scale = sqrt(self.slow_var) + _TINY * centre
        k = self.slot
        a = self._a
        usual = a[_SS + k] if a[_SN + k] >= 3 else step  # a new slot: global
        step_scale = step + PARAMS["slot_step"] * usual + _TINY * centre
        r = abs(x - slow) / scale
        spike = log1p(1e12 if 1e12 < r else r)
        r = abs(x - self.prev) / step_scale
        jump = log1p(1e12 if 1e12 < r else r)
        season = self._seasonal(x)  # learns the slot too (after the jump used its step)
        return [spike, jump, season]

    def _excess(self, comps: list[float]) -> float:
        """Largest standardised excess of the averaged components; learns their statistics."""
        p = PARAMS
        a_avg = p["avg_alpha"]
        warm = int(p["warm"])
        s = self._a
        n = self.n
        if n <= warm:
            for i, c in enumerate(comps, _AVG):
                s[i] += a_avg * (c - s[i])
            return 0.0
        a = 1.0 / (n - warm)
        floor = p["norm_alpha"]
        if floor > a:
            a = floor
        decay = p["peak_decay"]
        scoring = n > warm + 10
        best = 0.0
        bars = (0.0, p["bar_jump"], p["bar_season"])
        for i, c in enumerate(comps):
            i_avg, i_nm, i_nv, i_pk = _AVG + i, _NM + i, _NV + i, _PK + i
            avg = s[i_avg] + a_avg * (c - s[i_avg])
            s[i_avg] = avg
            mean, var = s[i_nm], s[i_nv]
            peak = mean + (s[i_pk] - mean) * decay
            s[i_pk] = avg if avg > peak else peak
            if scoring and var > 0.0 and avg >= peak:
                excess = (avg - mean) / sqrt(var) - bars[i]
                if excess > best:
                    best = excess
            d = avg - mean
            s[i_nm] = mean + a * d
            s[i_nv] = (1.0 - a) * (var + a * d * d)
        return best

    def _learn(self, x: float) -> None:
        p = PARAMS
        n = self.n
        a = 1.0 / n
        floor = p["slow_alpha"]
        if floor > a:
            a = floor
        slow, slow_var = self.slow, self.slow_var
        d = x - slow
        if n > p["warm"]:
            lim = p["clip_value"] * sqrt(slow_var)
            d = d if d < lim else lim
            d = d if d > -lim else -lim
        self.slow = slow + a * d
        self.slow_var = (1.0 - a) * (slow_var + a * d * d)
        self.step = self._usual_step(abs(x - self.prev))
        self.prev = x

    def _usual_step(self, size: float) -> float:
        """The usual step after a step of ``size``: EW mean while warming up, then a median.

        After ``warm`` readings the usual step tracks the *median* absolute step (a
        multiplicative stochastic-approximation quantile: up by ``step_eta * step_tau`` when a
        step is larger, down by ``step_eta * (1 - step_tau)`` when not), which a few huge
        steps of a heavy-tailed series (bursts of tweets, request counts) do not inflate.
        """
        p = PARAMS
        step = self.step
        if self.n <= p["warm"]:
            return step + max(1.0 / self.n, p["slow_alpha"]) * (size - step)
        if step <= 0.0:
            return size
        tau, eta = p["step_tau"], p["step_eta"]
        return step * (1.0 + eta * tau) if size > step else step * (1.0 - eta * (1.0 - tau))

    # -- novelty of coarse transitions ---------------------------------------------------------

    def _novelty(self, x: float) -> float:
        """Share of the transitions ending at ``x`` not seen lately (-1 while still learning).

        ``x`` becomes one of ``_SYMBOLS`` symbols: its level among ``_LEVELS`` equal levels of
        a span learnt once (the range of the first ``probation`` readings, widened by
        ``novelty_pad`` times its width each side), or below or above it. The transitions
        (previous symbol, symbol) and (the two before, symbol) seen in the current and the
        previous epoch of ``_EPOCH`` readings are bits in two bitmaps of 72 bytes; the
        result is the share of the two that are new (0, 0.5 or 1), once the transitions of
        another ``probation`` readings have been learnt. The levels are fixed, so a
        pattern learnt stays learnt while it recurs, unlike the statistics, which adapt to
        whatever comes: a signal that wanders into a new region, or moves through its usual
        range in a new order, is novel even when its moments look ordinary. An epoch spent
        mostly outside the span starts the learning again.
        """
        k = self.n - self.nov_from
        if k <= self.probation:
            if k == 1 or x < self.lo:
                self.lo = x
            if k == 1 or x > self.hi:
                self.hi = x
            return -1.0
        if self.nov_level <= 0.0:  # the span was just learnt (or the state restored)
            pad = PARAMS["novelty_pad"]
            width = self.hi - self.lo
            if width <= 0.0:  # a constant start: any departure is novel
                width = 0.1 * abs(self.lo) if self.lo else 1.0
            self.nov_base = self.lo - pad * width
            level = width * (1.0 + 2.0 * pad) / (_LEVELS - 1)
            self.nov_level = level if level > 0.0 else 1.0  # (a subnormal width underflows)
        # A float quotient compared before int(): no OverflowError on a huge value, and a NaN
        # (inf - inf at the edges of the float range) goes above.
        level = (x - self.nov_base) / self.nov_level
        if level < 0.0:
            c = 0
        elif level < _LEVELS:
            c = int(level) + 1
        else:
            c = _SYMBOLS - 1
        self.nov_count = count = self.nov_count + 1
        if c == 0 or c == _SYMBOLS - 1:
            self.nov_out += 1
        if count % _EPOCH == 0:
            if self.nov_out > _EPOCH // 2:
                # The signal has left the span for good (a new setpoint, a recalibration):
                # learn the span and its transitions again rather than see one symbol forever.
                self._reset_novelty(self.n)
                return -1.0
            self.nov_out = 0
            self.nov_old = self.nov_seen
            self.nov_seen = bytearray(_NOVELTY_BYTES)
        seen, old = self.nov_seen, self.nov_old
        novel = 0
        h1, h2 = self.nov_h1, self.nov_h2
        if h1 >= 0:
            bit = c * _SYMBOLS + h1
            i, mask = bit >> 3, 1 << (bit & 7)
            if not (seen[i] | old[i]) & mask:
                novel += 1
            seen[i] |= mask
            if h2 >= 0:
                bit = _PAIRS + bit * _SYMBOLS + h2
                i, mask = bit >> 3, 1 << (bit & 7)
                if not (seen[i] | old[i]) & mask:
                    novel += 1
                seen[i] |= mask
        self.nov_h1, self.nov_h2 = c, h1
        return novel / 2.0 if count > self.probation else -1.0

    # -- time of day ----------------------------------------------------------------------------

    def _seasonal(self, x: float) -> float:
        """Distance of ``x`` from its slot's EW mean in the slot's EW stds; learns the slot."""
        p = PARAMS
        k = self.slot
        s = self._a
        i_n, i_m, i_v, i_s = _SN + k, _SM + k, _SV + k, _SS + k
        n, mean, var = s[i_n], s[i_m], s[i_v]
        sd = sqrt(var) + 0.1 * sqrt(self.slow_var)
        c = 0.0
        if n >= 3:
            r = abs(x - mean) / (sd + _TINY * (abs(mean) + 1.0))
            c = log1p(1e12 if 1e12 < r else r)
        n += 1.0
        a = 1.0 / n
        floor = p["slot_alpha"]
        if floor > a:
            a = floor
        d = x - mean
        if n > 3:
            lim = p["clip_value"] * sd
            d = d if d < lim else lim
            d = d if d > -lim else -lim
        s[i_n] = n
        s[i_m] = mean + a * d
        s[i_v] = (1.0 - a) * (var + a * d * d)
        s[i_s] += a * (abs(x - self.prev) - s[i_s])
        return c

    # -- one detection per region ---------------------------------------------------------------

    def _post(self, score: float) -> float:
        thr = self.threshold
        if score < thr:
            return score
        quiet = self.n - self.det_at > self.suppress
        hold = PARAMS["max_hold"]
        if hold > 0 and self.n - self.det_first > hold * self.suppress:
            quiet = True
        if quiet:
            self.det_first = self.n
        self.det_at = self.n  # every crossing extends the quiet period still needed
        return score if quiet else min(score, thr * 0.999)

    # -- state ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state as a JSON-serialisable dict."""
        snap: dict[str, Any] = {"v": _VERSION}
        for name in self._FIELDS:
            span = _ARRAYS.get(name)
            if span is not None:
                snap[name] = self._a[span[0]:span[0] + span[1]].tolist()
            elif name in self._BITS:
                snap[name] = getattr(self, name).hex()
            else:
                snap[name] = getattr(self, name)
        return snap

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a state produced by :meth:`snapshot`; an earlier layout gives a fresh state.

        A version-3 snapshot (the same statistics, no novelty term) keeps its statistics and
        learns the novelty's span and transitions over the next two ``probation``s, scoring
        meanwhile as version 3 did.
        """
        version = snap.get("v")
        if version not in (3, _VERSION):
            self._reset()
            return
        state = array("d", bytes(8 * _SIZE))
        for name in self._FIELDS:
            if version == 3 and name in self._NOVELTY:
                continue
            value = snap[name]
            span = _ARRAYS.get(name)
            if span is not None:
                start, size = span
                if len(value) != size:
                    msg = f"auto snapshot field {name!r} has {len(value)} values, not {size}"
                    raise ValueError(msg)
                state[start:start + size] = array("d", [float(v) for v in value])
            elif name in self._BITS:
                bits = bytearray.fromhex(value)
                if len(bits) != _NOVELTY_BYTES:
                    msg = (
                        f"auto snapshot field {name!r} has {len(bits)} bytes, "
                        f"not {_NOVELTY_BYTES}"
                    )
                    raise ValueError(msg)
                setattr(self, name, bits)
            elif name in self._INTS:
                setattr(self, name, int(value))
            else:
                setattr(self, name, float(value))
        self._a = state
        self.nov_base = self.nov_level = 0.0  # derived from the restored span on next use
        if version == 3:
            self._reset_novelty(self.n)
