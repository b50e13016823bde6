"""bench/nab.py writes the layout the NAB scorer reads, through the detectors' code path."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "nab.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nab", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_timestamp_forms() -> None:
    nab = load_bench()
    assert nab.parse_timestamp("2014-02-14 14:30:00") == 1_392_388_200_000  # naive = UTC
    assert nab.parse_timestamp("1392388200") == 1_392_388_200_000
    assert nab.parse_timestamp("1392388200000") == 1_392_388_200_000


def test_results_file_has_one_row_per_input_row(tmp_path: Path) -> None:
    nab = load_bench()
    src = tmp_path / "in.csv"
    rows = [
        (f"2014-02-14 {h:02d}:{m:02d}:00", 20.0 + (m % 7))
        for h in range(20)
        for m in range(0, 60, 5)
    ]
    rows[200] = (rows[200][0], 500.0)
    src.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    dst = tmp_path / "out" / "cat" / "in.csv"
    nab.detect_in_process(src, dst, [{"type": "auto"}])
    with dst.open(newline="") as fh:
        out = list(csv.DictReader(fh))
    assert [r["timestamp"] for r in out] == [t for t, _ in rows]
    scores = [float(r["anomaly_score"]) for r in out]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[200] >= 0.45
    assert all(s == 0.0 for s in scores[:150])  # probation


def test_file_bootstrap_resamples_files_not_rows() -> None:
    nab = load_bench()
    # Identical files: every draw is the same corpus, so the range collapses to its score
    # (raw 0.5 of 2 windows, both scored: 100 * (0.5 + 2) / (2 + 2) = 62.5).
    assert nab.file_bootstrap([0.5] * 7, [2] * 7, [2] * 7, draws=200) == (62.5, 62.5, 62.5)
    # Every window found with full credit is 100 whatever the draw; every one missed is 0.
    assert nab.file_bootstrap([2.0, 1.0], [2, 1], [2, 1], draws=50) == (100.0, 100.0, 100.0)
    assert nab.file_bootstrap([-2.0, -1.0], [2, 1], [2, 1], draws=50) == (0.0, 0.0, 0.0)
    # A corpus of good and bad files: a range that holds the whole corpus' figure (50).
    low, mid, high = nab.file_bootstrap([1.0, -1.0] * 10, [1] * 20, [1] * 20, draws=2000)
    assert low < 50.0 < high
    assert abs(mid - 50.0) <= 5.0


def fake_corpus(root: Path, results: Path, window_scores: dict[str, float]) -> None:
    """A NAB root of 100-row files with one labelled window (rows 50-59) each, and results
    scoring that window at ``window_scores[file]`` and every other row 0."""
    windows, stamps = {}, [f"2014-02-14 {i // 60:02d}:{i % 60:02d}:00" for i in range(100)]
    for rel, level in window_scores.items():
        for folder in (root / "data", results):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / rel).write_text("timestamp,value\n" + "".join(f"{t},1\n" for t in stamps))
        rows = [f"{t},1,{level if 50 <= i < 60 else 0.0}\n" for i, t in enumerate(stamps)]
        (results / rel).write_text("timestamp,value,anomaly_score\n" + "".join(rows))
        windows[rel] = [[f"{stamps[50]}.000000", f"{stamps[59]}.000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    weights = {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}
    profiles = {"standard": {"CostMatrix": weights}}
    (root / "config" / "profiles.json").write_text(json.dumps(profiles))
    splits = {"dev": sorted(window_scores), "holdout": []}
    (root / "splits.json").write_text(json.dumps(splits))


SCORER = load_bench().SCORER  # NAB's scorer (NAB_SCORER in the environment, or ../shared/tools)


@pytest.mark.skipif(not SCORER.exists(), reason=f"NAB's scorer is not at {SCORER}")
def test_cross_validation_applies_thresholds_swept_on_other_files(tmp_path: Path) -> None:
    nab = load_bench()
    nab.NAB_ROOT = tmp_path / "nab"
    # Category A's windows score 0.8, B's 0.5. Swept on all of dev (or on either alternate
    # half, which holds one file of each) the threshold catches every window; swept on A
    # alone it is 0.8, and B's windows are missed when B is left out.
    scores = {"A/a1.csv": 0.8, "A/a2.csv": 0.8, "B/b1.csv": 0.5, "B/b2.csv": 0.5}
    fake_corpus(nab.NAB_ROOT, tmp_path / "results", scores)
    scored = nab.ScoredSplits(tmp_path / "results", ("dev",))
    dev = scored.normalised(sum(scored.raw(r, 0.5) for r in scores), list(scores))
    loco, halves = nab.cross_validation(scored)
    assert dev > 90.0  # every window found early in it
    assert halves == pytest.approx(dev)
    # A keeps its two windows (raw 2w), B misses both (raw -2): dev = 50w + 50, LOCO = 25w + 25.
    assert loco == pytest.approx(dev / 2)
