"""The vectorised engine against the normative kernels, across modes and batch sizes
(random programs, and random codebook programs with both table scopes)."""

from __future__ import annotations

import dataclasses

import numpy as np
import programs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine, kernels, reference
from snn2hw_emulator.program import SynapseBlock, expanded_weights


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


def res_inputs(program, x):
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


# --------------------------------------------------------------------------- codebook blocks


def _equals_reference(program, x, steps: int, mode: str = "batch") -> None:
    res = engine.run(program, x, steps=steps, record=("spikes", "u", "v"), mode=mode)
    for b in range(x.shape[0]):
        ref = reference.run_one(program, {"in": res_inputs(program, x)[b]}, steps)
        for var in ("spikes", "u", "v"):
            for g, want in ref[var].items():
                got = getattr(res, var)[g][b]
                assert np.array_equal(want, got), _first_difference(f"{var}[{g}]", want, got)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), scope=st.sampled_from(["layer", "neuron"]),
       graded=st.booleans(), mode=st.sampled_from(engine.MODES))
def test_codebook_engine_equals_reference_kernels(seed: int, scope: str, graded: bool,
                                                  mode: str) -> None:
    program = programs.codebook_program(seed, scope=scope, graded=graded)
    assert all(b.kind == "codebook" and b.codebook.shape[0] == (
        1 if scope == "layer" else b.weights.shape[0]) for b in program.blocks)
    _equals_reference(program, programs.random_inputs(program, seed, batch=2, steps=25), 30,
                      mode)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), batch=st.integers(1, 4))
def test_codebook_modes_and_batch_sizes_agree(seed: int, batch: int) -> None:
    program = programs.codebook_program(seed)
    x = programs.random_inputs(program, seed + 1, batch=batch, steps=20)
    full = engine.run(program, x, record=("spikes", "u", "v"), mode="batch")
    event = engine.run(program, x, record=("spikes", "u", "v"), mode="event")
    singles = engine.concatenate([engine.run(program, x[i:i + 1], record=("spikes", "u", "v"))
                                  for i in range(batch)])
    for other in (event, singles):
        for var in ("spikes", "u", "v"):
            for g in full.spikes:
                assert np.array_equal(getattr(full, var)[g], getattr(other, var)[g])
        for e, counts in full.cost.counts.items():
            assert np.array_equal(counts, other.cost.counts[e]), e


def test_codebook_lookup_by_hand() -> None:
    idx = np.array([[0, -1, 2], [1, 1, -1]])
    layer = SynapseBlock("W", "codebook", "in", "L0", idx, codebook=np.array([[5, -3, 100]]))
    assert expanded_weights(layer).tolist() == [[5, 0, 100], [-3, -3, 0]]
    neuron = dataclasses.replace(layer, codebook=np.array([[5, -3, 100], [7, 8, 9]]))
    assert expanded_weights(neuron).tolist() == [[5, 0, 100], [8, 8, 0]]
    for block in (layer, neuron):           # the normative kernel agrees
        assert kernels.codebook_weights(idx.tolist(), block.codebook.tolist()) == \
            expanded_weights(block).tolist()
    # the sign mode comes from the expanded matrix: with -3 in use it is mixed (the LSB is
    # cleared: 5 -> 4, -3 -> -4); with -3 in the table but unused it is excitatory
    assert engine.effective_weights(layer).tolist() == [[4, 0, 100], [-4, -4, 0]]
    unused = dataclasses.replace(layer, weights=np.array([[0, -1, 2], [2, 0, -1]]))
    assert engine.effective_weights(unused).tolist() == [[5, 0, 100], [100, 5, 0]]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_codebook_block_runs_as_its_expanded_dense_block(seed: int) -> None:
    program = programs.codebook_program(seed)
    dense = dataclasses.replace(program, blocks=tuple(
        dataclasses.replace(b, kind="dense", weights=expanded_weights(b), codebook=None)
        for b in program.blocks))
    x = programs.random_inputs(program, seed, batch=2, steps=20)
    a = engine.run(program, x, record=("spikes", "u", "v"))
    b = engine.run(dense, x, record=("spikes", "u", "v"))
    for var in ("spikes", "u", "v"):
        for g in a.spikes:
            assert np.array_equal(getattr(a, var)[g], getattr(b, var)[g])


def test_codebook_synops_count_existing_synapses() -> None:
    """A codebook synapse exists when its index is >= 0, even if its value is 0; the
    expanded dense block only counts non-zero weights."""
    block = SynapseBlock("W", "codebook", "in", "L0", np.array([[0, 1, -1], [-1, 1, 1]]),
                         codebook=np.array([[0, 64]]))
    program = programs.one_block_program(block, 3, 2)
    x = np.ones((1, 2, 3), np.int8)
    assert engine.run(program, x).cost.counts["synops"].sum() == 2 * 4
    dense = programs.one_block_program(
        dataclasses.replace(block, kind="dense", weights=expanded_weights(block), codebook=None),
        3, 2)
    assert engine.run(dense, x).cost.counts["synops"].sum() == 2 * 3


