"""The compiler: exactness where quantisation is lossless, invariants on random graphs,
mapping and design rules, weight sharing, range analysis, the pass manager."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import image

from snn2hw import checker, compiler, execute, ir, reference
from snn2hw.errors import DesignRuleError, Snn2hwError, UnsupportedError, UserInputError
from snn2hw.passes import mapping
from snn2hw.passes.quantise import prephase_v0

DT = 1e-4


def if_layer(n: int, theta: float) -> nir.IF:
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, theta), v_reset=np.zeros(n))


def exact_graph(rng: np.random.Generator, n_in: int, hidden: int, n_out: int,
                recurrent: bool, conv: bool) -> ir.Graph:
    """IF network with non-negative integer weights whose largest is 255, integer
    thresholds and biases: quantisation is lossless, so hardware must equal the float
    reference spike for spike (timing, layout, biases, delays, recurrence)."""
    def weights(shape: tuple[int, ...]) -> np.ndarray:
        w = rng.integers(0, 40, size=shape).astype(float)
        w[np.unravel_index(rng.integers(w.size), shape)] = 255.0  # full 8-bit excitatory
        return w

    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    if conv:
        nodes["input"] = nir.Input(np.array([2, 5, 5]))
        nodes["conv"] = nir.Conv2d(input_shape=np.array([5, 5]), weight=weights((3, 2, 3, 3)),
                                   stride=np.array([1, 1]), padding=np.array([1, 1]),
                                   dilation=np.array([1, 1]), groups=1, bias=np.ones(3))
        nodes["c1"] = if_layer(3 * 5 * 5, 200.0).__class__(
            r=np.ones((3, 5, 5)), v_threshold=np.full((3, 5, 5), 200.0), v_reset=np.zeros((3, 5, 5)))
        nodes["flat"] = nir.Flatten(input_type={"input": np.array([3, 5, 5])}, start_dim=0)
        edges += [("input", "conv"), ("conv", "c1"), ("c1", "flat"), ("flat", "fc1")]
        first_in = 75
    else:
        nodes["input"] = nir.Input(np.array([n_in]))
        edges.append(("input", "fc1"))
        first_in = n_in
    nodes["fc1"] = nir.Affine(weights((hidden, first_in)), rng.integers(0, 3, hidden).astype(float))
    nodes["h"] = if_layer(hidden, float(rng.integers(100, 300)))
    nodes["fc2"] = nir.Linear(weights((n_out, hidden)))
    nodes["o"] = if_layer(n_out, float(rng.integers(100, 300)))
    nodes["output"] = nir.Output(np.array([n_out]))
    edges += [("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")]
    if recurrent:
        nodes["rec"] = nir.Linear(weights((hidden, hidden)) * (rng.random((hidden, hidden)) < 0.3))
        edges += [("h", "rec"), ("rec", "h")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})


def spikes_in(rng: np.random.Generator, graph: ir.Graph, batch: int, steps: int) -> np.ndarray:
    shape = tuple(int(s) for s in graph.nodes["input"].output_type["output"])
    return (rng.random((batch, steps, *shape)) < 0.3).astype(np.int8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), target=st.sampled_from(["loihi2", "loihi1", "tiny"]),
       recurrent=st.booleans(), conv=st.booleans())
def test_lossless_network_is_spike_exact(seed: int, target: str, recurrent: bool,
                                         conv: bool) -> None:
    rng = np.random.default_rng(seed)
    graph = exact_graph(rng, int(rng.integers(3, 12)), int(rng.integers(4, 24)),
                        int(rng.integers(2, 6)), recurrent, conv)
    x = spikes_in(rng, graph, 3, 20)
    try:
        c = compiler.compile(graph, compiler.Options(target=target))
    except DesignRuleError as exc:   # tiny cannot hold the conv network: say so with numbers
        assert target == "tiny" and ">" in str(exc)
        return
    ref = reference.simulate(graph, x.astype(float), record=("spikes",))
    hw = execute.run(c.program, x)
    for pop, s in hw.spikes.items():
        np.testing.assert_array_equal(s, ref.spikes[pop].reshape(s.shape), err_msg=pop)


def test_prephase_solution_reaches_zero_without_spiking() -> None:
    bias = np.array([5, 300, 0, 4095 * 4])
    for dv in (0, 410, 2048):
        v0 = prephase_v0(bias, dv, 3, vth=1000)
        assert v0 is not None
        v = v0.copy()
        for _ in range(3):
            p = v * (4096 - dv)
            v = np.sign(p) * (np.abs(p) >> 12) + bias
            assert np.all(v <= 1000 * 64)
        np.testing.assert_array_equal(v, 0)
    assert prephase_v0(np.array([-10**6]), 0, 3, vth=10) is None   # would spike on the way
    assert prephase_v0(np.array([4095 * 4]), 4095, 3, vth=10) is None  # out of the 24-bit range


# --------------------------------------------------------------------------- random graphs


@st.composite
def random_graphs(draw: st.DrawFn) -> ir.Graph:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    depth = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 40)) for _ in range(depth + 1)]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([sizes[0]]))}
    edges, prev = [], "input"
    for k in range(depth):
        n = sizes[k + 1]
        kind = draw(st.sampled_from(["lif", "if", "cuba"]))
        nodes[f"fc{k}"] = nir.Affine(rng.normal(size=(n, sizes[k])) * draw(st.sampled_from(
            [0.01, 0.3, 3.0])), np.zeros(n) if kind == "cuba" else rng.normal(size=n) * 0.1)
        tau = draw(st.sampled_from([2e-4, 1e-3, 5e-3]))
        if kind == "lif":
            nodes[f"n{k}"] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT),
                                     v_leak=np.zeros(n), v_threshold=np.ones(n))
        elif kind == "if":
            nodes[f"n{k}"] = nir.IF(r=np.ones(n), v_threshold=np.ones(n))
        else:
            nodes[f"n{k}"] = nir.CubaLIF(tau_syn=np.full(n, tau), tau_mem=np.full(n, 2 * tau),
                                         r=np.ones(n), v_leak=np.zeros(n),
                                         v_threshold=np.ones(n), w_in=np.full(n, 5.0))
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"n{k}")]
        if draw(st.booleans()):
            nodes[f"rec{k}"] = nir.Linear(rng.normal(size=(n, n)) * 0.2)
            edges += [(f"n{k}", f"rec{k}"), (f"rec{k}", f"n{k}")]
        prev = f"n{k}"
    nodes["output"] = nir.Output(np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), target=st.sampled_from(["loihi2", "loihi1", "tiny"]),
       share=st.sampled_from([None, 4]), scale_groups=st.sampled_from([1, 3]))
def test_random_graphs_compile_within_every_rule(graph: ir.Graph, target: str,
                                                 share: int | None, scale_groups: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            c = compiler.compile(graph, compiler.Options(target=target, share=share,
                                                         scale_groups=scale_groups,
                                                         allow_saturation=True))
        except DesignRuleError as exc:
            assert target == "tiny" and ">" in str(exc)   # a named limit with numbers
            return
    image.validate(c.program)                                   # the emulator accepts it
    with tempfile.TemporaryDirectory() as tmp:                  # and it survives the file
        image.save(c.program, Path(tmp) / "p.h5")
        assert image.load(Path(tmp) / "p.h5").groups[0].name == c.program.groups[0].name
    assert mapping.check_rules(mapping.usage(c.net, c.target), c.target) == []
    compiler.check_values(c.net, c.target)
    shapes = {g.population for g in c.net.groups}
    for pop in shapes:                                          # every neuron placed once
        placed = np.concatenate([g.index for g in c.net.groups_of(pop)])
        size = int(np.prod(graph.nodes[pop].output_type["output"]))
        assert sorted(placed.tolist()) == list(range(size))
    cores = {g.core for g in c.net.groups}
    assert cores == set(range(len(cores)))


# --------------------------------------------------------------------------- mapping


def _wide(n_in: int, n_hidden: int) -> ir.Graph:
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([n_in])),
             "fc": nir.Linear(rng.normal(size=(n_hidden, n_in))),
             "lif": nir.LIF(tau=np.full(n_hidden, 1e-3), r=np.full(n_hidden, 10.0),
                            v_leak=np.zeros(n_hidden), v_threshold=np.ones(n_hidden)),
             "output": nir.Output(np.array([n_hidden]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})


def test_population_larger_than_a_core_is_split_across_cores_and_chips() -> None:
    c = compiler.compile(_wide(20, 100), compiler.Options(target="tiny"))
    groups = c.net.groups_of("lif")
    assert len(groups) == 7 and all(g.size <= 16 for g in groups)
    assert c.report["chips"] == 2 and c.report["cores"] == 7
    x = (np.random.default_rng(1).random((2, 10, 20)) < 0.4).astype(np.int8)
    ref_one = compiler.compile(_wide(20, 100), compiler.Options(target="loihi2"))
    np.testing.assert_array_equal(execute.run(c.program, x).outputs["output"],
                                  execute.run(ref_one.program, x).outputs["output"])


def test_too_large_for_the_system_names_the_limit() -> None:
    with pytest.raises(DesignRuleError) as err:
        compiler.compile(_wide(20, 200), compiler.Options(target="tiny"))
    assert "chips" in str(err.value) and "4 > 2" in str(err.value)


def test_fan_in_over_the_limit_names_the_core_and_numbers() -> None:
    with pytest.raises(DesignRuleError) as err:
        compiler.compile(_wide(100, 8), compiler.Options(target="tiny"))
    assert "fan-in axons per core" in str(err.value) and "100 > 64" in str(err.value)


# --------------------------------------------------------------------------- semantics errors


def test_reset_by_subtraction_is_an_error_unless_approximated() -> None:
    graph = _wide(8, 4)
    graph = graph.replace(metadata={**graph.metadata, "reset": "subtract"})
    with pytest.raises(UnsupportedError, match="reset-to-zero"):
        compiler.compile(graph)
    with pytest.warns(UserWarning, match="approximated by reset to zero"):
        compiler.compile(graph, compiler.Options(approximations=("reset-to-zero",)))


def test_unequal_paths_get_a_delay_that_keeps_timing() -> None:
    rng = np.random.default_rng(3)
    n = 6
    nodes = {"input": nir.Input(np.array([4])),
             "a": nir.Linear(np.abs(rng.normal(size=(n, 4))) * 2),
             "h": nir.IF(r=np.ones(n), v_threshold=np.ones(n)),
             "b": nir.Linear(np.abs(rng.normal(size=(n, n)))),
             "skip": nir.Linear(np.abs(rng.normal(size=(n, 4)))),
             "o": nir.IF(r=np.ones(n), v_threshold=np.full(n, 2.0)),
             "output": nir.Output(np.array([n]))}
    edges = [("input", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("input", "skip"),
             ("skip", "o"), ("o", "output")]
    graph = checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})
    c = compiler.compile(graph, compiler.Options(target="loihi2"))
    assert {b.source: b.delay for b in c.net.blocks_into("o")} == {"h": 0, "input": 1}
    assert any(b.kind == "delay_dense" for b in c.program.blocks)
    with pytest.raises(DesignRuleError, match="no delays"):
        import dataclasses

        from snn2hw.backends import image as backend
        from snn2hw.targets import load
        t = load("loihi2")
        t = dataclasses.replace(t, connectivity=dataclasses.replace(t.connectivity, delays=False))
        backend.build(c.net, t)


def test_readout_layer_voltage_matches_reference() -> None:
    rng = np.random.default_rng(5)
    nodes = {"input": nir.Input(np.array([6])), "fc": nir.Linear(rng.normal(size=(3, 6))),
             "li": nir.LI(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3)),
             "output": nir.Output(np.array([3]))}
    graph = checker.from_nir(nir.NIRGraph(nodes, [("input", "fc"), ("fc", "li"), ("li", "output")],
                                          type_check=False), metadata={"dt": DT})
    x = (rng.random((2, 30, 6)) < 0.5).astype(np.int8)
    c = compiler.compile(graph)
    hw = execute.run(c.program, x).outputs["output"]
    ref = reference.simulate(graph, x.astype(float)).outputs["output"]
    assert np.abs(hw - ref).max() < 0.01 * np.abs(ref).max()


# --------------------------------------------------------------------------- pass manager


def test_dump_ir_writes_each_level_in_its_own_form(tmp_path: Path) -> None:
    """--dump-ir: the input graph, then every step's level in that level's own form
    (issue 16: not the same .nir each time)."""
    c = compiler.compile(_wide(8, 4), compiler.Options(dump_ir=str(tmp_path), verify_each=True))
    text = {"graph": "txt", "program": "txt"}
    want = ["00_graph.txt"] + [f"{k:02d}_{s.name}.{text.get(s.level.name, 'json')}"
                               for k, s in enumerate(compiler.PIPELINE, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == want
    read = {p.stem: p.read_text() for p in tmp_path.iterdir()}
    assert "lif" in read["00_graph"] and "LIF" in read["00_graph"]
    st = json.loads(read["01_canonicalise"])
    assert st["level"] == "structure" and [p["name"] for p in st["populations"]] == \
        ["input", "lif"] and st["projections"][0]["held_as"] == "dense"
    dyn = json.loads(read["02_discretise"])
    assert dyn["dynamics"]["lif"]["dv"] == int(c.net.groups[0].dv)
    hw = json.loads(read["05_quantise"])
    assert hw["groups"][0]["vth"] == c.net.groups[0].vth and hw["groups"][0]["core"] == -1
    assert np.array_equal(hw["blocks"][0]["weights"], c.net.blocks[0].weights)
    placed = json.loads(read["08_map"])
    assert placed["groups"][0]["core"] == 0 and placed["cores"][0]["neurons"] == 4
    assert "lif" in read["09_emit"] and read["09_emit"] == read["10_cost"]   # no data: as is
    assert len({read[k] for k in ("00_graph", "01_canonicalise", "02_discretise",
                                  "05_quantise", "08_map", "09_emit")}) == 6
    assert c.program.metadata["snn2hw.compile"]


def test_weight_bits_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(Snn2hwError, match="weight-bits 9"):
        compiler.compile(_wide(8, 4), compiler.Options(weight_bits=9))


# --------------------------------------------------------------------------- range analysis


def _if_inhibitory() -> ir.Graph:
    rng = np.random.default_rng(7)
    n = 12
    nodes = {"input": nir.Input(np.array([10])), "fc": nir.Linear(rng.normal(size=(n, 10))),
             "if": nir.IF(r=np.ones(n), v_threshold=np.full(n, 2.0)),
             "output": nir.Output(np.array([n]))}
    return checker.from_nir(nir.NIRGraph(nodes, [("input", "fc"), ("fc", "if"), ("if", "output")],
                                         type_check=False), metadata={"dt": DT})


def test_unbounded_voltage_fails_with_a_way_out() -> None:
    with pytest.raises(DesignRuleError) as err:
        compiler.compile(_if_inhibitory())
    assert "|v| can reach inf" in str(err.value) and "--calibrate" in str(err.value)
    with pytest.warns(UserWarning, match="range analysis"):
        compiler.compile(_if_inhibitory(), compiler.Options(allow_saturation=True))


def test_calibration_bounds_come_from_observed_activity() -> None:
    graph = _if_inhibitory()
    x = (np.random.default_rng(8).random((16, 30, 10)) < 0.3).astype(np.int8)
    c = compiler.compile(graph, calibration=x.astype(float))
    ref = reference.simulate(graph, x.astype(float), record=("spikes",))
    hw = execute.run(c.program, x)
    assert all(s["v_clip"] == 0 for s in hw.saturation.values())
    agree = (hw.outputs["output"] == ref.outputs["output"]).mean()
    assert agree > 0.99, agree
    assert c.report["layers"]["if"]["limited_by"] in ("voltage", "input sum", "exponent")
    cost = c.report["cost"]                       # measured on the calibration data
    assert cost["energy_per_step_pj"] > 0 and cost["latency_per_step_ns"] > 0


# --------------------------------------------------------------------------- device comparison


def test_planted_weight_change_is_reported_at_its_step_group_and_neuron() -> None:
    import dataclasses

    from snn2hw.compare import first_divergence

    rng = np.random.default_rng(11)
    graph = exact_graph(rng, 6, 10, 4, recurrent=False, conv=False)
    c = compiler.compile(graph)
    x = spikes_in(rng, graph, 2, 15)
    block = next(b for b in c.program.blocks if b.target == "o")
    w = np.array(block.weights)
    w[2, 3] += 8                                          # one synapse, neuron 2 of 'o'
    bad = dataclasses.replace(c.program, blocks=tuple(
        dataclasses.replace(b, weights=w) if b is block else b for b in c.program.blocks))
    good_run = execute.run(c.program, x, record_states=True)
    bad_run = execute.run(bad, x, record_states=True)
    div = first_divergence(good_run.raw, bad_run.raw)
    spikes_h = good_run.raw.spikes["h"][:, :, 3]          # the changed synapse's source
    first = min(int(np.argmax(s)) for s in spikes_h if s.any()) + 2   # 1-based, +1 hop
    assert (div.group, div.neuron, div.variable, div.step) == ("o", 2, "u", first)


def test_options_refuse_values_no_pass_can_use() -> None:
    """From Python as from the CLI: weight_bits=1 divided by zero in quantise."""
    for bad in ({"weight_bits": 1}, {"weight_bits": 0}, {"weight_bits": 2.5},
                {"weight_bits": True}, {"share": 0}, {"scale_groups": 0},
                {"scale_groups": None}, {"dt": 0.0}, {"dt": "fast"}, {"dt": float("nan")}):
        ((name, _),) = bad.items()
        with pytest.raises(UserInputError, match=rf"Options\({name}="):
            compiler.Options(**bad)
    two = compiler.compile(_wide(8, 4), compiler.Options(weight_bits=np.int64(2)))
    assert two.report["layers"]
