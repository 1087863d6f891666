"""ANN -> sigma-delta conversion, the NIR convention (snn2hw.sdnn), its float reference,
compiling it (graded input ports, per-layer grids), and the bad-input errors. The digits
goals are in tests/test_example_digits.py; emulator vs Lava in tests/test_lava_sigma_delta.py."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snn2hw import checker, compiler, execute, ir, nirio, reference, sdnn, sdnn_sim
from snn2hw import inspect as graph_inspect
from snn2hw.cli import main
from snn2hw.errors import GraphError, UnsupportedError, UserInputError
from snn2hw.importers import ann, ann_sdnn
from snn2hw.verify import decode, verify


def _net() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 12),
        torch.nn.ReLU(), torch.nn.Linear(12, 4)).eval()


@pytest.fixture(scope="module")
def small() -> tuple[ann.AnnModel, np.ndarray, ir.Graph]:
    """A small conv + dense ANN, its calibration inputs and its sigma-delta conversion
    (12-bit input payloads: its untrained logits lie close, so 8 bits change classes)."""
    x = np.random.default_rng(0).random((300, 1, 6, 6))
    model = ann.from_torch(_net(), (1, 6, 6))
    return model, x, ann_sdnn.convert(model, x, input_bits=12)


def _payloads(graph: ir.Graph, x: np.ndarray, extra: int = 0) -> np.ndarray:
    return ann_sdnn.encode(x, sdnn_sim.settle_steps(graph) + extra,
                           graph.metadata["input_scale"], graph.metadata["input_bits"])


def _with_meta(graph: ir.Graph, name: str, **changes: object) -> ir.Graph:
    n = graph.nodes[name]
    meta = {**n.metadata[sdnn.KEY], **changes}
    return graph.replace(nodes={**graph.nodes, name: dataclasses.replace(
        n, metadata={**n.metadata, sdnn.KEY: meta})})


def test_reference_step_rules_and_one_step_per_hop() -> None:
    """One node by hand: the bias acts before the input arrives (one step late), a change
    below vth stays in the residue and is sent with the next one, ReLU, negative sends."""
    nodes = {"input": nir.Input(np.array([1])), "w": nir.Linear(np.eye(1)),
             "sd": sdnn.node(0.5, "relu", np.array([0.2])), "output": nir.Output(np.array([1]))}
    graph = checker.from_nir(nir.NIRGraph(nodes, [("input", "w"), ("w", "sd"), ("sd", "output")],
                                          type_check=False), metadata={"dt": 1e-3})
    x = np.array([1.0, 0.0, -0.9, 0.0, -5.0, 0.0]).reshape(1, 6, 1)
    res = reference.simulate(graph, x, record=("spikes", "states"))
    # step 0: bias only, 0.2 < vth held; 1: the input: 1.2 - 0 + ... sent whole (1.2);
    # 3: sigma 0.1 -> act 0.3, change -0.9 sent; 5: sigma -4.9 -> ReLU 0, change -0.3 held
    np.testing.assert_allclose(res.outputs["output"][0, :, 0], [0, 1.2, 0, -0.9, 0, 0],
                               atol=1e-12)
    np.testing.assert_allclose(res.states["sd"]["sigma"][0, :, 0], [0, 1, 1, 0.1, 0.1, -4.9],
                               atol=1e-12)


def test_conversion_round_trips_and_computes_the_ann(small, tmp_path: Path) -> None:
    model, x, graph = small
    assert sdnn.sd_nodes(graph) == ["0_sd", "4_sd", "6_sd"]
    assert [sdnn.params(n, graph.nodes[n]).act_mode for n in sdnn.sd_nodes(graph)] == \
        ["relu", "relu", "unit"]
    nirio.write(graph, tmp_path / "sd.nir")
    back = nirio.read(tmp_path / "sd.nir")
    data = _payloads(graph, x[:50], extra=2)
    np.testing.assert_array_equal(reference.simulate(graph, data).outputs["output"],
                                  reference.simulate(back, data).outputs["output"])
    table = graph_inspect.graph_table(back)
    assert "SigmaDelta" in table and "graded, signed 12-bit payloads" in table
    assert "3 sigma-delta layers" in table and "sigma-delta 6_sd: vth" in table
    # with a threshold far below the values, the output settles at the ANN's logits
    # (on the quantised input) over the last layer's scale, and nothing moves after
    fine = ann_sdnn.convert(model, x, vth=1e-6, input_bits=12)
    out = reference.simulate(fine, _payloads(fine, x[:50], extra=2)).outputs["output"]
    q = np.round(x[:50] * fine.metadata["input_scale"]) / fine.metadata["input_scale"]
    logits = model.forward(q)[-1]
    lam = ann.layer_scale(model.forward(x)[-1], 99.9)
    np.testing.assert_allclose(out.sum(axis=1) * lam, logits, atol=1e-4 * lam)
    assert not np.any(out[:, sdnn_sim.settle_steps(fine):])


def test_auto_vth_is_the_largest_keeping_the_agreement(small) -> None:
    model, x, graph = small
    theta = graph.metadata["vth"]
    assert theta in ann_sdnn.CANDIDATES
    want = model.forward(x)[-1].argmax(axis=1)

    def agreement(g: ir.Graph) -> float:
        return float((decode(reference.simulate(g, _payloads(g, x)).outputs["output"],
                             False) == want).mean())

    assert agreement(graph) >= ann_sdnn.AGREEMENT
    if theta < ann_sdnn.CANDIDATES[0]:
        coarser = ann_sdnn.convert(model, x, vth=2 * theta, input_bits=12)
        assert agreement(coarser) < ann_sdnn.AGREEMENT


def test_compiled_program_follows_the_float_model(small) -> None:
    """loihi2: sigma_delta groups, a graded 12-bit port, graded blocks; on the emulator the
    payloads (in the reference's units) match the float model up to the 8-bit weights."""
    _, x, graph = small
    c = compiler.compile(graph, compiler.Options(target="loihi2"))
    assert {g.model for g in c.program.groups} == {"sigma_delta"}
    assert [p.message_bits for p in c.program.ports] == [12]
    assert all(b.num_message_bits > 0 for b in c.program.blocks)
    assert {b.kind for b in c.program.blocks} == {"conv", "dense"}
    data = _payloads(graph, x[:100], extra=2)
    report, traces = verify(graph, c.program, data)
    assert report.prediction_agreement >= 0.97, report.table()
    ref, hw = traces.runs["reference"].outputs["output"], traces.runs["device"].outputs["output"]
    top = np.abs(ref.sum(axis=1)).max()
    assert np.abs(ref.sum(axis=1) - hw.sum(axis=1)).max() < 0.05 * top
    assert all(la.count_correlation > 0.99 for la in report.layers), report.table()
    again = compiler.compile(c.graph, compiler.Options(target="loihi2"))   # quantised.nir
    for a, b in zip(c.program.groups, again.program.groups):
        assert (a.vth, a.state_exp, a.act_mode) == (b.vth, b.state_exp, b.act_mode)
        np.testing.assert_array_equal(a.bias_mant, b.bias_mant)
    for a, b in zip(c.program.blocks, again.program.blocks):
        assert a.num_message_bits == b.num_message_bits and a.weight_exp == b.weight_exp
        np.testing.assert_array_equal(a.weights, b.weights)
    assert [p.message_bits for p in again.program.ports] == [12]


def test_bad_sigma_delta_input_is_one_line_naming_node_limit_and_fix(small) -> None:
    _, x, graph = small
    data = _payloads(graph, x[:2])
    for changes, words in (({"vth": 0.0}, ("'4_sd'", "vth 0", "> 0", "--vth auto")),
                           ({"vth": -1.0}, ("'4_sd'", "vth -1", "> 0")),
                           ({"act_mode": "tanh"}, ("'4_sd'", "'tanh'", "relu or unit"))):
        for run in (lambda g: reference.simulate(g, data), compiler.compile):
            with pytest.raises(GraphError) as err:
                run(_with_meta(graph, "4_sd", **changes))
            assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
    for other in ("loihi1", "xylo-audio2"):      # Xylo sends spike counts, not payloads
        with pytest.raises(UnsupportedError) as err:
            compiler.compile(graph, compiler.Options(target=other))
        assert f"target '{other}' has no graded spikes" in str(err.value) and \
            "--target loihi2" in str(err.value)
    c = compiler.compile(graph)
    with pytest.raises(UserInputError, match=r"input 'input' holds payloads -5000\.\.\d+, "
                                             r"wider than its 12-bit message "
                                             r"\(-2048\.\.2047\)"):
        execute.run(c.program, np.where(data > 0, data, -5000))
    with pytest.raises(UserInputError, match="12-bit payloads, wider than --input-bits 6"):
        compiler.compile(graph, compiler.Options(input_bits=6))
    conv = graph.nodes["0_conv"]
    biased = graph.replace(nodes={**graph.nodes, "0_conv": dataclasses.replace(
        conv, bias=np.ones_like(conv.bias))})
    with pytest.raises(UnsupportedError, match="'0_sd' has a per-step bias .*0_conv"):
        compiler.compile(biased)
    lif = nir.LIF(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4),
                  v_reset=np.zeros(4))
    mixed = graph.replace(nodes={**graph.nodes, "6_sd": lif})
    with pytest.raises(UnsupportedError, match="'6_sd' is a LIF in a graph of sigma-delta"):
        compiler.compile(mixed)


