"""The IR: a flat NIR graph held with a networkx DiGraph for topology.

Contract (other modules rely on exactly this):

* ``Graph(nodes, edges, metadata)`` is immutable. ``nodes`` maps node name to a
  ``nir`` node (never a nested ``nir.NIRGraph``: subgraphs are flattened with
  dotted names on import). ``edges`` is a tuple of ``(src, dst)`` name pairs.
  ``metadata`` holds graph-level facts NIR files do not carry (``dt``,
  ``reset`` mode, provenance) as plain str/int/float/bool values.
* A node's input is the sum of its incoming edges (NIR semantics).
* ``Graph.digraph`` is a cached ``networkx.DiGraph`` view; never mutate it.
* ``flatten(nir.NIRGraph) -> Graph`` flattens (no checks); ``to_nir(Graph)`` gives back
  a ``nir.NIRGraph`` without inserting nodes.
* Whether a graph is valid is the checker's question (:mod:`snn2hw.checker`:
  ``validate(graph)``, and ``from_nir``, which flattens and validates); node kinds are
  :mod:`snn2hw.primitives`' table; ``read(path)`` / ``write(graph, path)`` live in
  :mod:`snn2hw.nirio`.

Passes return new graphs (``graph.replace(...)``); nothing mutates its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import networkx as nx
import nir
import numpy as np

from snn2hw import primitives
from snn2hw.errors import GraphError, UnsupportedError


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
                metadata: Mapping[str, Any] | None = None) -> Graph:
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
        return [n for n, node in self.nodes.items() if primitives.kind(node) == "input"]

    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if primitives.kind(node) == "output"]

    def predecessors(self, name: str) -> list[str]:
        return list(self.digraph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.digraph.successors(name))


# --------------------------------------------------------------------------- import / export

def _plain_metadata(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Decode bytes that h5py hands back so metadata round-trips as str."""
    out: dict[str, Any] = {}
    for key, value in (meta or {}).items():
        if isinstance(value, bytes):
            value = value.decode("utf8")
        elif isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
            value = value.item()
            value = value.decode("utf8") if isinstance(value, bytes) else value
        out[str(key)] = value
    return out


def _flatten(nodes: Mapping[str, Any], edges: Any, prefix: str
             ) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    flat: dict[str, nir.NIRNode] = {}
    flat_edges: list[tuple[str, str]] = []
    entries: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    for name, node in nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(node.nodes, node.edges, full + ".")
            ins = {n for n, v in inner.items() if primitives.kind(v) == "input"}
            outs = {n for n, v in inner.items() if primitives.kind(v) == "output"}
            entries[full] = [b for a, b in inner_edges if a in ins]
            exits[full] = [a for a, b in inner_edges if b in outs]
            for n, v in inner.items():
                if n not in ins and n not in outs:
                    _add_node(flat, n, v)
            flat_edges += [(a, b) for a, b in inner_edges if a not in ins and b not in outs]
        else:
            _add_node(flat, full, node)
    for src, dst in edges:
        s, d = prefix + str(src), prefix + str(dst)
        flat_edges += [(a, b) for a in exits.get(s, [s]) for b in entries.get(d, [d])]
    return flat, flat_edges


def _add_node(flat: dict[str, nir.NIRNode], name: str, node: nir.NIRNode) -> None:
    if name in flat:
        raise GraphError(f"flattening subgraphs gives two nodes named '{name}'", node=name,
                         hint="Rename one of them; dotted names are reserved for subgraph nodes.")
    flat[name] = node


def flatten(graph: nir.NIRGraph, *, metadata: Mapping[str, Any] | None = None) -> Graph:
    """A NIR graph as our IR: subgraphs flattened with dotted names, ``metadata`` added to
    the graph's own. Not checked: :func:`snn2hw.checker.from_nir` flattens and validates."""
    if not isinstance(graph, nir.NIRGraph):
        raise UnsupportedError(f"expected a nir.NIRGraph, got {type(graph).__name__}",
                               hint="Wrap single nodes with nir.NIRGraph.from_list(...).")
    nodes, edges = _flatten(graph.nodes, graph.edges, "")
    meta = {**_plain_metadata(getattr(graph, "metadata", None)), **dict(metadata or {})}
    # Edges are a set in NIR, and exporters list them in set order (nirtorch): sorted, a
    # graph reads, sums its inputs and writes back the same on every run.
    return Graph(nodes, tuple(sorted(set(edges))), meta)


def to_nir(graph: Graph) -> nir.NIRGraph:
    """A nir.NIRGraph with exactly our nodes and edges (NIR inserts nothing: no type check)."""
    return nir.NIRGraph(nodes=dict(graph.nodes), edges=list(graph.edges),
                        metadata=dict(graph.metadata), type_check=False)


# --------------------------------------------------------------------------- topology


def recurrent_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges that carry the previous step's value: those leaving a stateful node inside a
    strongly connected component (the SCC rule, specs/nir_semantics.md §1.4)."""
    dg = graph.digraph
    delayed: set[tuple[str, str]] = set()
    for scc in nx.strongly_connected_components(dg):
        if len(scc) == 1 and not dg.has_edge(*(next(iter(scc)),) * 2):
            continue
        delayed |= {(a, b) for a, b in dg.subgraph(scc).edges
                    if primitives.is_stateful(graph.nodes[a])}
    return delayed


def execution_order(graph: Graph) -> list[str]:
    """Topological order once the recurrent edges are cut; an algebraic loop is an error."""
    cut = nx.DiGraph(graph.digraph)
    cut.remove_edges_from(recurrent_edges(graph))
    try:
        return list(nx.lexicographical_topological_sort(cut))
    except nx.NetworkXUnfeasible:
        cycle = [a for a, _ in nx.find_cycle(cut)]
        raise GraphError(f"algebraic loop through {', '.join(cycle)}: the cycle has no stateful "
                         "node to carry a value to the next step", node=cycle[0],
                         hint="Put a neuron (LIF, LI, IF, ...) or a Delay on the loop.") from None
