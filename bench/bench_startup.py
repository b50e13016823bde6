"""Benchmark: time from process start to READY with 10,000 devices' state to restore.

Start = spawning ``python -m gateway run -c FILE``; READY = the ``READY=1`` datagram on the
``NOTIFY_SOCKET`` we hand it (what systemd waits for): state restored, broker connected,
subscribed. Cases, in the same run, on the same broker:

- ``empty state`` (the ceiling): interpreter start, imports, config, an empty SQLite file;
- ``10,000 devices, checkpoint``: a state file written by a gateway that received
  ``--per-device`` readings from each of 10,000 devices and was stopped with SIGTERM (final
  checkpoint, nothing left to replay);
- ``10,000 devices, checkpoint + journal replay``: the same, but the gateway was killed
  (SIGKILL) before any checkpoint (``checkpoint_interval`` 1 h), so every reading is
  replayed from the journal through the actors.

Each case starts the gateway ``--repeats`` times on an identical copy of its state file.

Usage: ``python bench/bench_startup.py [--quick] [--devices N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Gateway, Monitor, broker, gateway_config, load, publisher, stats
from _report import machine


def prepare(port: int, workdir: Path, devices: int, per_device: int, *, kill: bool) -> Path:
    """A state directory holding ``devices`` devices' state."""
    state = workdir / ("killed" if kill else "stopped")
    state.mkdir()
    cfg = gateway_config(port, state)
    if kill:
        cfg["state"]["checkpoint_interval"] = "1h"
    count = devices * per_device
    pub = publisher(port, devices=devices, count=count, qos=1,
                    client_id=f"bench-prep-{int(kill)}")
    gw = Gateway(cfg, state)
    try:
        with Monitor(port) as mon:
            gw.start()
            pub.go()
            received = mon.wait_readings(count, timeout=300)
            if received < count:
                raise RuntimeError(f"preparing the state: {received} of {count} readings")
            pub.expect("done", timeout=60)
        if kill:
            gw.kill()
        else:
            gw.stop()
    finally:
        gw.stop()
        pub.close()
    return state


def time_start(port: int, template: Path, workdir: Path, *, kill_after: bool,
               checkpoint_interval: str) -> float:
    run = workdir / f"run-{time.monotonic_ns()}"
    shutil.copytree(template, run, ignore=shutil.ignore_patterns("*.sock", "gateway.log"))
    cfg = gateway_config(port, run)
    cfg["state"]["checkpoint_interval"] = checkpoint_interval
    gw = Gateway(cfg, run)
    try:
        seconds = gw.start()
    finally:
        if kill_after:
            gw.kill()
        gw.stop()
    shutil.rmtree(run, ignore_errors=True)
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--per-device", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=0)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    out: dict[str, Any] = {"devices": args.devices, "cases": []}
    with broker() as b, tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        work = Path(tmp)
        empty = work / "empty"
        empty.mkdir()
        stopped = prepare(b.port, work, args.devices, args.per_device, kill=False)
        killed = prepare(b.port, work, args.devices, args.per_device, kill=True)
        print(f"# Start to READY ({machine()}; {load()})\n")
        print("| state to restore | min s | median s | max s | vs empty state (median) |")
        print("|---|---:|---:|---:|---:|")
        cases = [
            ("empty state (the ceiling)", empty, False, "5s"),
            (f"{args.devices:,} devices, checkpoint", stopped, False, "5s"),
            (f"{args.devices:,} devices, checkpoint + journal replay "
             f"({args.devices * args.per_device:,} readings)", killed, True, "1h"),
        ]
        ceiling = 0.0
        for name, template, kill_after, interval in cases:
            times = [time_start(b.port, template, work, kill_after=kill_after,
                                checkpoint_interval=interval) for _ in range(repeats)]
            s = stats(times)
            ceiling = ceiling or s["median"]
            print(f"| {name} | {s['min']:.2f} | {s['median']:.2f} | {s['max']:.2f} | "
                  f"{s['median'] / ceiling:.2f}x |", flush=True)
            out["cases"].append({"name": name, "seconds": times, **s})
    out["load"] = load()
    return out


if __name__ == "__main__":
    main()
