"""Install the gateway as a systemd service, and remove it again.

What :func:`install` does (``sudo make install`` / ``edge-gateway install-service``)::

    <prefix>/venv/                     a virtualenv (system Python) with the package installed
    <prefix>/share/doc/operations.md   the operations guide the unit's Documentation= names
    /etc/systemd/system/edge-gateway.service
    /etc/edge-gateway/gateway.toml     from configs/gateway.example.toml, only if absent
    systemctl daemon-reload            when systemd is running; then ``enable --now`` if asked,
                                       else ``try-restart`` (an upgrade restarts a running
                                       gateway, a stopped one stays stopped)

:func:`uninstall` stops and disables the service, removes the unit and ``<prefix>``, and keeps
``/etc/edge-gateway`` and ``/var/lib/edge-gateway`` (the configuration and the state file)
unless ``purge`` is set.

Every path is relative to ``root`` (default ``/``), so tests and image builds can install into
a directory without touching the machine; systemctl is only run when ``<root>/run/systemd/
system`` exists (systemd's own test for "booted with systemd"), i.e. never for a staged root.

This module uses the standard library only: ``sudo make install`` runs it as a script with the
system's ``python3`` before any dependency is installed
(``python3 gateway/service/install.py install``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "DEFAULT_PREFIX",
    "InstallError",
    "InstallPaths",
    "add_install_arguments",
    "add_uninstall_arguments",
    "install",
    "install_main",
    "run_install",
    "run_uninstall",
    "uninstall",
    "uninstall_main",
]

DEFAULT_PREFIX = PurePosixPath("/opt/edge-gateway")
UNIT_NAME = "edge-gateway.service"
_DEFAULT_UNIT_DIR = PurePosixPath("/etc/systemd/system")
_DEFAULT_CONFIG_DIR = PurePosixPath("/etc/edge-gateway")
_DEFAULT_STATE_DIR = PurePosixPath("/var/lib/edge-gateway")
_DEFAULT_LOGS_DIR = PurePosixPath("/var/log/edge-gateway")
_UNIT_SOURCE = PurePosixPath("systemd") / UNIT_NAME
_EXAMPLE_CONFIG = PurePosixPath("configs") / "gateway.example.toml"
_OPERATIONS_DOC = PurePosixPath("docs") / "operations.md"
_MARKER = ".edge-gateway-install"
"""File in ``<prefix>`` that marks it as ours: uninstall never deletes a directory without it."""
_SOURCE_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "tests",
    "bench",
)

Echo = Callable[[str], None]
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class InstallError(Exception):
    """An install or uninstall step failed; the message is one line saying what to do."""


@dataclass(frozen=True)
class InstallPaths:
    """Where things go. Absolute paths as seen by the running system, placed under ``root``."""

    root: Path = Path("/")
    """Directory the system's ``/`` is in (a temporary directory for tests or image builds)."""
    prefix: PurePosixPath = DEFAULT_PREFIX
    """The gateway's own tree: the venv and its documentation."""
    unit_dir: PurePosixPath = _DEFAULT_UNIT_DIR
    """Where the unit file goes."""
    config_dir: PurePosixPath = _DEFAULT_CONFIG_DIR
    """The unit's ConfigurationDirectory."""
    state_dir: PurePosixPath = _DEFAULT_STATE_DIR
    """The unit's StateDirectory (with DynamicUser= really /var/lib/private/edge-gateway)."""
    logs_dir: PurePosixPath = _DEFAULT_LOGS_DIR
    """The unit's LogsDirectory (with DynamicUser= really /var/log/private/edge-gateway)."""

    def __post_init__(self) -> None:
        for name in ("prefix", "unit_dir", "config_dir", "state_dir", "logs_dir"):
            value = PurePosixPath(getattr(self, name))
            if not value.is_absolute() or len(value.parts) < 3 or ".." in value.parts:
                msg = (
                    f"{name} must be an absolute path at least two levels deep, got {str(value)!r}"
                )
                raise InstallError(msg)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "root", Path(self.root))

    def on_disk(self, path: PurePosixPath) -> Path:
        """``path`` of the installed system, as a path on this machine (under ``root``)."""
        return self.root / path.relative_to("/")

    @property
    def venv(self) -> Path:
        return self.on_disk(self.prefix / "venv")

    @property
    def unit(self) -> Path:
        return self.on_disk(self.unit_dir / UNIT_NAME)

    @property
    def config(self) -> Path:
        return self.on_disk(self.config_dir / "gateway.toml")

    @property
    def systemd_booted(self) -> bool:
        """True when systemd runs this root (``sd_booted()``: /run/systemd/system exists)."""
        return (self.root / "run" / "systemd" / "system").is_dir()


