"""The graph checker: is an :class:`snn2hw.ir.Graph` a model snn2hw can read? (ONNX keeps
its checker apart from shape inference; so do we: this module imports both the IR and
:mod:`snn2hw.shapes`, and neither imports it.)

:func:`validate` raises :class:`snn2hw.errors.GraphError` (or ``UnsupportedError`` for an
unknown primitive) naming the node: every edge resolves, every node is a primitive of
:mod:`snn2hw.primitives`' table, parameters are sane (:mod:`snn2hw.params`), no cycle
lacks a stateful node, every node is reachable from an Input, and shapes agree along
every edge. :func:`from_nir` flattens a ``nir.NIRGraph`` and validates it: the way every
importer builds a graph. This is the verifier of the compiler's Graph level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import nir

from snn2hw import ir, params, primitives
from snn2hw.errors import GraphError, UnsupportedError
from snn2hw.shapes import infer_shapes


def _check_structure(graph: ir.Graph) -> None:
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise GraphError(f"edge ({src} -> {dst}) refers to a node '{end}' that does not "
                                 "exist", hint="Remove the edge or add the node.")
    for name, node in graph.nodes.items():
        if primitives.lookup(node) is None:
            raise UnsupportedError(f"node '{name}' has type {type(node).__name__}, which snn2hw "
                                   "does not support", node=name, hint="Supported: " + ", ".join(
                                       t.__name__ for t in primitives.KNOWN))
    if not graph.inputs():
        raise GraphError("the graph has no Input node",
                         hint="Add a nir.Input node and an edge from it to the first layer.")
    if not graph.outputs():
        raise GraphError("the graph has no Output node",
                         hint="Add a nir.Output node and an edge into it from the last layer.")


def _check_reachable(graph: ir.Graph) -> None:
    seen: set[str] = set()
    for inp in graph.inputs():
        seen |= nx.descendants(graph.digraph, inp) | {inp}
    lost = sorted(set(graph.nodes) - seen)
    if lost:
        raise GraphError(f"node(s) {', '.join(lost)} cannot be reached from any Input",
                         node=lost[0], hint="Connect them or remove them.")


def validate(graph: ir.Graph) -> None:
    """Raise GraphError/UnsupportedError naming the node if the graph is not valid."""
    _check_structure(graph)
    params.check_graph(graph.nodes, graph.metadata)   # before shapes: stride 0, 1-D weights
    ir.execution_order(graph)
    _check_reachable(graph)
    infer_shapes(graph)


def from_nir(graph: nir.NIRGraph, *, metadata: Mapping[str, Any] | None = None) -> ir.Graph:
    """Flatten a NIR graph into our IR (:func:`snn2hw.ir.flatten`) and validate it."""
    result = ir.flatten(graph, metadata=metadata)
    validate(result)
    return result


__all__ = ["from_nir", "validate"]
