"""The public surface of devices.profiles is exactly its sorted ``__all__``."""

from __future__ import annotations

import inspect

import devices.profiles


def test_profiles_all_is_complete_and_sorted() -> None:
    module = devices.profiles
    defined = {
        name
        for name, member in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(member)
        and (getattr(member, "__module__", module.__name__) in (module.__name__,
                                                                "gateway.ingest.limits"))
    }
    defined.discard("annotations")
    assert set(module.__all__) == defined
    # sorted as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    assert list(module.__all__) == sorted(
        module.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name)
    )
    for name in module.__all__:
        assert hasattr(module, name)
