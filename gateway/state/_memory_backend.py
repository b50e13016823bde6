"""The memory backend: fast, ephemeral; for development and tests."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from gateway.state._backend import CheckpointInfo, Entry, StateBackend
from gateway.state._errors import StateUsageError

__all__ = ["MemoryBackend"]


def _live(entries: Mapping[str, Entry], now_ms: int) -> dict[str, Entry]:
    return {k: e for k, e in entries.items() if e[1] is None or e[1] > now_ms}


class MemoryBackend(StateBackend):
    """Keeps every namespace in a dict (lazily expired on read, swept periodically)."""

    kind = "memory"

    def __init__(self, *, keep_checkpoints: int = 3) -> None:
        super().__init__(keep_checkpoints=keep_checkpoints)
        self._spaces: dict[str, dict[str, Entry]] = {}
        self._checkpoints: dict[str, list[tuple[CheckpointInfo, dict[str, Entry]]]] = {}
        self._next_id = 0

    async def load(self, ns: str, now_ms: int) -> dict[str, Entry]:
        self._check_open()
        return _live(self._spaces.get(ns, {}), now_ms)

    async def write_batch(
        self, ns: str, upserts: Mapping[str, Entry], deletes: Collection[str], now_ms: int
    ) -> None:
        self._check_open()
        space = self._spaces.setdefault(ns, {})
        for key in deletes:
            space.pop(key, None)
        for key, entry in upserts.items():
            if entry[1] is not None and entry[1] <= now_ms:
                space.pop(key, None)
            else:
                space[key] = entry

    async def checkpoint(
        self, ns: str, name: str, entries: Mapping[str, Entry], now_ms: int
    ) -> int:
        self._check_open()
        self._next_id += 1
        info = CheckpointInfo(self._next_id, name, now_ms, len(entries))
        kept = self._checkpoints.setdefault(ns, [])
        kept.append((info, dict(entries)))
        del kept[: -self.keep_checkpoints]
        return info.id

    async def restore(self, ns: str, checkpoint_id: int, now_ms: int) -> dict[str, Entry]:
        self._check_open()
        for info, entries in self._checkpoints.get(ns, []):
            if info.id == checkpoint_id:
                live = _live(entries, now_ms)
                self._spaces[ns] = dict(live)
                return live
        msg = f"no checkpoint {checkpoint_id} for operator {ns!r}"
        raise StateUsageError(msg)

    async def list_checkpoints(self, ns: str) -> list[CheckpointInfo]:
        self._check_open()
        return [info for info, _ in self._checkpoints.get(ns, [])]

    async def sweep(self, ns: str, now_ms: int) -> int:
        self._check_open()
        space = self._spaces.get(ns, {})
        expired = [k for k, e in space.items() if e[1] is not None and e[1] <= now_ms]
        for key in expired:
            del space[key]
        return len(expired)
