"""Secrets are replaced by *** in any form they take in text."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import SecretStr

from gateway.config import config_from_dict
from gateway.security.redact import MASK, configured_secrets, redact

SECRET = "p@ss/w%rd\"'x"


@pytest.mark.parametrize(
    "form",
    [SECRET, quote(SECRET, safe=""), json.dumps(SECRET)[1:-1], repr(SECRET)[1:-1]],
)
def test_every_form_of_a_secret_is_masked(form: str) -> None:
    text = f"connecting with {form} now"
    assert redact(text, [SECRET]) == f"connecting with {MASK} now"


def test_url_passwords_are_masked_even_when_not_configured() -> None:
    text = "redis failed: rediss://gw:hunter2@10.0.0.1:6380/0 and mqtt://:tok@broker"
    assert (
        redact(text, []) == "redis failed: rediss://gw:***@10.0.0.1:6380/0 and mqtt://:***@broker"
    )


def test_urls_without_password_are_left_alone() -> None:
    text = "rediss://10.0.0.1:6380/0 user@example.org http://host:8080/x"
    assert redact(text, []) == text


def test_secretstr_none_and_empty_are_accepted() -> None:
    assert redact("a hunter2 b", [SecretStr("hunter2"), None, ""]) == f"a {MASK} b"


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert redact("xx abcdef yy", ["abc", "abcdef"]) == f"xx {MASK} yy"


@given(st.text(min_size=1, max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_no_secret_survives(secret: str, before: str, after: str) -> None:
    assume("*" not in secret)  # a secret made of mask characters "survives" in the mask
    assert secret not in redact(before + secret + after, [secret])


def test_configured_secrets(tmp_path: Path) -> None:
    password_file = tmp_path / "redis.pw"
    password_file.write_text("from-file\n")
    config = config_from_dict(
        {
            "gateway_id": "gw1",
            "mqtt": {"username": "gw", "password": "mqtt-secret"},
            "redis": {"username": "gw", "password_file": str(password_file)},
            "forward": {
                "mqtt": {"host": "up", "password": "upstream-secret"},
                "webhook": {"url": "https://x", "headers": {"Authorization": "Bearer tok123"}},
            },
            "sensors": [{"name": "t", "topic": "site/+/t"}],
        }
    )
    assert configured_secrets(config) == [
        "mqtt-secret",
        "from-file",
        "upstream-secret",
        "Bearer tok123",
        "tok123",
    ]
