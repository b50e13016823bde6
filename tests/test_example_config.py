"""configs/gateway.example.toml says it lists every key: hold it to that, and to being valid."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from gateway.config import GatewayConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "gateway.example.toml"
OTHER_DETECTORS = "# The other detectors"


def _models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def config_keys() -> set[str]:
    """Every key of the configuration models, detector types included, as a dotted path."""
    keys: set[str] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{path}{field.alias or name}"
            keys.add(key)
            for sub in _models(field.annotation):
                walk(sub, f"{key}.")

    walk(GatewayConfig, "")
    return keys


def test_the_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert [d.detector_name for d in config.sensors[0].detectors] == ["threshold", "auto"]


def test_the_example_names_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # a key is named by an assignment or a table header, commented out or not
    named = set(re.findall(r"^#?\s*([A-Za-z_]\w*)\s*=", text, re.M))
    named |= {part for header in re.findall(r"^#?\s*\[\[?([\w.]+)\]\]?", text, re.M)
              for part in header.split(".")}
    missing = sorted(k for k in config_keys() if k.rsplit(".", 1)[-1] not in named)
    assert missing == [], f"keys not in {EXAMPLE.name}: {missing}"


def test_the_commented_detectors_are_valid_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    head, marker, tail = text.partition(OTHER_DETECTORS)
    assert marker, f"{EXAMPLE.name} lost its {OTHER_DETECTORS!r} block"
    uncommented = re.sub(r"^# (?=\[\[|\w+ = )", "", tail, flags=re.M)
    path = tmp_path / "example.toml"
    path.write_text(head + marker + uncommented, encoding="utf-8")
    detectors = load_config(path).sensors[0].detectors
    assert [d.type for d in detectors] == [
        "threshold", "auto", "threshold", "zscore", "mad", "ewma", "cusum", "rate",
        "flatline", "missing",
    ]
