"""``async with`` lifecycle shared by stores, backends and operators.

Each is opened exactly once: not reusable, not re-entrant; using one that is not open raises
:class:`~gateway.state.StateUsageError` with a sentence naming the rule.
"""

from __future__ import annotations

import enum
from types import TracebackType
from typing import Self

from gateway.state._errors import StateUsageError

__all__ = ["Lifecycle"]


class _Phase(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Lifecycle:
    """Mixin: ``_open``/``_close`` run by ``async with``; ``_check_open`` guards methods."""

    _phase: _Phase = _Phase.NEW

    async def __aenter__(self) -> Self:
        if self._phase is not _Phase.NEW:
            msg = (
                f"{type(self).__name__} is opened once: it is not reusable and not re-entrant "
                f"(it is {self._phase.value})"
            )
            raise StateUsageError(msg)
        await self._open()
        self._phase = _Phase.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._phase is _Phase.OPEN:
            self._phase = _Phase.CLOSED
            await self._close()

    @property
    def is_open(self) -> bool:
        """Inside its ``async with`` block."""
        return self._phase is _Phase.OPEN

    def _check_open(self) -> None:
        if self._phase is not _Phase.OPEN:
            msg = f"{type(self).__name__} is {self._phase.value}: use it inside `async with`"
            raise StateUsageError(msg)

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None
