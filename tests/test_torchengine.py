"""The torch engine (emulator/torchengine.py, torchops.py, torchstep.py) against the step
engine and the normative kernels: every recorded variable, saturation and cost count
equal, on random programs of every block kind (dense, sparse as numpy and as csr,
delay, conv, codebook, graded input, recurrence, a cycle through two groups, LIFReset,
sigma-delta, saturation). On this machine with ``accelerator="cpu-torch"``; the tests
marked ``gpu`` run the same comparisons with ``accelerator="cuda"`` where torch sees a
CUDA device, and are reported as skipped, with the reason, elsewhere."""

from __future__ import annotations

import dataclasses

import numpy as np
import programs
import pytest
import scipy.sparse as sp
import sd_programs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine, reference, torchops
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.program import SynapseBlock
from test_timebatch import ALL, assert_same

torch = pytest.importorskip("torch", reason="the torch extra (make setup installs it)")
CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here (torch "
                                f"{torch.__version__}): GPU test not run")


def _csr(program: object) -> object:
    """The program with its dense/sparse blocks held as csr matrices (image.load's form)."""
    blocks = tuple(dataclasses.replace(b, kind="sparse", weights=sp.csr_matrix(b.weights))
                   if b.kind in ("dense", "sparse") else b for b in program.blocks)
    return dataclasses.replace(program, blocks=blocks)


def _cyclic(seed: int) -> object:
    program = programs.random_program(seed, layers=3, recurrent=False)
    back = SynapseBlock("Wback", "dense", "L2", "L0",
                        np.full((program.groups[0].size, program.groups[2].size), 40, np.int32))
    return programs.with_block(program, back)


PROGRAMS = {
    "random": lambda s: programs.random_program(s),
    "recurrent": lambda s: programs.random_program(s, recurrent=True, wild=True),
    "csr": lambda s: _csr(programs.random_program(s)),
    "codebook": lambda s: programs.codebook_program(s),
    "conv": lambda s: programs.conv_program(s, stride=1 + s % 2, groups=1 + s % 2),
    "conv-graded": lambda s: programs.conv_program(s, graded=True),
    "sigma-delta": lambda s: sd_programs.sigma_delta_program(s, conv=s % 2 == 0),
    "cycle": _cyclic,
}


def _compare(program: object, x: np.ndarray, accelerator: str, steps: int = 18) -> int:
    got = engine.run(program, x, steps=steps, record=ALL, accelerator=accelerator)
    want = engine.run(program, x, steps=steps, record=ALL, mode="step")
    return assert_same(got, want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(sorted(PROGRAMS)),
       batch=st.integers(1, 3), rate=st.sampled_from([0.05, 0.4]))
def test_torch_on_the_cpu_equals_the_step_engine(seed: int, kind: str, batch: int,
                                                 rate: float) -> None:
    program = PROGRAMS[kind](seed)
    x = programs.random_inputs(program, seed, batch, 14, rate=rate)
    assert _compare(program, x, "cpu-torch") > 0


