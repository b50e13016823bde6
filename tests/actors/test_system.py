"""The actor system without I/O: mailboxes, limits, passivation and snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.actors import ActorSystem, Effects
from gateway.config import GatewayConfig, config_from_dict
from gateway.ingest.reading import Reading
from gateway.state import EncodedSnapshot, load_snapshot

BASE = 1_764_000_000_000


def _config(**sections: Any) -> GatewayConfig:
    data: dict[str, Any] = {
        "gateway_id": "gw",
        "state": {"backend": "memory"},
        "sensors": [
            {
                "name": "t", "topic": "s/+/t", "format": "json", "value": "v",
                "window": {"size": "10s"},
                "watermark": {"max_delay": "1s", "idle_timeout": "30s"},
                "detectors": [{"type": "threshold", "max": 100.0}, {"type": "zscore"}],
            }
        ],
    }
    data.update(sections)
    return config_from_dict(data)


def _feed(system: ActorSystem, readings: list[tuple[str, int, float]]) -> Effects:
    out = Effects()
    for device, ts, value in readings:
        system.deliver([Reading(device, "t", value, ts)], ts, out)
    return out


def test_devices_beyond_max_devices_are_refused_and_counted() -> None:
    system = ActorSystem(_config(limits={"max_devices": 2}))
    _feed(system, [("a", BASE, 1.0), ("b", BASE, 1.0), ("c", BASE, 1.0), ("c", BASE + 1, 1.0)])
    assert sorted(system.devices) == ["a", "b"]
    assert system.stats.refused == 2


readings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 60_000).map(lambda t: BASE + t),
        st.floats(-50, 150, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(readings_strategy, st.integers(0, 60))
def test_snapshot_restore_mid_stream_changes_nothing(
    readings: list[tuple[str, int, float]], split: int
) -> None:
    """Checkpoint after ``split`` readings, restore into a new system, feed the rest: the
    outputs equal those of an uninterrupted run."""
    split = min(split, len(readings))
    whole = ActorSystem(_config())
    expected = _feed(whole, readings)

    first = ActorSystem(_config())
    out = _feed(first, readings[:split])
    second = ActorSystem(_config())
    second.restore(first.snapshot_all())
    out.extend(_feed(second, readings[split:]))

    def summary(effects: Effects) -> tuple[list[Any], list[Any]]:
        windows = [(s, r.key, r.start, r.count, r.values, r.revision) for s, r in effects.windows]
        alerts = [(a["alert_id"], a["state"]) for a in effects.alerts]
        return windows, alerts

    assert summary(out) == summary(expected)


def test_an_idle_actor_is_passivated_and_revived_with_its_state() -> None:
    system = ActorSystem(_config(actors={"passivate_after": "1m"}))
    _feed(system, [("a", BASE + 1_000, 1.0), ("a", BASE + 2_000, 3.0)])
    assert system.passivate_idle(BASE + 30_000) == {}  # not idle long enough
    written = system.passivate_idle(BASE + 2_000 + 60_000)
    assert list(written) == ["a"]
    assert "a" not in system
    assert system.is_passivated("a")
    system.revive("a", written["a"], BASE + 70_000)
    out = _feed(system, [("a", BASE + 15_000, 5.0)])  # W = 14s: the first window fires
    ((_, result),) = out.windows
    assert (result.start, result.count, result.values["sum"]) == (BASE, 2, 4.0)


def test_a_full_mailbox_drops_its_oldest_reading_and_counts_it() -> None:
    system = ActorSystem(_config(actors={"mailbox_size": 3, "backoff_initial": "1h"}))

    class Boom(Exception):
        pass

    out = Effects()
    system.deliver([Reading("a", "t", 1.0, BASE)], BASE, out)
    actor = system.actor("a")
    assert actor is not None

    def fail(*_: object) -> None:
        raise Boom

    actor.on_reading = fail  # type: ignore[method-assign]
    system.deliver([Reading("a", "t", 2.0, BASE + 1)], BASE + 1, out)  # fails, backs off 1h
    assert system.stats.restarts == 1
    for i in range(5):  # the rebuilt actor waits out its backoff: its mailbox fills up
        system.deliver([Reading("a", "t", 10.0 + i, BASE + 10 + i)], BASE + 10 + i, out)
    assert system.pending == 3
    assert system.stats.mailbox_dropped == 2


def test_processing_time_alone_leaves_actors_unchanged_for_the_checkpoint() -> None:
    system = ActorSystem(_config())
    _feed(system, [("a", BASE, 1.0), ("b", BASE, 2.0)])
    assert sorted(system.snapshot_dirty()) == ["a", "b"]
    system.tick(BASE + 250, Effects())  # no 'missing' detector: nothing to do
    assert system.snapshot_dirty() == {}
    _feed(system, [("b", BASE + 1, 3.0)])
    assert list(system.snapshot_dirty()) == ["b"]


def test_a_missing_detector_makes_ticks_count_as_changes() -> None:
    config = _config()
    sensor = config.sensors[0].model_dump()
    sensor["detectors"] = [{"type": "missing", "after": "1m"}]
    system = ActorSystem(config.model_copy(update={"sensors": [type(config.sensors[0])(
        **sensor)]}))
    _feed(system, [("a", BASE, 1.0)])
    system.snapshot_dirty()
    system.tick(BASE + 250, Effects())
    assert list(system.snapshot_dirty()) == ["a"]


def _poison(system: ActorSystem, device: str) -> None:
    """Make the device's current actor raise on its next reading (the rebuilt one will not)."""
    actor = system.actor(device)
    assert actor is not None

    def fail(*_: object) -> None:
        raise RuntimeError("boom")

    actor.on_reading = fail  # type: ignore[method-assign]