@dataclass
class _Context:
    paths: InstallPaths
    echo: Echo
    run: Runner
    systemctl: str
    done: list[str] = field(default_factory=list)

    def step(self, message: str) -> None:
        self.done.append(message)
        self.echo(message)

    def command(self, args: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
        try:
            result = self.run(args)
        except FileNotFoundError:
            msg = f"{what}: {args[0]} not found"
            raise InstallError(msg) from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip().splitlines()
            last = detail[-1] if detail else f"exit status {result.returncode}"
            msg = f"{what} failed ({' '.join(args)}): {last}"
            raise InstallError(msg)
        return result


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


def default_source() -> Path:
    """The source tree this module belongs to (the checkout ``make install`` runs in)."""
    return Path(__file__).resolve().parents[2]


def install(
    source: Path | None = None,
    paths: InstallPaths | None = None,
    *,
    python: str = "/usr/bin/python3",
    skip_pip: bool = False,
    pip_args: Sequence[str] = (),
    enable: bool = False,
    echo: Echo = print,
    run: Runner = _run,
    systemctl: str = "systemctl",
) -> list[str]:
    """Install (or upgrade) the service; see the module docstring.

    Args:
        source: the source tree (with pyproject.toml, systemd/, configs/); this checkout when
            absent.
        paths: where to install; the standard locations under ``/`` when absent.
        python: the interpreter the venv is made from. The system's, so that the service's
            sandbox (ProtectHome=, NoExecPaths=) can reach it: not one under /home or /root.
        skip_pip: make neither the venv nor the pip install (for tests; nothing will run).
        pip_args: extra ``pip install`` arguments, e.g. ``--no-index --find-links DIR``
            for an offline install.
        enable: ``systemctl enable --now`` the service after installing it.
        echo: where progress lines go.
        run: runs a command (tests pass a recorder).
        systemctl: the systemctl binary.

    Returns:
        One line per step done.

    Raises:
        InstallError: a step failed; the message says which and why.
    """
    paths = paths or InstallPaths()
    source = (source or default_source()).resolve()
    ctx = _Context(paths, echo, run, systemctl)
    _check_source(source)
    if paths.root == Path("/") and hasattr(os, "geteuid") and os.geteuid() != 0:
        raise InstallError("installing into / needs root: run it with sudo")

    prefix_dir = paths.on_disk(paths.prefix)
    if prefix_dir.exists() and any(prefix_dir.iterdir()) and not (prefix_dir / _MARKER).exists():
        msg = f"{prefix_dir} exists and was not made by this installer; choose another --prefix"
        raise InstallError(msg)
    prefix_dir.mkdir(parents=True, exist_ok=True)
    (prefix_dir / _MARKER).write_text("edge-gateway install prefix; removed by uninstall\n")

    if skip_pip:
        ctx.step(f"skipped: virtualenv and pip install into {paths.venv} (--no-pip)")
    else:
        _install_venv(ctx, source, python, pip_args)

    doc = source / _OPERATIONS_DOC
    if doc.is_file():
        target = paths.on_disk(paths.prefix / "share" / "doc" / "operations.md")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(doc, target)
        ctx.step(f"installed {target}")

    _install_unit(ctx, source)
    _install_config(ctx, source)

    if not paths.systemd_booted:
        ctx.step("systemd is not running here: skipped systemctl daemon-reload")
        return ctx.done
    ctx.command([systemctl, "daemon-reload"], "systemctl daemon-reload")
    ctx.step("ran systemctl daemon-reload")
    if enable:
        ctx.command([systemctl, "enable", "--now", UNIT_NAME], "enabling the service")
        ctx.step(f"enabled and started {UNIT_NAME}")
    else:
        ctx.command([systemctl, "try-restart", UNIT_NAME], "restarting the running service")
        ctx.step(
            f"restarted {UNIT_NAME} if it was running; start it at boot with: "
            f"systemctl enable --now {UNIT_NAME}"
        )
    return ctx.done


def uninstall(
    paths: InstallPaths | None = None,
    *,
    purge: bool = False,
    echo: Echo = print,
    run: Runner = _run,
    systemctl: str = "systemctl",
) -> list[str]:
    """Stop and remove the service; keep config and state unless ``purge``.

    Returns:
        One line per step done.

    Raises:
        InstallError: a step failed, or ``<prefix>`` was not made by :func:`install`.
    """
    paths = paths or InstallPaths()
    ctx = _Context(paths, echo, run, systemctl)
    if paths.root == Path("/") and hasattr(os, "geteuid") and os.geteuid() != 0:
        raise InstallError("uninstalling from / needs root: run it with sudo")

    if paths.systemd_booted:
        # Not an error when it was never enabled or is already gone.
        result = run([systemctl, "disable", "--now", UNIT_NAME])
        if result.returncode == 0:
            ctx.step(f"stopped and disabled {UNIT_NAME}")

    if paths.unit.exists():
        paths.unit.unlink()
        ctx.step(f"removed {paths.unit}")

    prefix_dir = paths.on_disk(paths.prefix)
    if prefix_dir.exists():
        if not (prefix_dir / _MARKER).exists():
            msg = f"{prefix_dir} was not made by this installer (no {_MARKER}); remove it by hand"
            raise InstallError(msg)
        shutil.rmtree(prefix_dir)
        ctx.step(f"removed {prefix_dir}")

    config_dir = paths.on_disk(paths.config_dir)
    if purge:
        for path in _data_dirs(paths):
            if path.is_symlink() or path.is_file():
                path.unlink()
                ctx.step(f"removed {path}")
            elif path.is_dir():
                shutil.rmtree(path)
                ctx.step(f"removed {path}")
    else:
        kept = [str(p) for p in (config_dir, paths.on_disk(paths.state_dir)) if p.exists()]
        if kept:
            ctx.step(f"kept {' and '.join(kept)} (remove them with --purge)")

    if paths.systemd_booted:
        ctx.command([systemctl, "daemon-reload"], "systemctl daemon-reload")
        run([systemctl, "reset-failed", UNIT_NAME])
        ctx.step("ran systemctl daemon-reload")
    else:
        ctx.step("systemd is not running here: skipped systemctl daemon-reload")
    return ctx.done


# -- steps ----------------------------------------------------------------------------------


def _check_source(source: Path) -> None:
    for needed in ("pyproject.toml", str(_UNIT_SOURCE)):
        if not (source / needed).is_file():
            msg = f"{source} is not the edge-gateway source tree (no {needed}); give --source DIR"
            raise InstallError(msg)


def _install_venv(ctx: _Context, source: Path, python: str, pip_args: Sequence[str]) -> None:
    venv = ctx.paths.venv
    if not Path(python).exists():
        msg = f"python {python!r} not found; give --python PATH"
        raise InstallError(msg)
    if not (venv / "bin" / "python").exists():
        ctx.command(
            [python, "-m", "venv", str(venv)],
            "creating the virtualenv (is python3-venv installed? apt-get install python3-venv)",
        )
        ctx.step(f"created virtualenv {venv}")
    # Build from a copy: an in-tree build would leave root-owned build/ and *.egg-info
    # directories in the user's checkout.
    with tempfile.TemporaryDirectory(prefix="edge-gateway-build-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_SOURCE_IGNORE, symlinks=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--upgrade"]
        ctx.command([*pip, "--quiet", *pip_args, str(copy)], "pip install of the gateway")
    ctx.step(f"installed the edge-gateway package into {venv}")


def _install_unit(ctx: _Context, source: Path) -> None:
    text = (source / _UNIT_SOURCE).read_text(encoding="utf-8")
    prefix = ctx.paths.prefix
    if prefix != DEFAULT_PREFIX:
        text = text.replace(str(DEFAULT_PREFIX), str(prefix))
    unit = ctx.paths.unit
    unit.parent.mkdir(parents=True, exist_ok=True)
    temporary = unit.with_name(unit.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o644)
    temporary.replace(unit)
    ctx.step(f"installed {unit}")


def _install_config(ctx: _Context, source: Path) -> None:
    config = ctx.paths.config
    if config.exists():
        ctx.step(f"kept the existing {config}")
        return
    example = source / _EXAMPLE_CONFIG
    if not example.is_file():
        ctx.step(f"no {_EXAMPLE_CONFIG} in the source tree: write {config} yourself")
        return
    config.parent.mkdir(parents=True, exist_ok=True)
    config.parent.chmod(0o755)
    shutil.copyfile(example, config)
    # World-readable: the service runs as a dynamic user. Secrets go in root-only files
    # passed with LoadCredential= (docs/operations.md), never in this file.
    config.chmod(0o644)
    ctx.step(f"installed the example config as {config}: edit it, then start the service")


def _data_dirs(paths: InstallPaths) -> list[Path]:
    """Config, state and log directories, including DynamicUser's private/ real locations."""
    found = [paths.on_disk(paths.config_dir)]
    for directory in (paths.state_dir, paths.logs_dir):
        found.append(paths.on_disk(directory))
        found.append(paths.on_disk(directory.parent / "private" / directory.name))
    return found


# -- command line ---------------------------------------------------------------------------


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix", default=str(DEFAULT_PREFIX), help="the gateway's tree (default %(default)s)"
    )
    parser.add_argument(
        "--root",
        default="/",
        help="install into this directory as if it were / (tests, image builds); "
        "systemctl is not run for a root other than a running system",
    )


