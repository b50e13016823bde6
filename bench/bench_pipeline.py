"""Benchmark: how long a reading waits in the gateway's pipeline, without a broker.

The gateway's own loop (``Gateway._pipeline``, real clock, durable sqlite ingest, QoS 1, 10 s
tumbling windows, ``auto``) runs in this process; a feeder task hands it readings of 100
devices at ``--rate`` readings/s, every 2 ms, as the MQTT reader does. Delay of a reading =
from its hand-over to the end of the pipeline step that committed it (journal durable; the
acknowledgement and its outputs go out right then). Its tail is what stalls the pipeline:
checkpoints, garbage collection, window ends.

Unlike ``bench_latency.py`` there is no broker, publisher or subscriber competing for the two
cores, so the tail shows the gateway's own stalls even on a busy machine.

Rows: the production shape (checkpoint every 5 s), the same without checkpoints
(``checkpoint_interval`` 1 h: what checkpoints cost), and the ceiling: the same feeder and
loop with a pipeline step that does nothing (the delay the hand-over itself adds).

Usage: ``python bench/bench_pipeline.py [--rate R] [--seconds S] [--repeats N]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import gateway_config, load, stats
from _report import machine

from gateway.config import GatewayConfig
from gateway.ingest.mqtt import Message
from gateway.runtime import Gateway
from gateway.state import GatewayStore, open_store

DEVICES = 100
FEED_EVERY_S = 0.002


async def _run(rate: float, seconds: float, checkpoint: str, noop: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp:
        data = gateway_config(1, Path(tmp), backend="sqlite", qos=1)
        data["state"]["checkpoint_interval"] = checkpoint
        gw = Gateway(GatewayConfig.model_validate(data))
        handed: list[list[float]] = []  # [hand-over time, readings not yet committed]
        delays: list[float] = []
        real_step = gw._step

        async def step(store: GatewayStore, now: int, tick: bool) -> None:
            n = len(gw._inbox)
            if noop:
                gw._inbox = []
            else:
                await real_step(store, now, tick)
            end = time.perf_counter()
            while n and handed:
                t, waiting = handed[0]
                took = min(int(waiting), n)
                delays.extend([end - t] * took)
                n -= took
                if took == waiting:
                    handed.pop(0)
                else:
                    handed[0][1] -= took

        gw._step = step  # type: ignore[method-assign]
        async with open_store(gw.config, now_ms=gw.clock) as store:
            await gw._restore(store)
            gc.freeze()  # as Gateway.run does after its restore
            pipeline = asyncio.create_task(gw._pipeline(store))
            start = time.perf_counter()
            sent = 0
            while time.perf_counter() - start < seconds:
                due = int((time.perf_counter() - start) * rate)
                if due > sent:
                    ts = time.time_ns() // 1_000_000
                    batch = [
                        Message(f"bench/d{(sent + i) % DEVICES:05d}/temperature",
                                b'{"temp":%.2f,"ts":%d}' % (20 + random.random(), ts),
                                1, 1, False, False)
                        for i in range(due - sent)
                    ]
                    handed.append([time.perf_counter(), len(batch)])
                    gw._on_messages(batch)
                    sent = due
                await asyncio.sleep(FEED_EVERY_S)
            gw.stop()
            await pipeline
        gc.unfreeze()
    delays.sort()

    def q(p: float) -> float:
        return delays[min(len(delays) - 1, int(p * len(delays)))] * 1000

    return {"readings": len(delays), "p50": q(0.5), "p99": q(0.99), "p999": q(0.999),
            "max": delays[-1] * 1000, "checkpoints": gw.counters.checkpoints}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=17_855.0,
                        help="readings/s (default: half of the QoS 1 sqlite max in "
                             "docs/benchmarks.md)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# Pipeline delay without a broker ({machine()}; {load()})")
    print(f"{DEVICES} devices, {args.rate:,.0f} readings/s, {args.seconds:.0f} s x "
          f"{args.repeats}\n")
    print("| case | p50 ms (min / median / max) | p99 ms (min / median / max) | "
          "max ms (min / median / max) |")
    print("|---|---|---|---|")
    out: dict[str, Any] = {"rate": args.rate, "cases": []}
    cases = (("ceiling: no-op pipeline step", "5s", True),
             ("gateway, checkpoint every 5 s", "5s", False),
             ("gateway, no checkpoint (1 h)", "1h", False))
    for label, interval, noop in cases:
        runs = [asyncio.run(_run(args.rate, args.seconds, interval, noop))
                for _ in range(args.repeats)]
        row = {k: stats([r[k] for r in runs]) for k in ("p50", "p99", "max")}
        print(f"| {label} | " + " | ".join(
            f"{row[k]['min']:.1f} / {row[k]['median']:.1f} / {row[k]['max']:.1f}"
            for k in ("p50", "p99", "max")) + " |", flush=True)
        out["cases"].append({"label": label, "runs": runs, **row, "load": load()})
    return out


if __name__ == "__main__":
    main()
