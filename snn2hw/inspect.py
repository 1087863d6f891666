"""`snn2hw inspect MODEL.nir`: one row per node, recurrent loops marked."""

from __future__ import annotations

import networkx as nx
import nir
import numpy as np

from snn2hw.ir import SPIKING_TYPES, STATEFUL_TYPES, Graph, execution_order, recurrent_edges
from snn2hw.shapes import infer_shapes

_META = ("input_type", "output_type", "metadata")


def parameter_count(node: nir.NIRNode) -> int:
    return int(sum(np.asarray(v).size for k, v in vars(node).items()
                   if k not in _META and isinstance(v, np.ndarray)))


def neuron_count(node: nir.NIRNode, out_shape: tuple[int, ...]) -> int:
    return int(np.prod(out_shape)) if isinstance(node, STATEFUL_TYPES) else 0


def synapse_count(node: nir.NIRNode, out_shape: tuple[int, ...]) -> int:
    """Non-zero weights for dense layers; kernel-sized connections per output for conv."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return int(np.count_nonzero(node.weight))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        return int(np.prod(out_shape) * np.prod(w.shape[1:]))
    return 0


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
        rows.append(f"{name[:22]:<22} {type(node).__name__:<10} {str(list(i)):<12} "
                    f"{str(list(o)):<12} {counts[0]:>8} {counts[1]:>8} {counts[2]:>9}  {mark}")
    rows.append("-" * len(head))
    rows.append(f"{'total':<58} {totals[0]:>8} {totals[1]:>8} {totals[2]:>9}")
    spiking = sum(isinstance(n, SPIKING_TYPES) for n in graph.nodes.values())
    rows.append(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges, {spiking} spiking layers")
    for loop in _loops(graph):
        rows.append("recurrent loop: " + " -> ".join(loop))
    meta = ", ".join(f"{k}={v}" for k, v in sorted(graph.metadata.items()))
    if meta:
        rows.append(f"metadata: {meta}")
    return "\n".join(rows)