@pytest.mark.parametrize(("stride", "padding", "groups"), [(1, 1, 1), (2, 0, 1), (2, 1, 2),
                                                          (3, 2, 1)])
def test_conv_synops_count_the_synapses_each_spike_reaches(stride: int, padding: int,
                                                          groups: int) -> None:
    """A conv block's synaptic ops per input spike are the (output pixel, channel) pairs
    it reaches with a non-zero weight, at the layer's stride, padding and groups: counted
    from the kernel (kernels.conv_activation) one input at a time. Negative control: the
    stride-1 count of taps x channels, which a stride-2 layer would overstate."""
    program = programs.conv_program(3, stride=stride, padding=padding, groups=groups)
    blk = program.blocks[0]
    port, conv_group = program.ports[0], program.groups[0]
    w = blk.weights.tolist()
    reach = []
    for j in range(port.size):
        one = [0] * port.size
        one[j] = 1
        out = kernels.conv_activation(w, one, port.shape, conv_group.shape, blk.conv["stride"],
                                      blk.conv["padding"], blk.conv["dilation"],
                                      blk.conv["groups"], False)
        reach.append(sum(v != 0 for v in out))
    x = np.zeros((port.size, 1, port.size), np.int8)
    x[np.arange(port.size), 0, np.arange(port.size)] = 1     # sample j: input j spikes once
    for mode in engine.MODES:
        syn = engine.run(program, x, mode=mode).cost.counts["synops"]
        assert syn[:, 0, 0].tolist() == reach, mode           # core 0 holds the conv block
    if stride > 1:
        flat = np.count_nonzero(blk.weights) // blk.weights.shape[-1]
        assert sum(reach) < flat * port.size


def _as_csr(program):
    """The program with every sparse block's weights as a scipy csr matrix."""
    import scipy.sparse as sp

    blocks = tuple(dataclasses.replace(b, weights=sp.csr_matrix(b.weights))
                   if b.kind == "sparse" else b for b in program.blocks)
    return dataclasses.replace(program, blocks=blocks)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), graded=st.booleans())
def test_csr_sparse_blocks_run_as_their_dense_matrices(seed: int, graded: bool) -> None:
    """A sparse block held as a csr matrix (what a file gives) equals the same block held
    dense, in both modes, in every variable and cost count, and equals the kernels."""
    program = programs.random_program(seed, kinds=("sparse",), graded=graded, wild=True)
    csr = _as_csr(program)
    assert all(type(b.weights).__name__ == "csr_matrix" for b in csr.blocks)
    x = programs.random_inputs(program, seed, batch=2, steps=20)
    want = engine.run(program, x, steps=24, record=("spikes", "u", "v"))
    ref = reference.run_one(csr, {"in": res_inputs(program, x)[1]}, 24)
    for mode in ("batch", "event"):
        got = engine.run(csr, x, steps=24, record=("spikes", "u", "v"), mode=mode)
        for var in ("spikes", "u", "v"):
            for g in want.spikes:
                assert np.array_equal(getattr(want, var)[g], getattr(got, var)[g]), \
                    _first_difference(f"{mode} {var}[{g}]", getattr(want, var)[g],
                                      getattr(got, var)[g])
                assert np.array_equal(ref[var][g], getattr(got, var)[g][1])
        assert np.array_equal(want.cost.energy_pj, got.cost.energy_pj)
    assert any(want.u[g].any() for g in want.u)                     # something was compared


def test_graded_csr_product_wraps_at_32_bits_like_lavas_int32_dot() -> None:
    """Lava's Sparse computes a graded product as an int32 dot, which wraps before
    weight_exp: the csr product (exact in int64) keeps that wrap."""
    import scipy.sparse as sp

    w = sp.csr_matrix(np.array([[255, 255, 255], [0, 0, 7]], dtype=np.int64))
    block = SynapseBlock("W", "sparse", "in", "L0", w, weight_exp=-4, num_weight_bits=8,
                         sign_mode="exc", num_message_bits=24)
    program = programs.one_block_program(block, 3, 2, message_bits=24)
    x = np.full((1, 1, 3), 2**23 - 1, dtype=np.int64)
    res = engine.run(program, {"in": x}, steps=2, record=("u",))
    a = kernels.dense_activation(w.toarray().tolist(), x[0, 0].tolist(), -4, True)
    assert a[0] != (3 * 255 * (2**23 - 1)) >> 4                     # the wrap matters here
    want = [kernels.lif_step(0, 0, ai, 4095, 0, 100000, 0, 0)[0] for ai in a]
    assert res.u["L0"][0, 1].tolist() == want
