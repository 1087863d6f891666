"""The command line: help everywhere, one-line errors with exit code 2, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from snn2hw.cli import build_parser, main

COMMANDS = [["inspect"], ["targets"], ["run"], ["lava"], ["lava", "install"], ["lava", "status"]]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn2hw.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("snn2hw ")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: snn2hw" in capsys.readouterr().out


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_cli("inspect", str(tmp_path / "nope.nir"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "nope.nir" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_hdf5_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "model.nir"
    bad.write_text("this is not a NIR file")
    proc = run_cli("inspect", str(bad))
    assert proc.returncode == 2
    assert "not an HDF5 file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = run_cli("--debug", "inspect", str(tmp_path / "nope.nir"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_targets_lists_loihi(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "loihi1" in out and "loihi2" in out


def test_bad_record_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from snn2hw.runio import parse_record
    from snn2hw.errors import UserInputError

    with pytest.raises(UserInputError, match="spikes, u, v"):
        parse_record("spikes,w")
    assert parse_record("u") == ("spikes", "u")
