"""parse_timestamp: epoch s/ms/us/ns by magnitude, ISO 8601, and refusals with reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ingest.reading import DecodeError
from gateway.ingest.timestamps import MAX_TIMESTAMP_MS, parse_timestamp

MS = 1_764_300_000_123  # 2025-11-28T03:20:00.123Z


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_764_300_000, 1_764_300_000_000),  # seconds
        (1_764_300_000.123, MS),  # seconds with a fraction
        (MS, MS),  # milliseconds
        (float(MS), MS),
        (MS * 1000 + 456, MS),  # microseconds (rounded)
        (MS * 1_000_000 + 456_789, MS),  # nanoseconds (rounded)
        ("1764300000", 1_764_300_000_000),  # numbers in strings (CSV columns)
        ("1764300000123", MS),
        ("1764300000.123", MS),
        ("2014-02-14 14:30:00", 1_392_388_200_000),  # NAB files: naive means UTC
        ("2014-02-14T14:30:00Z", 1_392_388_200_000),
        ("2014-02-14T15:30:00+01:00", 1_392_388_200_000),
        ("2014-02-14T14:30:00.250", 1_392_388_200_250),
        ("2014-02-14T14:30:00.250999z", 1_392_388_200_250),  # truncated to the ms
        (0, 0),
        (99_999_999_999, 99_999_999_999_000),  # the last value read as seconds
        (100_000_000_000, 100_000_000_000),  # the first read as milliseconds
    ],
)
def test_accepted_forms(raw: object, expected: int) -> None:
    assert parse_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (True, "got a boolean"),
        (None, "got null"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (-1, "non-negative"),
        ("-1", "non-negative"),
        (1e20, "too large"),
        (10**30, "too large"),
        ("yesterday", "expected epoch time or ISO 8601"),
        ("", "expected epoch time or ISO 8601"),
        ("nan", "expected epoch time or ISO 8601"),
        ("1" * 100, "string of 100 characters"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        ([1], "got a list"),
        ({"ts": 1}, "got a dict"),
    ],
)
def test_refusals_name_the_problem(raw: object, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_timestamp(raw)
    assert reason in caught.value.reason
    assert caught.value.reason.startswith("timestamp: ")
    assert "\n" not in caught.value.reason


@given(st.datetimes(min_value=datetime(1973, 3, 4), max_value=datetime(5000, 1, 1)))  # noqa: DTZ001
def test_iso_and_epoch_forms_agree(moment: datetime) -> None:
    aware = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    ms = int(aware.timestamp() * 1000 + 0.5) if aware.microsecond else int(aware.timestamp()) * 1000
    assert parse_timestamp(aware.isoformat()) == ms
    assert parse_timestamp(aware.isoformat().replace("+00:00", "Z")) == ms
    assert parse_timestamp(ms) == ms
    assert parse_timestamp(ms * 1000) == ms
    assert parse_timestamp(ms * 1_000_000) == ms


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=80),
        st.binary(max_size=10),
        st.lists(st.integers(), max_size=2),
    )
)
def test_anything_gives_a_valid_ms_or_a_reason(raw: object) -> None:
    result = _outcome(raw)
    if isinstance(result, str):
        assert result.startswith("timestamp: ")
        assert "\n" not in result
    else:
        assert type(result) is int
        assert 0 <= result <= MAX_TIMESTAMP_MS


def _outcome(raw: object) -> int | str:
    try:
        return parse_timestamp(raw)
    except DecodeError as exc:
        return exc.reason
