"""Seeded bad input for the command line: every case exits 2 with one line on stderr, no
traceback, nothing written, and no planted payload run.

Cases: numeric options out of range, damaged or hostile .npy/.npz files (for ``run``,
``verify`` and ANN calibration), damaged and crafted .pt2 archives. Add a case for every
bug found. Everything runs in-process (``snn2hw.cli.main``) and takes a few seconds.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from fuzzing import inspect_damaged
from numpy.lib import format as npy
from snn2hw_emulator import image
from test_compiler import exact_graph, spikes_in
from test_pt2_archive import CRAFTED, _entries, _Payload, _write

from snn2hw import compiler, nirio
from snn2hw.cli import main

SEED = 18


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid inputs, so that each case differs from a working command in one thing."""
    d = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    graph = exact_graph(rng, 6, 10, 4, recurrent=False, conv=False)
    nirio.write(graph, d / "model.nir")
    image.save(compiler.compile(graph).program, d / "program.h5")
    x = spikes_in(rng, graph, 4, 12)
    np.save(d / "spikes.npy", x)
    np.save(d / "labels.npy", np.arange(4) % 4)
    torch.manual_seed(SEED)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 3)).eval()
    torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 4, 4),)), str(d / "ann.pt2"))
    np.save(d / "calib.npy", rng.random((16, 1, 4, 4)))
    return {"dir": d, "nir": d / "model.nir", "program": d / "program.h5",
            "spikes": d / "spikes.npy", "labels": d / "labels.npy", "pt2": d / "ann.pt2",
            "calib": d / "calib.npy"}


def _refused(argv: list[str], folder: Path, capsys: pytest.CaptureFixture[str],
             marker: Path | None = None) -> str:
    """Run the CLI; assert exit 2, one stderr line, no traceback, no new file, no marker."""
    before = set(folder.rglob("*"))
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                   # argparse
        code = exc.code
    out = capsys.readouterr()
    assert code == 2, f"{argv}: exit {code}\n{out.err}{out.out[-500:]}"
    assert out.err.count("\n") == 1 and out.err.endswith("\n"), out.err
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    assert set(folder.rglob("*")) == before, f"{argv} wrote {set(folder.rglob('*')) - before}"
    assert marker is None or not marker.exists(), f"{argv} ran the planted payload"
    return out.err


# --------------------------------------------------------------------------- numeric options

def _numeric_cases(f: dict[str, Path]) -> list[list[object]]:
    d = f["dir"]
    compile_ = ["compile", f["nir"], "-o", d / "out"]
    ann = ["import", f["pt2"], "--calibrate", f["calib"], "-o", d / "m.nir"]
    verify = ["verify", f["nir"], "--data", f["spikes"], "--labels", f["labels"]]
    run = ["run", f["program"], "--input", f["spikes"], "--output", d / "out.npz"]
    cases = [ann + ["--percentile", v] for v in ("-1", "101", "nan", "0", "inf", "x")]
    cases += [compile_ + ["--weight-bits", v] for v in ("0", "1", "-3", "2.5")]
    cases += [compile_ + ["--share", "0"], compile_ + ["--scale-groups", "0"],
              compile_ + ["--scale-groups", "-1"], compile_ + ["--dt", "0"],
              compile_ + ["--dt", "-1e-3"], compile_ + ["--dt", "nan"]]
    cases += [verify + ["--limit", "-1"], verify + ["--limit", "0"],
              verify + ["--steps", "-5"], ann + ["--steps", "0"]]
    cases += [run + ["--steps", v] for v in ("0", "-1", "1000000000", "1e20", "nan")]
    return cases


