"""The IR: a flat NIR graph held with a networkx DiGraph for topology.

Contract (other modules rely on exactly this):

* ``Graph(nodes, edges, metadata)`` is immutable. ``nodes`` maps node name to a
  ``nir`` node (never a nested ``nir.NIRGraph``: subgraphs are flattened with
  dotted names on import). ``edges`` is a tuple of ``(src, dst)`` name pairs.
  ``metadata`` holds graph-level facts NIR files do not carry (``dt``,
  ``reset`` mode, provenance) as plain str/int/float/bool values.
* A node's input is the sum of its incoming edges (NIR semantics).
* ``Graph.digraph`` is a cached ``networkx.DiGraph`` view; never mutate it.
* ``from_nir(nir.NIRGraph) -> Graph`` flattens and validates; ``to_nir(Graph)``
  gives back a ``nir.NIRGraph`` without inserting nodes.
* ``validate(graph)`` raises :class:`snn2hw.errors.GraphError` naming the node.
* ``read(path)`` / ``write(graph, path)`` live in :mod:`snn2hw.nirio`.

Passes return new graphs (``graph.replace(...)``); nothing mutates its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

import networkx as nx
import nir

#: Nodes whose output at step t depends on state from step t-1. Cycles must pass
#: through one of these (the "SCC rule" of specs/nir_semantics.md §1.4).
STATEFUL_TYPES: tuple[type, ...] = (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI, nir.IF, nir.I, nir.Delay)
SPIKING_TYPES: tuple[type, ...] = (nir.LIF, nir.CubaLIF, nir.IF)


@dataclass(frozen=True, eq=False)
class Graph:
    nodes: Mapping[str, nir.NIRNode]
    edges: tuple[tuple[str, str], ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def replace(self, *, nodes: Mapping[str, nir.NIRNode] | None = None,
                edges: tuple[tuple[str, str], ...] | None = None,
                metadata: Mapping[str, Any] | None = None) -> "Graph":
        """Return a new graph with the given parts replaced."""
        return Graph(self.nodes if nodes is None else nodes,
                     self.edges if edges is None else edges,
                     self.metadata if metadata is None else metadata)

    @cached_property
    def digraph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        return g

    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, nir.Input)]

    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, nir.Output)]

    def predecessors(self, name: str) -> list[str]:
        return list(self.digraph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.digraph.successors(name))