@pytest.mark.parametrize("seed", range(4))
def test_torch_equals_the_kernels(seed: int) -> None:
    program = programs.random_program(seed, recurrent=seed % 2 == 0)
    x = programs.random_inputs(program, seed, 2, 10)
    got = engine.run(program, x, steps=12, record=("spikes", "u", "v"),
                     accelerator="cpu-torch")
    for b in range(x.shape[0]):
        xb = np.asarray(x[b], np.int64)
        bits = program.ports[0].message_bits
        xb = np.clip(xb, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if bits else xb
        want = reference.run_one(program, {"in": xb}, 12)
        for var in ("spikes", "u", "v"):
            for g, arr in want[var].items():
                np.testing.assert_array_equal(getattr(got, var)[g][b], arr,
                                              err_msg=f"{var} {g}")


@pytest.mark.parametrize("n, bits, path", [
    (64, 0, "float32"),         # |sum| <= 255 * 64
    (64, 16, "float64"),        # 16-bit payloads: |sum| up to 2^29
    (1 << 15, 31, "limbs"),     # 31-bit payloads, 2^15 inputs: past float64's 2^53
])
def test_each_product_path_is_exact(n: int, bits: int, path: str) -> None:
    """ops.product against numpy's int64 product at the edge of each path's bound."""
    rng = np.random.default_rng(n + bits)
    w = rng.integers(-256, 256, (n, 5))
    w[:, 0] = 255                                       # the largest weight everywhere
    top = 2 ** (bits - 1) if bits else 1
    x = rng.integers(-top, top, (7, n)) if bits else rng.integers(0, 2, (7, n))
    x[0] = top - 1 if bits else 1                       # the largest sums
    m = torchops.Matrix(torch, torch.tensor(w, dtype=torch.float64), float(np.abs(w).max()))
    bound = top * m.top * m.n_sum
    assert path == ("float32" if bound < 2**24 else "float64" if bound < 2**53 else "limbs")
    got = torchops.product(torch, torch.tensor(x), m, float(top)).numpy()
    np.testing.assert_array_equal(got, x @ w)


def test_a_float32_product_past_its_bound_is_caught() -> None:
    """Negative control: trusting float32 beyond 2^24 (16-bit payloads into 64 inputs,
    sums up to 2^29) changes activations, and the comparison says so."""
    block = SynapseBlock("W", "dense", "in", "L0", np.full((3, 64), 255, np.int32),
                         num_message_bits=16)
    program = programs.one_block_program(block, 64, 3, message_bits=16)
    rng = np.random.default_rng(0)
    x = rng.integers(2**14, 2**15, (1, 4, 64)) | 1            # odd: low bits matter
    assert _compare(program, x, "cpu-torch", 6) > 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(torchops.EXACT, "float32", 2.0**40)
        with pytest.raises(AssertionError):
            _compare(program, x, "cpu-torch", 6)


def test_accelerator_errors_are_one_line() -> None:
    program = programs.random_program(1)
    x = programs.random_inputs(program, 1, 1, 4)
    with pytest.raises(InputError, match="mode 'event' runs on the CPU only"):
        engine.run(program, x, mode="event", accelerator="cpu-torch")
    with pytest.raises(InputError, match="unknown accelerator 'tpu'"):
        engine.run(program, x, accelerator="tpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA: the refusal cannot be seen here")
def test_cuda_without_a_gpu_is_one_line_exit_2(tmp_path: object,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from snn2hw import devices
    from snn2hw.cli import main

    with pytest.raises(devices.DeviceError, match="sees no CUDA device"):
        devices.get("emulator", accelerator="cuda").load(programs.random_program(1))
    np.save(f"{tmp_path}/x.npy", np.zeros((1, 4, 3), np.int8))
    code = main(["run", "missing.h5", "--input", f"{tmp_path}/x.npy", "--output",
                 f"{tmp_path}/o.npz", "--accelerator", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "CUDA" in err and "--accelerator cpu" in err


def test_the_device_interface_takes_an_accelerator() -> None:
    from snn2hw import devices

    program = programs.random_program(2)
    x = programs.random_inputs(program, 2, 3, 8)
    dev = devices.get("emulator", accelerator="cpu-torch").load(program)
    got, want = dev.run(x, record=ALL), engine.run(program, x, record=ALL, mode="step")
    assert assert_same(got, want) > 0
    with pytest.raises(devices.UserInputError, match="no accelerator option"):
        devices.get("lava", accelerator="cuda")


# --------------------------------------------------------------------------- on a GPU


@gpu
@needs_cuda
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(sorted(PROGRAMS)),
       batch=st.integers(1, 3), rate=st.sampled_from([0.05, 0.4]))
def test_cuda_equals_the_step_engine(seed: int, kind: str, batch: int, rate: float) -> None:
    program = PROGRAMS[kind](seed)
    x = programs.random_inputs(program, seed, batch, 14, rate=rate)
    assert _compare(program, x, "cuda") > 0


@gpu
@needs_cuda
@pytest.mark.parametrize("n, bits", [(64, 0), (64, 16), (1 << 15, 31)])
def test_cuda_products_are_exact(n: int, bits: int) -> None:
    """The products on the GPU (cuBLAS, no TF32) equal numpy's int64 products."""
    rng = np.random.default_rng(n)
    w = rng.integers(-256, 256, (n, 300))
    top = 2 ** (bits - 1) if bits else 1
    x = rng.integers(-top, top, (513, n)) if bits else rng.integers(0, 2, (513, n))
    m = torchops.Matrix(torch, torch.tensor(w, dtype=torch.float64, device="cuda"),
                        float(np.abs(w).max()))
    got = torchops.product(torch, torch.tensor(x, device="cuda"), m, float(top)).cpu().numpy()
    np.testing.assert_array_equal(got, x @ w)


@gpu
@needs_cuda
def test_cuda_on_a_wide_net_at_batch() -> None:
    """784-256-10 at batch 64 (bench_emulator's net): equal to the CPU engine."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from bench_emulator import ff_program

    program = ff_program((784, 256, 10))
    x = (np.random.default_rng(4).random((64, 40, 784)) < 0.1).astype(np.int8)
    got = engine.run(program, x, record=ALL, accelerator="cuda")
    assert assert_same(got, engine.run(program, x, record=ALL)) > 0
