"""The structure a neuromorphic core sees in a NIR graph: populations and projections.

A *population* is a neuron node (LIF, IF, CubaLIF, LI, CubaLI, I) or an Input.
A *projection* is everything stateless between a source population and a target
neuron node (Affine, Linear, Scale, Conv, pooling, Flatten, in any chain or sum):
one affine map ``x_target += M @ s_source + b`` in NIR's flat C order. A single
Conv2d between two populations stays a convolution (``conv``) so a target with
shared kernels can keep it; everything else is materialised as a matrix.

Timing: the reference gives a neuron its input in the same step; Loihi-family
hardware delivers a spike one step after it was sent. Every population gets an
*offset* (steps by which the hardware runs behind the reference): inputs 0, a
neuron max over feed-forward sources (offset + 1). A projection whose source is
earlier than that gets a synaptic delay that evens the paths out; a recurrent
projection (the reference's previous-step edge) must see ``delay = offset_target
- offset_source >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import networkx as nx
import nir
import numpy as np

from snn2hw.errors import UnsupportedError
from snn2hw.ir import Graph, execution_order, recurrent_edges
from snn2hw.reference import STATELESS
from snn2hw.shapes import infer_shapes

NEURON_TYPES: tuple[type, ...] = (nir.LIF, nir.IF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.I)
SOURCE_TYPES: tuple[type, ...] = (nir.Input, *NEURON_TYPES)
LINEAR_TYPES: tuple[type, ...] = (nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d,
                                  nir.SumPool2d, nir.AvgPool2d, nir.Flatten)


@dataclass(frozen=True, eq=False)
class Projection:
    """``matrix`` (n_target, n_source) float, or None when ``conv`` is the whole path."""

    source: str
    target: str
    matrix: np.ndarray | None
    bias: np.ndarray
    conv: nir.Conv2d | None
    nodes: tuple[str, ...]
    recurrent: bool
    delay: int = 0

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


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


def _linear_maps(graph: Graph, name: str, shapes: dict[str, Any], delayed: set,
                 memo: dict[str, Any]) -> tuple[dict[str, tuple[np.ndarray, tuple[str, ...],
                                                               bool]], np.ndarray]:
    """For a stateless node: {source: (A (n_src, *out_shape), path, recurrent)}, bias."""
    if name in memo:
        return memo[name]
    node = graph.nodes[name]
    in_shape, out_shape = shapes[name]
    acc: dict[str, tuple[np.ndarray, tuple[str, ...], bool]] = {}
    bias_in = np.zeros(in_shape)
    for p in graph.predecessors(name):
        pnode = graph.nodes[p]
        if isinstance(pnode, SOURCE_TYPES):
            n = int(np.prod(shapes[p][1]))
            parts = {p: (np.eye(n).reshape(n, *shapes[p][1]), (), (p, name) in delayed)}
            pbias = np.zeros(shapes[p][1])
        elif isinstance(pnode, LINEAR_TYPES):
            parts, pbias = _linear_maps(graph, p, shapes, delayed, memo)
        else:
            raise _unsupported(p, pnode, "cannot be mapped to a Loihi-family core",
                               "Supported between neurons: Affine, Linear, Scale, Conv, "
                               "SumPool/AvgPool, Flatten.")
        bias_in = bias_in + pbias
        for src, (a, path, rec) in parts.items():
            if src in acc:
                prev = acc[src]
                acc[src] = (prev[0] + a, tuple(dict.fromkeys(prev[1] + path)), prev[2] or rec)
            else:
                acc[src] = (a, path, rec)
    op = STATELESS[type(node)]
    zero_out = op(node, np.zeros((1, *in_shape)))[0]
    out = {src: (op(node, a) - zero_out, (*path, name), rec) for src, (a, path, rec) in acc.items()}
    memo[name] = (out, op(node, bias_in[None])[0])
    return memo[name]


def _projection(graph: Graph, target: str, src: str, a: np.ndarray, path: tuple[str, ...],
                rec: bool, shapes: dict[str, Any]) -> Projection:
    n_src = a.shape[0]
    matrix = np.ascontiguousarray(a.reshape(n_src, -1).T)
    conv = None
    if len(path) == 1 and isinstance(graph.nodes[path[0]], nir.Conv2d):
        conv = graph.nodes[path[0]]
    return Projection(src, target, matrix, np.zeros(matrix.shape[0]), conv, path, rec)


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
        out.append(Projection(p.source, p.target, p.matrix, p.bias, p.conv, p.nodes,
                              p.recurrent, delay))
    return offsets, out


def analyse(graph: Graph) -> Structure:
    """Populations, projections (with delays) and offsets of ``graph``; clear errors for
    anything a Loihi-family core cannot run."""
    return _analyse_cached(graph)


@lru_cache(maxsize=8)
def _analyse_cached(graph: Graph) -> Structure:
    io = infer_shapes(graph)
    delayed = recurrent_edges(graph)
    order = execution_order(graph)
    memo: dict[str, Any] = {}
    populations = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    populations += [n for n in order if isinstance(graph.nodes[n], NEURON_TYPES)]
    projections: list[Projection] = []
    outputs: dict[str, str] = {}
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, (nir.Delay, nir.Threshold)):
            raise _unsupported(name, node, "has no Loihi-family equivalent yet",
                               "Remove it, or express delays as synaptic delays in the model.")
        if isinstance(node, nir.Output):
            preds = graph.predecessors(name)
            bad = [p for p in preds if not isinstance(graph.nodes[p], NEURON_TYPES)]
            if len(preds) != 1 or bad:
                raise _unsupported(name, node, "must be fed directly by one neuron population",
                                   "Hardware returns spikes (or a readout's voltage) of a "
                                   "population; end the model with a neuron layer.")
            outputs[name] = preds[0]
            continue
        if not isinstance(node, NEURON_TYPES):
            continue
        fake = nir.Output(output_type={"output": np.array(io[name][0])})
        sub = graph.replace(nodes={**graph.nodes, f"{name}#in": fake},
                            edges=graph.edges + tuple((p, f"{name}#in")
                                                      for p in graph.predecessors(name)))
        maps, bias = _linear_maps(sub, f"{name}#in", {**io, f"{name}#in": (io[name][0],) * 2},
                                  {(a, f"{name}#in") if b == name else (a, b)
                                   for a, b in delayed}, memo)
        first = True
        for src, (a, path, rec) in maps.items():
            proj = _projection(graph, name, src, a, path[:-1], rec, io)
            if first:
                proj = Projection(proj.source, proj.target, proj.matrix, bias.ravel().copy(),
                                  proj.conv, proj.nodes, proj.recurrent)
                first = False
            projections.append(proj)
        if not maps:
            raise _unsupported(name, node, "receives no input", "Connect it or remove it.")
    offsets, projections = _offsets(graph, populations, projections)
    shapes = {n: tuple(io[n][1]) for n in populations}
    return Structure(shapes, tuple(populations), tuple(projections), offsets, outputs)


__all__ = ["Projection", "Structure", "analyse", "NEURON_TYPES", "LINEAR_TYPES"]
