"""Logging: one line per event, journald priorities, JSON lines, secrets never written."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from gateway.service.logs import (
    RedactingFilter,
    add_config_secrets,
    add_secret,
    clear_secrets,
    is_user_error,
    redact,
    setup_logging,
    stream_is_journal,
)

SECRET = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    clear_secrets()
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    clear_secrets()


def _boom(message: str, kind: type[Exception] = RuntimeError) -> Exception:
    try:
        raise kind(message)
    except Exception as exc:
        return exc


def test_text_line_has_utc_time_level_logger_and_message() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=False, stream=out, journal=False)
    logging.getLogger("gateway.ingest").warning("device %r: payload rejected", "d1")
    logging.getLogger("gateway.ingest").debug("not shown at info")
    (line,) = out.getvalue().splitlines()
    stamp, level, rest = line.split(" ", 2)
    assert stamp.endswith("Z")
    assert "T" in stamp
    assert level == "WARNING"
    assert rest == "gateway.ingest: device 'd1': payload rejected"


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.DEBUG, "<7>"),
        (logging.INFO, "<6>"),
        (logging.WARNING, "<4>"),
        (logging.ERROR, "<3>"),
        (logging.CRITICAL, "<2>"),
    ],
)
def test_journal_lines_carry_syslog_priority_and_no_timestamp(level: int, prefix: str) -> None:
    out = io.StringIO()
    setup_logging("debug", json_format=False, stream=out, journal=True)
    logging.getLogger("gateway.sync").log(level, "redis is back")
    assert out.getvalue() == f"{prefix}gateway.sync: redis is back\n"


def test_journal_is_detected_from_journal_stream(tmp_path: Path) -> None:
    with (tmp_path / "stderr").open("w") as stream:
        info = os.fstat(stream.fileno())
        assert stream_is_journal(stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": f"{info.st_dev}:1"})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not stream_is_journal(stream, {})
    assert not stream_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_a_message_never_spans_lines() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=False, stream=out, journal=True)
    logging.getLogger("gateway.ingest").warning("topic %s", "a\n<2>gateway: forged")
    assert out.getvalue() == "<4>gateway.ingest: topic a\\n<2>gateway: forged\n"


def test_json_lines() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out, journal=False)
    logging.getLogger("gateway.actors").info(
        "device %s restarted", "d1", extra={"device": "d1", "restarts": 2}
    )
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "info"
    assert record["logger"] == "gateway.actors"
    assert record["message"] == "device d1 restarted"
    assert record["device"] == "d1"
    assert record["restarts"] == 2
    assert record["ts"].endswith("Z")


def test_json_lines_under_journald_keep_the_priority_prefix() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out, journal=True)
    logging.getLogger("gateway").error("checkpoint failed")
    line = out.getvalue().rstrip("\n")
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["message"] == "checkpoint failed"


def test_secrets_are_redacted_everywhere() -> None:
    out = io.StringIO()
    setup_logging("debug", json_format=False, stream=out, journal=False)
    add_secret(SECRET)
    log = logging.getLogger("gateway.sync")
    log.info("connecting with password %s", SECRET)
    log.info("url redis://user:%s@host", SECRET)
    log.info("extra", extra={"token": SECRET})
    try:
        raise ConnectionError(f"AUTH {SECRET} refused")
    except ConnectionError:
        log.exception("redis refused us")
    try:
        raise RuntimeError(f"bug near {SECRET}")
    except RuntimeError:
        log.exception("unexpected")
    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 5
    assert "AUTH *** refused" in text


def test_secrets_are_redacted_in_json_and_in_repr_form() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out, journal=False)
    quoted = "pa'ss\\word"
    add_secret(SecretStr(quoted))
    logging.getLogger("gateway").warning("config %r", {"password": quoted})
    logging.getLogger("gateway").warning("plain %s", quoted, extra={"also": quoted})
    text = out.getvalue()
    assert "pa'ss" not in text
    assert "pa\\'ss" not in text
    assert all("***" in json.loads(line)["message"] for line in text.splitlines())


def test_redacting_filter_protects_foreign_handlers() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test.foreign")
    log.addHandler(handler)
    log.propagate = False
    try:
        add_secret(SECRET)
        try:
            raise ValueError(SECRET)
        except ValueError:
            log.exception("failed with %s", SECRET)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert SECRET not in out.getvalue()
    assert "failed with ***" in out.getvalue()
    assert "ValueError: ***" in out.getvalue()


def test_add_config_secrets_finds_nested_secret_values() -> None:
    class Creds(BaseModel):
        password: SecretStr | None = None

    class Config(BaseModel):
        mqtt: Creds
        redis: Creds | None
        headers: dict[str, SecretStr]

    config = Config(
        mqtt=Creds(password=SecretStr("mqtt-pw")),
        redis=None,
        headers={"Authorization": SecretStr("Bearer tok")},
    )
    assert add_config_secrets(config) == 2
    assert redact("mqtt-pw and Bearer tok") == "*** and ***"


def test_user_errors_get_one_line_unless_debug() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=False, stream=out, journal=True)
    log = logging.getLogger("gateway")
    log.error("state dir unwritable", exc_info=_boom("Permission denied", PermissionError))
    assert out.getvalue() == (
        "<3>gateway: state dir unwritable (PermissionError: Permission denied)\n"
    )

    out = io.StringIO()
    setup_logging("debug", json_format=False, stream=out, journal=True)
    log.error("state dir unwritable", exc_info=_boom("Permission denied", PermissionError))
    lines = out.getvalue().splitlines()
    assert lines[0] == "<3>gateway: state dir unwritable (PermissionError: Permission denied)"
    assert lines[1] == "<3>  Traceback (most recent call last):"
    assert all(line.startswith("<3>") for line in lines)


def test_bugs_always_get_their_traceback() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=False, stream=out, journal=False)
    logging.getLogger("gateway").error("actor crashed", exc_info=_boom("index out of range"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("gateway: actor crashed (RuntimeError: index out of range)")
    assert "Traceback (most recent call last):" in lines[1]
    assert lines[-1].strip() == "RuntimeError: index out of range"


def test_extra_user_error_flag_and_config_error() -> None:
    from gateway.config import ConfigError

    assert is_user_error(ConfigError("/etc/x.toml", ["mqtt.port: bad"]))
    record = logging.LogRecord("x", logging.ERROR, "x", 0, "m", None, None)
    record.user_error = True
    assert is_user_error(RuntimeError("x"), record)
    assert not is_user_error(RuntimeError("x"))


def test_json_exception_fields() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out, journal=False)
    logging.getLogger("gateway").error("bug", exc_info=_boom("boom"))
    logging.getLogger("gateway").error("net", exc_info=_boom("refused", ConnectionRefusedError))
    bug, net = (json.loads(line) for line in out.getvalue().splitlines())
    assert bug["exception"] == "RuntimeError: boom"
    assert "Traceback" in bug["traceback"]
    assert net["exception"] == "ConnectionRefusedError: refused"
    assert "traceback" not in net


def test_setup_twice_replaces_the_handler_and_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", json_format=False, stream=first, journal=True)
    setup_logging("warning", json_format=False, stream=second, journal=True)
    logging.getLogger("gateway").info("hidden")
    logging.getLogger("gateway").warning("shown")
    assert first.getvalue() == ""
    assert second.getvalue() == "<4>gateway: shown\n"


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level 'loud' is not one of debug, info"):
        setup_logging("loud", json_format=False, stream=io.StringIO())
