"""Sigma-delta graphs (snn2hw.sdnn's convention) on the float reference: how many steps a
static input takes to settle, and the magnitudes calibration data reaches (what the
compiler sizes each layer's integer grid by: passes/quantise_sdnn.py)."""

from __future__ import annotations

import numpy as np

from snn2hw import reference
from snn2hw.ir import Graph
from snn2hw.passes.structure import analyse
from snn2hw.sdnn import params, sd_nodes

__all__ = ["observe", "settle_steps"]


def settle_steps(graph: Graph) -> int:
    """Steps until an input sent at step 0 has reached every layer (each layer takes its
    input one step late, :mod:`snn2hw.reference`): the longest chain of layers plus one.
    A static input's result is final then."""
    return max(analyse(graph).offsets.values(), default=0) + 1


def observe(graph: Graph, payloads: np.ndarray) -> dict[str, dict[str, float]]:
    """Per sigma-delta node, the largest magnitudes the float reference reaches on
    ``payloads`` (B, T, *input shape): per-step ``input``, ``state`` (sigma and
    sigma + bias) and ``payload``."""
    res = reference.simulate(graph, np.asarray(payloads, dtype=float),
                             record=("spikes", "states"))
    out = {}
    for name in sd_nodes(graph):
        p = params(name, graph.nodes[name])
        sigma = res.states[name]["sigma"]
        b, t = sigma.shape[:2]
        flat = sigma.reshape(b, t, -1)
        step_in = np.diff(flat, axis=1, prepend=0.0)
        out[name] = {"input": float(np.abs(step_in).max(initial=0)),
                     "state": float(max(np.abs(flat).max(initial=0),
                                        np.abs(flat + p.bias).max(initial=0))),
                     "payload": float(np.abs(res.spikes[name]).max(initial=0))}
    return out
