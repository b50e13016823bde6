"""`edge-gateway detect`: a CSV through the sensor's detectors, as the actors run them."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

CONFIG = """
gateway_id = "offline"
[state]
backend = "memory"
[[sensors]]
name = "temperature"
topic = "site/+/temperature"
format = "json"
value = "temp"
[[sensors.detectors]]
type = "threshold"
max = 50.0
[[sensors.detectors]]
type = "auto"
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "detect", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_detect_scores_every_row_and_echoes_timestamps(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    rows = [(f"2014-02-14 14:{m // 60:02d}:{m % 60:02d}", 20.0 + (m % 3) * 0.1) for m in range(300)]
    rows[250] = (rows[250][0], 95.0)  # one spike
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "value"])
        writer.writerows(rows)
    result = _run(str(source), "-c", str(config), "--sensor", "temperature",
                  "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    with (tmp_path / "out.csv").open() as f:
        out = list(csv.reader(f))
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert [r[0] for r in out[1:]] == [ts for ts, _ in rows]
    scores = [float(r[2]) for r in out[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[250] == 1.0
    assert scores.index(max(scores)) == 250  # the spike is the first row scored highest


def test_detect_names_a_bad_row_and_an_unknown_sensor(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value\n2014-02-14 14:30:00,1.5\n2014-02-14 14:35:00,warm\n")
    result = _run(str(source), "-c", str(config), "--sensor", "temperature",
                  "-o", str(tmp_path / "o.csv"))
    assert result.returncode == 1
    assert "row 3" in result.stderr
    assert "'warm' is not a number" in result.stderr
    result = _run(str(source), "-c", str(config), "--sensor", "humidity",
                  "-o", str(tmp_path / "o.csv"))
    assert result.returncode == 1
    assert "no sensor named 'humidity'" in result.stderr
    assert "Traceback" not in result.stderr
