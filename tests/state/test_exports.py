"""gateway.state's public surface is exactly its ``__all__``."""

from __future__ import annotations

import types

import gateway.state


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(gateway.state).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(gateway.state.__all__)
    assert len(gateway.state.__all__) == len(set(gateway.state.__all__))


def test_every_error_is_a_state_error() -> None:
    from gateway.state import StateError

    for name in gateway.state.__all__:
        value = getattr(gateway.state, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, StateError), name
