"""The package's public surface is exactly its sorted __all__."""

from __future__ import annotations

import gateway.security as security


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(security).items()
        if not name.startswith("_") and not isinstance(value, type(security))
    } - {"annotations"}
    assert sorted(security.__all__) == security.__all__
    assert set(security.__all__) == public
