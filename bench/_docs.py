"""docs/benchmarks.md, written from the results of ``python -m bench`` (never by hand: the
explanations below are part of this generator, so a re-run keeps them beside fresh figures).

A target is "met" only when the median figure meets it; nothing is rounded towards a target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"


def _k(v: float) -> str:
    return f"{v / 1000:,.1f}k"


def _mmm(d: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return " / ".join(fmt.format(d[k]) for k in ("min", "median", "max"))


def max_rate(e2e: dict[str, Any]) -> float | None:
    """The gateway's sustained QoS 1 sqlite rate with 100 devices (median), the 'max' that the
    latency and soak benchmarks scale from."""
    for case in e2e.get("cases", []):
        if case["devices"] == 100 and case["qos"] == 1:
            for m in case["measurements"]:
                if m["name"].startswith("gateway sqlite"):
                    return float(m["median"])
    return None


def _e2e(b: dict[str, Any], lines: list[str], verdicts: list[tuple[str, str, str]]) -> None:
    d = b["data"]
    lines += [
        "## End-to-end ingest",
        "",
        "N devices publish JSON `{\"temp\": .., \"ts\": ..}` through a private Mosquitto (QoS as "
        "shown; `max_queued_messages` 10M, `max_inflight_messages` 1000, `set_tcp_nodelay "
        "true`) to `edge-gateway run` (one sensor, 10 s tumbling windows, `auto` detector). "
        "The publisher is a separate process (`bench/_publisher.py`, raw MQTT 3.1.1, packets "
        "pre-encoded, as fast as the broker takes them). Ceilings, same broker, same publisher, "
        "same run: a bare paho-mqtt 2.x subscriber process that only counts, and one that also "
        "decodes each payload with orjson. Rate = readings/s between the 10% and 90% marks "
        f"({d['count']:,} readings per run, {d['repeats']} runs per case, fresh broker and "
        "state each run). Ratios are medians over the JSON-decoding subscriber's median.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_e2e.py` (or `python -m bench --only e2e`).",
        "",
    ]
    for case in d["cases"]:
        lines += [
            f"### {case['devices']:,} devices, QoS {case['qos']}",
            "",
            "| case | min readings/s | median | max | vs bare + JSON | vs bare (count) | "
            "gateway CPU s per 100k readings |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m in case["measurements"]:
            cpu = [r.get("cpu_s", float("nan")) / r["received"] * 100_000
                   for r in m["runs"] if r.get("received")]
            cpu_text = f"{sorted(cpu)[len(cpu) // 2]:.2f}" if cpu and "gateway" in m["name"] else ""
            lost = sum(max(0, d["count"] - r["received"]) for r in m["runs"])
            name = m["name"] + (f" (**{lost} lost**)" if lost else "")
            lines.append(
                f"| {name} | {_k(m['min'])} | {_k(m['median'])} | {_k(m['max'])} | "
                f"{m['vs_json_ceiling']:.1%} | {m['vs_count_ceiling']:.1%} | {cpu_text} |"
            )
        lines += ["", f"Load at the end of these cases: {case['load_end']}.", ""]
        by = {m["name"]: m for m in case["measurements"]}
        if case["qos"] == 0:
            for name in ("gateway memory (durable off)", "gateway sqlite (durable on)"):
                m = by.get(name)
                if m is None:
                    continue
                ok_ratio = m["vs_json_ceiling"] >= 0.60
                ok_abs = m["median"] >= 20_000
                verdicts.append((
                    f"QoS 0 end-to-end, {case['devices']:,} devices, {name}: >= 60% of bare "
                    "+ JSON and >= 20k/s",
                    f"{m['vs_json_ceiling']:.1%} of {_k(by['bare paho + JSON']['median'])}/s; "
                    f"{_k(m['median'])}/s",
                    "met" if ok_ratio and ok_abs else
                    f"**missed** ({'ratio' if not ok_ratio else ''}"
                    f"{' and ' if not ok_ratio and not ok_abs else ''}"
                    f"{'absolute' if not ok_abs else ''})",
                ))
        if case["devices"] == 100 and case["qos"] == 1:
            m = by.get("gateway sqlite (durable on)")
            if m is not None:
                verdicts.append((
                    "QoS 1 with durable ingest: >= 60% of the bare QoS 1 subscriber (count)",
                    f"{m['vs_count_ceiling']:.1%} of {_k(by['bare paho (count)']['median'])}/s "
                    f"({m['vs_json_ceiling']:.1%} of bare + JSON)",
                    "met" if m["vs_count_ceiling"] >= 0.60 else "**missed**",
                ))


def _latency(b: dict[str, Any], lines: list[str], verdicts: list[tuple[str, str, str]]) -> None:
    d = b["data"]
    lines += [
        "## Reading → alert latency",
        "",
        f"QoS 1, durable sqlite ingest, 100 devices paced at a share of max = "
        f"{d['max_rate']:,.0f} readings/s (the QoS 1 sqlite figure above); a `threshold` "
        "detector on device `d00000`, whose readings go over it about 10 times a second. "
        "Latency = arrival of the alert on `<prefix>/alerts` at a subscriber minus the "
        "reading's send time (ms resolution). Ceiling: the same hot readings received straight "
        "from the broker by the same subscriber.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_latency.py --max-rate "
        f"{d['max_rate']:.0f}`.",
        "",
        "| load | readings/s | alerts | gateway p50 ms (min / median / max) | gateway p99 ms "
        "(min / median / max) | broker-only p50 / p99 ms (median) |",
        "|---|---:|---:|---|---|---|",
    ]
    for lv in d["levels"]:
        label = f"{lv['share']:.0%} of max" + (
            "" if lv.get("nodelay", True) else ", Mosquitto default (Nagle on)")
        alerts = sum(r["alerts"] for r in lv["runs"])
        lines.append(
            f"| {label} | {lv['rate']:,.0f} | {alerts} | {_mmm(lv['gateway_p50'], '{:.1f}')} | "
            f"{_mmm(lv['gateway_p99'], '{:.1f}')} | {lv['broker_p50']['median']:.1f} / "
            f"{lv['broker_p99']['median']:.1f} |"
        )
        if lv["share"] == 0.5 and lv.get("nodelay", True):
            p99 = lv["gateway_p99"]["median"]
            verdicts.append(("p99 reading→alert < 50 ms at 50% of max",
                             f"{p99:.1f} ms (max of runs {lv['gateway_p99']['max']:.1f} ms)",
                             "met" if p99 < 50 else "**missed**"))
    lines += [
        "",
        "Mosquitto leaves Nagle's algorithm on by default: at a few thousand small messages a "
        "second the broker holds the gateway's next message until the previous one is ACKed, "
        "and Linux delays that ACK up to 40 ms. Put `set_tcp_nodelay true` in "
        "`mosquitto.conf` when alert latency matters (the rows above show both). The gateway "
        "sets `TCP_NODELAY` on its own socket.",
        "",
    ]


def _memory(b: dict[str, Any], lines: list[str], verdicts: list[tuple[str, str, str]]) -> None:
    d = b["data"]
    mb = 1024 * 1024
    lines += [
        "## Memory",
        "",
        "RSS of the gateway (`/proc/<pid>/statm`) in its production shape (QoS 1, sqlite, "
        "windows, `auto`) after every device has sent 10 readings (paced, 5,000/s in all) and a "
        "checkpoint has passed. Reference: the same gateway idle.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_memory.py`.",
        "",
        "| active devices | RSS MB (min / median / max) | vs idle | bytes per device actor |",
        "|---:|---|---:|---:|",
        f"| 0 (idle, the reference) | {_mmm({k: v / mb for k, v in d['idle'].items()}, '{:.1f}')}"
        " | 1.00x | |",
    ]
    for r in d["rows"]:
        rss = {k: v / mb for k, v in r["rss"].items()}
        lines.append(f"| {r['devices']:,} | {_mmm(rss, '{:.1f}')} | "
                     f"{r['rss']['median'] / d['idle']['median']:.2f}x | "
                     f"{r['bytes_per_device']:,.0f} |")
        if r["devices"] == 10_000:
            verdicts.append(("10,000 active devices < 150 MB RSS", f"{rss['median']:.1f} MB",
                             "met" if rss["median"] < 150 else "**missed**"))
    lines.append("")


def _startup(b: dict[str, Any], lines: list[str], verdicts: list[tuple[str, str, str]]) -> None:
    d = b["data"]
    lines += [
        "## Start to READY",
        "",
        "From spawning `python -m gateway run -c FILE` to the `READY=1` datagram on the "
        "`NOTIFY_SOCKET` it was given (state restored, broker connected, subscribed). The "
        "10,000 devices' state comes from a gateway that received 5 readings per device and "
        "was stopped (SIGTERM: final checkpoint) or killed (SIGKILL before any checkpoint: "
        "everything replayed from the journal). Ceiling: the same start with an empty state.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_startup.py`.",
        "",
        "| state to restore | min s | median s | max s | vs empty state |",
        "|---|---:|---:|---:|---:|",
    ]
    base = d["cases"][0]["median"]
    for c in d["cases"]:
        lines.append(f"| {c['name']} | {c['min']:.2f} | {c['median']:.2f} | {c['max']:.2f} | "
                     f"{c['median'] / base:.2f}x |")
    worst = max(c["median"] for c in d["cases"][1:])
    verdicts.append(("start with 10,000 devices' state < 3 s", f"{worst:.2f} s (worst case)",
                     "met" if worst < 3 else "**missed**"))
    lines.append("")


def _capacity(b: dict[str, Any], lines: list[str]) -> None:
    d = b["data"]
    lines += [
        "## Capacity",
        "",
        "What one 2-core box (this machine) carries with Mosquitto and the gateway on it "
        "(QoS 1, durable sqlite ingest, 10 s tumbling windows, the `auto` detector): the "
        "highest paced rate at which the gateway keeps up, gateway + broker CPU stay under "
        "70% of the 2 cores and the gateway under 70% of its one core (its pipeline is one "
        "thread; the rest is headroom for bursts, checkpoints and catching up). CPU from "
        "`/proc/<pid>/stat`; the sensors' stand-in (the publisher) is not counted. Fitted from "
        "two rates per row, then run at the fitted rate, whose measured CPU is shown.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_capacity.py`.",
        "",
        "| devices | readings/s per device | readings/s total | gateway CPU (% of 2 cores) | "
        "gateway + broker (% of 2 cores) | kept up | gateway CPU µs per reading |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in d["rows"]:
        c = r["check"]
        lines.append(
            f"| {r['devices']:,} | {c['rate'] / r['devices']:,.1f} | {c['rate']:,.0f} | "
            f"{c['gateway_cores'] / 2:.0%} | {(c['gateway_cores'] + c['broker_cores']) / 2:.0%}"
            f" | {'yes' if c['kept_up'] else '**no**'} | {r['gateway_us_per_reading']:.0f} |")
    lines += [
        "",
        "**Raspberry Pi 4** (4 x Cortex-A72 at 1.5 GHz; not measured here): CPython runs "
        "single-threaded code about 3-5x slower per core there than on this x86 machine, and "
        "the gateway's pipeline is one thread, so expect roughly a quarter of the totals above "
        "(the per-device column scales the same way), with the broker on another core. An "
        "SD card makes each SQLite commit slower (fsync); commits are per batch, so this "
        "lowers latency headroom more than throughput. Measure on the target with "
        "`bench/bench_capacity.py` before sizing a site.",
        "",
    ]


def _soak(b: dict[str, Any], lines: list[str], verdicts: list[tuple[str, str, str]]) -> None:
    d = b["data"]
    lines += [
        "## Soak",
        "",
        f"{d['minutes']:g} minutes at {d['rate']:,.0f} readings/s (half of max) over "
        f"{d['devices']:,} devices, QoS 1, sqlite, Redis sync on. RSS and outbox rows sampled "
        "every 10 s (chart below).",
        "",
        f"Reproduce: `.venv/bin/python bench/bench_soak.py --minutes {d['minutes']:g} "
        f"--rate {d['rate']:.0f}`.",
        "",
        f"- published {d['published']:,}, taken in {d['received']:,}, **lost {d['lost']:,}**, "
        f"rejected {d['rejected']}, dropped {d['dropped']}",
        f"- RSS: {'flat' if d['flat_rss'] else '**growing**'} (last third within 10% of the "
        f"middle third); outbox: {'flat' if d['flat_outbox'] else '**growing**'}",
        "",
        "| t (s) | RSS MB | outbox rows | readings in |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {s['t']:.0f} | {s['rss_mb']:.1f} | {s['outbox_rows']} | {s['readings_in']:,} |"
              for s in d["samples"]]
    lines.append("")
    verdicts.append(("soak: RSS and outbox flat, no reading lost",
                     f"lost {d['lost']}, RSS {'flat' if d['flat_rss'] else 'growing'}, outbox "
                     f"{'flat' if d['flat_outbox'] else 'growing'}",
                     "met" if d["lost"] == 0 and d["flat_rss"] and d["flat_outbox"]
                     else "**missed**"))


EXPLANATIONS = Path(__file__).resolve().parent / "_explanations.md"


def write(results: dict[str, Any], page: Path = PAGE) -> Path:
    benches = results.get("benchmarks", {})
    lines = [
        "# Benchmarks",
        "",
        "Every figure stands beside its ceiling measured in the same run on the same machine, "
        "with min / median / max over repeated runs. Generated by `python -m bench` "
        "(`make bench`; `make bench-quick` for a short run) from `bench/results/*.json`; do "
        "not edit by hand (the explanations live in `bench/_explanations.md`).",
        "",
        f"Machine: {results.get('machine', '?')}. The machine is shared: the load average "
        "is printed beside each section; prefer the ratios.",
        "",
    ]
    quick = sorted({n for n, b in benches.items() if b.get("quick")})
    if quick:
        lines += [f"**Quick run** (`--quick`: fewer readings, one repeat) for: "
                  f"{', '.join(quick)}.", ""]
    body: list[str] = []
    verdicts: list[tuple[str, str, str]] = []
    sections = [("e2e", _e2e), ("latency", _latency), ("memory", _memory),
                ("startup", _startup), ("soak", _soak)]
    for name, fn in sections:
        if name in benches:
            fn(benches[name], body, verdicts)
            body.insert(len(body) - 1, f"Run {benches[name]['started']}, {benches[name]['load']}.")
    if "capacity" in benches:
        _capacity(benches["capacity"], body)
    if "soak" in benches or "e2e" in benches:
        body += ["![throughput against ceilings; soak RSS and outbox](img/benchmarks.png)", ""]
    for name, title in (("engine", "Streaming engine"), ("state", "State backends"),
                        ("sync", "Outbox drain to Redis")):
        if name in benches and benches[name].get("text"):
            body += [f"## {title} (`bench/bench_{name}.py`, its own page section)", "",
                     f"Run {benches[name]['started']}, {benches[name]['load']}.", "",
                     benches[name]["text"].strip(), ""]
    lines += ["## Targets", "", "| target | measured (median) | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in verdicts]
    lines.append("")
    if EXPLANATIONS.exists():
        lines += [EXPLANATIONS.read_text().strip(), ""]
    page.write_text("\n".join(lines + body).rstrip() + "\n")
    return page
