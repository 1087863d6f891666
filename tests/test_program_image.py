"""Program image files: round trip, bad files, out-of-range parameters, CLI run on both
devices with identical outputs; codebook blocks (format version 2), version-1 files, and
the synaptic-memory estimate."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import programs
import pytest
from snn2hw_emulator import engine, image
from snn2hw_emulator.errors import ImageFormatError, InputError, ProgramLimitError
from snn2hw_emulator.program import FORMAT_VERSION, SynapseBlock, synapse_memory_bits

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn2hw.cli", *args], capture_output=True,
                          text=True, timeout=600, check=False)


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


# --------------------------------------------------------------------------- codebook blocks


@pytest.mark.parametrize("scope", ["layer", "neuron"])
def test_codebook_round_trip(tmp_path: Path, scope: str) -> None:
    program = programs.codebook_program(5, scope=scope, graded=True)
    image.save(program, tmp_path / "cb.h5")
    back = image.load(tmp_path / "cb.h5")
    assert back.format_version == FORMAT_VERSION == 3
    for a, b in zip(program.blocks, back.blocks):
        assert b.kind == "codebook" and b.codebook.shape == a.codebook.shape
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.codebook, b.codebook)
    x = programs.random_inputs(program, 5, 2, 20)
    a = engine.run(program, x, record=("spikes", "u", "v"))
    b = engine.run(back, x, record=("spikes", "u", "v"))
    for var in ("spikes", "u", "v"):
        for g in a.spikes:
            assert np.array_equal(getattr(a, var)[g], getattr(b, var)[g])


def test_version_1_files_load_unchanged(tmp_path: Path) -> None:
    """Version 2 only added codebook blocks: a version-1 file reads as before and keeps
    its version when saved again."""
    program = dataclasses.replace(programs.random_program(1), format_version=1)
    image.save(program, tmp_path / "v1.h5")
    with h5py.File(tmp_path / "v1.h5") as f:
        assert int(f.attrs["format_version"]) == 1
    back = image.load(tmp_path / "v1.h5")
    assert back.format_version == 1
    image.save(back, tmp_path / "again.h5")
    assert image.load(tmp_path / "again.h5").format_version == 1
    x = programs.random_inputs(program, 1, 1, 20)
    assert np.array_equal(engine.run(program, x).outputs["out"], engine.run(back, x).outputs["out"])


def _with_block(program, **change):
    return dataclasses.replace(program, blocks=(dataclasses.replace(program.blocks[0], **change),
                                                *program.blocks[1:]))


_CB = programs.codebook_program(6, scope="layer")     # W0: 6 x 9, K = 8, with -1 entries
_N, _K = _CB.blocks[0].weights.shape[0], _CB.blocks[0].codebook.shape[1]


@pytest.mark.parametrize("change, error, match", [
    (dict(weights=np.where(_CB.blocks[0].weights == 0, _K, _CB.blocks[0].weights)),
     ProgramLimitError, rf"indices span -1\.\.{_K}; they must lie in -1\.\.{_K - 1}"),
    (dict(weights=np.full_like(_CB.blocks[0].weights, -2)), ProgramLimitError,
     r"indices span -2\.\.-2"),
    (dict(codebook=np.zeros((2, _K), np.int32)), ProgramLimitError,
     rf"codebook has 2 rows; expected 1 .* or {_N} \(one per neuron of 'L0'\)"),
    (dict(codebook=np.zeros((1, 0), np.int32)), ProgramLimitError, "K=0 entries"),
    (dict(codebook=np.full((1, _K), 40000)), ProgramLimitError,
     "codebook values outside the 16-bit range"),
    (dict(codebook=np.full((1, _K), 0.5)), ProgramLimitError, "2-D integer array"),
    (dict(codebook=None), ProgramLimitError, "needs a codebook table"),
    (dict(kind="dense", weights=np.abs(_CB.blocks[0].weights)), ProgramLimitError,
     "a dense block has a codebook table"),
])
def test_bad_codebook_blocks_are_refused(tmp_path: Path, change, error, match: str) -> None:
    with pytest.raises(error, match=match):
        image.save(_with_block(_CB, **change), tmp_path / "bad.h5")
    assert not list(tmp_path.iterdir()), "nothing may be written on failure"


def test_bad_codebook_files(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="format version 1 cannot hold"):
        image.validate(dataclasses.replace(_CB, format_version=1))
    good = tmp_path / "cb.h5"
    image.save(_CB, good)
    for name, edit, error, match in [
        ("v1.h5", lambda f: f.attrs.__setitem__("format_version", 1), ImageFormatError,
         "block 'W0' is a codebook block, which format version 1 cannot hold"),
        ("nocb.h5", lambda f: f["blocks/W1"].__delitem__("codebook"), ImageFormatError,
         "codebook block 'W1' has no 'codebook' dataset"),
        ("range.h5", lambda f: f["blocks/W0/codebook"].__setitem__((0, 0), 2**15),
         ProgramLimitError, "codebook values outside the 16-bit range"),
    ]:
        path = tmp_path / name
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "a") as f:
            edit(f)
        with pytest.raises(error, match=match):
            image.load(path)


def test_synapse_memory_bits() -> None:
    w = np.array([[0, 3, 0, 0, 5], [1, 0, 0, 0, 0], [0, 0, 0, 0, 7]])   # 3 x 5, nnz 4
    blk = SynapseBlock("W", "dense", "in", "L0", w, num_weight_bits=6)
    assert synapse_memory_bits(blk, 5, 3) == 3 * 5 * 6
    assert synapse_memory_bits(dataclasses.replace(blk, kind="sparse")) == 4 * (6 + 3)
    assert synapse_memory_bits(dataclasses.replace(blk, kind="delay_dense"), 5, 3) == \
        3 * 5 * (6 + 6)
    conv = programs.conv_program(0, groups=2).blocks[0]                 # (4, 3, 3, 2)
    assert synapse_memory_bits(conv) == 4 * 3 * 3 * 2 * 8
    idx = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [0, 0, 0, 0, 0]])  # K = 5: 3 bits
    cb = SynapseBlock("W", "codebook", "in", "L0", idx, num_weight_bits=6,
                      codebook=np.arange(5)[None])
    assert synapse_memory_bits(cb, 5, 3) == 15 * 3 + 1 * 5 * 6
    per_neuron = dataclasses.replace(cb, codebook=np.zeros((3, 5), np.int64))
    assert synapse_memory_bits(per_neuron) == 15 * 3 + 3 * 5 * 6
    holes = dataclasses.replace(cb, weights=np.where(w != 0, 0, -1))     # 4 synapses
    assert synapse_memory_bits(holes) == 4 * (3 + 3) + 5 * 6
    k1 = dataclasses.replace(holes, codebook=np.array([[9]]))           # K = 1: still 1 bit
    assert synapse_memory_bits(k1) == 4 * (1 + 3) + 6
    with pytest.raises(ValueError, match="do not connect"):
        synapse_memory_bits(blk, 3, 5)


def _sparse_program(seed: int = 5):
    return programs.random_program(seed, kinds=("sparse",), recurrent=False)


def test_sparse_blocks_are_read_as_csr_and_written_from_csr(tmp_path: Path) -> None:
    """A sparse block reads back as a csr matrix (never densified); written from that
    csr matrix, the file's COO datasets are those the dense matrix gave."""
    import scipy.sparse as sp

    program = _sparse_program()
    image.save(program, tmp_path / "dense.h5")
    back = image.load(tmp_path / "dense.h5")
    assert all(sp.issparse(b.weights) and b.weights.format == "csr" for b in back.blocks)
    for a, b in zip(program.blocks, back.blocks, strict=True):
        assert np.array_equal(b.weights.toarray(), a.weights) and np.count_nonzero(a.weights)
    image.save(back, tmp_path / "csr.h5")
    with h5py.File(tmp_path / "dense.h5") as f, h5py.File(tmp_path / "csr.h5") as g:
        for b in program.blocks:
            for name in ("rows", "cols", "values"):
                assert np.array_equal(f["blocks"][b.name][name][()],
                                      g["blocks"][b.name][name][()]), (b.name, name)