def test_hidden_layer_without_relu_is_refused() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    with pytest.raises(UnsupportedError, match="not followed by ReLU"):
        ann_sdnn.convert(ann.from_torch(net, (4,)), np.ones((3, 4)))


def test_encode_sends_the_change_and_saturates_with_a_warning() -> None:
    x = np.array([[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(ann_sdnn.encode(x, 3, 127.0, 8),
                                  [[[0, 64, 127], [0, 0, 0], [0, 0, 0]]])
    seq = np.array([[[0.0, 1.0], [0.5, 1.0], [0.5, 0.0]]])         # (B, T, n)
    np.testing.assert_array_equal(ann_sdnn.encode(seq, 3, 10.0, 8, shape=(2,)),
                                  [[[0, 10], [5, 0], [0, -10]]])
    with pytest.warns(UserWarning, match="1 input value.*saturate at the 8-bit"):
        out = ann_sdnn.encode(np.array([[2.0]]), 1, 127.0, 8)
    assert out[0, 0, 0] == 127


def test_graded_input_ports_for_lif_graphs() -> None:
    """Options.input_bits: a LIF network fed signed integer payloads; worst-case ranges use
    the payload width, the first block takes payloads, the emulator follows the float
    model."""
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(0, 0.08, (16, 6)), rng.normal(0, 1.0, (3, 16))
    lif = {n: nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),
                      v_threshold=np.ones(n), v_reset=np.zeros(n)) for n in (16, 3)}
    nodes = {"input": nir.Input(np.array([6])), "fc1": nir.Affine(w1, np.zeros(16)),
             "lif1": lif[16], "fc2": nir.Affine(w2, np.zeros(3)), "lif2": lif[3],
             "output": nir.Output(np.array([3]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    graph = checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-3})
    c = compiler.compile(graph, compiler.Options(input_bits=6))
    assert [p.message_bits for p in c.program.ports] == [6]
    assert {b.source: b.num_message_bits for b in c.program.blocks} == {"input": 6, "lif1": 0}
    x = rng.integers(-32, 32, (30, 40, 6)).astype(float)
    report, _ = verify(graph, c.program, x)
    assert report.layers[0].spikes_reference > 50
    assert all(la.identical_fraction > 0.99 for la in report.layers), report.table()
    with pytest.raises(UnsupportedError, match="'loihi1' has no graded spikes.*loihi2"):
        compiler.compile(graph, compiler.Options(target="loihi1", input_bits=6))


def test_cli_sigma_delta_import_inspect_compile_verify(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_net(), torch.zeros(1, 1, 6, 6), str(tmp_path / "m.onnx"),
                          dynamo=False)
    x = np.random.default_rng(2).random((120, 1, 6, 6))
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "data.npz", x=x[:40], labels=np.zeros(40, dtype=np.int64))
    sd = ["--neuron", "sigma-delta", "--input-bits", "12", "--calibrate", str(tmp_path / "x.npy")]
    assert main(["import", str(tmp_path / "m.onnx"), *sd, "-o", str(tmp_path / "m.nir")]) == 0
    assert "sigma-delta, vth" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "m.nir")]) == 0
    assert "SigmaDelta" in capsys.readouterr().out
    torch.export.save(torch.export.export(_net(), (torch.zeros(1, 1, 6, 6),)),
                      str(tmp_path / "m.pt2"))
    assert main(["import", str(tmp_path / "m.pt2"), *sd, "-o", str(tmp_path / "p.nir")]) == 0
    assert graph_inspect.graph_table(nirio.read(tmp_path / "p.nir")) == \
        graph_inspect.graph_table(nirio.read(tmp_path / "m.nir"))      # same layers, scales
    assert main(["compile", str(tmp_path / "m.onnx"), *sd, "--target", "loihi1",
                 "-o", str(tmp_path / "l1")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'loihi1' has no graded spikes" in err and "\n" not in err
    assert not (tmp_path / "l1").exists()
    assert main(["compile", str(tmp_path / "m.nir"), "-o", str(tmp_path / "out")]) == 0
    assert main(["compile", str(tmp_path / "out" / "quantised.nir"),
                 "-o", str(tmp_path / "again")]) == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "m.onnx"), *sd, "--data",
                 str(tmp_path / "data.npz")]) == 0
    out = capsys.readouterr().out
    assert "40 samples x 4 steps, float reference vs emulator" in out and "0_sd" in out
    np.save(tmp_path / "wide.npy", np.full((1, 4, 36), 3000))
    assert main(["run", str(tmp_path / "out" / "program.h5"), "--input",
                 str(tmp_path / "wide.npy"), "--output", str(tmp_path / "r.npz")]) == 2
    assert "wider than its 12-bit message" in capsys.readouterr().err


