"""The IR: flattening, shapes, recurrence, validation and lossless .nir round trips."""

from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nirgraphs import conv, cuba, feedforward, lif, recurrent

from snn2hw import checker, ir, nirio
from snn2hw.errors import GraphError, ModelFileError, UnsupportedError
from snn2hw.inspect import graph_table
from snn2hw.shapes import infer_shapes


def test_flatten_subgraph_uses_dotted_names() -> None:
    g = checker.from_nir(recurrent(np.random.default_rng(0)))
    assert set(g.nodes) == {"input", "fc", "rnn.lif", "rnn.w_rec", "output"}
    assert set(g.edges) == {("input", "fc"), ("fc", "rnn.lif"), ("rnn.lif", "rnn.w_rec"),
                            ("rnn.w_rec", "rnn.lif"), ("rnn.lif", "output")}
    assert ir.recurrent_edges(g) == {("rnn.lif", "rnn.w_rec")}


def test_execution_order_respects_same_step_edges() -> None:
    g = checker.from_nir(recurrent(np.random.default_rng(0)))
    order = ir.execution_order(g)
    assert order.index("fc") < order.index("rnn.lif") < order.index("output")
    assert order.index("rnn.w_rec") < order.index("rnn.lif")  # reads lif's previous step


def test_conv_pool_flatten_shapes() -> None:
    shapes = infer_shapes(checker.from_nir(conv(np.random.default_rng(1))))
    assert shapes["conv"] == ((2, 8, 8), (4, 8, 8))
    assert shapes["pool"] == ((4, 8, 8), (4, 4, 4))
    assert shapes["flat"] == ((4, 4, 4), (64,))


def test_graph_is_immutable() -> None:
    g = checker.from_nir(feedforward(np.random.default_rng(0)))
    with pytest.raises(TypeError):
        g.nodes["x"] = lif(1)  # type: ignore[index]
    h = g.replace(metadata={"dt": 1e-3})
    assert "dt" not in g.metadata and h.metadata["dt"] == 1e-3


def _same_node(a: nir.NIRNode, b: nir.NIRNode) -> bool:
    skip = ("input_type", "output_type", "metadata")
    va = {k: v for k, v in vars(a).items() if k not in skip}
    vb = {k: v for k, v in vars(b).items() if k not in skip}
    if va.get("input_shape", 0) is None:  # write() fills a missing conv size from inference
        va.pop("input_shape"), vb.pop("input_shape")
    return type(a) is type(b) and va.keys() == vb.keys() and all(
        np.array_equal(np.asarray(va[k]), np.asarray(vb[k])) for k in va)


def _roundtrip(g: ir.Graph, path: Path) -> ir.Graph:
    nirio.write(g, path)
    return nirio.read(path)


@pytest.mark.parametrize("build", [feedforward, recurrent, conv])
def test_roundtrip_is_lossless(build, tmp_path: Path) -> None:
    g = checker.from_nir(build(np.random.default_rng(3)), metadata={"dt": 1e-4, "reset": "zero"})
    h = _roundtrip(g, tmp_path / "g.nir")
    assert set(h.nodes) == set(g.nodes) and set(h.edges) == set(g.edges)
    assert all(_same_node(g.nodes[n], h.nodes[n]) for n in g.nodes)
    assert dict(h.metadata) == {"dt": 1e-4, "reset": "zero"}
    again = _roundtrip(h, tmp_path / "h.nir")
    assert all(_same_node(again.nodes[n], h.nodes[n]) for n in g.nodes)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=2, max_size=5), seed=st.integers(0, 99))
def test_random_feedforward_roundtrip(sizes: list[int], seed: int, tmp_path_factory) -> None:
    g = checker.from_nir(feedforward(np.random.default_rng(seed), tuple(sizes)))
    h = _roundtrip(g, tmp_path_factory.mktemp("rt") / "g.nir")
    assert all(_same_node(g.nodes[n], h.nodes[n]) for n in g.nodes)
    assert infer_shapes(h) == infer_shapes(g)


