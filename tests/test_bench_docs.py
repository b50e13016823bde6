"""`python -m bench --docs-only` never writes the benchmarks page from missing results."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"


def test_docs_only_without_results_leaves_the_page_and_says_why(tmp_path: Path) -> None:
    # A fresh clone has no bench/results (git-ignored): the page must not lose its figures.
    before = hashlib.sha256(PAGE.read_bytes()).hexdigest()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--docs-only"],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "no results for e2e, latency" in done.stderr
    assert "Traceback" not in done.stderr
    assert hashlib.sha256(PAGE.read_bytes()).hexdigest() == before
