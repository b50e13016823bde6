"""The alert lifecycle: one raise per condition, hysteresis, raise_after, resolve_after,
cool-down, flapping, deterministic ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.detect import AlertChange, AlertTracker, Finding, alert_id, build_detectors
from tests.detect.helpers import STEP_MS, configs

GW, DEV, SENSOR = "gw1", "dev-1", "temperature"


def tracker(**keys: Any) -> AlertTracker:
    return AlertTracker(GW, DEV, SENSOR, configs({"type": "threshold", "max": 10.0, **keys}))


def finding(anomalous: bool, t: int, value: float = 0.0) -> Finding:
    return Finding("threshold", 1.0 if anomalous else 0.0, anomalous, "warning", value, t)


def run(tr: AlertTracker, pattern: str, start: int = 0) -> list[tuple[int, str]]:
    """Feed a pattern such as '..XXX...' (X = anomalous), one finding a minute."""
    out: list[tuple[int, str]] = []
    for i, c in enumerate(pattern, start=start):
        changes = tr.update([finding(c == "X", i * STEP_MS)], now_ms=i * STEP_MS + 5)
        out.extend((i, change.state) for change in changes)
    return out


def test_one_raise_while_the_condition_lasts_and_one_resolve() -> None:
    tr = tracker()
    assert run(tr, "..XXXXXXXX......") == [(2, "raised"), (12, "resolved")]
    assert tr.active == []


def test_resolve_after_counts_consecutive_normal_inputs() -> None:
    tr = tracker(resolve_after=3)
    # two normals then anomalous again: the count restarts, no churn
    assert run(tr, "XX..X..X...") == [(0, "raised"), (10, "resolved")]
    assert run(tracker(resolve_after=1), "X.X") == [(0, "raised"), (1, "resolved"), (2, "raised")]


def test_the_resolve_carries_the_raise_id_and_alert_fields() -> None:
    tr = tracker(severity="critical", resolve_after=1)
    (raised,) = tr.update([Finding("threshold", 1.0, True, "critical", 12.5, 60_000)], 61_000)
    (resolved,) = tr.update([Finding("threshold", 0.0, False, "critical", 9.0, 120_000)], 121_000)
    assert raised.alert_id == resolved.alert_id == alert_id(GW, DEV, SENSOR, "threshold", 60_000)
    doc = raised.as_dict()
    assert set(doc) >= {
        "alert_id",
        "gateway_id",
        "device",
        "sensor",
        "detector",
        "severity",
        "state",
        "value",
        "score",
        "event_time",
        "raised_at",
        "flapping",
    }
    assert (doc["state"], doc["severity"]) == ("raised", "critical")
    assert (doc["value"], doc["event_time"], doc["raised_at"]) == (12.5, 60_000, 61_000)
    assert resolved.state == "resolved"
    assert (resolved.raised_at, resolved.resolved_at) == (61_000, 121_000)
    assert resolved.event_time == 120_000
    json.dumps(doc)


def test_alert_ids_are_deterministic_and_distinct() -> None:
    a = alert_id("gw", "d", "s", "zscore", 1_700_000_000_000)
    assert a == alert_id("gw", "d", "s", "zscore", 1_700_000_000_000)
    assert len(a) == 24
    assert int(a, 16) >= 0
    others = {
        alert_id("gw", "d", "s", "zscore", 1_700_000_000_001),
        alert_id("gw", "d", "s", "mad", 1_700_000_000_000),
        alert_id("gw", "d2", "s", "zscore", 1_700_000_000_000),
        alert_id("gw2", "d", "s", "zscore", 1_700_000_000_000),
    }
    assert a not in others
    assert len(others) == 4


def test_cooldown_withholds_a_new_raise() -> None:
    tr = tracker(resolve_after=1, cooldown="5m")
    # resolved at minute 1; anomalous again at 2..3 (within 5 min): withheld;
    # still anomalous at minute 7 (after the cool-down): raised then
    changes = run(tr, "X.XX.XXX")
    assert changes == [(0, "raised"), (1, "resolved"), (6, "raised")]
    assert tr.suppressed == 3


def test_flapping_holds_one_alert() -> None:
    tr = tracker(resolve_after=1, flap_count=3, flap_window="10m")
    changes: list[AlertChange] = []
    for i, c in enumerate("X.X.X.X.X.X" + "." * 12):
        changes += tr.update([finding(c == "X", i * STEP_MS)], now_ms=i)
    # onsets at minutes 0, 2, 4, ...: the 3rd onset within 10 min (minute 4) marks the detector
    # flapping; that raise is flagged and held (no churn) until fewer than 3 onsets fall within
    # the last 10 min (the last three are at 6, 8, 10: minute 16)
    assert [(c.event_time // STEP_MS, c.state, c.flapping) for c in changes] == [
        (0, "raised", False),
        (1, "resolved", False),
        (2, "raised", False),
        (3, "resolved", False),
        (4, "raised", True),
        (16, "resolved", True),
    ]
    assert tr.active == []


def test_a_raise_while_flapping_is_marked() -> None:
    tr = tracker(resolve_after=1, flap_count=2, flap_window="10m", cooldown=0)
    changes = []
    for i, c in enumerate("X.X"):
        changes += tr.update([finding(c == "X", i * STEP_MS)], i)
    assert [(c.state, c.flapping) for c in changes] == [
        ("raised", False),
        ("resolved", False),
        ("raised", True),
    ]


def test_raise_after_waits_for_the_condition_to_last() -> None:
    tr = tracker(raise_after=3)
    # runs of one and two anomalous inputs raise nothing; the third of a run raises, with the
    # event time (and so the alert id) of that third input
    assert run(tr, "X.XX.XXXX...") == [(7, "raised"), (11, "resolved")]
    (change,) = run(tracker(raise_after=3), "XXX")
    assert change == (2, "raised")
    raised = tracker(raise_after=2).update(
        [finding(True, 0, 11.0), finding(True, STEP_MS, 12.0)], now_ms=STEP_MS + 5
    )
    assert [(c.event_time, c.value) for c in raised] == [(STEP_MS, 12.0)]
    assert raised[0].alert_id == alert_id(GW, DEV, SENSOR, "threshold", STEP_MS)


def reference_changes(pattern: str, raise_after: int, resolve_after: int) -> list[tuple[int, str]]:
    """The raise/resolve rules alone (no cool-down, no flapping), written out plainly."""
    out: list[tuple[int, str]] = []
    active, anomalous_run, normal_run = False, 0, 0
    for i, c in enumerate(pattern):
        if c == "X":
            anomalous_run, normal_run = anomalous_run + 1, 0
            if not active and anomalous_run >= raise_after:
                active = True
                out.append((i, "raised"))
        else:
            anomalous_run = 0
            if active:
                normal_run += 1
                if normal_run >= resolve_after:
                    active, normal_run = False, 0
                    out.append((i, "resolved"))
    return out


@settings(max_examples=150, deadline=None)
@given(
    pattern=st.text(alphabet=".X", max_size=60),
    raise_after=st.integers(1, 5),
    resolve_after=st.integers(1, 4),
)
def test_raise_after_and_resolve_after_follow_the_plain_rules(
    pattern: str, raise_after: int, resolve_after: int
) -> None:
    tr = tracker(raise_after=raise_after, resolve_after=resolve_after, flap_count=1_000)
    assert run(tr, pattern) == reference_changes(pattern, raise_after, resolve_after)


def test_a_snapshot_from_before_raise_after_reads_as_a_run_of_one() -> None:
    older = {"active": None, "normal_run": 0, "anomalous": True, "resolved_at": None,
             "onsets": [0], "suppressed": 0}
    tr = tracker(raise_after=2)
    tr.restore({"threshold": older})
    assert run(tr, "X", start=1) == [(1, "raised")]


def run_with_restart(
    pattern: str, split: int, **keys: Any
) -> tuple[list[tuple[int, str]], AlertTracker]:
    """Run ``pattern`` with the tracker snapshotted after ``split`` inputs and restored (via
    JSON) into a new one, as across a gateway restart; return the changes and that tracker."""
    first = tracker(**keys)
    got = run(first, pattern[:split])
    second = tracker(**keys)
    second.restore(json.loads(json.dumps(first.snapshot())))
    got += run(second, pattern[split:], start=min(split, len(pattern)))
    return got, second


def test_snapshot_restore_keeps_the_lifecycle() -> None:
    pattern = "..XXXX...X.XX....XXXXX......"
    expected = run(tracker(resolve_after=2, cooldown="2m"), pattern)
    assert run_with_restart(pattern, 11, resolve_after=2, cooldown="2m")[0] == expected


@settings(max_examples=100, deadline=None)
@given(
    pattern=st.text(alphabet=".X", max_size=40),
    split=st.integers(0, 40),
    raise_after=st.integers(1, 3),
)
def test_snapshot_restore_anywhere_changes_nothing(
    pattern: str, split: int, raise_after: int
) -> None:
    keys: dict[str, Any] = {"resolve_after": 2, "cooldown": "2m", "raise_after": raise_after}
    whole = tracker(**keys)
    expected = run(whole, pattern)
    got, restored = run_with_restart(pattern, split, **keys)
    assert got == expected
    assert restored.snapshot() == whole.snapshot()


def test_a_detector_at_rest_keeps_no_state() -> None:
    tr = tracker()
    run(tr, "......")
    assert tr.snapshot() == {}  # nothing to remember until a first anomalous finding
    # A snapshot listing a detector at rest (as every one was listed before) reads the same.
    at_rest = {"active": None, "normal_run": 0, "anomalous": False, "resolved_at": None,
               "onsets": [], "suppressed": 0}
    older = tracker()
    older.restore({"threshold": at_rest})
    assert older.snapshot() == {}
    assert run(older, "..X.", start=6) == run(tracker(), "..X.", start=6)


@settings(max_examples=60, deadline=None)
@given(
    pattern=st.text(alphabet=".X", max_size=60),
    resolve_after=st.integers(1, 4),
    cooldown=st.integers(0, 5),
)
def test_changes_alternate_and_replays_give_the_same_ids(
    pattern: str, resolve_after: int, cooldown: int
) -> None:
    def changes() -> list[AlertChange]:
        tr = tracker(resolve_after=resolve_after, cooldown=cooldown * 60)
        out: list[AlertChange] = []
        for i, c in enumerate(pattern):
            out += tr.update([finding(c == "X", i * STEP_MS)], now_ms=i)
        return out

    first = changes()
    states = [c.state for c in first]
    assert states == ["raised", "resolved"] * (len(states) // 2) + ["raised"] * (len(states) % 2)
    assert [c.alert_id for c in changes()] == [c.alert_id for c in first]
    raised_ids = [c.alert_id for c in first if c.state == "raised"]
    assert len(set(raised_ids)) == len(raised_ids)
    if "X" not in pattern:
        assert first == []


def test_unknown_detector_is_an_error_naming_it() -> None:
    tr = tracker()
    with pytest.raises(ValueError, match="'zscore'"):
        tr.update([Finding("zscore", 1.0, True, "warning", 1.0, 0)], 0)


def test_a_spike_end_to_end_gives_exactly_one_raise_and_one_resolve() -> None:
    cfg = configs({"type": "zscore", "window": 30}, {"type": "auto", "probation": 30})
    dets = build_detectors(cfg)
    tr = AlertTracker(GW, DEV, SENSOR, cfg)
    changes: list[AlertChange] = []
    for i in range(400):
        value = 20.0 + (i % 7) * 0.3 + (50.0 if i == 300 else 0.0)
        t = i * STEP_MS
        changes += tr.update(dets.on_reading(value, t), now_ms=t)
    by_detector: dict[str, list[str]] = {}
    for c in changes:
        by_detector.setdefault(c.detector, []).append(c.state)
    assert by_detector == {"zscore": ["raised", "resolved"], "auto": ["raised", "resolved"]}
    assert {c.event_time for c in changes if c.state == "raised"} == {300 * STEP_MS}
