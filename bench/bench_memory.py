"""Benchmark: resident memory of the gateway with 100 / 1,000 / 10,000 active devices.

The gateway runs its production shape (QoS 1, durable sqlite ingest, 10 s tumbling windows,
the ``auto`` detector). The publisher sends ``--per-device`` readings to each of N devices, paced at
``--rate`` readings/s in all and stamped with the send time (so every device has an open
window, a watermark and a warmed-up detector, as in steady operation rather than a burst);
once the gateway reports them all in and a checkpoint has passed, its RSS is read from
``/proc``. Reference in the same run: the RSS of the same gateway idle (started,
subscribed, no device). Bytes per device actor = (RSS with N - idle RSS) / N.

``--per-actor`` instead measures one idle device actor in-process with tracemalloc (issue 5's
"memory per idle device actor beyond its window contents"): 2,000 devices of the same
sensor get 10 readings each through an :class:`ActorSystem`, their checkpoint snapshots are
taken and dropped (handed to the store, which the runtime keeps no copy of since the store's
``write_checkpoint`` takes only the changes), then they idle past ``passivate_after`` and are
passivated. Printed per device: everything traced, the window contents (``gateway/stream``),
the encoded snapshots still held (none now: the column stays for comparison with earlier
runs), for the resident idle actor and for the passivated one.

Usage: ``python bench/bench_memory.py [--quick] [--devices 100,1000,10000] [--repeats N]``
or ``python bench/bench_memory.py --per-actor``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Gateway, Monitor, broker, gateway_config, load, publisher, rss_bytes, stats
from _report import machine

MB = 1024 * 1024


def run_once(devices: int, per_device: int, rate: float) -> dict[str, Any]:
    count = devices * per_device
    with broker() as b, tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        pub = (publisher(b.port, devices=devices, count=count, qos=1, rate=rate)
               if devices else None)
        gw = Gateway(gateway_config(b.port, Path(tmp)), Path(tmp))
        try:
            with Monitor(b.port) as mon:
                gw.start()
                if pub is not None:
                    pub.go()
                    received = mon.wait_readings(count, timeout=300)
                    pub.expect("done", timeout=60)
                else:
                    received = 0
                time.sleep(6)  # a checkpoint interval (5 s): its buffers count too
                active = mon.latest().get("devices", {}).get("active", 0)
                rss = rss_bytes(gw.pid)
        finally:
            gw.stop()
            if pub is not None:
                pub.close()
    return {"devices": devices, "received": received, "active": active, "rss": rss}


def per_actor(devices: int = 2_000) -> dict[str, dict[str, float]]:
    """Bytes per idle device actor by tracemalloc, resident and passivated (see the module
    docstring)."""
    import gc
    import tracemalloc

    from gateway.actors import ActorSystem, Effects
    from gateway.config import GatewayConfig
    from gateway.ingest.reading import Reading

    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        cfg = GatewayConfig.model_validate(gateway_config(1, Path(tmp)))
    system = ActorSystem(cfg)
    names = [f"d{i:05d}" for i in range(devices)]
    sensor = cfg.sensors[0].name
    now = time.time_ns() // 1_000_000
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for r in range(10):
        t = now + r * 100
        system.deliver([Reading(d, sensor, 20.0 + (i * 7 + r) % 13 / 10, t, False)
                        for i, d in enumerate(names)], t, Effects())
    # The checkpoint's changes: written to the store, then dropped (the runtime keeps none).
    snapshots = system.snapshot_dirty()
    assert len(snapshots) == devices, len(snapshots)
    del snapshots

    def measure() -> dict[str, float]:
        gc.collect()
        stats = tracemalloc.take_snapshot().compare_to(before, "filename")
        total = sum(st.size_diff for st in stats)
        windows = sum(st.size_diff for st in stats
                      if "/gateway/stream/" in st.traceback[0].filename)
        encoded = sum(st.size_diff for st in stats
                      if st.traceback[0].filename.endswith("/gateway/state/_store.py"))
        return {"total": total / devices, "windows": windows / devices,
                "snapshot": encoded / devices, "beyond_windows": (total - windows) / devices}

    resident = measure()
    later = now + 10_000 + cfg.actors.passivate_after
    system.tick(later, Effects())
    written = system.passivate_idle(later)
    assert len(written) == devices, len(written)
    del written  # written to the store; the runtime drops its copy
    passivated = measure()
    tracemalloc.stop()
    return {"resident": resident, "passivated": passivated}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--devices", default="100,1000,10000")
    parser.add_argument("--per-device", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5_000.0, help="readings/s, all devices")
    parser.add_argument("--repeats", type=int, default=0)
    parser.add_argument("--per-actor", action="store_true",
                        help="bytes per idle device actor (tracemalloc, in-process) only")
    args = parser.parse_args(argv)
    if args.per_actor:
        res = per_actor()
        print("| idle device actor | traced bytes | window contents | encoded checkpoint "
              "snapshot | beyond window contents |")
        print("|---|---:|---:|---:|---:|")
        for name, row in res.items():
            print(f"| {name} | {row['total']:,.0f} | {row['windows']:,.0f} | "
                  f"{row['snapshot']:,.0f} | {row['beyond_windows']:,.0f} |")
        return dict(res)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"# Gateway RSS by active devices ({machine()}; {load()})\n")
    print("| active devices | RSS MB (min / median / max) | vs idle (median) | "
          "bytes per device (median) |")
    print("|---:|---|---:|---:|")
    idle = stats([run_once(0, 0, 0)["rss"] for _ in range(repeats)])
    print(f"| 0 (idle gateway, the reference) | {idle['min'] / MB:.1f} / "
          f"{idle['median'] / MB:.1f} / {idle['max'] / MB:.1f} | 1.00x | |", flush=True)
    out: dict[str, Any] = {"idle": idle, "rows": [], "load": load()}
    for devices in (int(d) for d in args.devices.split(",")):
        runs = [run_once(devices, args.per_device, args.rate) for _ in range(repeats)]
        rss = stats([r["rss"] for r in runs])
        per_device = (rss["median"] - idle["median"]) / devices
        lost = [devices * args.per_device - r["received"] for r in runs]
        print(f"| {devices:,} | {rss['min'] / MB:.1f} / {rss['median'] / MB:.1f} / "
              f"{rss['max'] / MB:.1f} | {rss['median'] / idle['median']:.2f}x | "
              f"{per_device:,.0f} |" + (f" lost {lost}" if any(lost) else ""), flush=True)
        out["rows"].append({"devices": devices, "rss": rss, "bytes_per_device": per_device,
                            "active": [r["active"] for r in runs], "lost": lost})
    return out


if __name__ == "__main__":
    main()