@pytest.mark.parametrize("edit, match", [
    (lambda h: h.attrs.__setitem__("dense_shape", np.array([2**40, 2**40])),
     r"dense_shape \(1099511627776, 1099511627776\) does not connect"),
    (lambda h: _replace(h, "rows", h["rows"][()] + 10**6), "COO indices outside"),
    (lambda h: _replace(h, "cols", np.zeros_like(h["cols"][()])) or
     _replace(h, "rows", np.zeros_like(h["rows"][()])), "listed twice"),
    (lambda h: _replace(h, "values", h["values"][()][:-1]), "one length"),
])
def test_bad_sparse_blocks_in_files_are_one_line_errors(tmp_path: Path, edit, match: str
                                                        ) -> None:
    program = _sparse_program()
    path = tmp_path / "p.h5"
    image.save(program, path)
    with h5py.File(path, "a") as f:
        edit(f["blocks"][program.blocks[0].name])
    with pytest.raises(ImageFormatError, match=match):
        image.load(path)


def _replace(h: h5py.Group, name: str, data: np.ndarray) -> None:
    del h[name]
    h.create_dataset(name, data=data)


def test_csr_weights_only_on_sparse_blocks_and_well_formed() -> None:
    import scipy.sparse as sp

    program = _sparse_program()
    b = program.blocks[0]
    for change, match in ((dict(kind="dense"), "only kind 'sparse'"),
                          (dict(weights=sp.csc_matrix(b.weights)), "csr matrix"),
                          (dict(weights=sp.csr_matrix(b.weights.astype(float))), "integers")):
        bad = dataclasses.replace(program, blocks=(dataclasses.replace(
            b, **{"weights": sp.csr_matrix(b.weights), **change}), *program.blocks[1:]))
        with pytest.raises(ProgramLimitError, match=match):
            image.validate(bad)