@pytest.mark.parametrize("key,value,words", [
    ("vth", "abc", "not one number"), ("vth", np.array([0.1, 0.2]), "not one number"),
    ("vth", np.inf, "vth inf"), ("act_mode", "sigmoid", "'sigmoid'"),
    ("bias", np.ones(3), "bias of shape (3,)"), ("bias", "x", "bias of shape"),
    ("observed", {"input": 1.0}, "observed maxima"),
    ("observed", {"input": "a", "state": 1, "payload": 1}, "observed maxima")])
def test_damaged_sigma_delta_metadata_in_a_file_is_one_line(small, tmp_path: Path, key: str,
                                                             value: object, words: str,
                                                             capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    """A .nir file whose sigma-delta metadata was edited: inspect and compile exit 2 with
    one line naming the node (never an internal error), and compile writes nothing."""
    path = tmp_path / "bad.nir"
    nirio.write(_with_meta(small[2], "4_sd", **{key: value}), path)
    for argv in (["inspect", str(path)], ["compile", str(path), "-o", str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "'4_sd'" in err and words in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_hand_made_sigma_delta_graph_with_binary_input() -> None:
    """A sigma-delta graph written by hand (no observed maxima: worst-case grids) fed 0/1
    spikes: the input block stays binary, its grid is bounded by the largest weight
    exponent, and the emulator follows the float model."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([5])), "w": nir.Linear(rng.normal(0, 0.5, (4, 5))),
             "sd": sdnn.node(0.01, "relu", rng.normal(0, 0.1, 4)),
             "w2": nir.Linear(rng.normal(0, 0.5, (3, 4))),
             "sd2": sdnn.node(0.001, "unit", np.zeros(3)), "output": nir.Output(np.array([3]))}
    edges = [("input", "w"), ("w", "sd"), ("sd", "w2"), ("w2", "sd2"), ("sd2", "output")]
    graph = checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-3})
    c = compiler.compile(graph)
    assert c.net.report["bounds"] == "worst case"
    assert c.net.report["quantise"]["sd"]["limited_by"] == "weights of input"
    assert [p.message_bits for p in c.program.ports] == [0]
    x = (rng.random((50, 10, 5)) < 0.3).astype(float)
    report, _ = verify(graph, c.program, x)
    assert all(la.count_correlation > 0.999 for la in report.layers), report.table()
    assert report.prediction_agreement >= 0.95, report.table()
