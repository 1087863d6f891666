"""Shape inference over a graph: each node's rule (:mod:`snn2hw.primitives`' ``shape``
column, :mod:`snn2hw.shape_rules`) applied in execution order, every edge checked.

Shapes exclude batch and time. A node with several predecessors must receive the same
shape from each.
"""

from __future__ import annotations

from collections.abc import Mapping

from snn2hw import primitives
from snn2hw.errors import GraphError
from snn2hw.ir import Graph, execution_order, recurrent_edges
from snn2hw.shape_rules import Rule, Shape

#: The shape rule of every primitive (a view of the primitives table).
RULES: Mapping[type, Rule] = {cls: p.shape for cls, p in primitives.TABLE.items()}


def _arriving(graph: Graph, name: str, shapes: dict[str, tuple[Shape, Shape]]) -> Shape | None:
    known = [(p, shapes[p][1]) for p in graph.predecessors(name) if p in shapes]
    for p, shape in known[1:]:
        if shape != known[0][1]:
            raise GraphError(f"node '{name}' receives shape {list(shape)} from '{p}' but "
                             f"{list(known[0][1])} from '{known[0][0]}'", node=name,
                             hint="All edges into a node must carry the same shape.")
    return known[0][1] if known else None


def _apply(graph: Graph, name: str, arriving: Shape | None) -> tuple[Shape, Shape]:
    node = graph.nodes[name]
    try:
        return primitives.of(node).shape(node, arriving)
    except GraphError as exc:
        raise GraphError(f"{type(node).__name__} node '{name}': {exc.message}", node=name,
                         hint=exc.hint) from None


def infer_shapes(graph: Graph) -> dict[str, tuple[Shape, Shape]]:
    """(input_shape, output_shape) of every node; raises GraphError on any mismatch."""
    shapes: dict[str, tuple[Shape, Shape]] = {}
    for name in execution_order(graph):
        shapes[name] = _apply(graph, name, _arriving(graph, name, shapes))
    for src, dst in graph.edges:
        if shapes[src][1] != shapes[dst][0]:
            raise GraphError(f"edge {src} -> {dst}: '{src}' produces shape "
                             f"{list(shapes[src][1])} but '{dst}' expects "
                             f"{list(shapes[dst][0])}", node=dst,
                             hint="Fix the layer sizes or insert a Flatten.")
    return shapes


__all__ = ["RULES", "Shape", "infer_shapes", "recurrent_edges"]
