"""Benchmark: end-to-end ingest through a real Mosquitto, against bare paho subscribers.

For each device count (100 and 10,000) and QoS (0 and 1), in the same run on the same
private broker (``max_queued_messages`` 10M, ``max_inflight_messages`` 1000) with the same
publisher process (``bench/_publisher.py``: raw MQTT, packets pre-encoded, as fast as the
broker takes them, JSON ``{"temp":..,"ts":..}`` round-robin over the devices):

- ``bare paho (count)``: a paho-mqtt 2.x subscriber process that only counts -- the ceiling;
- ``bare paho + JSON``: the same, decoding each payload with orjson -- the target's ceiling;
- ``gateway sqlite`` / ``gateway memory``: ``edge-gateway run`` with one JSON sensor, 10 s
  tumbling windows and the ``auto`` detector, durable ingest on (sqlite: journal + outbox,
  ack after commit) or off (memory backend).

The rate is sustained readings/s between the 10% and 90% marks of the run: for the bare
subscribers by their own clock, for the gateway interpolated between its status messages
(``readings.in``, every 250 ms). A fresh broker and gateway state per repeat. Every case must
receive every reading; a shortfall is printed as lost.

Usage: ``python bench/bench_e2e.py [--quick] [--count N] [--repeats N] [--devices 100,10000]
[--qos 0,1]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _harness import (
    Gateway,
    Monitor,
    bare_subscriber,
    broker,
    cpu_seconds,
    gateway_config,
    load,
    publisher,
    rss_bytes,
)
from _report import Measurement, header, machine, row


def run_bare(devices: int, count: int, qos: int, decode: bool) -> dict[str, Any]:
    with broker() as b:
        pub = publisher(b.port, devices=devices, count=count, qos=qos)
        sub = bare_subscriber(b.port, count=count, qos=qos, decode=decode)
        try:
            cpu0 = cpu_seconds(sub.process.pid)
            pub.go()
            _, middle, received = sub.expect("done", timeout=600)
            try:
                cpu = cpu_seconds(sub.process.pid) - cpu0
            except FileNotFoundError:
                cpu = float("nan")
            pub.expect("done", timeout=60)
        finally:
            sub.close()
            pub.close()
    rate = 0.8 * count / float(middle)
    return {"rate": rate, "received": int(received), "cpu_s": cpu}


def run_gateway(devices: int, count: int, qos: int, backend: str,
                detectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    with broker() as b, tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        pub = publisher(b.port, devices=devices, count=count, qos=qos)
        gw = Gateway(gateway_config(b.port, Path(tmp), backend=backend, qos=qos,
                                    detectors=detectors), Path(tmp))
        try:
            with Monitor(b.port) as mon:
                gw.start()
                cpu0 = cpu_seconds(gw.pid)
                pub.go()
                started = time.monotonic()
                received = mon.wait_readings(count, timeout=600)
                wall = time.monotonic() - started
                cpu = cpu_seconds(gw.pid) - cpu0
                rss = rss_bytes(gw.pid)
                rate = interpolated_rate(mon, count)
            pub.expect("done", timeout=60)
        finally:
            gw.stop()
            pub.close()
    return {"rate": rate, "received": received, "cpu_s": cpu, "wall_s": wall, "rss": rss}


def interpolated_rate(mon: Monitor, count: int) -> float:
    """Readings/s between the 10% and 90% marks, by the gateway's clock (status ``ts``)."""
    points = [(s.data["ts"], s.data["readings"]["in"]) for s in mon.statuses
              if s.data.get("state") == "online"]

    def when(mark: float) -> float:
        for (t0, n0), (t1, n1) in itertools.pairwise(points):
            if n0 < mark <= n1:
                return t0 + (mark - n0) / (n1 - n0) * (t1 - t0)
        return float("nan")

    lo, hi = when(count * 0.1), when(count * 0.9)
    return 0.8 * count * 1000 / (hi - lo)


CASES = [
    # name, kind, qos, options
    ("bare paho (count)", "bare", False, None),
    ("bare paho + JSON", "bare", True, None),
    ("gateway memory (durable off)", "gateway", None, "memory"),
    ("gateway sqlite (durable on)", "gateway", None, "sqlite"),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=0)
    parser.add_argument("--devices", default="100,10000")
    parser.add_argument("--qos", default="0,1")
    args = parser.parse_args(argv)
    count = args.count or (60_000 if args.quick else 200_000)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"# End-to-end ingest ({machine()}; {load()} at start)")
    results: dict[str, Any] = {"count": count, "repeats": repeats, "load_start": load(),
                               "cases": []}
    for devices in (int(d) for d in args.devices.split(",")):
        for qos in (int(q) for q in args.qos.split(",")):
            measurements: list[Measurement] = []
            details: dict[str, list[dict[str, Any]]] = {}
            for name, kind, decode, backend in CASES:
                runs = []
                for _ in range(repeats):
                    if kind == "bare":
                        r = run_bare(devices, count, qos, bool(decode))
                    else:
                        r = run_gateway(devices, count, qos, str(backend))
                    runs.append(r)
                    lost = count - r["received"]
                    print(f"  {devices} devices QoS {qos} {name}: {r['rate']:,.0f}/s"
                          + (f" LOST {lost}" if lost else ""), flush=True)
                measurements.append(Measurement(name, tuple(r["rate"] for r in runs)))
                details[name] = runs
            print(f"\n## {devices} devices, QoS {qos}, {count:,} readings x {repeats} ({load()})\n")
            print(header("readings/s"))
            json_ceiling = measurements[1]
            for m in measurements:
                print(row(m, json_ceiling))
            print()
            results["cases"].append({
                "devices": devices, "qos": qos, "load_end": load(),
                "measurements": [
                    {"name": m.name, "rates": list(m.rates), "min": m.min, "median": m.median,
                     "max": m.max, "vs_json_ceiling": m.median / json_ceiling.median,
                     "vs_count_ceiling": m.median / measurements[0].median,
                     "runs": details[m.name]}
                    for m in measurements
                ],
            })
    return results


if __name__ == "__main__":
    out = main()
    if "--json" in sys.argv:
        print(json.dumps(out, indent=1))