def test_every_neuron_primitive_roundtrips(tmp_path: Path) -> None:
    n = 3
    neurons = {"cuba": cuba(n), "li": nir.LI(np.ones(n), np.ones(n), np.zeros(n)),
               "if": nir.IF(np.ones(n), np.ones(n)), "i": nir.I(np.ones(n)),
               "thr": nir.Threshold(np.ones(n)), "scale": nir.Scale(np.full(n, 2.0)),
               "delay": nir.Delay(np.full(n, 2e-4))}
    nodes = {"input": nir.Input(np.array([n])), **neurons, "output": nir.Output(np.array([n]))}
    chain = ["input", *neurons, "output"]
    g = checker.from_nir(nir.NIRGraph(nodes, list(itertools.pairwise(chain)), type_check=False))
    h = _roundtrip(g, tmp_path / "all.nir")
    assert all(_same_node(g.nodes[k], h.nodes[k]) for k in g.nodes)


def test_inspect_table_marks_loops() -> None:
    text = graph_table(checker.from_nir(recurrent(np.random.default_rng(0))))
    assert "recurrent loop: " in text and "rnn.lif" in text
    assert "total" in text


# --------------------------------------------------------------------------- bad input


def _graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes, edges, type_check=False)


def test_shape_mismatch_names_both_nodes() -> None:
    g = _graph({"input": nir.Input(np.array([4])), "fc": nir.Linear(np.ones((3, 5))),
                "output": nir.Output(np.array([3]))}, [("input", "fc"), ("fc", "output")])
    with pytest.raises(GraphError, match=r"input.*\[4\].*fc.*\[5\]"):
        checker.from_nir(g)


def test_no_input_is_an_error() -> None:
    g = _graph({"fc": nir.Linear(np.ones((3, 4))), "output": nir.Output(np.array([3]))},
               [("fc", "output")])
    with pytest.raises(GraphError, match="no Input node"):
        checker.from_nir(g)


def test_dangling_edge_is_named() -> None:
    g = _graph({"input": nir.Input(np.array([3])), "output": nir.Output(np.array([3]))},
               [("input", "output"), ("input", "ghost")])
    with pytest.raises(GraphError, match="ghost"):
        checker.from_nir(g)


def test_algebraic_loop_is_named() -> None:
    g = _graph({"input": nir.Input(np.array([3])), "a": nir.Linear(np.eye(3)),
                "b": nir.Linear(np.eye(3)), "output": nir.Output(np.array([3]))},
               [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")])
    with pytest.raises(GraphError, match="algebraic loop through"):
        checker.from_nir(g)


def test_negative_tau_is_rejected() -> None:
    g = _graph({"input": nir.Input(np.array([2])), "lif": lif(2, tau=-1e-3),
                "output": nir.Output(np.array([2]))}, [("input", "lif"), ("lif", "output")])
    with pytest.raises(GraphError, match="LIF node 'lif': parameter 'tau' must be > 0"):
        checker.from_nir(g)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        nirio.read(tmp_path / "none.nir")


def test_not_hdf5(tmp_path: Path) -> None:
    (tmp_path / "x.nir").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="not an HDF5 file"):
        nirio.read(tmp_path / "x.nir")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "t.nir"
    nirio.write(checker.from_nir(feedforward(np.random.default_rng(0))), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as exc:
        nirio.read(path)
    assert "\n" not in str(exc.value) and "t.nir" in str(exc.value)


def test_unknown_node_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "u.nir"
    nirio.write(checker.from_nir(feedforward(np.random.default_rng(0))), path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc0/type"]
        f["node/nodes/fc0"].create_dataset("type", data="Quux")
    with pytest.raises(UnsupportedError, match="node 'fc0' has unknown type 'Quux'"):
        nirio.read(path)


def test_deleted_dataset_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.nir"
    nirio.write(checker.from_nir(feedforward(np.random.default_rng(0))), path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif0/tau"]
    with pytest.raises(ModelFileError, match="d.nir"):
        nirio.read(path)


def test_write_failure_leaves_nothing(tmp_path: Path) -> None:
    g = checker.from_nir(feedforward(np.random.default_rng(0)))
    with pytest.raises(GraphError, match="metadata 'bad' is None"):
        nirio.write(g.replace(metadata={"bad": None}), tmp_path / "x.nir")
    assert list(tmp_path.iterdir()) == []
