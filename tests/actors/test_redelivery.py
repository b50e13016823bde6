"""The set of recently journalled readings that recognises QoS 1 redeliveries."""

from __future__ import annotations

from gateway.ingest.reading import Reading
from gateway.ingest.redelivery import RecentReadings


def _r(device: str, value: float, ts: int | None) -> Reading:
    return Reading(device, "temp", value, ts, False)


def test_a_redelivered_message_is_recognised_only_if_every_reading_was_journalled() -> None:
    recent = RecentReadings()
    recent.add_all([_r("d1", 1.5, 1000), _r("d1", 2.5, 2000)])
    assert recent.already_journalled([_r("d1", 1.5, 1000), _r("d1", 2.5, 2000)])
    assert not recent.already_journalled([_r("d1", 1.5, 1000), _r("d1", 3.5, 3000)])
    assert not recent.already_journalled([_r("d2", 1.5, 1000)])  # another device
    assert not recent.already_journalled([_r("d1", 1.25, 1000)])  # another value
    assert not recent.already_journalled([_r("d1", 1.5, 1001)])  # another time
    assert not recent.already_journalled([])
    assert recent.duplicates == 1


def test_readings_without_event_time_are_never_taken_for_duplicates() -> None:
    recent = RecentReadings()
    recent.add_all([_r("d1", 1.0, None)])
    assert len(recent) == 0
    assert not recent.already_journalled([_r("d1", 1.0, None)])


def test_the_oldest_readings_are_forgotten_past_capacity() -> None:
    recent = RecentReadings(capacity=3)
    for ts in range(5):
        recent.add("d1", "temp", 1.0, ts)
    assert len(recent) == 3
    assert not recent.already_journalled([_r("d1", 1.0, 1)])
    assert recent.already_journalled([_r("d1", 1.0, 2), _r("d1", 1.0, 4)])


def test_readings_journalled_during_a_burst_of_redeliveries_are_recognised_too() -> None:
    recent = RecentReadings(capacity=8)
    recent.add("d1", "temp", 1.0, 1)
    assert recent.already_journalled([_r("d1", 1.0, 1)])  # builds the lookup set
    for ts in range(2, 12):  # more than capacity // 4 readings: the set is dropped on the way
        recent.add("d1", "temp", 1.0, ts)
        assert recent.already_journalled([_r("d1", 1.0, ts)])
    assert not recent.already_journalled([_r("d1", 1.0, 3)])  # evicted from the ring
    assert recent.already_journalled([_r("d1", 1.0, 4)])
