"""gateway.sync's public surface is exactly what its private modules export."""

from __future__ import annotations

import importlib
import pkgutil

import gateway.sync


def test_all_is_complete_and_sorted_like_ruff() -> None:
    exported: set[str] = set()
    for info in pkgutil.iter_modules(gateway.sync.__path__):
        module = importlib.import_module(f"gateway.sync.{info.name}")
        if info.name in {"_forward_mqtt", "_forward_webhook", "_redis_sync", "_writer", "_errors"}:
            exported |= {n for n in module.__all__ if not n.startswith("redacted")}
    exported |= {"Outbox", "OutboxEntryLike", "OutboxSignal", "OutboxStatsLike"}
    assert set(gateway.sync.__all__) == exported
    for name in gateway.sync.__all__:
        assert getattr(gateway.sync, name) is not None
