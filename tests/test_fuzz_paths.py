"""Output paths the user cannot write: every case exits 2 with one line on stderr, no
traceback, nothing written or left behind (no temporary file, no ``..old.XXXX`` folder),
and the path is refused before the command reads its inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from snn2hw_emulator import image
from test_compiler import exact_graph, spikes_in
from test_fuzz import SEED, _refused

from snn2hw import compiler, nirio, outputs
from snn2hw import files as snn2hw_files
from snn2hw.cli import main
from snn2hw.errors import UserInputError

LONG = "a" * 5000          # over PATH_MAX
LONG_NAME = "b" * 250      # one name, over NAME_MAX once the temporary suffix is added


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a model, a program, spikes and labels; the current folder is a
    subfolder 'cwd' of it (so that '..' is watched too)."""
    rng = np.random.default_rng(SEED)
    graph = exact_graph(rng, 6, 10, 4, recurrent=False, conv=False)
    nirio.write(graph, tmp_path / "model.nir")
    image.save(compiler.compile(graph).program, tmp_path / "program.h5")
    np.save(tmp_path / "spikes.npy", spikes_in(rng, graph, 4, 12))
    np.save(tmp_path / "labels.npy", np.arange(4) % 4)
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("not snn2hw's")
    (tmp_path / "rep" / "report.html").mkdir(parents=True)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def _cases(w: Path) -> list[tuple[list[object], str]]:
    """(argv, text the error must contain)."""
    run = ["run", w / "program.h5", "--input", w / "spikes.npy", "--output"]
    compile_ = ["compile", w / "model.nir", "-o"]
    verify = ["verify", w / "model.nir", "--data", w / "spikes.npy", "--labels",
              w / "labels.npy"]
    cases: list[tuple[list[object], str]] = [
        (run + [w / "folder"], "is an existing folder"),
        (run + [""], "--output is empty"),
        (run + [" "], "--output is empty"),
        (run + ["/dev/null/out"], "'/dev/null' is not a folder"),
        (run + ["/dev/null/a/b.npz"], "'/dev/null' is not a folder"),
        (run + ["/dev/null"], "not a regular file"),
        (run + [w / LONG], "is too long"),
        (run + [LONG], "is too long"),
        (run + [w / LONG_NAME], "is too long: a name of 250 bytes"),
        (run + [w / "missing" / "out.npz"], "does not exist"),
        (["import", w / "model.nir", "-o", w / "folder"], "is an existing folder"),
        (["import", w / "model.nir", "-o", ""], "-o is empty"),
        (compile_ + ["/dev/null/out"], "'/dev/null' is not a folder"),
        (compile_ + ["."], "is the current folder or contains it"),
        (compile_ + [".."], "is the current folder or contains it"),
        (compile_ + ["/"], "is the current folder or contains it"),
        (compile_ + [""], "-o is empty"),
        (compile_ + [w / "afile"], "exists and is not a folder"),
        (compile_ + [w / "foreign"], "holds files this command did not write (notes.txt)"),
        (compile_ + [w / LONG], "is too long"),
        (compile_ + [w / LONG_NAME / "out"], "is too long: a name of 250 bytes"),
        (compile_ + [w / "out", "--dump-ir", "/dev/null/x"], "--dump-ir: '/dev/null' is not"),
        (compile_ + [w / "out", "--dump-ir", w / "afile"], "--dump-ir"),
        (compile_ + [w / "out", "--dump-ir", w / "out" / "ir"], "is inside -o"),
        (compile_ + [w / "out", "--dump-ir", ""], "--dump-ir is empty"),
        (verify + ["--png", w / "folder"], "--png"),
        (verify + ["--png", ""], "--png is empty"),
        (verify + ["--report", w / "afile"], "--report"),
        (verify + ["--report", w / "rep"], "holds a folder 'report.html'"),
        (verify + ["--report", "/dev/null/x"], "'/dev/null' is not a folder"),
    ]
    if sys.platform == "linux":          # a folder that exists but takes no new files
        cases += [(run + ["/proc/out.npz"], "cannot write in folder '/proc'"),
                  (compile_ + ["/proc/out"], "cannot write in folder '/proc'"),
                  (verify + ["--report", "/proc/report"], "cannot write in folder '/proc'")]
    return cases


def test_unwritable_output_paths_are_one_line_errors(work: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    for argv, expected in _cases(work):
        err = _refused(argv, work, capsys)
        assert expected in err, (argv[-2:], err)
        assert len(err) < 400, err                # a 5,000-character path is shown cut
    assert (work / "afile").read_text() == "keep me"


def test_output_path_is_checked_before_the_inputs_are_read(work: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    missing = work / "missing.nir"
    for argv in (["compile", missing, "-o", "."],
                 ["run", missing, "--input", missing, "--output", work / "folder"],
                 ["verify", missing, "--data", missing, "--png", ""]):
        err = _refused(argv, work, capsys)
        assert "missing" not in err, err


def test_input_paths_longer_than_the_file_system_allows(work: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    long, name = work / LONG, work / ("c" * 300)
    for argv, option in ((["inspect", long], "path"),
                         (["run", work / "program.h5", "--input", name, "--output", "o.npz"],
                          "--input"),
                         (["run", name, "--input", work / "spikes.npy", "--output", "o.npz"],
                          "program"),
                         (["verify", work / "model.nir", "--data", long], "--data"),
                         (["verify", work / "model.nir", "--data", work / "spikes.npy",
                           "--labels", long], "--labels"),
                         (["compile", long, "-o", "out"], "model"),
                         (["import", name, "-o", "m.nir"], "model"),
                         (["compile", work / "model.nir", "--calibrate", long, "-o", "out"],
                          "--calibrate")):
        err = _refused(argv, work, capsys)
        assert f"error: {option} '" in err and "cannot exist" in err, err


def test_writable_paths_still_work_and_leave_only_the_output(work: Path,
                                                             capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    before = {p.name for p in work.iterdir()}
    assert main(["run", str(work / "program.h5"), "--input", str(work / "spikes.npy"),
                 "--output", "../out.npz", "--quiet"]) == 0
    assert main(["compile", str(work / "model.nir"), "-o", str(work / "out")]) == 0
    assert main(["compile", str(work / "model.nir"), "-o", str(work / "out"), "--dump-ir",
                 str(work / "ir")]) == 0                    # replaces its own earlier output
    capsys.readouterr()
    assert {p.name for p in work.iterdir()} - before == {"out.npz", "out", "ir"}
    assert {p.name for p in (work / "out").iterdir()} <= outputs.NAMES
    assert not list(work.rglob(".snn2hw-probe*"))


def test_python_api_refuses_the_same_paths(work: Path) -> None:
    compiled = compiler.compile(nirio.read(work / "model.nir"))
    for folder in (".", "..", work / "foreign", work / "afile"):
        with pytest.raises(UserInputError, match="output"):
            outputs.write_compiled(compiled, folder)
    for path in (work / "folder", "", work / LONG):
        with pytest.raises(UserInputError):
            nirio.write(compiled.graph, path)
        with pytest.raises(UserInputError):
            snn2hw_files.atomic_write(path, lambda tmp: Path(tmp).write_text("x"))
    for dump in (work / "afile", "/dev/null/ir"):
        with pytest.raises(UserInputError, match="dump_ir"):
            compiler.compile(nirio.read(work / "model.nir"),
                             compiler.Options(dump_ir=str(dump)))
    assert not list(work.glob(".*")) and not list((work / "cwd").iterdir())
