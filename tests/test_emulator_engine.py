"""The vectorised engine against the normative kernels, across modes and batch sizes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

import programs
from snn2hw_emulator import engine, kernels, reference


def _first_difference(name: str, want: np.ndarray, got: np.ndarray) -> str:
    idx = np.argwhere(want != got)
    t, n = idx[0][-2:]
    return (f"{name}: {len(idx)} values differ; first at step {t + 1}, neuron {n}: "
            f"expected {want[tuple(idx[0])]}, got {got[tuple(idx[0])]}")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_engine_equals_reference_kernels(seed: int) -> None:
    program = programs.random_program(seed)
    x = programs.random_inputs(program, seed, batch=2, steps=30)
    res = engine.run(program, x, steps=35, record=("spikes", "u", "v"))
    for b in range(2):
        ref = reference.run_one(program, {"in": res_inputs(program, x)[b]}, 35)
        for var in ("spikes", "u", "v"):
            for g, want in ref[var].items():
                got = getattr(res, var)[g][b]
                assert np.array_equal(want, got), _first_difference(f"{var}[{g}]", want, got)


def res_inputs(program, x):  # noqa: ANN001, ANN201
    if program.ports[0].message_bits:
        return np.clip(x.astype(np.int64), -128, 127)
    return x.astype(np.int64)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), batch=st.integers(1, 5))
def test_modes_and_batch_sizes_agree(seed: int, batch: int) -> None:
    program = programs.random_program(seed)
    x = programs.random_inputs(program, seed + 1, batch=batch, steps=25)
    full = engine.run(program, x, record=("spikes", "u", "v"), mode="batch")
    event = engine.run(program, x, record=("spikes", "u", "v"), mode="event")
    singles = engine.concatenate([engine.run(program, x[i:i + 1], record=("spikes", "u", "v"))
                                  for i in range(batch)])
    for other in (event, singles):
        for var in ("spikes", "u", "v"):
            for g in full.spikes:
                assert np.array_equal(getattr(full, var)[g], getattr(other, var)[g])
        assert np.array_equal(full.cost.energy_pj, other.cost.energy_pj)


def test_kernel_edge_cases_from_the_spec() -> None:
    # du=0 still leaks u (decayU + 1): 64000 -> 63984
    assert kernels.lif_step(64000, 0, 0, 0, 4096, 10**6, 0, 0)[0] == 63984
    # bias with a negative exponent floors: -5 >> 1 = -3
    assert kernels.floor_shift(-5, -1) == -3
    # strict threshold: v == vth << 6 does not spike
    assert kernels.lif_step(0, 0, 1, 4095, 4096, 1, 0, 0)[2] == 0
    assert kernels.lif_step(0, 0, 2, 4095, 4096, 1, 0, 0)[2] == 1
    # an input landing on -2^23 becomes +2^23 (one conditional wrap)
    assert kernels.lif_step(0, 0, -(2**23) >> 6, 4095, 4096, 2**16, 0, 0)[0] == 2**23
    # mixed 8-bit weights lose their LSB (floor): 3 -> 2, -3 -> -4
    assert [kernels.effective_weight(w, "mixed", 8) for w in (3, -3, 5, -1)] == [2, -4, 4, -2]
    # inhibitory weights truncate the magnitude
    assert kernels.effective_weight(-3, "inh", 7) == -2
    # round-toward-zero decay
    assert kernels.trunc_decay(-4097, 2048) == -2048