def _paths(args: argparse.Namespace) -> InstallPaths:
    return InstallPaths(root=Path(args.root), prefix=PurePosixPath(args.prefix))


def add_install_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``install-service`` options, for the CLI's subcommand parser."""
    _common_arguments(parser)
    parser.add_argument("--source", type=Path, default=None, help="source tree to install")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for the venv")
    parser.add_argument("--no-pip", action="store_true", help="skip the venv and pip install")
    parser.add_argument("--enable", action="store_true", help="systemctl enable --now")
    parser.add_argument(
        "--pip-arg", action="append", default=[], help="extra pip install argument (repeatable)"
    )


def add_uninstall_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``uninstall-service`` options, for the CLI's subcommand parser."""
    _common_arguments(parser)
    parser.add_argument(
        "--purge", action="store_true", help="also delete the config and the state file"
    )


def run_install(args: argparse.Namespace, prog: str = "install-service") -> int:
    """Run :func:`install` with options parsed by :func:`add_install_arguments`."""
    try:
        install(
            args.source,
            _paths(args),
            python=args.python,
            skip_pip=args.no_pip,
            pip_args=args.pip_arg,
            enable=args.enable,
        )
    except InstallError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)  # noqa: T201 - the command's own output
        return 1
    return 0


def run_uninstall(args: argparse.Namespace, prog: str = "uninstall-service") -> int:
    """Run :func:`uninstall` with options parsed by :func:`add_uninstall_arguments`."""
    try:
        uninstall(_paths(args), purge=args.purge)
    except InstallError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)  # noqa: T201 - the command's own output
        return 1
    return 0


def install_main(argv: Sequence[str] | None = None, prog: str = "install-service") -> int:
    """``install-service`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description="Install the systemd service.")
    add_install_arguments(parser)
    return run_install(parser.parse_args(argv), prog)


def uninstall_main(argv: Sequence[str] | None = None, prog: str = "uninstall-service") -> int:
    """``uninstall-service`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description="Remove the systemd service.")
    add_uninstall_arguments(parser)
    return run_uninstall(parser.parse_args(argv), prog)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 gateway/service/install.py install|uninstall [options]`` (the Makefile's)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("install", "uninstall"):
        print("usage: install.py install|uninstall [options] (--help for options)")  # noqa: T201
        return 2
    if argv[0] == "install":
        return install_main(argv[1:], prog="install.py install")
    return uninstall_main(argv[1:], prog="install.py uninstall")


if __name__ == "__main__":
    sys.exit(main())
