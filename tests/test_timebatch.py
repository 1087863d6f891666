"""The time-batched engine (emulator/timebatch.py, lifloop.py) against the step engine and
the normative kernels: every recorded variable, saturation count and cost count equal,
on random programs of every block kind, LIF, LIFReset and sigma-delta groups, recurrence
and delays; with and without the compiled LIF loop."""

from __future__ import annotations

import numpy as np
import programs
import pytest
import sd_programs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine, int8mm, lifloop, reference, synapses, timebatch
from snn2hw_emulator.program import SynapseBlock

ALL = tuple(engine.RECORDABLE)


def assert_same(a: engine.Result, b: engine.Result) -> int:
    """Equal in everything; returns how many recorded values were compared."""
    compared = 0
    for var in ALL:
        da, db = getattr(a, var), getattr(b, var)
        assert da.keys() == db.keys(), var
        for k in da:
            assert da[k].dtype == db[k].dtype, (var, k)
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{var}[{k}]")
            compared += da[k].size
    assert a.saturation == b.saturation
    assert a.cost is not None and b.cost is not None
    for e in a.cost.counts:
        np.testing.assert_array_equal(a.cost.counts[e], b.cost.counts[e], err_msg=e)
    np.testing.assert_array_equal(a.cost.energy_pj, b.cost.energy_pj)
    return compared


def _both(program, x, steps: int) -> int:
    got = engine.run(program, x, steps=steps, record=ALL, mode="batch")
    want = engine.run(program, x, steps=steps, record=ALL, mode="step")
    return assert_same(got, want)


PROGRAMS = {
    "random": lambda s: programs.random_program(s),
    "codebook": lambda s: programs.codebook_program(s),
    "conv": lambda s: programs.conv_program(s),
    "sigma-delta": lambda s: sd_programs.sigma_delta_program(s, conv=s % 2 == 0),
}


#: how dense blocks are evaluated: (GATHER_DENSITY, TORCH_FROM, int8) forcing each product
PATHS = {"auto": (timebatch.GATHER_DENSITY, timebatch.TORCH_FROM, True),
         "gather": (1.1, float("inf"), False),  # weight rows of non-zero inputs (numba;
                                                # int16 sums for binary rows that allow it)
         "int8": (0.0, 0.0, True),              # torch's int8 product (binary inputs)
         "torch": (0.0, 0.0, False),            # torch's float matmul
         "numpy": (0.0, float("inf"), False)}   # numpy's float32/64 BLAS


def _force(mp: pytest.MonkeyPatch, path: str, compiled: bool = True) -> None:
    """Small test programs take the path ``path`` (and the compiled loops, or not)."""
    mp.setattr(lifloop, "AVAILABLE", compiled and lifloop.AVAILABLE)
    mp.setattr(lifloop, "LOAD_FROM", 0)
    mp.setattr(timebatch, "GATHER_DENSITY", PATHS[path][0])
    mp.setattr(timebatch, "TORCH_FROM", PATHS[path][1])
    mp.setattr(timebatch, "TORCH_IMPORT_FROM", PATHS[path][1])
    mp.setattr(timebatch, "INT8", PATHS[path][2])
    mp.setattr(timebatch, "INT8_DENSITY", 0.0 if path == "int8" else timebatch.INT8_DENSITY)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(sorted(PROGRAMS)),
       batch=st.integers(1, 3), compiled=st.booleans(), path=st.sampled_from(sorted(PATHS)),
       rate=st.sampled_from([0.05, 0.4]))
