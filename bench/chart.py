"""The chart of docs/benchmarks.md: end-to-end throughput against its ceilings, and the soak.

matplotlib is not a dependency of edge-gateway: ``pip install matplotlib`` into the venv to
draw it; ``python -m bench`` skips the chart with a message when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "docs" / "img" / "benchmarks.png"


def draw(results: dict[str, Any], path: Path = IMAGE) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = results.get("benchmarks", {})
    e2e = benches.get("e2e", {}).get("data")
    soak = benches.get("soak", {}).get("data")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    if e2e:
        groups = [f"{c['devices']:,} dev\nQoS {c['qos']}" for c in e2e["cases"]]
        names = [m["name"] for m in e2e["cases"][0]["measurements"]]
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            meds, lows, highs = [], [], []
            for c in e2e["cases"]:
                m = next(m for m in c["measurements"] if m["name"] == name)
                meds.append(m["median"] / 1000)
                lows.append((m["median"] - m["min"]) / 1000)
                highs.append((m["max"] - m["median"]) / 1000)
            xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(xs, meds, width, yerr=[lows, highs], label=name, capsize=2)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel("readings/s (thousands), median, min-max bars")
        ax.set_title("End-to-end ingest against bare paho subscribers")
        ax.legend(fontsize=7)
    ax = axes[1]
    if soak and soak.get("samples"):
        t = [s["t"] / 60 for s in soak["samples"]]
        ax.plot(t, [s["rss_mb"] for s in soak["samples"]], marker=".", label="gateway RSS (MB)")
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS (MB)")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(t, [s["outbox_rows"] for s in soak["samples"]], color="tab:orange",
                 marker=".", label="outbox rows")
        ax2.set_ylabel("outbox rows")
        ax2.set_ylim(bottom=0, top=max(10, *[s["outbox_rows"] for s in soak["samples"]]) * 1.2)
        ax.set_title(f"Soak: {soak['rate']:,.0f} readings/s, {soak['devices']:,} devices")
        lines = ax.get_legend_handles_labels()
        more = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
