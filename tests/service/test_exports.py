"""gateway.service re-exports exactly its public names, sorted."""

from __future__ import annotations

import gateway.service


def test_all_is_sorted_and_complete() -> None:
    exported = gateway.service.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(gateway.service).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("gateway.service.")
    }
    assert public == set(exported)
