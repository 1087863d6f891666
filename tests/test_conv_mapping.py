"""Structured projections and axon-aware partitioning (issue 13): convolutions are never
held as dense matrices, chains compose exactly, and spiking CNNs fit the chips."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc
import warnings

import conv_nets
import nir
import numpy as np
import pytest

from snn2hw import checker, compiler, ir
from snn2hw.errors import DesignRuleError
from snn2hw.passes import partition, structure
from snn2hw.reference import STATELESS

DT = 1e-3


def _graph(nodes: dict, chain: list[str]) -> ir.Graph:
    return checker.from_nir(nir.NIRGraph(nodes, list(itertools.pairwise(chain)),
                                         type_check=False), metadata={"dt": DT})


def _chain_output(graph: ir.Graph, p: structure.Projection, x: np.ndarray) -> np.ndarray:
    y = x
    for name in p.nodes:
        y = STATELESS[type(graph.nodes[name])](graph.nodes[name], y)
    return y.reshape(x.shape[0], -1)


def _if(shape: tuple[int, ...]) -> nir.IF:
    return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))


def test_event_cnn_projections_keep_their_structure_and_equal_the_chain() -> None:
    graph = checker.from_nir(conv_nets.event_cnn(), metadata={"dt": DT})
    st = structure.analyse(graph)
    kinds = {p.name: p.kind for p in st.projections}
    assert kinds == {"input->if1": "conv", "if1->if2": "conv", "if2->if3": "conv",
                     "if3->if4": "dense", "if4->if5": "dense"}
    fused = next(p for p in st.projections if p.target == "if3")
    assert fused.nodes == ("pool2", "conv3")             # SumPool 2 then conv: one conv
    assert np.asarray(fused.conv.weight).shape == (8, 16, 6, 6)
    rng = np.random.default_rng(0)
    for p in st.projections:
        x = (rng.random((3, *st.shapes[p.source])) < 0.3).astype(float)
        want = _chain_output(graph, p, x) - p.bias
        got = p.apply(x.reshape(3, -1))
        assert np.abs(got - want).max() < 1e-9, p.name
    assert sum(p.synapses for p in st.projections) == 1_122_848   # kernel taps inside maps


def test_other_chains_are_sparse_and_exact() -> None:
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(np.array([3, 9, 9])),
             "scale": nir.Scale(rng.normal(size=(3, 9, 9))),
             "conv": nir.Conv2d(None, rng.normal(size=(4, 3, 3, 3)), 2, 1, 1, 1, np.zeros(4)),
             "a": _if((4, 5, 5)),
             "pool": nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
             "conv2": nir.Conv2d(None, rng.normal(size=(2, 4, 2, 2)), 1, 0, 1, 1, np.ones(2)),
             "b": _if((2, 1, 1)), "output": nir.Output(np.array([2, 1, 1]))}
    graph = _graph(nodes, ["input", "scale", "conv", "a", "pool", "conv2", "b", "output"])
    st = structure.analyse(graph)
    assert [p.kind for p in st.projections] == ["sparse", "sparse"]  # 5x5: pool not exact
    for p in st.projections:
        x = rng.random((2, *st.shapes[p.source]))
        assert np.abs(p.apply(x.reshape(2, -1)) - (_chain_output(graph, p, x) - p.bias)
                      ).max() < 1e-9
    assert np.allclose(st.projections[1].bias, 1.0)


def _conv_layer(c_in: int) -> ir.Graph:
    rng = np.random.default_rng(2)
    nodes = {"input": nir.Input(np.array([c_in, 32, 32])),
             "conv": nir.Conv2d(None, rng.normal(size=(8, c_in, 3, 3)) * 0.3, 1, 1, 1, 1,
                                np.zeros(8)),
             "if": _if((8, 32, 32)), "output": nir.Output(np.array([8, 32, 32]))}
    return _graph(nodes, ["input", "conv", "if", "output"])


def test_a_conv_layer_is_never_materialised_densely() -> None:
    """8x32x32 -> 3x3 conv -> 8x32x32 (the issue's case) as a dense float matrix:
    8192 x 8192 x 8 B = 512 MiB. Canonicalise holds it as a kernel; a whole compile of
    4x32x32 -> 8x32x32 (its input fits a core's 4096 axons; dense: 256 MiB) stays a
    conv block and far below that."""
    tracemalloc.start()
    try:
        st = structure.analyse(_conv_layer(8))
        after_structure = tracemalloc.get_traced_memory()[1]
        graph = _conv_layer(4)
        x = conv_nets.events((4, 32, 32), 2, 5, 0.05)
        tracemalloc.reset_peak()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = compiler.compile(graph, compiler.Options(target="loihi2"), calibration=x)
        after_compile = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert st.projections[0].kind == "conv"
    assert after_structure < 512 * 2**20 / 64, after_structure
    assert [b.kind for b in c.program.blocks] == ["conv"]
    assert after_compile < 256 * 2**20 / 8, after_compile


def test_partition_tiles_cover_every_neuron_once_with_all_channels() -> None:
    from snn2hw.passes.hwmodel import HwGroup

    shape = (16, 16, 16)
    n = int(np.prod(shape))
    g = HwGroup("g", "g", np.arange(n), (n,), "lif", 4095, 0, 1, 1.0, np.zeros(n, int),
                np.zeros(n, int), np.zeros(n, int), 1)
    for parts in (2, 5, 12, 40):
        tiles = partition.cut(g, parts, shape)
        assert len(tiles) >= parts
        flat = np.concatenate(tiles)
        assert np.array_equal(np.sort(flat), np.arange(n))
        for rows in tiles:
            c, y, x = np.unravel_index(rows, shape)
            assert len(set(c)) == 16                        # every channel in every tile
            hw = len(set(y)) * len(set(x))
            assert rows.size == 16 * hw                      # a rectangle of positions


def _exact_fan_out(net) -> dict[int, int]:
    """Per core: over its neurons, the other cores each one has a synapse on (brute force)."""
    core_of = {g.name: g.core for g in net.groups}
    out: dict[int, int] = {}
    for g in net.groups:
        total = 0
        for i in g.index:
            cores = set()
            for b in net.blocks:
                if b.source != g.population:
                    continue
                if b.kind == "conv" or np.any(b.weights[:, i] != 0):
                    cores.add(core_of[b.target])
            total += len(cores - {g.core})
        out[g.core] = out.get(g.core, 0) + total
    return out


def test_a_source_reaching_many_cores_is_split_for_fan_out() -> None:
    """tiny: 16 neurons all-to-all onto 80 (5 cores of 16). Counted as before (every
    neuron x every destination core) the 16 use 80 > 64 axons; they are cut in two."""
    rng = np.random.default_rng(3)
    nodes = {"input": nir.Input(np.array([8])), "fc1": nir.Linear(rng.random((16, 8)) + 0.1),
             "a": _if((16,)), "fc2": nir.Linear(rng.random((80, 16)) + 0.1),
             "b": _if((80,)), "output": nir.Output(np.array([80]))}
    graph = _graph(nodes, ["input", "fc1", "a", "fc2", "b", "output"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compiler.compile(graph, compiler.Options(target="tiny", allow_saturation=True))
    layers = {row["population"]: row for row in c.net.report["mapping"]["layers"]}
    assert layers["a"]["parts"] == 2 and layers["a"]["binding"] == "fan-out"
    assert layers["b"]["parts"] == 5 and layers["b"]["binding"] == "neurons"
    assert layers["b"]["lower_bound"] == 5
    per_core = {u["index"]: u["fan_out"] for u in c.net.report["mapping"]["per_core"]}
    assert per_core == {k: v for k, v in _exact_fan_out(c.net).items()}
    assert max(per_core.values()) <= 64


def test_fan_in_beyond_a_core_is_reported_with_numbers_and_a_fix() -> None:
    rng = np.random.default_rng(4)
    nodes = {"input": nir.Input(np.array([100])), "fc": nir.Linear(rng.random((4, 100))),
             "a": _if((4,)), "output": nir.Output(np.array([4]))}
    graph = _graph(nodes, ["input", "fc", "a", "output"])
    with pytest.raises(DesignRuleError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.compile(graph, compiler.Options(target="tiny", allow_saturation=True))
    assert "fan-in axons per core" in str(err.value) and "100 > 64" in str(err.value)
    assert "intermediate layer" in str(err.value)


def _compile_cnn(target: str, **kw):
    graph = checker.from_nir(conv_nets.event_cnn(**kw), metadata={"dt": DT})
    x = conv_nets.events((2, 34, 34), 4, 20, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return graph, compiler.compile(graph, compiler.Options(target=target), calibration=x)


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_event_cnn_fits_one_chip(target: str) -> None:
    _, c = _compile_cnn(target)
    mapping = c.net.report["mapping"]
    assert mapping["chips"] == 1
    layers = {row["population"]: row for row in mapping["layers"]}
    assert set(layers) == {"if1", "if2", "if3", "if4", "if5"}
    for row in layers.values():
        assert row["cores"] >= 1 and row["lower_bound"] <= row["parts"]
    if target == "loihi2":                 # kept convolutions, one core per conv layer
        assert mapping["cores"] <= 5
        assert {b.kind for b in c.program.blocks} >= {"conv"}
    else:                                  # unrolled, cut into spatial tiles
        assert layers["if2"]["parts"] >= layers["if2"]["lower_bound"] >= 4
        assert layers["if1"]["fan_out_max"] < 2 * 1024     # tiles: few cores per neuron
        assert not any(b.kind == "conv" for b in c.program.blocks)
    assert all(u["fan_out"] <= 4096 and u["fan_in"] <= 4096 for u in mapping["per_core"])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
def test_event_cnn_float_vs_emulator_agreement(target: str) -> None:
    """Random event input (5% of pixels per step; 8 samples x 30 steps: 983,040 spike
    entries in if1 and if2, 122,880 in if3, 61,440 in if4, 2,400 in if5), per-layer
    identical-spike fraction against the float reference. Fed the device's input spikes
    (snn2hw/layerwise.py), every layer agrees >= 99% (measured 99.85% if1, >= 99.94%
    the others). Closed loop the conv layers reach 99%; the dense layers below them
    follow the conv layers' few misplaced spikes (IF neurons keep every input, no leak
    forgets them) to 97.8% / 97.0%, which is what the float model with the compiled
    8-bit weights and nothing else changed gives against itself (97.84% / 97.08%): the
    closed-loop gap is the weights' rounding, held here to 97% and to spike counts."""
    from snn2hw import verify

    graph, c = _compile_cnn(target, gain=1.0, fc_gain=2.5)
    x = conv_nets.events((2, 34, 34), 8, 30, 0.05, seed=2)
    rep, _ = verify.verify(graph, c.program, x)
    layers = {la.population: la for la in rep.layers}
    assert set(layers) == {"if1", "if2", "if3", "if4", "if5"}
    assert all(la.spikes_reference > 40 for la in layers.values())
    for pop, la in layers.items():
        assert la.fed_fraction >= 0.99, rep.table()
        entries = x.shape[0] * x.shape[1] * int(np.prod(graph.nodes[pop].r.shape))
        assert (1 - la.fed_fraction) * entries < 0.15 * la.spikes_reference, rep.table()
    for pop in ("if1", "if2", "if3"):
        assert layers[pop].identical_fraction >= 0.99, rep.table()
    for pop in ("if4", "if5"):
        assert layers[pop].identical_fraction >= 0.97, rep.table()
        ratio = layers[pop].spikes_device / layers[pop].spikes_reference
        assert 0.85 <= ratio <= 1.15, rep.table()


@pytest.mark.lava
@pytest.mark.slow
def test_event_cnn_runs_on_lava_as_on_the_emulator() -> None:
    """The compiled CNN (kept convolutions on loihi2; unrolled and cut into spatial tiles
    on loihi1) is bit-identical on Lava's fixed-point models: every spike, u and v."""
    from snn2hw_emulator import engine

    from snn2hw.backends import lava
    from snn2hw.compare import first_divergence

    runs = []
    for target in ("loihi2", "loihi1"):
        _, c = _compile_cnn(target, gain=1.5, fc_gain=3.0)
        x = conv_nets.events((2, 34, 34), 1, 10, 0.1, seed=5).reshape(1, 10, -1)
        x = x[:, :, np.asarray(c.net.layouts["input"])]
        runs.append((c.program, x.astype(np.int64), 14))
    results = lava.run_many(runs, record=("spikes", "u", "v"))
    for (program, x, steps), got in zip(runs, results, strict=True):
        want = engine.run(program, x, steps=steps, record=("spikes", "u", "v"))
        assert first_divergence(want, got) is None, first_divergence(want, got)
        assert all(int(s.sum()) > 0 for s in want.spikes.values())


def test_sparse_block_memory_is_the_program_image_formula() -> None:
    import scipy.sparse as sp
    from snn2hw_emulator.program import SynapseBlock, synapse_memory_bits

    from snn2hw.passes import mapping
    from snn2hw.passes.hwmodel import HwBlock
    from snn2hw.targets import load

    rng = np.random.default_rng(6)
    for shape, density in (((40, 300), 0.02), ((7, 9), 0.9), ((5, 1), 1.0)):
        w = sp.random(*shape, density=density, format="csr", random_state=rng,
                      data_rvs=lambda n: rng.integers(-120, 120, n) * 2)
        block = HwBlock("b", "s", "t", "dense", sp.csr_matrix(w, dtype=np.int64), -1, 8,
                        "mixed")
        for target in ("loihi1", "loihi2", "tiny"):
            kind, bits = mapping.storage(block, load(target))
            dense = dataclasses.replace(block, weights=w.toarray().astype(np.int64))
            assert (kind, bits) == mapping.storage(dense, load(target))
            spec = SynapseBlock("m", kind, "s", "t", dense.weights, num_weight_bits=8)
            assert bits == synapse_memory_bits(spec)


def test_pilotnet_sized_net_compiles_and_emits_for_loihi2_without_dense_blocks() -> None:
    """3x66x200 -> five 3x3/2 convs (24..64) -> 100/50/10: the large conv layers are
    unrolled (sparse), cut into spatial tiles, mapped onto 2 chips and emitted. Every
    unrolled block stays a csr matrix: one dense slice of if1's block alone (a tile's
    rows x 39600 inputs, int64) would take over 700 MiB, the whole compile stays far
    below (measured peak ~560 MiB, mostly the float calibration run)."""
    import scipy.sparse as sp

    from snn2hw.targets import load

    graph = checker.from_nir(conv_nets.pilotnet(), metadata={"dt": DT})
    x = conv_nets.events((3, 66, 200), 2, 8, 0.05)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = compiler.compile(graph, compiler.Options(target="loihi2"), calibration=x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    mapping = c.net.report["mapping"]
    layers = {row["population"]: row for row in mapping["layers"]}
    assert layers["if1"]["neurons"] == 24 * 32 * 99
    assert layers["if1"]["cores"] >= layers["if1"]["lower_bound"] > 1
    assert 1 < mapping["chips"] <= load("loihi2").chip.chips_max
    assert c.report["cores"] == mapping["cores"] > 100
    limits = load("loihi2").core
    for u in mapping["per_core"]:
        assert u["neurons"] <= limits.neurons_max and u["memory_bits"] <= limits.synapse_memory_bits
        assert u["fan_in"] <= limits.fan_in_axons_max and u["fan_out"] <= limits.fan_out_axons_max
    sparse = [b for b in c.program.blocks if b.kind == "sparse"]
    assert len(sparse) > 100 and all(sp.issparse(b.weights) for b in sparse)
    dense = [b for b in c.program.blocks if not sp.issparse(b.weights)]
    assert max(np.size(b.weights) for b in dense) <= 100 * 128     # only the small dense head
    assert {b.target.split("[")[0] for b in sparse} >= {"if1", "if2", "if3", "if4", "if5"}
    assert peak < 1 << 30, peak
