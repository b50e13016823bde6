"""Child process of the operator crash test: rewrites all of its keys with round number ``k``
and flushes, round after round, until it is killed; prints ``flushed <k>`` after each flush.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.state import SqliteBackend, StatefulOperator

KEYS = 200


async def main(path: Path) -> None:
    async with (
        SqliteBackend(path) as backend,
        StatefulOperator(backend, "crash", flush_interval=3_600_000) as op,
    ):
        k = 0
        while True:
            k += 1
            for i in range(KEYS):
                op.put(f"key-{i}", {"round": k, "i": i})
            await op.flush()
            sys.stdout.write(f"flushed {k}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
