"""Benchmark: soak -- ``--minutes`` (default 10) at half of max throughput with 1,000 devices.

The gateway runs its production shape: QoS 1, durable sqlite ingest, 10 s tumbling windows,
the ``auto`` detector, and a private Redis as the sync target (so the outbox fills and
drains). The publisher process paces ``rate`` readings/s over 1,000 devices, stamped with the
send time. Every 10 s the benchmark samples the gateway's RSS (``/proc``), its CPU and the
outbox size (``outbox.rows`` of the status message). At the end it checks that every
published reading was taken in (``readings.in``) and none was rejected or dropped.

Flat means: the RSS of the last third of the run within 10% of the middle third, and the
outbox not growing (its last-third maximum no more than its middle-third maximum + one
drain batch).

``rate`` is half the gateway's sustained QoS 1 sqlite rate from ``bench_e2e``
(``--rate``); when absent it is measured here first with a short e2e run.

Usage: ``python bench/bench_soak.py [--minutes M] [--rate R] [--devices N]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
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
    redis_server,
    rss_bytes,
)
from _report import machine

MB = 1024 * 1024
SAMPLE_S = 10.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="1 minute")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick and args.minutes == 10.0 else args.minutes
    rate = args.rate
    if not rate:
        import bench_e2e

        rate = bench_e2e.run_gateway(100, 60_000 if args.quick else 150_000, 1, "sqlite")[
            "rate"] / 2
    count = int(rate * minutes * 60)
    samples: list[dict[str, Any]] = []
    print(f"# Soak: {minutes:g} min at {rate:,.0f} readings/s, {args.devices:,} devices "
          f"({machine()}; {load()})", flush=True)
    with broker() as b, redis_server() as r, tempfile.TemporaryDirectory(prefix="bench-soak-") \
            as tmp:
        pub = publisher(b.port, devices=args.devices, count=count, qos=1, rate=rate)
        gw = Gateway(gateway_config(b.port, Path(tmp), redis_url=r.url), Path(tmp))
        try:
            with Monitor(b.port) as mon:
                gw.start()
                started = time.monotonic()
                cpu0 = cpu_seconds(gw.pid)
                stop = threading.Event()

                def sample() -> None:
                    while not stop.wait(SAMPLE_S):
                        status = mon.latest()
                        samples.append({
                            "t": round(time.monotonic() - started, 1),
                            "rss_mb": rss_bytes(gw.pid) / MB,
                            "cpu_s": cpu_seconds(gw.pid) - cpu0,
                            "outbox_rows": status.get("outbox", {}).get("rows", 0),
                            "readings_in": status.get("readings", {}).get("in", 0),
                        })
                        s = samples[-1]
                        print(f"  t={s['t']:6.0f}s RSS {s['rss_mb']:6.1f} MB  outbox "
                              f"{s['outbox_rows']:6d} rows  in {s['readings_in']:,}", flush=True)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                pub.go()
                pub.expect("done", timeout=minutes * 60 * 2 + 120)
                received = mon.wait_readings(count, timeout=120)
                stop.set()
                sampler.join()
                final = mon.latest()
        finally:
            gw.stop()
            pub.close()
    readings = final.get("readings", {})
    lost = count - received
    third = max(1, len(samples) // 3)
    middle, last = samples[third:2 * third], samples[2 * third:]
    rss_mid = max(s["rss_mb"] for s in middle or samples)
    rss_last = max(s["rss_mb"] for s in last or samples)
    out_mid = max(s["outbox_rows"] for s in middle or samples)
    out_last = max(s["outbox_rows"] for s in last or samples)
    flat_rss = rss_last <= rss_mid * 1.10
    flat_outbox = out_last <= out_mid + 1000
    print(f"\npublished {count:,}, taken in {received:,}, lost {lost:,}, rejected "
          f"{readings.get('rejected', 0)}, dropped {readings.get('dropped', 0)}")
    print(f"RSS max middle third {rss_mid:.1f} MB, last third {rss_last:.1f} MB: "
          f"{'flat' if flat_rss else 'GROWING'}; outbox max middle {out_mid}, last {out_last}: "
          f"{'flat' if flat_outbox else 'GROWING'}")
    return {"minutes": minutes, "rate": rate, "devices": args.devices, "published": count,
            "received": received, "lost": lost, "rejected": readings.get("rejected", 0),
            "dropped": readings.get("dropped", 0), "samples": samples, "flat_rss": flat_rss,
            "flat_outbox": flat_outbox, "load": load()}


if __name__ == "__main__":
    main()
