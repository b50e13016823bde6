"""Package attributes imported on first use (PEP 562).

A package lists which of its exports come from which submodule; the submodule (and the
libraries it imports) is loaded only when one of them is first looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, lazy: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``lazy`` maps an attribute to
    the module defining it; a loaded attribute is kept in ``namespace`` (its globals)."""

    def __getattr__(name: str) -> object:
        module = lazy.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *lazy})

    return __getattr__, __dir__
