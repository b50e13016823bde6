"""Numenta Anomaly Benchmark: run a sensor's detectors over the NAB corpus and score them.

    python bench/nab.py                      # auto (defaults) over all files, score dev + holdout
    python bench/nab.py --config gw.toml --sensor nab   # the same through `edge-gateway detect`
    python bench/nab.py --results /tmp/nab --splits dev   # dev files only (the tuning loop)
    python bench/nab.py --plot docs/img/nab-auto.png      # also plot a few series (matplotlib)
    python bench/nab.py --cv                 # also dev cross-validated (LOCO, halves)
    python bench/nab.py --bootstrap 2000     # also how much the figures depend on the files

Each data file ``data/<cat>/<name>.csv`` gives ``RESULTS/<cat>/<name>.csv`` with the columns
``timestamp,value,anomaly_score`` (one row per input row, timestamps echoed), the layout
``nab_score.py`` reads. The anomaly score of a row is the sensor's combined score
(``SensorDetectors.score``) right after that reading: the same code path the device actor runs.

Then the scorer (standard profile) reports:

- dev:      ``nab_score.py RESULTS --files dev``                  (threshold swept on dev)
- holdout:  ``nab_score.py RESULTS --files holdout --tune-on dev`` (the honest figure)

Files are processed in parallel (``--jobs``, default 2).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path

from pydantic import TypeAdapter

from gateway.detect import DetectorList, build_detectors

NAB_ROOT = Path(os.environ.get("NAB_ROOT", "/work/shared/nab"))
SCORER = Path(os.environ.get("NAB_SCORER", "/work/shared/tools/nab_score.py"))
DEFAULT_DETECTORS: list[dict[str, object]] = [{"type": "auto"}]


def parse_timestamp(text: str) -> int:
    """NAB's ``2014-02-14 14:30:00`` (naive = UTC), or epoch seconds/ms, as epoch ms."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return round(stamp.timestamp() * 1000)
    return round(number if number > 1e11 else number * 1000)


# --- the swappable seam -------------------------------------------------------------------------
# `detect_in_process` drives `build_detectors(...).on_reading` directly, exactly what the device
# actor does per reading. `detect_with_cli` runs `edge-gateway detect` instead (the CLI builds
# the same detectors from a gateway config); `--config/--sensor` select it.


def detect_in_process(src: Path, dst: Path, detectors: list[dict[str, object]]) -> None:
    """Write ``dst`` = ``timestamp,value,anomaly_score`` for every row of ``src``."""
    configs = TypeAdapter(DetectorList).validate_python(detectors)
    dets = build_detectors(configs)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(newline="") as fin, dst.open("w", newline="") as fout:
        reader = csv.reader(fin)
        next(reader)
        writer = csv.writer(fout)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for stamp, raw in reader:
            value = float(raw)
            dets.on_reading(value, parse_timestamp(stamp))
            writer.writerow([stamp, raw, f"{dets.score:.6f}"])


