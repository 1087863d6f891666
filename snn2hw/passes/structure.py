"""The structure a neuromorphic core sees in a NIR graph: populations and projections.

A *population* is a neuron node (LIF, IF, CubaLIF, LI, CubaLI, I) or an Input.
A *projection* is everything stateless between a source population and a target
neuron node (Affine, Linear, Scale, Conv, pooling, Flatten, in any chain or sum):
one affine map ``x_target += M @ s_source + b`` in NIR's flat C order, held as what it
is (``passes/linmap.py``): a Conv2d between two populations, alone or after an exact
pool, stays a convolution (kernel and geometry) so a target with shared kernels can
keep it; chains with an Affine are a dense matrix; other convolution/pool chains are a
sparse matrix, one entry per synapse. No dense matrix is built for a convolution.

Timing: the reference gives a neuron its input in the same step; Loihi-family
hardware delivers a spike one step after it was sent. Every population gets an
*offset* (steps by which the hardware runs behind the reference): inputs 0, a
neuron max over feed-forward sources (offset + 1). A projection whose source is
earlier than that gets a synaptic delay that evens the paths out; a recurrent
projection (the reference's previous-step edge) must see ``delay = offset_target
- offset_source >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import networkx as nx
import nir
import numpy as np
import scipy.sparse as sp

from snn2hw import primitives
from snn2hw.errors import UnsupportedError
from snn2hw.ir import Graph, execution_order, recurrent_edges
from snn2hw.passes import linmap
from snn2hw.shapes import infer_shapes


@dataclass(frozen=True, eq=False)
class Projection:
    """``x_target += M @ s_source + bias``, with ``M`` held as what it is: ``matrix``
    (n_target, n_source) dense float; or ``sparse`` (a csr matrix, convolutions and
    pools unrolled); or, with both None, the convolution ``conv`` of the source
    (``in_shape``), never materialised unless a target needs it unrolled."""

    source: str
    target: str
    matrix: np.ndarray | None
    bias: np.ndarray
    conv: nir.Conv2d | None
    nodes: tuple[str, ...]
    recurrent: bool
    delay: int = 0
    sparse: sp.csr_matrix | None = None
    in_shape: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def kind(self) -> str:
        """dense | sparse | conv: how the projection is held."""
        if self.matrix is not None:
            return "dense"
        return "sparse" if self.sparse is not None else "conv"

    def csr(self) -> sp.csr_matrix:
        """The map as a sparse matrix (a convolution unrolled, one entry per synapse)."""
        if self.matrix is not None:
            return sp.csr_matrix(self.matrix)
        if self.sparse is not None:
            return self.sparse
        return self._unrolled

    @cached_property
    def _unrolled(self) -> sp.csr_matrix:
        return linmap.conv_matrix(self.conv, self.in_shape)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Dense rows ``idx`` of the map (n_idx, n_source)."""
        if self.matrix is not None:
            return self.matrix[idx]
        return self.csr()[idx].toarray()

    def row_extremes(self, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per target neuron of ``gain * M``: (sum of positive, sum of negative
        magnitudes, largest magnitude)."""
        if self.matrix is not None:
            g = gain[:, None] * self.matrix
            return (np.clip(g, 0, None).sum(axis=1), np.clip(-g, 0, None).sum(axis=1),
                    np.abs(g).max(axis=1, initial=0.0))
        m = sp.csr_matrix(sp.diags(gain) @ self.csr())
        pos, neg = m.maximum(0), (-m).maximum(0)
        top = abs(m).max(axis=1).toarray().ravel() if m.shape[1] else np.zeros(m.shape[0])
        return (np.asarray(pos.sum(axis=1)).ravel(), np.asarray(neg.sum(axis=1)).ravel(), top)

    def apply(self, acts: np.ndarray) -> np.ndarray:
        """``acts @ M.T`` for activity ``acts`` (..., n_source)."""
        flat = acts.reshape(-1, acts.shape[-1])
        out = flat @ self.matrix.T if self.matrix is not None else \
            np.asarray((self.csr() @ flat.T).T)
        return out.reshape(*acts.shape[:-1], out.shape[-1])

    @property
    def synapses(self) -> int:
        """Non-zero entries of the map (a convolution counted unrolled, from geometry)."""
        if self.matrix is not None:
            return int(np.count_nonzero(self.matrix))
        return int(self.csr().nnz)


@dataclass(frozen=True, eq=False)
class Structure:
    shapes: dict[str, tuple[int, ...]]          # output shape of every population
    populations: tuple[str, ...]                # inputs first, then neurons, in execution order
    projections: tuple[Projection, ...]
    offsets: dict[str, int]
    outputs: dict[str, str]                     # Output node -> population feeding it

    def into(self, target: str) -> list[Projection]:
        return [p for p in self.projections if p.target == target]

    def size(self, population: str) -> int:
        return int(np.prod(self.shapes[population]))


def _unsupported(name: str, node: Any, why: str, hint: str) -> UnsupportedError:
    return UnsupportedError(f"{type(node).__name__} node '{name}' {why}", node=name, hint=hint)


Maps = dict[str, tuple[linmap.Lin, tuple[str, ...], bool]]


def _inputs_of(graph: Graph, name: str, preds: list[str], shapes: dict[str, Any],
               delayed: set, memo: dict[str, Any]) -> tuple[Maps, np.ndarray | float]:
    """Maps from every source population into the sum of ``preds`` (the inputs of
    ``name``), and the summed bias."""
    acc: Maps = {}
    bias: np.ndarray | float = 0.0
    for p in preds:
        pnode = graph.nodes[p]
        kind = primitives.kind(pnode)
        if kind in ("input", "neuron"):
            shape = tuple(int(d) for d in shapes[p][1])
            parts = {p: (linmap.Lin("eye", int(np.prod(shape)), shape), (),
                         (p, name) in delayed)}
            pbias: np.ndarray | float = 0.0
        elif kind == "linear":
            parts, pbias = _linear_maps(graph, p, shapes, delayed, memo)
        else:
            raise _unsupported(p, pnode, "cannot be mapped to a Loihi-family core",
                               "Supported between neurons: Affine, Linear, Scale, Conv, "
                               "SumPool/AvgPool, Flatten.")
        bias = bias + pbias
        for src, (lin, path, rec) in parts.items():
            if src in acc:
                prev = acc[src]
                acc[src] = (linmap.add(prev[0], lin), tuple(dict.fromkeys(prev[1] + path)),
                            prev[2] or rec)
            else:
                acc[src] = (lin, path, rec)
    return acc, bias


def _linear_maps(graph: Graph, name: str, shapes: dict[str, Any], delayed: set,
                 memo: dict[str, Any]) -> tuple[Maps, np.ndarray]:
    """For a stateless node: {source: (map to the node's output, path, recurrent)} and
    the node's output bias (flat)."""
    if name in memo:
        return memo[name]
    node = graph.nodes[name]
    in_shape, _ = shapes[name]
    in_shape = tuple(int(d) for d in in_shape)
    acc, bias_in = _inputs_of(graph, name, graph.predecessors(name), shapes, delayed, memo)
    flat = np.broadcast_to(bias_in, (int(np.prod(in_shape)),)).astype(float)
    bias = primitives.of(node).forward(node, flat.reshape(1, *in_shape))[0].ravel()
    out = {src: (linmap.apply(node, lin, in_shape), (*path, name), rec)
           for src, (lin, path, rec) in acc.items()}
    memo[name] = (out, bias)
    return memo[name]


def _projection(target: str, src: str, lin: linmap.Lin, path: tuple[str, ...], rec: bool,
                n_target: int) -> Projection:
    if lin.kind == "eye" or lin.kind == "pool":
        lin = linmap.Lin("sparse", lin.n_src, lin.src_shape, lin.csr())
    dense = lin.mat if lin.kind == "dense" else None
    sparse = lin.mat if lin.kind == "sparse" else None
    conv = lin.node if lin.kind == "conv" else None
    return Projection(src, target, dense, np.zeros(n_target), conv, path, rec, 0, sparse,
                      lin.src_shape)


def _offsets(graph: Graph, populations: list[str], projections: list[Projection]
             ) -> tuple[dict[str, int], list[Projection]]:
    ff = nx.DiGraph()
    ff.add_nodes_from(populations)
    ff.add_edges_from((p.source, p.target) for p in projections if not p.recurrent)
    offsets: dict[str, int] = {}
    for n in nx.topological_sort(ff):
        preds = list(ff.predecessors(n))
        offsets[n] = max((offsets[p] + 1 for p in preds), default=0)
    out = []
    for p in projections:
        delay = offsets[p.target] - offsets[p.source] - (0 if p.recurrent else 1)
        if delay < 0:
            raise UnsupportedError(
                f"the recurrent connection {p.source} -> {p.target} spans {-delay + 1} "
                "synaptic hops on hardware but one step in the model", node=p.target,
                hint="Loihi delivers every hop one step later; only self-recurrence (a "
                     "population feeding itself) keeps the model's timing.")
        out.append(replace(p, delay=delay))
    return offsets, out


def analyse(graph: Graph) -> Structure:
    """Populations, projections (with delays) and offsets of ``graph``; clear errors for
    anything a Loihi-family core cannot run. Nothing is cached: the graph is immutable
    and a caller that needs the structure twice keeps it."""
    io = infer_shapes(graph)
    delayed = recurrent_edges(graph)
    order = execution_order(graph)
    memo: dict[str, Any] = {}
    kinds = {n: primitives.kind(graph.nodes[n]) for n in order}
    populations = [n for n in order if kinds[n] == "input"]
    populations += [n for n in order if kinds[n] == "neuron"]
    projections: list[Projection] = []
    outputs: dict[str, str] = {}
    for name in order:
        node = graph.nodes[name]
        if kinds[name] in ("delay", "threshold"):
            raise _unsupported(name, node, "has no Loihi-family equivalent yet",
                               "Remove it, or express delays as synaptic delays in the model.")
        if kinds[name] == "output":
            outputs[name] = _output_source(graph, name, node)
            continue
        if kinds[name] != "neuron":
            continue
        n = int(np.prod(io[name][0]))
        maps, bias = _inputs_of(graph, name, graph.predecessors(name), io, delayed, memo)
        if not maps:
            raise _unsupported(name, node, "receives no input", "Connect it or remove it.")
        for k, (src, (lin, path, rec)) in enumerate(maps.items()):
            proj = _projection(name, src, lin, path, rec, n)
            if k == 0:
                proj = replace(proj, bias=np.broadcast_to(bias, (n,)).astype(float).copy())
            projections.append(proj)
    offsets, projections = _offsets(graph, populations, projections)
    shapes = {n: tuple(int(d) for d in io[n][1]) for n in populations}
    return Structure(shapes, tuple(populations), tuple(projections), offsets, outputs)


def _output_source(graph: Graph, name: str, node: Any) -> str:
    preds = graph.predecessors(name)
    bad = [p for p in preds if not primitives.is_neuron(graph.nodes[p])]
    if len(preds) != 1 or bad:
        raise _unsupported(name, node, "must be fed directly by one neuron population",
                           "Hardware returns spikes (or a readout's voltage) of a "
                           "population; end the model with a neuron layer.")
    return preds[0]


__all__ = ["Projection", "Structure", "analyse"]
