"""Benchmark: reading published -> alert on ``<prefix>/alerts``, p50/p99, at 10% and 50% of max.

The gateway runs its production shape (QoS 1, durable sqlite ingest, 10 s tumbling windows)
with a ``threshold`` detector (``max = 100``, ``resolve_after = 1``, flapping detection off).
The publisher process paces ``rate`` readings/s over 100 devices, each stamped with the wall
clock at send time; every ``hot-every``-th reading of device ``d00000`` is 1000.0, so an
alert is raised and resolved about 10 times a second. Latency of a raise = the time the
benchmark's subscriber receives it minus its ``event_time`` (the send time, ms resolution).

The broker runs with ``set_tcp_nodelay true``; the last two rows repeat the measurement with
Mosquitto's default (Nagle's algorithm on its sockets), which costs ~40 ms at light load.

Ceiling, in the same run: the same hot readings received straight from the broker by the
same subscriber (publisher -> Mosquitto -> subscriber, no gateway).

``max`` is the gateway's sustained QoS 1 sqlite rate from ``bench_e2e`` (``--max-rate``);
when absent it is measured here first with a short e2e run.

Usage: ``python bench/bench_latency.py [--quick] [--max-rate R] [--seconds S] [--repeats N]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PREFIX, Gateway, Monitor, broker, gateway_config, load, publisher, stats
from _report import machine

DEVICES = 100
HOT_TOPIC = "bench/d00000/temperature"
DETECTORS = [{"type": "threshold", "max": 100.0, "resolve_after": 1, "flap_count": 1_000_000,
              "severity": "critical"}]


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def run_once(rate: float, seconds: float, nodelay: bool = True) -> dict[str, Any]:
    count = int(rate * seconds)
    hot_rate = rate / DEVICES
    hot_every = max(2, round(hot_rate / 10))
    with broker(nodelay) as b, tempfile.TemporaryDirectory(prefix="bench-lat-") as tmp:
        pub = publisher(b.port, devices=DEVICES, count=count, qos=1, rate=rate,
                        hot_every=hot_every)
        gw = Gateway(gateway_config(b.port, Path(tmp), detectors=DETECTORS), Path(tmp))
        try:
            with Monitor(b.port, watch=HOT_TOPIC) as mon:
                gw.start()
                pub.go()
                pub.expect("done", timeout=seconds * 3 + 60)
                received = mon.wait_readings(count, timeout=120)
                time.sleep(0.5)
                alerts = [(t, a) for t, a in mon.alerts if a.get("state") == "raised"
                          and not a.get("acknowledged")]
                watched = list(mon.watched)
        finally:
            gw.stop()
            pub.close()
    gateway_ms = [t * 1000 - a["event_time"] for t, a in alerts]
    broker_ms = []
    for t, payload in watched:
        if b'"temp":1000.00' in payload:
            ts = int(payload.rsplit(b'"ts":', 1)[1].rstrip(b"}"))
            broker_ms.append(t * 1000 - ts)
    if not gateway_ms or not broker_ms:
        raise RuntimeError(f"no alerts measured (alerts {len(gateway_ms)}, "
                           f"hot readings {len(broker_ms)}); see the gateway log")
    return {
        "rate": rate, "count": count, "received": received, "alerts": len(gateway_ms),
        "gateway_p50": percentile(gateway_ms, 0.5), "gateway_p99": percentile(gateway_ms, 0.99),
        "broker_p50": percentile(broker_ms, 0.5), "broker_p99": percentile(broker_ms, 0.99),
        "gateway_max": max(gateway_ms),
    }


def measure_max_rate(quick: bool) -> float:
    import bench_e2e

    r = bench_e2e.run_gateway(DEVICES, 60_000 if quick else 150_000, 1, "sqlite")
    return float(r["rate"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=0)
    args = parser.parse_args(argv)
    seconds = args.seconds or (8 if args.quick else 20)
    repeats = args.repeats or (1 if args.quick else 3)
    max_rate = args.max_rate or measure_max_rate(args.quick)
    print(f"# Reading -> alert latency ({machine()}; {load()})")
    print(f"max throughput (QoS 1, sqlite, {DEVICES} devices): {max_rate:,.0f} readings/s\n")
    print("| load | readings/s | alerts | gateway p50 ms (min/med/max) | gateway p99 ms "
          "(min/med/max) | broker-only p50 ms | broker-only p99 ms |")
    print("|---|---:|---:|---|---|---:|---:|")
    out: dict[str, Any] = {"max_rate": max_rate, "prefix": PREFIX, "levels": []}
    for share, nodelay in ((0.1, True), (0.5, True), (0.1, False), (0.5, False)):
        rate = max_rate * share
        runs = [run_once(rate, seconds, nodelay) for _ in range(repeats)]
        g50 = stats([r["gateway_p50"] for r in runs])
        g99 = stats([r["gateway_p99"] for r in runs])
        b50 = stats([r["broker_p50"] for r in runs])
        b99 = stats([r["broker_p99"] for r in runs])
        alerts = sum(r["alerts"] for r in runs)
        label = f"{share:.0%} of max" + ("" if nodelay else ", Mosquitto default (Nagle on)")
        print(f"| {label} | {rate:,.0f} | {alerts} | "
              f"{g50['min']:.1f} / {g50['median']:.1f} / {g50['max']:.1f} | "
              f"{g99['min']:.1f} / {g99['median']:.1f} / {g99['max']:.1f} | "
              f"{b50['median']:.1f} | {b99['median']:.1f} |", flush=True)
        out["levels"].append({"share": share, "nodelay": nodelay, "rate": rate, "runs": runs,
                              "gateway_p50": g50,
                              "gateway_p99": g99, "broker_p50": b50, "broker_p99": b99,
                              "load": load()})
    return out


if __name__ == "__main__":
    main()