@pytest.mark.lava
@pytest.mark.slow
def test_csr_sparse_blocks_run_on_lava_as_on_the_emulator() -> None:
    """Sparse blocks read from a file (csr) travel to Lava as COO arrays and become
    Lava's Sparse: every spike, u and v equal (binary and graded input)."""
    import scipy.sparse as sp

    from snn2hw.backends import lava
    from snn2hw.compare import first_divergence

    runs = []
    for seed, graded in ((11, False), (12, True)):
        program = programs.random_program(seed, kinds=("sparse",), graded=graded)
        program = dataclasses.replace(program, blocks=tuple(
            dataclasses.replace(b, weights=sp.csr_matrix(b.weights)) for b in program.blocks))
        runs.append((program, programs.random_inputs(program, seed, 2, 16), 18))
    for (program, x, steps), got in zip(runs, lava.run_many(runs, record=("spikes", "u", "v")),
                                        strict=True):
        want = engine.run(program, x, steps=steps, record=("spikes", "u", "v"))
        assert first_divergence(want, got) is None, first_divergence(want, got)
        assert any(want.u[g].any() for g in want.u)


@pytest.mark.parametrize("edit, match", [
    (lambda c: (dataclasses.replace(c[0], index=-1), *c[1:]), r"core index -1 is not unique"),
    (lambda c: (dataclasses.replace(c[0], groups=c[0].groups[1:]), *c[1:]),
     r"group '.*' is placed on 0 cores"),
    (lambda c: (dataclasses.replace(c[0], blocks=c[0].blocks[1:]), *c[1:]),
     r"block '.*' is placed on cores \[\]; it must be on exactly the core of its target"),
    (lambda c: (*c, dataclasses.replace(c[0], index=c[-1].index + 1, groups=(),
                                        blocks=c[0].blocks[:1])),
     r"block '.*' is placed on cores \[0, \d+\]"),
])
def test_every_group_and_block_is_placed_on_a_declared_core(tmp_path: Path, edit, match: str
                                                            ) -> None:
    """Placement is checked at load, so no group runs, and no block's synaptic memory
    escapes the per-core rules, off the cores the image declares (core -1, no core, two)."""
    program = programs.random_program(0)
    assert program.cores and program.cores[0].index == 0 and program.cores[0].blocks
    bad = dataclasses.replace(program, cores=edit(program.cores))
    with pytest.raises(ProgramLimitError, match=match):
        image.save(bad, tmp_path / "bad.h5")
    assert not list(tmp_path.iterdir()), "nothing may be written on failure"
    image.save(program, tmp_path / "good.h5")                       # the control
