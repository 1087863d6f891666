"""`snn2hw inspect MODEL.nir`: one row per node, recurrent loops marked."""

from __future__ import annotations

import networkx as nx
import nir
import numpy as np

from snn2hw import primitives, sdnn
from snn2hw.ir import Graph, execution_order, recurrent_edges
from snn2hw.shapes import infer_shapes

_META = ("input_type", "output_type", "metadata")


def parameter_count(node: nir.NIRNode) -> int:
    if sdnn.is_sd(node):                     # its bias and vth; the IF fields stand in
        return int(np.asarray(node.r).size) + 1
    return int(sum(np.asarray(v).size for k, v in vars(node).items()
                   if k not in _META and isinstance(v, np.ndarray)))


def neuron_count(node: nir.NIRNode, out_shape: tuple[int, ...]) -> int:
    return int(np.prod(out_shape)) if primitives.is_stateful(node) else 0


def synapse_count(node: nir.NIRNode, out_shape: tuple[int, ...]) -> int:
    """Non-zero weights for dense layers; kernel-sized connections per output for conv."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return int(np.count_nonzero(node.weight))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        return int(np.prod(out_shape) * np.prod(w.shape[1:]))
    return 0


def _graded_rows(graph: Graph, names: list[str]) -> list[str]:
    """Graded input ports and each sigma-delta layer's parameters (snn2hw.sdnn)."""
    rows = [f"input {k}: graded, signed {b}-bit payloads" for k, b in
            sdnn.input_bits(graph).items()]
    for name in names:
        p = sdnn.params(name, graph.nodes[name])
        seen = "" if p.observed is None else ", observed max " + ", ".join(
            f"{k} {v:.3g}" for k, v in p.observed.items())
        rows.append(f"sigma-delta {name}: vth {p.vth:.4g}, {p.act_mode}, bias "
                    f"{p.bias.min(initial=0):.3g}..{p.bias.max(initial=0):.3g}{seen}")
    return rows


def _loops(graph: Graph) -> list[list[str]]:
    delayed = recurrent_edges(graph)
    loops = []
    for src, dst in sorted(delayed):
        path = nx.shortest_path(graph.digraph, dst, src)
        loops.append(path + [dst])
    return loops


def graph_table(graph: Graph) -> str:
    shapes = infer_shapes(graph)
    on_loop = {n for loop in _loops(graph) for n in loop}
    head = f"{'node':<22} {'type':<10} {'in':<12} {'out':<12} {'params':>8} {'neurons':>8} " \
           f"{'synapses':>9}  loop"
    rows, totals = [head, "-" * len(head)], [0, 0, 0]
    for name in execution_order(graph):
        node, (i, o) = graph.nodes[name], shapes[name]
        counts = [parameter_count(node), neuron_count(node, o), synapse_count(node, o)]
        totals = [a + b for a, b in zip(totals, counts)]
        mark = "*" if name in on_loop else ""
        kind = "SigmaDelta" if sdnn.is_sd(node) else type(node).__name__
        rows.append(f"{name[:22]:<22} {kind:<10} {list(i)!s:<12} "
                    f"{list(o)!s:<12} {counts[0]:>8} {counts[1]:>8} {counts[2]:>9}  {mark}")
    rows.append("-" * len(head))
    rows.append(f"{'total':<58} {totals[0]:>8} {totals[1]:>8} {totals[2]:>9}")
    graded = sdnn.sd_nodes(graph)
    spiking = sum(primitives.is_spiking(n) for n in graph.nodes.values()) - len(graded)
    layers = f"{len(graded)} sigma-delta layers" if graded else f"{spiking} spiking layers"
    rows.append(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges, {layers}")
    rows += _graded_rows(graph, graded)
    for loop in _loops(graph):
        rows.append("recurrent loop: " + " -> ".join(loop))
    meta = ", ".join(f"{k}={v}" for k, v in sorted(graph.metadata.items()))
    if meta:
        rows.append(f"metadata: {meta}")
    return "\n".join(rows)