def _reference(readings: int) -> dict[str, Any]:
    reference = ActorSystem(_config())
    _feed(reference, [("a", BASE + i * 1_000, float(i)) for i in range(readings)])
    return reference.snapshot_all()


def test_a_failed_actor_waits_for_its_checkpointed_state_and_is_rebuilt_from_it() -> None:
    system = ActorSystem(_config(actors={"backoff_initial": "1ms"}))
    _feed(system, [("a", BASE + i * 1_000, float(i)) for i in range(5)])
    (encoded,) = system.snapshot_dirty().values()  # what the store now holds for "a"
    assert isinstance(encoded, EncodedSnapshot)
    assert load_snapshot(encoded) == system.snapshot_all()["a"]
    _feed(system, [("a", BASE + 5_000, 5.0)])  # handled since the checkpoint: replayed
    actor = system.actor("a")
    _poison(system, "a")

    system.deliver([Reading("a", "t", 99.0, BASE + 6_000)], BASE + 6_000, Effects())
    system.deliver([Reading("a", "t", 6.0, BASE + 6_001)], BASE + 6_001, Effects())  # waits
    assert system.stats.restarts == 1
    assert system.waiting == [("a", "checkpoint")]
    with pytest.raises(RuntimeError, match="rebuild"):
        system.snapshot_dirty()
    system.rebuild("a", load_snapshot(encoded))
    assert system.waiting == []
    assert system.actor("a") is not actor
    assert system.pending == 1  # the reading that came meanwhile, after the backoff
    assert system.snapshot_all() == _reference(6)


def test_a_revived_actor_waits_for_its_parked_state() -> None:
    system = ActorSystem(_config(actors={"passivate_after": "1m", "backoff_initial": "1ms"}))
    _feed(system, [("a", BASE + i * 1_000, float(i)) for i in range(3)])
    written = system.passivate_idle(BASE + 70_000)
    system.revive("a", written["a"], BASE + 70_000)
    _feed(system, [("a", BASE + 3_000, 3.0)])
    _poison(system, "a")
    system.deliver([Reading("a", "t", 99.0, BASE + 4_000)], BASE + 4_000, Effects())
    assert system.waiting == [("a", "parked")]
    system.rebuild("a", written["a"])
    assert system.snapshot_all() == _reference(4)


def test_an_actor_without_stored_state_is_rebuilt_at_once() -> None:
    # new since the start, never checkpointed: rebuilt from nothing plus all it handled
    system = ActorSystem(_config(actors={"backoff_initial": "1ms"}))
    _feed(system, [("a", BASE + i * 1_000, float(i)) for i in range(4)])
    _poison(system, "a")
    system.deliver([Reading("a", "t", 99.0, BASE + 9_000)], BASE + 9_000, Effects())
    assert (system.stats.restarts, system.waiting) == (1, [])
    assert system.snapshot_all() == _reference(4)
    # restored from states in no store (a reload's): rebuilt from the copy kept meanwhile
    second = ActorSystem(_config(actors={"backoff_initial": "1ms"}))
    second.restore(system.snapshot_all(), checkpointed=False)
    _feed(second, [("a", BASE + 4_000, 4.0)])
    _poison(second, "a")
    second.deliver([Reading("a", "t", 99.0, BASE + 9_000)], BASE + 9_000, Effects())
    assert (second.stats.restarts, second.waiting) == (1, [])
    assert second.snapshot_all() == _reference(5)


def test_a_busy_actor_keeps_its_state_between_checkpoints_to_bound_a_rebuild() -> None:
    system = ActorSystem(_config(actors={"backoff_initial": "1ms", "mailbox_size": 3}))
    _feed(system, [("a", BASE, 0.0)])
    system.snapshot_dirty()
    _feed(system, [("a", BASE + i * 1_000, float(i)) for i in range(1, 6)])  # > mailbox_size
    _poison(system, "a")
    system.deliver([Reading("a", "t", 99.0, BASE + 9_000)], BASE + 9_000, Effects())
    assert (system.stats.restarts, system.waiting) == (1, [])  # not from the checkpoint
    assert system.snapshot_all() == _reference(6)


def test_a_failed_actor_whose_stored_state_is_gone_is_parked() -> None:
    system = ActorSystem(_config(actors={"backoff_initial": "1ms"}))
    _feed(system, [("a", BASE, 1.0), ("b", BASE, 1.0)])
    system.snapshot_dirty()
    _poison(system, "a")
    out = _feed(system, [("a", BASE + 1_000, 2.0)])
    system.rebuild("a", None)
    assert system.parked == ["a"]
    _feed(system, [("a", BASE + 2_000, 2.0)])
    assert system.stats.parked_dropped == 1
    out = _feed(system, [("b", BASE + 20_000, 2.0)])  # other devices carry on
    assert [r.key for _, r in out.windows] == ["b"]


def test_restored_actors_are_encoded_at_the_next_checkpoint() -> None:
    first = ActorSystem(_config())
    _feed(first, [("a", BASE, 1.0), ("b", BASE, 2.0)])
    second = ActorSystem(_config())
    second.restore(first.snapshot_all())
    encoded = second.snapshot_dirty()
    assert sorted(encoded) == ["a", "b"]
    assert {d: load_snapshot(s) for d, s in encoded.items()} == first.snapshot_all()
