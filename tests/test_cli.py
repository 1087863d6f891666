"""The command line: help everywhere, one-line errors with exit code 2, no tracebacks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from snn2hw.cli import build_parser, main

COMMANDS = [["compile"], ["verify"], ["inspect"], ["targets"], ["run"], ["lava"], ["lava", "install"], ["lava", "status"]]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn2hw.cli", *args],
                          capture_output=True, text=True, timeout=120, check=False)


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
    from snn2hw.errors import UserInputError
    from snn2hw.runio import parse_record

    with pytest.raises(UserInputError, match="spikes, u, v"):
        parse_record("spikes,w")
    assert parse_record("u") == ("spikes", "u")


# --------------------------------------------------------------------------- compile / verify


def _model(tmp_path: Path, n_in: int = 20, n: int = 100) -> Path:
    import nir
    import numpy as np

    from snn2hw import checker, nirio

    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([n_in])),
             "fc": nir.Linear(rng.normal(size=(n, n_in))),
             "lif": nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                            v_threshold=np.ones(n)),
             "output": nir.Output(np.array([n]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    graph = checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False),
                             metadata={"dt": 1e-4})
    path = tmp_path / "model.nir"
    nirio.write(graph, path)
    return path


def test_compile_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from snn2hw_emulator import image

    from snn2hw import nirio, outputs

    out = tmp_path / "out"
    assert main(["compile", str(_model(tmp_path)), "--target", "tiny", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "100 neurons on 7 core(s), 2 chip(s)" in text
    for name in outputs.FILES:
        assert (out / name).is_file(), name
    assert image.load(out / "program.h5").target_name == "tiny"
    assert "snn2hw" in nirio.read(out / "quantised.nir").nodes["lif"].metadata
    mask = os.umask(0)
    os.umask(mask)                       # atomic writes keep the usual modes, not 0600/0700
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for name in ("program.h5", "quantised.nir", "report.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name


def test_compile_that_does_not_fit_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("compile", str(_model(tmp_path, n=200)), "--target", "tiny", "-o", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "chips on the system" in proc.stderr and "4 > 2" in proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.nir"]


def test_compile_failure_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["compile", str(_model(tmp_path)), "--target", "tiny", "-o", str(out)]) == 0
    before = (out / "program.h5").read_bytes()
    assert main(["compile", str(_model(tmp_path, n=200)), "--target", "tiny",
                 "-o", str(out)]) == 2
    assert (out / "program.h5").read_bytes() == before


def test_verify_prints_accuracy_and_agreement(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    x = (rng.random((6, 12, 20)) < 0.3).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", rng.integers(0, 100, 6))
    png = tmp_path / "v.png"
    assert main(["verify", str(_model(tmp_path)), "--data", str(tmp_path / "x.npy"),
                 "--labels", str(tmp_path / "y.npy"), "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "accuracy   float reference" in text and "identical" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verify_rejects_non_spike_data(tmp_path: Path) -> None:
    import numpy as np

    np.save(tmp_path / "x.npy", np.full((2, 5, 20), 0.5))
    proc = run_cli("verify", str(_model(tmp_path)), "--data", str(tmp_path / "x.npy"))
    assert proc.returncode == 2 and "not binary spikes" in proc.stderr


def test_verify_report_is_self_contained_with_decodable_figures(tmp_path: Path) -> None:
    import base64
    import io
    from html.parser import HTMLParser

    import matplotlib.image
    import numpy as np

    rng = np.random.default_rng(3)
    np.save(tmp_path / "x.npy", (rng.random((4, 12, 20)) < 0.3).astype(np.int8))
    out = tmp_path / "rep"
    assert main(["verify", str(_model(tmp_path)), "--target", "tiny", "--data",
                 str(tmp_path / "x.npy"), "--report", str(out)]) == 0

    class Images(HTMLParser):
        sources: ClassVar[list[str]] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "img":
                self.sources.append(dict(attrs)["src"])

    parser = Images()
    parser.feed((out / "report.html").read_text())
    assert len(parser.sources) == 5
    for src in parser.sources:                       # embedded, not linked
        assert src.startswith("data:image/png;base64,")
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.shape[0] > 100 and image.shape[1] > 100
    for name in ("rasters", "agreement", "weights", "cores", "cost"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
