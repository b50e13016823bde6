"""Child process of the crash test: commits numbered batches until it is killed.

Batch ``k`` holds ``PER_BATCH`` journal entries of device ``b<k>`` and ``PER_BATCH`` outbox
entries ``b<k>-<i>``; every ``CHECKPOINT_EVERY`` batches a checkpoint records ``{"last": k}``.
After each commit returns, ``committed <k>`` is printed (and flushed): the parent's proof of
what was durable before it sent SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.state import JournalEntry, OutboxEntry, SqliteGatewayStore

PER_BATCH = 50
CHECKPOINT_EVERY = 7


async def main(path: Path) -> None:
    async with SqliteGatewayStore(path, keep_checkpoints=2, now_ms=lambda: 1) as store:
        k = 0
        while True:
            k += 1
            journal = [JournalEntry(0, f"b{k}", "s", float(i), i, i) for i in range(PER_BATCH)]
            outbox = [
                OutboxEntry(0, "window", f"b{k}-{i}", b"x" * 200, k) for i in range(PER_BATCH)
            ]
            await store.commit_batch(journal, outbox)
            if k % CHECKPOINT_EVERY == 0:
                await store.write_checkpoint({"progress": {"last": k}}, store.next_seq - 1)
            sys.stdout.write(f"committed {k}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
