"""install / uninstall into a temporary root: nothing on this machine is touched.

Most tests pass ``skip_pip=True``: they check the files, modes, the unit rewrite and the
systemctl calls, and do not build a virtualenv (that takes ~10 s and a package index).
``test_real_venv_and_pip_install`` (marked slow) does the full venv + pip install.
systemctl is never run for real: the systemd-running case is simulated by creating
``<root>/run/systemd/system`` and passing a runner that records the commands.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest

from gateway.service.install import (
    InstallError,
    InstallPaths,
    default_source,
    install,
    install_main,
    main,
    uninstall,
    uninstall_main,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = 'gateway_id = "example"\n'


class Recorder:
    """Stands in for subprocess.run of systemctl: records the commands, succeeds."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail or set()

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        code = 1 if args[1] in self.fail else 0
        return subprocess.CompletedProcess(list(args), code, "", f"{args[1]} failed")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A minimal source tree: pyproject, the real unit file, an example config, the docs."""
    src = tmp_path / "src"
    (src / "systemd").mkdir(parents=True)
    (src / "configs").mkdir()
    (src / "docs").mkdir()
    (src / "pyproject.toml").write_text("[project]\nname = 'edge-gateway'\n")
    shutil.copy(REPO / "systemd" / "edge-gateway.service", src / "systemd")
    (src / "configs" / "gateway.example.toml").write_text(EXAMPLE)
    (src / "docs" / "operations.md").write_text("# Operations\n")
    return src


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_puts_unit_config_and_docs_in_place(source: Path, root: Path) -> None:
    lines: list[str] = []
    done = install(source, InstallPaths(root=root), skip_pip=True, echo=lines.append)

    unit = root / "etc/systemd/system/edge-gateway.service"
    assert unit.read_text() == (source / "systemd/edge-gateway.service").read_text()
    assert _mode(unit) == 0o644
    config = root / "etc/edge-gateway/gateway.toml"
    assert config.read_text() == EXAMPLE
    assert _mode(config) == 0o644  # readable by the DynamicUser; secrets go elsewhere
    assert (root / "opt/edge-gateway/share/doc/operations.md").is_file()
    assert done == lines
    assert any("skipped: virtualenv and pip install" in line for line in lines)
    assert lines[-1] == "systemd is not running here: skipped systemctl daemon-reload"
    # Nothing outside the root was written: every path the steps name is under it.
    assert all(str(root) in line for line in lines if line.startswith("installed"))


def test_install_keeps_an_existing_config(source: Path, root: Path) -> None:
    config = root / "etc/edge-gateway/gateway.toml"
    config.parent.mkdir(parents=True)
    config.write_text('gateway_id = "mine"\n')
    lines = install(source, InstallPaths(root=root), skip_pip=True, echo=lambda _: None)
    assert config.read_text() == 'gateway_id = "mine"\n'
    assert f"kept the existing {config}" in lines


def test_missing_example_config_is_reported_not_fatal(source: Path, root: Path) -> None:
    (source / "configs/gateway.example.toml").unlink()
    lines = install(source, InstallPaths(root=root), skip_pip=True, echo=lambda _: None)
    assert any("write" in line and "yourself" in line for line in lines)
    assert not (root / "etc/edge-gateway/gateway.toml").exists()


def test_another_prefix_is_written_into_the_unit(source: Path, root: Path) -> None:
    paths = InstallPaths(root=root, prefix=PurePosixPath("/srv/edge/gw"))
    install(source, paths, skip_pip=True, echo=lambda _: None)
    text = (root / "etc/systemd/system/edge-gateway.service").read_text()
    assert "ExecStart=/srv/edge/gw/venv/bin/edge-gateway run -c" in text
    assert "/opt/edge-gateway" not in text


def test_with_systemd_running_reload_then_try_restart(source: Path, root: Path) -> None:
    (root / "run/systemd/system").mkdir(parents=True)
    recorder = Recorder()
    install(
        source,
        InstallPaths(root=root),
        skip_pip=True,
        echo=lambda _: None,
        run=recorder,
        systemctl="systemctl",
    )
    assert recorder.calls == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "try-restart", "edge-gateway.service"],
    ]
    recorder.calls.clear()
    install(
        source,
        InstallPaths(root=root),
        skip_pip=True,
        enable=True,
        echo=lambda _: None,
        run=recorder,
    )
    assert recorder.calls == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "edge-gateway.service"],
    ]


def test_a_failing_systemctl_is_one_clear_error(source: Path, root: Path) -> None:
    (root / "run/systemd/system").mkdir(parents=True)
    with pytest.raises(InstallError, match=r"systemctl daemon-reload failed .*: daemon-reload"):
        install(
            source,
            InstallPaths(root=root),
            skip_pip=True,
            echo=lambda _: None,
            run=Recorder(fail={"daemon-reload"}),
        )


def test_uninstall_keeps_config_and_state(source: Path, root: Path) -> None:
    paths = InstallPaths(root=root)
    install(source, paths, skip_pip=True, echo=lambda _: None)
    state = root / "var/lib/edge-gateway"
    state.mkdir(parents=True)
    (state / "state.db").write_bytes(b"SQLite")

    lines = uninstall(paths, echo=lambda _: None)

    assert not (root / "etc/systemd/system/edge-gateway.service").exists()
    assert not (root / "opt/edge-gateway").exists()
    assert (root / "etc/edge-gateway/gateway.toml").exists()
    assert (state / "state.db").exists()
    assert any(line.startswith("kept") and "--purge" in line for line in lines)


def test_uninstall_purge_removes_config_state_and_dynamic_user_dirs(
    source: Path, root: Path
) -> None:
    paths = InstallPaths(root=root)
    install(source, paths, skip_pip=True, echo=lambda _: None)
    # What systemd makes for DynamicUser=yes: the real directory under private/, a symlink.
    private = root / "var/lib/private/edge-gateway"
    private.mkdir(parents=True)
    (private / "state.db").write_bytes(b"SQLite")
    os.symlink("private/edge-gateway", root / "var/lib/edge-gateway")
    (root / "var/log/private/edge-gateway").mkdir(parents=True)

    uninstall(paths, purge=True, echo=lambda _: None)

    for gone in (
        "etc/edge-gateway",
        "var/lib/edge-gateway",
        "var/lib/private/edge-gateway",
        "var/log/private/edge-gateway",
        "opt/edge-gateway",
    ):
        assert not os.path.lexists(root / gone), gone
    assert (root / "var/lib/private").is_dir()  # only our directory is removed


def test_uninstall_with_systemd_running_disables_and_reloads(source: Path, root: Path) -> None:
    (root / "run/systemd/system").mkdir(parents=True)
    paths = InstallPaths(root=root)
    install(source, paths, skip_pip=True, echo=lambda _: None, run=Recorder())
    recorder = Recorder(fail={"disable"})  # never enabled: not an error
    uninstall(paths, echo=lambda _: None, run=recorder)
    assert recorder.calls == [
        ["systemctl", "disable", "--now", "edge-gateway.service"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "reset-failed", "edge-gateway.service"],
    ]


def test_a_foreign_prefix_is_never_touched(source: Path, root: Path) -> None:
    foreign = root / "opt/other"
    foreign.mkdir(parents=True)
    (foreign / "important").write_text("keep me")
    paths = InstallPaths(root=root, prefix=PurePosixPath("/opt/other"))
    with pytest.raises(InstallError, match="not made by this installer; choose another"):
        install(source, paths, skip_pip=True, echo=lambda _: None)
    with pytest.raises(InstallError, match="not made by this installer"):
        uninstall(paths, echo=lambda _: None)
    assert (foreign / "important").read_text() == "keep me"


@pytest.mark.parametrize("prefix", ["/", "/opt", "relative/dir", "/opt/../etc"])
def test_unsafe_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InstallError, match="prefix must be an absolute path"):
        InstallPaths(prefix=PurePosixPath(prefix))


def test_not_a_source_tree(tmp_path: Path, root: Path) -> None:
    with pytest.raises(InstallError, match="is not the edge-gateway source tree"):
        install(tmp_path, InstallPaths(root=root), skip_pip=True, echo=lambda _: None)


def test_the_default_source_is_this_checkout() -> None:
    assert default_source() == REPO


def test_command_lines(source: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--root", str(root), "--source", str(source), "--no-pip"]
    assert install_main(argv) == 0
    assert (root / "etc/systemd/system/edge-gateway.service").exists()
    assert uninstall_main(["--root", str(root), "--purge"]) == 0
    assert not (root / "etc/edge-gateway").exists()
    assert install_main([*argv, "--prefix", "/opt"]) == 1
    assert "prefix must be" in capsys.readouterr().err
    assert main([]) == 2


def test_runs_as_a_script_with_only_the_standard_library(source: Path, root: Path) -> None:
    """`sudo make install` runs the file with the system python3, before any dependency."""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(REPO / "gateway/service/install.py"),
            "install",
            "--root",
            str(root),
            "--source",
            str(source),
            "--no-pip",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (root / "etc/systemd/system/edge-gateway.service").exists()


@pytest.mark.slow
def test_real_venv_and_pip_install(root: Path) -> None:
    """The full install from this checkout: a venv from the system Python, pip install."""
    python = "/usr/bin/python3"
    if not Path(python).exists():
        pytest.skip("no system /usr/bin/python3 to build the venv from")
    build = REPO / "build"  # may hold other tools' output (make nab writes build/nab-*)
    build_before = sorted(build.iterdir()) if build.exists() else None
    try:
        # --no-deps: the test checks the install step, not the download of every dependency.
        install(
            REPO,
            InstallPaths(root=root),
            python=python,
            pip_args=["--no-deps"],
            echo=lambda _: None,
        )
    except InstallError as exc:
        if "pip install" in str(exc) and ("index" in str(exc) or "connect" in str(exc).lower()):
            pytest.skip(f"no package index reachable: {exc}")
        raise
    venv_python = root / "opt/edge-gateway/venv/bin/python"
    assert (root / "opt/edge-gateway/venv/bin/edge-gateway").exists()
    code = "import importlib.metadata as m; print(m.version('edge-gateway'))"
    version = subprocess.run(
        [str(venv_python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert version
    # The build happened in a copy: it left nothing in the checkout's build/.
    assert (sorted(build.iterdir()) if build.exists() else None) == build_before


def test_subcommand_helpers_fit_an_argparse_cli(source: Path, root: Path) -> None:
    import argparse

    from gateway.service.install import (
        add_install_arguments,
        add_uninstall_arguments,
        run_install,
        run_uninstall,
    )

    parser = argparse.ArgumentParser(prog="edge-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    add_install_arguments(commands.add_parser("install-service"))
    add_uninstall_arguments(commands.add_parser("uninstall-service"))
    args = parser.parse_args(
        ["install-service", "--root", str(root), "--source", str(source), "--no-pip"]
    )
    assert run_install(args) == 0
    assert (root / "opt/edge-gateway/venv").exists() is False  # --no-pip: no venv made
    assert run_uninstall(parser.parse_args(["uninstall-service", "--root", str(root)])) == 0
    assert not (root / "etc/systemd/system/edge-gateway.service").exists()