def detect_with_cli(src: Path, dst: Path, config: Path, sensor: str) -> None:
    """The same through ``edge-gateway detect IN -c CONFIG --sensor NAME -o OUT``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("edge-gateway")
    cmd = [str(exe), "detect", str(src), "-c", str(config), "--sensor", sensor, "-o", str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)


# ------------------------------------------------------------------------------------------------


def _run_one(job: tuple[str, str, str, str | None, str | None]) -> str:
    name, results, detectors, config, sensor = job
    src = NAB_ROOT / "data" / name
    dst = Path(results) / name
    if config is not None and sensor is not None:
        detect_with_cli(src, dst, Path(config), sensor)
    else:
        detect_in_process(src, dst, json.loads(detectors))
    return name


def score(results: Path, files: str, tune_on: str | None) -> str:
    """Run the scorer (standard profile); return its summary line."""
    cmd = [sys.executable, str(SCORER), str(results), "--files", files, "--profile", "standard"]
    cmd += ["--per-file", "none"]
    if tune_on:
        cmd += ["--tune-on", tune_on]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("standard")]
    return lines[0] if lines else out


def file_bootstrap(
    raws: list[float], windows: list[int], scored: list[int], draws: int, seed: int = 0
) -> tuple[float, float, float]:
    """5th, 50th and 95th percentiles of the normalised score over files resampled.

    ``raws`` are the files' raw standard-profile scores at a fixed threshold, ``windows``
    their numbers of labelled windows and ``scored`` of those past the probation (the
    standard profile: the perfect score is the windows' number, the null score minus the
    scored ones'). Files are drawn with replacement, ``draws`` times: the spread says how
    much of a figure is which files happen to be in the split.
    """
    import numpy as np  # a dev dependency, as for the scorer

    rng = np.random.default_rng(seed)
    raw, win, due = (np.asarray(v, dtype=float) for v in (raws, windows, scored))
    picks = rng.integers(0, len(raws), size=(draws, len(raws)))
    total, perfect, null = raw[picks].sum(axis=1), win[picks].sum(axis=1), -due[picks].sum(axis=1)
    scores = 100.0 * (total - null) / np.maximum(perfect - null, 1e-12)
    low, mid, high = np.percentile(scores, [5, 50, 95])
    return float(low), float(mid), float(high)


class ScoredSplits:
    """A results folder's scores on the dev and holdout files, read with NAB's scorer."""

    def __init__(self, results: Path, splits: tuple[str, ...] = ("dev", "holdout")) -> None:
        spec = importlib.util.spec_from_file_location("nab_score", SCORER)
        assert spec is not None
        assert spec.loader is not None
        scorer = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # (dataclasses)
        spec.loader.exec_module(scorer)
        corpus = scorer.Corpus(str(NAB_ROOT))
        self.scorer = scorer
        self.profile = corpus.profiles["standard"]
        self.split: dict[str, list[str]] = {name: corpus.select(name) for name in splits}
        self.files = {r: corpus.file(r) for rels in self.split.values() for r in rels}
        self.scores = {r: scorer.load_scores(str(results), lf) for r, lf in self.files.items()}

    def threshold(self, rels: list[str]) -> float:
        """The threshold the scorer's sweep picks on ``rels``."""
        files = [self.files[r] for r in rels]
        threshold, _ = self.scorer.best_threshold(
            files, [self.scores[r] for r in rels], self.profile
        )
        return float(threshold)

    def raw(self, rel: str, threshold: float) -> float:
        """The raw standard-profile score of file ``rel`` at ``threshold``."""
        return float(
            self.scorer.score_file(self.files[rel], self.scores[rel], self.profile, threshold).raw
        )

    def normalised(self, raw: float, rels: list[str]) -> float:
        null, perfect = self.scorer.null_and_perfect([self.files[r] for r in rels], self.profile)
        return float(self.scorer.normalise(raw, null, perfect))


def bootstrap(scored: ScoredSplits, draws: int) -> list[str]:
    """The file bootstrap of each split, at the threshold swept on dev."""
    profile = scored.profile
    if (profile.a_tp, profile.a_fn) != (1.0, 1.0):  # what file_bootstrap's normalising assumes
        return [f"bootstrap: standard profile has a_tp={profile.a_tp}, a_fn={profile.a_fn}"]
    threshold = scored.threshold(scored.split["dev"])
    lines = []
    for name, rels in scored.split.items():
        raws = [scored.raw(r, threshold) for r in rels]
        windows = [len(scored.files[r].windows) for r in rels]
        due = [len(scored.files[r].scored_windows()) for r in rels]
        low, mid, high = file_bootstrap(raws, windows, due, draws)
        lines.append(
            f"{name:8s} files resampled {draws} times at threshold {threshold:.4f}: "
            f"5% {low:.1f}  median {mid:.1f}  95% {high:.1f}"
        )
    return lines


def cross_validation(scored: ScoredSplits) -> tuple[float, float]:
    """Dev's figure with every threshold swept on files other than those it is applied to.

    Leave one category out: each of dev's categories (folders) scored at the threshold swept
    on the others. Halves: dev's files in alternate order, each half scored at the threshold
    swept on the other. The raw scores are summed and normalised over all of dev, as the dev
    figure is: a design that only fits its threshold to these files loses here. Returns the
    two figures, (leave one category out, halves).
    """
    dev = scored.split["dev"]
    loco = 0.0
    for category in sorted({r.split("/")[0] for r in dev}):
        inside = [r for r in dev if r.split("/")[0] == category]
        threshold = scored.threshold([r for r in dev if r not in inside])
        loco += sum(scored.raw(r, threshold) for r in inside)
    halves = 0.0
    for tune, test in ((dev[0::2], dev[1::2]), (dev[1::2], dev[0::2])):
        threshold = scored.threshold(tune)
        halves += sum(scored.raw(r, threshold) for r in test)
    return scored.normalised(loco, dev), scored.normalised(halves, dev)


PLOT_FILES = [
    "artificialWithAnomaly/art_daily_jumpsdown.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realTraffic/occupancy_t4013.csv",
    "realTweets/Twitter_volume_AAPL.csv",
]
"""Dev files shown in docs/detection.md."""


def plot(results: Path, out: Path, threshold: float) -> None:
    """Plot values, labelled windows, the score and the detections of ``PLOT_FILES``."""
    import matplotlib  # only for this option; not a dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = json.loads((NAB_ROOT / "labels" / "combined_windows.json").read_text())
    fig, axes = plt.subplots(len(PLOT_FILES), 1, figsize=(12, 2.6 * len(PLOT_FILES)))
    for ax, name in zip(axes, PLOT_FILES, strict=True):
        with (results / name).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        stamps = [parse_timestamp(r["timestamp"]) for r in rows]
        index = {t: i for i, t in reversed(list(enumerate(stamps)))}
        xs = range(len(rows))
        ax.plot(xs, [float(r["value"]) for r in rows], lw=0.6, color="tab:blue")
        for start, end in windows[name]:
            a = index.get(parse_timestamp(start.split(".")[0]), 0)
            b = index.get(parse_timestamp(end.split(".")[0]), len(rows) - 1)
            ax.axvspan(a, b, color="tab:orange", alpha=0.25, lw=0)
        probation = min(len(rows) * 15 // 100, 750)
        ax.axvspan(0, probation, color="grey", alpha=0.12, lw=0)
        ax.set_title(name, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        twin = ax.twinx()
        scores = [float(r["anomaly_score"]) for r in rows]
        twin.plot(xs, scores, lw=0.5, color="tab:red", alpha=0.7)
        hits = [i for i, sc in enumerate(scores) if sc >= threshold and i >= probation]
        twin.plot(hits, [1.02] * len(hits), "v", color="black", ms=5)
        twin.axhline(threshold, color="tab:red", lw=0.5, ls="--")
        twin.set_ylim(0, 1.08)
        twin.tick_params(labelsize=7)
    fig.suptitle(
        "auto on NAB: value (blue), anomaly score (red, dashed = threshold), detections "
        "(black), labelled windows (orange), probation (grey)",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the dev and holdout scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("build/nab-results"))
    parser.add_argument(
        "--splits",
        choices=["all", "dev"],
        default="all",
        help="all = run every file, score dev and holdout (tuned on dev)",
    )
    parser.add_argument(
        "--detectors",
        default=json.dumps(DEFAULT_DETECTORS),
        help="JSON list of [[sensors.detectors]] entries (default: auto)",
    )
    parser.add_argument("--config", help="gateway TOML: run `edge-gateway detect` instead")
    parser.add_argument("--sensor", help="sensor name in --config")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path, help="also write a PNG of a few dev series")
    parser.add_argument(
        "--cv",
        action="store_true",
        help="also dev's figure with thresholds swept on other files (by category, by halves)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        metavar="DRAWS",
        help="also resample the files DRAWS times: the 5-95%% range of each split's score",
    )
    args = parser.parse_args(argv)

    splits = json.loads((NAB_ROOT / "splits.json").read_text())
    names = splits["dev"] + splits["holdout"] if args.splits == "all" else splits[args.splits]
    jobs = [(n, str(args.results), args.detectors, args.config, args.sensor) for n in names]
    started = time.perf_counter()
    with Pool(args.jobs) as pool:
        pool.map(_run_one, jobs)
    elapsed = time.perf_counter() - started
    rows = sum(1 for n in names for _ in (NAB_ROOT / "data" / n).open()) - len(names)
    print(
        f"{len(names)} files, {rows} rows in {elapsed:.1f} s "
        f"({rows / elapsed:,.0f} rows/s with {args.jobs} processes)"
    )
    print(
        "profile                score        raw    null perfect            threshold    "
        "TP   FN     FP  threshold source"
    )
    dev = score(args.results, "dev", None)
    print(dev)
    if args.splits == "all":
        print(score(args.results, "holdout", "dev"))
    if args.plot:
        plot(args.results, args.plot, float(dev.split()[5]))
    if args.cv or args.bootstrap:
        scored = ScoredSplits(
            args.results, ("dev", "holdout") if args.splits == "all" else ("dev",)
        )
        if args.cv:
            loco, halves = cross_validation(scored)
            print(f"dev      leave one category out {loco:.2f}  alternate halves {halves:.2f}")
        if args.bootstrap:
            print("\n".join(bootstrap(scored, args.bootstrap)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
