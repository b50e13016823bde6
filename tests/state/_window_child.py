"""Child process of the exactly-once test: a one-window "actor" over readings 1..N.

On start it recovers the way the gateway does -- newest checkpoint, then the journal after it
-- and resumes with the reading after the last one it has durably seen (the broker redelivers
what was never acknowledged). Each batch is committed, then "acknowledged" on stdout
(``acked <last reading>``); every few batches the window state is checkpointed. At the end it
prints ``done <JSON window>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gateway.state import JournalEntry, SqliteGatewayStore

N = 600
BATCH = 7
CHECKPOINT_EVERY = 4


def apply(window: dict[str, int], reading: int) -> None:
    window["sum"] += reading
    window["count"] += 1
    window["last"] = reading


async def main(path: Path) -> None:
    async with SqliteGatewayStore(path, keep_checkpoints=2, now_ms=lambda: 1) as store:
        checkpoint = await store.load_checkpoint()
        window = {"sum": 0, "count": 0, "last": 0}
        after = 0
        if checkpoint is not None:
            window = dict(checkpoint.snapshots["window"])
            after = checkpoint.journal_seq
        async for entry in store.replay_journal(after):
            apply(window, int(entry.value))
        batches = 0
        while window["last"] < N:
            first = window["last"] + 1
            readings = list(range(first, min(N, first + BATCH - 1) + 1))
            journal = [JournalEntry(0, "dev", "s", float(r), r, r) for r in readings]
            await store.commit_batch(journal, [])
            for r in readings:
                apply(window, r)
            sys.stdout.write(f"acked {window['last']}\n")
            sys.stdout.flush()
            batches += 1
            if batches % CHECKPOINT_EVERY == 0:
                await store.write_checkpoint({"window": dict(window)}, store.next_seq - 1)
        sys.stdout.write(f"done {json.dumps(window)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
