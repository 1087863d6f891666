"""Program image files: round trip, bad files, out-of-range parameters, CLI run on both
devices with identical outputs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import programs
from snn2hw_emulator import engine, image
from snn2hw_emulator.errors import ImageFormatError, InputError, ProgramLimitError

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn2hw.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_round_trip_runs_identically(tmp_path: Path, seed: int) -> None:
    program = programs.random_program(seed)
    image.save(program, tmp_path / "p.h5")
    back = image.load(tmp_path / "p.h5")
    x = programs.random_inputs(program, seed, 2, 20)
    a = engine.run(program, x, record=("spikes", "u", "v"))
    b = engine.run(back, x, record=("spikes", "u", "v"))
    for var in ("spikes", "u", "v"):
        for g in a.spikes:
            assert np.array_equal(getattr(a, var)[g], getattr(b, var)[g])


def test_conv_round_trip(tmp_path: Path) -> None:
    program = programs.conv_program(0, stride=2, groups=2)
    image.save(program, tmp_path / "c.h5")
    assert image.load(tmp_path / "c.h5").blocks[0].conv == program.blocks[0].conv


def test_bad_files(tmp_path: Path) -> None:
    program = programs.random_program(0)
    good = tmp_path / "p.h5"
    image.save(program, good)
    data = good.read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ImageFormatError, match="truncated or corrupt"):
        image.load(tmp_path / "trunc.h5")
    with pytest.raises(ImageFormatError, match="not HDF5"):
        image.load(tmp_path / "text.h5")
    with pytest.raises(ImageFormatError, match="does not exist"):
        image.load(tmp_path / "missing.h5")
    with h5py.File(good, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ImageFormatError, match="version 99"):
        image.load(good)


def test_flipped_weight_bytes_are_detected(tmp_path: Path) -> None:
    program = programs.random_program(0)
    path = tmp_path / "p.h5"
    image.save(program, path)
    with h5py.File(path, "r") as f:
        ds = f["blocks"][program.blocks[0].name]
        name = "weights" if "weights" in ds else "values"
        offset = ds[name].id.get_offset() if ds[name].chunks is None else None
        chunk = ds[name].id.get_chunk_info(0)
        offset = chunk.byte_offset if offset is None else offset
    raw = bytearray(path.read_bytes())
    raw[offset + 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageFormatError):
        image.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda g: dataclasses.replace(g, bias_mant=np.full(g.size, 5000)), r"bias_mant.*4095"),
    (lambda g: dataclasses.replace(g, du=4096), "du=4096"),
    (lambda g: dataclasses.replace(g, vth=2**17), "vth=131072"),
])
def test_out_of_range_parameters_are_refused(tmp_path: Path, change, match: str) -> None:
    program = programs.random_program(0)
    bad = dataclasses.replace(program, groups=(change(program.groups[0]), *program.groups[1:]))
    with pytest.raises(ProgramLimitError, match=match):
        image.save(bad, tmp_path / "bad.h5")
    assert not list(tmp_path.iterdir()), "nothing may be written on failure"


def test_bad_inputs() -> None:
    program = programs.random_program(4, graded=False)
    n = program.ports[0].size
    with pytest.raises(InputError, match="expected \\(batch, time"):
        engine.run(program, np.zeros((1, 5, n + 1), np.int8))
    with pytest.raises(InputError, match="binary spike port"):
        engine.run(program, np.full((1, 5, n), 2))
    with pytest.raises(InputError, match="fractions"):
        engine.run(program, np.full((1, 5, n), 0.5))


@pytest.mark.lava
@pytest.mark.slow
def test_cli_run_on_both_devices_prints_identical_outputs(tmp_path: Path) -> None:
    import program_image

    assert program_image.main(["--out", str(tmp_path)]) == 0
    outs = []
    for device in ("emulator", "lava"):
        proc = _cli("run", str(tmp_path / "demo_program.h5"), "--input",
                    str(tmp_path / "demo_input.npy"), "--output", str(tmp_path / f"{device}.npz"),
                    "--record", "spikes,u,v", "--device", device, "--quiet")
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.splitlines()[0])
    assert outs[0] == outs[1] and "spikes over 4 sample(s)" in outs[0]
    a, b = np.load(tmp_path / "emulator.npz"), np.load(tmp_path / "lava.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key


def test_cli_run_errors(tmp_path: Path) -> None:
    import program_image

    program_image.main(["--out", str(tmp_path)])
    np.save(tmp_path / "bad.npy", np.full((1, 5, 64), 3))
    proc = _cli("run", str(tmp_path / "demo_program.h5"), "--input", str(tmp_path / "bad.npy"),
                "--output", str(tmp_path / "o.npz"))
    assert proc.returncode == 2 and "binary spike port" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.npz").exists()
    (tmp_path / "broken.h5").write_bytes((tmp_path / "demo_program.h5").read_bytes()[:900])
    proc = _cli("inspect", str(tmp_path / "broken.h5"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
