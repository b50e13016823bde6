"""The ``edge-gateway`` command.

Every sub-command turns a user's mistake (bad config, missing file, unreachable broker) into
one line on stderr and a non-zero exit; tracebacks only appear with ``--debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    GatewayConfig,
    load_config,
    secret_file_warnings,
)

log = logging.getLogger("gateway")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        print(f"edge-gateway {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return code


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-gateway",
        description="Edge IoT gateway: MQTT in, windows and anomaly detection, sync to Redis.",
    )
    parser.add_argument("--version", action="version", version=f"edge-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    def config_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH,
                       help=f"configuration file (default {DEFAULT_CONFIG_PATH})")

    p = command("run", "run the gateway in the foreground (what systemd starts)")
    config_arg(p)
    p.add_argument("--debug", action="store_true", help="log at debug level")
    p.set_defaults(handler=_run)

    p = command("check-config", "validate a configuration file; exit 2 naming each bad key")
    config_arg(p)
    p.set_defaults(handler=_check_config)

    p = command("dashboard", "the terminal dashboard, attached to a running gateway")
    config_arg(p)
    p.set_defaults(handler=_dashboard)

    p = command("status", "print the gateway's health; exit 1 when it is offline")
    config_arg(p)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the status")
    p.add_argument("--json", action="store_true", help="print the whole status message as JSON")
    p.set_defaults(handler=_status)

    p = command("detect", "run a sensor's configured detectors offline over a CSV file")
    p.add_argument("input", type=Path, help="CSV with a header and timestamp,value columns")
    config_arg(p)
    p.add_argument("--sensor", required=True, help="the sensor whose detectors to run")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="CSV written with timestamp,value,anomaly_score")
    p.set_defaults(handler=_detect)

    from devices import replay, simulator
    from gateway import demo
    from gateway.service import install

    for name, help, add_arguments, handler in (
        ("simulate", "simulated sensors publishing to MQTT, with injectable anomalies",
         simulator.add_arguments, simulator.run),
        ("replay", "publish a CSV time series (timestamp,value) to a topic",
         replay.add_arguments, replay.run),
        ("demo", "broker, simulator, gateway and dashboard in one go",
         demo.add_arguments, demo.run),
        ("install-service", "install the gateway as a systemd service (as root)",
         install.add_install_arguments, install.run_install),
        ("uninstall-service", "remove the systemd service (keeps config and state)",
         install.add_uninstall_arguments, install.run_uninstall),
    ):
        p = command(name, help)
        add_arguments(p)
        p.set_defaults(handler=handler)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    problems = decoder_problems(config)
    if problems:
        raise ConfigError(args.config, problems)
    for warning in secret_file_warnings(args.config, config):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: OK ({len(config.sensors)} sensors)")
    return EXIT_OK


def decoder_problems(config: GatewayConfig) -> list[str]:
    """Sensors whose format cannot read their value/timestamp settings."""
    from devices.profiles import build_decoder

    problems = []
    for i, sensor in enumerate(config.sensors):
        try:
            build_decoder(format=sensor.format, value=sensor.value, timestamp=sensor.timestamp)
        except ValueError as exc:
            problems.append(f"sensors[{i}] ({sensor.name}): {exc}")
    return problems


def _run(args: argparse.Namespace) -> int:
    from gateway.runtime import Gateway, StartupError
    from gateway.service.logs import add_config_secrets, setup_logging
    from gateway.state import StateError

    config = load_config(args.config)
    problems = decoder_problems(config)
    if problems:
        raise ConfigError(args.config, problems)
    setup_logging("debug" if args.debug else config.logging.level, config.logging.json_format)
    add_config_secrets(config)
    for warning in secret_file_warnings(args.config, config):
        log.warning("%s", warning)
    gateway = Gateway(config, config_path=args.config)
    try:
        return asyncio.run(gateway.run())
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    except StateError as exc:
        log.error("state store failed: %s", exc, exc_info=args.debug)
        return EXIT_FAILURE


def _dashboard(args: argparse.Namespace) -> int:
    from gateway.dashboard import run_dashboard
    from gateway.security import client_ssl_context

    config = load_config(args.config)
    tls = client_ssl_context(config.mqtt.tls) if config.mqtt.tls is not None else None
    return run_dashboard(
        host=config.mqtt.host,
        port=config.mqtt.port,
        prefix=config.prefix,
        gateway_id=config.gateway_id,
        username=config.mqtt.username,
        password=config.mqtt.password_value(),
        tls=tls,
    )


def _status(args: argparse.Namespace) -> int:
    from gateway.status_client import fetch_status

    config = load_config(args.config)
    status = fetch_status(config, timeout=args.timeout)
    if status is None:
        print(
            f"no status from gateway {config.gateway_id!r} on {config.mqtt.host}:"
            f"{config.mqtt.port} within {args.timeout:g}s (wrong gateway_id, or never started)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    state = status.get("state", "unknown")
    if args.json:
        import orjson

        print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK if state == "online" else EXIT_FAILURE
    readings = status.get("readings", {})
    devices = status.get("devices", {})
    print(
        f"{config.gateway_id}: {state}; {devices.get('active', 0)} devices, "
        f"{readings.get('in', 0)} readings ({readings.get('per_s', 0)}/s), "
        f"{readings.get('rejected', 0)} rejected, "
        f"{status.get('alerts', {}).get('active', 0)} active alerts, "
        f"outbox {status.get('outbox', {}).get('rows', 0)} rows"
    )
    return EXIT_OK if state == "online" else EXIT_FAILURE


def _detect(args: argparse.Namespace) -> int:
    from gateway.offline import score_rows

    config = load_config(args.config)
    try:
        sensor = config.sensor(args.sensor)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None
    try:
        source = args.input.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {args.input}: {exc.strerror}") from None
    with source, args.output.open("w", newline="", encoding="utf-8") as sink:
        reader = csv.reader(source)
        writer = csv.writer(sink, lineterminator="\n")
        header = next(reader, None)
        if header is None:
            raise UserError(f"{args.input} is empty: expected a header timestamp,value")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        try:
            for raw_ts, raw_value, score in score_rows(config, sensor.name, reader):
                writer.writerow([raw_ts, raw_value, f"{score:.6f}"])
        except ValueError as exc:
            raise UserError(f"{args.input}: {exc}") from None
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