def test_numeric_options_out_of_range(files: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for argv in _numeric_cases(files):
        err = _refused(argv, files["dir"], capsys)
        option = next(a for a in argv[::-1] if str(a).startswith("--"))
        assert f"argument {option}:" in err, err


def test_valid_numeric_options_still_work(files: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / "ok.npz"
    assert main(["run", str(files["program"]), "--input", str(files["spikes"]), "--output",
                 str(out), "--steps", "3", "--quiet"]) == 0
    with np.load(out) as result:
        assert {a.shape[1] for a in result.values()} == {3}
    out.unlink()
    capsys.readouterr()


# --------------------------------------------------------------------------- array files

def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _bad_arrays(rng: random.Random, good: np.ndarray, marker: Path) -> dict[str, bytes]:
    """name -> file content; every one is unusable as data."""
    raw, packed = _npy(good), _npz(spikes=good)
    data_at = len(raw) - good.nbytes                  # where the header ends
    garbage = b"{'descr': '<f8', 'shape': (3,"
    cases = {
        "empty": b"",
        "random": bytes(rng.randrange(256) for _ in range(200)),
        "object-pickle": _npy(np.array([_Payload(marker)], dtype=object)),
        "plain-pickle": pickle.dumps(_Payload(marker)),
        "complex": _npy(good.astype(np.complex128)),
        "structured": _npy(np.zeros(good.shape, dtype=[("a", "i1"), ("b", "f4")])),
        "strings": _npy(np.full(good.shape, "1")),
        "nan": _npy(np.where(good > 0, np.nan, 0.0)),
        "inf": _npy(np.where(good > 0, np.inf, 0.0)),
        "zero-batch": _npy(np.zeros((0,) + good.shape[1:])),
        "zero-steps": _npy(np.zeros((good.shape[0], 0) + good.shape[2:])),
        "huge-shape": _header((10**12, 10**6)) + bytes(64),
        "huge-dtype": _header((4,), "|V1000000000000") + bytes(64),
        "broken-header": raw[:8] + struct.pack("<H", len(garbage) + 1) + garbage + b"\n",
        "header-length": raw[:8] + b"\xff\xff" + raw[10:],
        "npz-empty": _npz(),
        "npz-no-spikes": _npz(other=good),
        "npz-object": _npz(spikes=np.array([_Payload(marker)], dtype=object)),
    }
    for k in range(4):                                 # seeded truncations
        cases[f"npy-cut{k}"] = raw[:rng.randrange(1, len(raw) - 1)]
        cases[f"npz-cut{k}"] = packed[:rng.randrange(1, len(packed) - 1)]
    crc = bytearray(packed)
    crc[packed.index(b"\x93NUMPY") + data_at] ^= 0xFF  # member data: its CRC no longer matches
    cases["npz-crc"] = bytes(crc)
    return cases


def test_bad_array_files_are_one_line_errors(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "array.marker"
    good = np.load(files["spikes"])
    cases = _bad_arrays(random.Random(SEED), good, marker)
    for name, content in sorted(cases.items()):
        bad = tmp_path / f"{name}.{'npz' if name.startswith('npz') else 'npy'}"
        bad.write_bytes(content)
        for argv in (["run", files["program"], "--input", bad, "--output",
                      tmp_path / "out.npz"],
                     ["verify", files["nir"], "--data", bad],
                     ["import", files["pt2"], "--calibrate", bad, "-o", tmp_path / "m.nir"]):
            err = _refused(argv, tmp_path, capsys, marker)
            assert bad.name in err or "do not match the program's ports" in err, err


def test_bad_labels_are_one_line_errors(files: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name, labels in (("nan", np.array([0.0, np.nan, 1.0, 2.0])),
                         ("strings", np.array(["a", "b", "c", "d"])),
                         ("fractions", np.array([0.5, 1.0, 2.0, 3.0])),
                         ("complex", np.arange(4) + 1j),
                         ("count", np.arange(3))):
        path = tmp_path / f"labels-{name}.npy"
        np.save(path, labels)
        err = _refused(["verify", files["nir"], "--data", files["spikes"], "--labels", path],
                       tmp_path, capsys)
        assert "label" in err or path.name in err, err


# --------------------------------------------------------------------------- .pt2 archives

def test_damaged_pt2_archives_are_one_line_errors(files: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = files["pt2"].read_bytes()
    refused = inspect_damaged(lambda k: data, 24, seed=SEED, every=2, flips=6,
                              folder=tmp_path, suffix=".pt2", capsys=capsys, names_file=True)
    assert refused >= 12                               # every truncation at least


@pytest.mark.parametrize("kind", ["legacy-weights", "use-pickle-weight", "opaque-constant"])
def test_crafted_pt2_archives_in_compile_and_verify(files: dict[str, Path], tmp_path: Path,
                                                    kind: str,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    marker = tmp_path / "pt2.marker"
    root, entries = _entries(files["pt2"])
    CRAFTED[kind](root, entries, marker)
    path = _write(tmp_path / f"{kind}.pt2", entries)
    for argv in (["compile", path, "--calibrate", files["calib"], "-o", tmp_path / "out"],
                 ["verify", path, "--calibrate", files["calib"], "--data", files["calib"]]):
        err = _refused(argv, tmp_path, capsys, marker)
        assert "pickle" in err, err


def test_loader_reads_what_numpy_writes(tmp_path: Path) -> None:
    from snn2hw import arrays

    rng = np.random.default_rng(SEED)
    cases = [rng.random((3, 4, 5)), np.asfortranarray(rng.random((3, 4))),
             rng.random((2, 3)).astype(">f4"), rng.random(5) > 0.5,
             rng.integers(-5, 5, (2, 2, 2)).astype(np.int8), np.arange(7, dtype=np.uint64)]
    for k, a in enumerate(cases):
        np.save(tmp_path / f"a{k}.npy", a)
        b = arrays.load(tmp_path / f"a{k}.npy")
        assert b.dtype == a.dtype and np.array_equal(a, b) and b.flags.writeable
    with open(tmp_path / "v2.npy", "wb") as fh:
        npy.write_array(fh, cases[0], version=(2, 0))
    assert np.array_equal(arrays.load(tmp_path / "v2.npy"), cases[0])
    np.savez_compressed(tmp_path / "z.npz", spikes=cases[4], labels=cases[5])
    loaded = arrays.load(tmp_path / "z.npz")
    assert set(loaded) == {"spikes", "labels"} and np.array_equal(loaded["spikes"], cases[4])


def test_target_file_that_is_not_utf8(files: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b"\xff\xfe[target]\nname = 'x'\n")
    err = _refused(["compile", files["nir"], "--target", bad, "-o", tmp_path / "out"],
                   tmp_path, capsys)
    assert "latin.toml" in err and "UTF-8" in err, err
