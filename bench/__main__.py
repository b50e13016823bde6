"""``python -m bench``: run every benchmark, save the results, regenerate docs/benchmarks.md.

    python -m bench              # the full suite (tens of minutes: the soak alone is 10)
    python -m bench --quick      # a short run of everything (soak 1 min, one repeat)
    python -m bench --only e2e,latency
    python -m bench --docs-only  # regenerate the page (and chart) from the newest results

Results go to ``bench/results/<UTC time>.json`` (git-ignored; ``BENCH_RESULTS=DIR`` to use
another folder); the page is written from them by ``bench/_docs.py`` and the chart by
``bench/chart.py`` (matplotlib, which is not a dependency: without it the chart is skipped with
a message). ``--docs-only`` refuses (exit 2) when a benchmark has no results at all, as in a
fresh clone, rather than write a page without its figures. The end-to-end benchmarks start
their own Mosquitto and Redis on free loopback ports.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import _docs  # noqa: E402
import bench_capacity  # noqa: E402
import bench_e2e  # noqa: E402
import bench_latency  # noqa: E402
import bench_memory  # noqa: E402
import bench_soak  # noqa: E402
import bench_startup  # noqa: E402
from _harness import load  # noqa: E402
from _report import machine  # noqa: E402

RESULTS = Path(os.environ.get("BENCH_RESULTS", BENCH / "results"))
ORDER = ["e2e", "latency", "memory", "startup", "capacity", "soak", "engine", "state", "sync"]
SCRIPTS = {"engine": "bench_engine.py", "state": "bench_state.py", "sync": "bench_sync.py"}


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
            stream.flush()
        return len(s)


def _run_module(main: Any, argv: list[str]) -> tuple[Any, str]:
    captured = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
        result = main(argv)
    return result, captured.getvalue()


def _run_script(name: str, quick: bool) -> tuple[Any, str]:
    argv = [sys.executable, str(BENCH / SCRIPTS[name])]
    if quick:
        argv.append("--quick")
    if name == "engine":
        try:
            import bytewax  # noqa: F401
        except ImportError:
            argv.append("--no-bytewax")
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stdout.write(proc.stderr[-3000:])
    return {"returncode": proc.returncode, "seconds": time.monotonic() - started}, proc.stdout


def run(only: list[str], quick: bool) -> dict[str, Any]:
    q = ["--quick"] if quick else []
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
        "machine": machine(), "load_start": load(), "benchmarks": {},
    }
    out = results["benchmarks"]
    max_rate: float | None = None
    for name in ORDER:
        if name not in only:
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        try:
            if name == "e2e":
                data, text = _run_module(bench_e2e.main, q)
                max_rate = _docs.max_rate(data)
            elif name == "latency":
                extra = ["--max-rate", str(max_rate)] if max_rate else []
                data, text = _run_module(bench_latency.main, q + extra)
            elif name == "memory":
                data, text = _run_module(bench_memory.main, q)
            elif name == "startup":
                data, text = _run_module(bench_startup.main, q)
            elif name == "capacity":
                data, text = _run_module(bench_capacity.main, q)
            elif name == "soak":
                extra = ["--rate", str(max_rate / 2)] if max_rate else []
                data, text = _run_module(bench_soak.main, q + extra)
            else:
                data, text = _run_script(name, quick)
        except Exception as exc:  # one failing benchmark must not lose the others' results
            print(f"{name} failed: {exc!r}", flush=True)
            data, text = {"error": repr(exc)}, ""
        out[name] = {"data": data, "text": text, "seconds": time.monotonic() - started,
                     "load": load()}
        _save(results)
    results["load_end"] = load()
    return results


def _save(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{results['started'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    return path


def newest(results_dir: Path = RESULTS) -> dict[str, Any]:
    """The newest results, merged per benchmark over every results file (newest wins), so a
    page can combine ``--only`` runs."""
    merged: dict[str, Any] = {"benchmarks": {}}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for name, bench in data.get("benchmarks", {}).items():
            if isinstance(bench.get("data"), dict) and "error" in bench["data"]:
                continue
            merged["benchmarks"][name] = {**bench, "started": data["started"],
                                          "quick": data.get("quick", False)}
        merged.update({k: v for k, v in data.items() if k != "benchmarks"})
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(ORDER), help=f"subset of {','.join(ORDER)}")
    parser.add_argument("--docs-only", action="store_true")
    args = parser.parse_args()
    if not args.docs_only:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = set(only) - set(ORDER)
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
        results = run(only, args.quick)
        print(f"\nresults: {_save(results)}")
    merged = newest()
    missing = [name for name in ORDER if name not in merged["benchmarks"]]
    if args.docs_only and missing:
        # A fresh clone has no results (they are git-ignored): writing the page from nothing
        # would silently delete the committed figures.
        print(f"no results for {', '.join(missing)} in {RESULTS}: docs/benchmarks.md left as "
              f"it is (run them first: python -m bench --only {','.join(missing)})",
              file=sys.stderr)
        return 2
    page = _docs.write(merged)
    print(f"wrote {page}")
    try:
        import chart
    except ImportError as exc:
        print(f"chart skipped: {exc} (pip install matplotlib into the venv to draw it)")
        return 0
    try:
        print(f"wrote {chart.draw(merged)}")
    except ImportError as exc:
        print(f"chart skipped: {exc} (pip install matplotlib into the venv to draw it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
