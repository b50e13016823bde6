"""Benchmark: the capacity table -- devices x readings/s per device one box carries at < 70% CPU.

The box is this machine (2 cores) running Mosquitto and the gateway in its production shape
(QoS 1, durable sqlite ingest, 10 s tumbling windows, the ``auto`` detector); the publisher
process stands in for the sensors (it would not run on the gateway box; its CPU is not
counted). CPU is read from ``/proc/<pid>/stat`` for the gateway and the broker.

"Carries" means, for a rate sustained for ``--seconds``:

- the gateway keeps up (every reading in within 3 s of the last one sent);
- gateway + broker CPU < 70% of the 2 cores (1.4 core-seconds per second), and
- the gateway process < 70% of one core (it runs its pipeline on one thread; the rest of that
  core is the headroom for bursts, checkpoints and catching up after a restart).

For each device count the CPU cost is measured at two paced rates, a line (fixed cost + cost
per reading) is fitted per process, the highest rate meeting both CPU limits is computed, and
that rate is then run to confirm it (its measured CPU is what the table shows).

Usage: ``python bench/bench_capacity.py [--quick] [--devices 100,1000,10000] [--seconds S]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Gateway,
    Monitor,
    broker,
    cpu_seconds,
    gateway_config,
    load,
    publisher,
)
from _report import machine

CORES = 2
BOX_LIMIT = 0.7 * CORES  # core-seconds per second
GATEWAY_LIMIT = 0.7  # of one core


def run_at(devices: int, rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    with broker() as b, tempfile.TemporaryDirectory(prefix="bench-cap-") as tmp:
        pub = publisher(b.port, devices=devices, count=count, qos=1, rate=rate)
        gw = Gateway(gateway_config(b.port, Path(tmp)), Path(tmp))
        try:
            with Monitor(b.port) as mon:
                gw.start()
                assert b.process is not None
                time.sleep(1)
                g0, b0, t0 = cpu_seconds(gw.pid), cpu_seconds(b.process.pid), time.monotonic()
                pub.go()
                pub.expect("done", timeout=seconds * 3 + 60)
                g1, b1, t1 = cpu_seconds(gw.pid), cpu_seconds(b.process.pid), time.monotonic()
                received = mon.wait_readings(count, timeout=3, stall_s=3)
        finally:
            gw.stop()
            pub.close()
    wall = t1 - t0
    return {"devices": devices, "rate": rate, "count": count, "received": received,
            "kept_up": received >= count, "gateway_cores": (g1 - g0) / wall,
            "broker_cores": (b1 - b0) / wall}


def fit(lo: dict[str, Any], hi: dict[str, Any], key: str) -> tuple[float, float]:
    """(fixed cores, cores per reading/s) through two points."""
    slope = (hi[key] - lo[key]) / (hi["rate"] - lo["rate"])
    return lo[key] - slope * lo["rate"], slope


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--devices", default="100,1000,10000")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--low", type=float, default=2_000.0)
    parser.add_argument("--high", type=float, default=8_000.0)
    args = parser.parse_args(argv)
    seconds = args.seconds or (8 if args.quick else 15)
    print(f"# Capacity ({machine()}; {load()})\n")
    print("| devices | readings/s per device | readings/s total | gateway CPU (% of 2 cores) "
          "| gateway + broker CPU (% of 2 cores) | kept up | fitted gateway µs/reading |")
    print("|---:|---:|---:|---:|---:|---|---:|")
    rows = []
    for devices in (int(d) for d in args.devices.split(",")):
        lo = run_at(devices, args.low, seconds)
        hi = run_at(devices, args.high, seconds)
        g_fixed, g_slope = fit(lo, hi, "gateway_cores")
        b_fixed, b_slope = fit(lo, hi, "broker_cores")
        by_gateway = (GATEWAY_LIMIT - g_fixed) / g_slope
        by_box = (BOX_LIMIT - g_fixed - b_fixed) / (g_slope + b_slope)
        capacity = max(args.low, min(by_gateway, by_box))
        check = run_at(devices, round(capacity, -2), seconds)
        rows.append({"devices": devices, "low": lo, "high": hi, "check": check,
                     "gateway_us_per_reading": g_slope * 1e6,
                     "broker_us_per_reading": b_slope * 1e6,
                     "fitted_capacity": capacity, "load": load()})
        print(f"| {devices:,} | {check['rate'] / devices:,.1f} | {check['rate']:,.0f} | "
              f"{check['gateway_cores'] / CORES:.0%} | "
              f"{(check['gateway_cores'] + check['broker_cores']) / CORES:.0%} | "
              f"{'yes' if check['kept_up'] else 'NO'} | {g_slope * 1e6:.0f} |", flush=True)
    return {"rows": rows, "seconds": seconds}


if __name__ == "__main__":
    main()
