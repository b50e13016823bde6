"""bench/nab.py writes the layout the NAB scorer reads, through the detectors' code path."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

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
