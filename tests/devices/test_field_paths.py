"""Field paths: parsing, rendering back, and lookups that fail with the path named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.profiles._common import FieldPath
from gateway.ingest.reading import DecodeError

steps = st.lists(
    st.one_of(st.integers(min_value=-5, max_value=5), st.text(min_size=1, max_size=8)),
    min_size=1,
    max_size=5,
)


@given(steps)
def test_render_then_parse_round_trips(items: list[str | int]) -> None:
    text = FieldPath.render(items)
    assert FieldPath.parse(text).steps == tuple(items)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temp", ("temp",)),
        ("data.temps[0]", ("data", "temps", 0)),
        ("a[1][-1].b", ("a", 1, -1, "b")),
        ('["a.b"].c', ("a.b", "c")),
        ("['x[0]']", ("x[0]",)),
        ("temperature:0.tC", ("temperature:0", "tC")),
        ("DS18B20-1.Temperature", ("DS18B20-1", "Temperature")),
        ("[0]", (0,)),
    ],
)
def test_parse(text: str, expected: tuple[str | int, ...]) -> None:
    assert FieldPath.parse(text).steps == expected


@pytest.mark.parametrize("text", ["", " ", ".a", "a.", "a..b", "a[", "a[x]", "a]", "a.[0]"])
def test_malformed_paths_are_config_errors(text: str) -> None:
    with pytest.raises(ValueError, match="field path"):
        FieldPath.parse(text)


def test_lookup_failures_name_the_path() -> None:
    path = FieldPath.parse("data.temps[2]")
    with pytest.raises(DecodeError, match=r"index 2 out of range, the list has 1 items"):
        path.get({"data": {"temps": [1]}})
    with pytest.raises(DecodeError, match=r"expected a list at 'data.temps', got a string"):
        path.get({"data": {"temps": "x"}})
    with pytest.raises(DecodeError, match=r"expected an object at 'data', got a number"):
        path.get({"data": 5})
    assert path.get({"data": {"temps": [1]}}, default=None) is None