def test_time_batched_equals_step_engine(seed: int, kind: str, batch: int, compiled: bool,
                                         path: str, rate: float) -> None:
    """``compiled`` False: no numba (LIF groups step with engine.lif_update, no gather)."""
    program = PROGRAMS[kind](seed)
    x = programs.random_inputs(program, seed, batch, 14, rate=rate)
    with pytest.MonkeyPatch.context() as mp:
        _force(mp, path, compiled)
        assert _both(program, x, 18) > 0


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_product_path_on_a_wide_net(path: str) -> None:
    """784-96-10 at batch 8 with sparse and dense input, each product path."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from bench_emulator import ff_program

    program = ff_program((784, 96, 10))
    rng = np.random.default_rng(3)
    for rate in (0.02, 0.5):
        x = (rng.random((8, 30, 784)) < rate).astype(np.int8)
        with pytest.MonkeyPatch.context() as mp:
            _force(mp, path)
            assert _both(program, x, 32) > 0


def test_the_compiled_loop_is_there() -> None:
    """make setup installs the ``fast`` extra: the compiled loops run for large work."""
    assert lifloop.AVAILABLE and lifloop.ready(lifloop.LOAD_FROM)


@pytest.mark.parametrize("seed", range(6))
def test_time_batched_equals_the_kernels(seed: int) -> None:
    program = programs.random_program(seed, recurrent=seed % 2 == 0)
    x = programs.random_inputs(program, seed, 2, 10)
    got = engine.run(program, x, steps=12, record=("spikes", "u", "v"), mode="batch")
    for b in range(x.shape[0]):
        xb = np.asarray(x[b], np.int64)
        bits = program.ports[0].message_bits     # graded payloads saturate at the port
        xb = np.clip(xb, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if bits else xb
        want = reference.run_one(program, {"in": xb}, 12)
        for var in ("spikes", "u", "v"):
            for g, arr in want[var].items():
                np.testing.assert_array_equal(getattr(got, var)[g][b], arr,
                                              err_msg=f"{var} {g}")


def test_a_cycle_through_two_groups_runs_step_by_step() -> None:
    program = programs.random_program(3, layers=3, recurrent=False)
    back = SynapseBlock("Wback", "dense", "L2", "L0",
                        np.full((program.groups[0].size, program.groups[2].size), 40, np.int32))
    cyclic = programs.with_block(program, back)
    assert timebatch.order(cyclic) is None and timebatch.order(program) is not None
    x = programs.random_inputs(cyclic, 1, 2, 12)
    assert _both(cyclic, x, 14) > 0


@pytest.mark.parametrize("n, exp, bits, dtype", [
    (1 << 17, 0, 0, np.float64),      # |sum| up to 255 * 2^17: beyond float32's 2^24
    (64, 7, 0, np.float32),           # shifted left by 7, still below 2^31
    (64, 0, 16, np.float64),          # graded 16-bit payloads: |sum| < 2^29
    (64, 0, 24, None),                # graded 24-bit payloads may wrap: the integer path
])
def test_the_float_product_is_used_only_where_exact(n: int, exp: int, bits: int,
                                                    dtype: object) -> None:
    block = SynapseBlock("W", "dense", "in", "L0", np.full((3, n), 255, np.int32),
                         weight_exp=exp, num_message_bits=bits)
    program = programs.one_block_program(block, n, 3, message_bits=bits)
    blk = synapses.prepare(block)
    chosen = timebatch._float_product(blk, 0, blk.weights, 2 ** (bits - 1) if bits else 1)
    assert (chosen and chosen[0]) is dtype or (chosen is None and dtype is None)
    rng = np.random.default_rng(0)
    x = (rng.random((1, 4, n)) < 0.9).astype(np.int32)
    if bits:
        x = x * rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), x.shape)
    assert _both(program, x, 6) > 0


def test_a_wrong_rule_is_caught() -> None:
    """Negative control: with a planted one-step-longer latency the time-batched engine
    no longer equals the step engine, and the comparison says so."""
    program = programs.random_program(5, recurrent=False, graded=False)
    x = programs.random_inputs(program, 5, 2, 12, rate=0.6)
    assert _both(program, x, 14) > 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timebatch, "LATENCY", 2)
        with pytest.raises(AssertionError):
            _both(program, x, 14)


def test_the_device_takes_a_bare_array_for_a_one_port_program() -> None:
    """devices' documented contract (issue 16: it raised AttributeError)."""
    from snn2hw import devices

    program = programs.random_program(1)
    x = programs.random_inputs(program, 1, 2, 5)
    bare = devices.get("emulator").load(program).run(x, record=("spikes", "v"))
    named = engine.run(program, {"in": x}, record=("spikes", "v"), mode="step")
    for g in program.groups:
        np.testing.assert_array_equal(bare.spikes[g.name], named.spikes[g.name])
        np.testing.assert_array_equal(bare.v[g.name], named.v[g.name])


@pytest.mark.parametrize("value", [-128, 127, -127])
def test_the_int8_product_is_exact_at_the_extremes(value: int) -> None:
    """Every input on and every weight at an end of the int8 range: the int8 product (on
    the kernel path conftest pins: AVX2, no VNNI) equals the integer sum."""
    import torch

    rng = np.random.default_rng(abs(value))
    w = np.full((40, 784), 2 * value, np.int64)
    w[::3] = rng.integers(-128, 128, (w[::3].shape)) * 2
    block = SynapseBlock("W", "dense", "in", "L0", w.astype(np.int32), weight_exp=-1)
    blk = synapses.prepare(block)
    mat = int8mm.matrix(blk, 0, blk.weights, np.asarray(blk.nnz_col, np.int64))
    assert mat is not None and mat[1] == 1
    x = np.ones((64, 784), np.int8)
    x[32:] = rng.random((32, 784)) < 0.5
    act, syn = int8mm.product(torch, np.negative(x), mat, -1)   # takes 0/-1
    np.testing.assert_array_equal(act, engine.floor_shift(x.astype(np.int64) @ blk.weights.T,
                                                          -1))
    np.testing.assert_array_equal(syn, x.astype(np.int64) @ blk.nnz_col)


def test_reused_work_arrays_leave_every_result_its_own() -> None:
    """The int8 products' sums and the negated spikes live in work arrays reused from run
    to run (emulator/scratch.py), and each product is formed in row chunks (here 7 rows,
    which divide no run's rows): a result kept from one run is unchanged by later runs
    of another program and of other inputs, runs in two threads at once equal the same
    runs one after another, and each equals the step engine."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from bench_emulator import ff_program

    rng = np.random.default_rng(5)
    nets = [ff_program((784, 96, 10)), ff_program((300, 64, 64, 10), seed=1)]
    jobs = [(nets[i % 2], (rng.random((8, 30, 784 if i % 2 == 0 else 300)) < 0.3)
             .astype(np.int8)) for i in range(4)]
    with pytest.MonkeyPatch.context() as mp:
        _force(mp, "int8")
        mp.setattr(int8mm, "CHUNK_BYTES", 4 * 112 * 7)          # 96 + digits -> 112 cols

        def run(job: tuple) -> engine.Result:
            return engine.run(job[0], job[1], steps=32, record=ALL, mode="batch")

        first = run(jobs[0])
        kept = {var: {k: v.copy() for k, v in getattr(first, var).items()} for var in ALL}
        serial = [first] + [run(j) for j in jobs[1:]]
        for var in ALL:
            for k, v in kept[var].items():
                np.testing.assert_array_equal(getattr(first, var)[k], v, err_msg=var)
        with ThreadPoolExecutor(2) as pool:
            threaded = list(pool.map(run, jobs))
        for job, a, b in zip(jobs, serial, threaded):
            assert assert_same(a, b) > 0
            assert_same(a, engine.run(job[0], job[1], steps=32, record=ALL, mode="step"))
        assert sum(int(r.spikes[g].sum()) for r in serial for g in r.spikes) > 1000
