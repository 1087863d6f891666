"""How populations are laid out on the hardware: which neurons share a scale (groups),
which convolutions stay kernels, and the order of a population's neurons.

A group is a set of neurons of one population with equal du, dv and threshold
(:func:`group_sets`), optionally cut further by the size of their largest incoming
weight (:func:`split_by_magnitude`, ``--scale-groups``). A convolution stays a kernel
(:func:`kept_convs`) where the target has convolution, its source fits one core's fan-in
axons and both its ends fit one core whole; a population such a kernel touches is held
in Lava's (W, H, C) order (:func:`whc_perm`), every other one in NIR's flat order.
"""

from __future__ import annotations

import math
from typing import Any

import nir
import numpy as np

from snn2hw.passes.structure import Projection, Structure
from snn2hw.targets import Target


def group_sets(dyn: Any) -> list[np.ndarray]:
    """Neurons (NIR flat indices) of equal du, dv and threshold, one array per set."""
    keys = np.stack([dyn.du, dyn.dv, dyn.threshold], axis=1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == k) for k in range(int(inverse.max()) + 1)]


def split_by_magnitude(sets: list[np.ndarray], projs: list[Projection], gain: np.ndarray,
                       k: int) -> list[np.ndarray]:
    """Finer granularity: cut each set into up to ``k`` groups of neurons with similar
    largest incoming weight, so that each group's scale (and exponent) fits its own
    weights instead of the population's largest."""
    top = np.zeros(gain.size)
    for p in projs:
        top = np.maximum(top, p.row_extremes(gain)[2])
    out = []
    for members in sets:
        ranked = members[np.argsort(top[members], kind="stable")]
        out += [part for part in np.array_split(ranked, min(k, ranked.size)) if part.size]
    return out


def whc_perm(shape: tuple[int, ...]) -> np.ndarray:
    """Hardware index -> NIR flat index for a (C, H, W) population held as (W, H, C)."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(2, 1, 0).ravel()


def conv_params(conv: nir.Conv2d) -> dict[str, Any] | None:
    """Lava's Conv geometry (x, y order) of a NIR Conv2d; None where Lava has none
    (asymmetric 'same' padding)."""
    def pair(v: Any) -> tuple[int, int]:
        a = np.broadcast_to(np.asarray(v, dtype=int).ravel(), (2,))
        return int(a[1]), int(a[0])          # NIR (y, x) -> Lava (x, y)
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            pad = (0, 0)
        else:
            k = np.asarray(conv.weight).shape[2:]
            d = np.broadcast_to(np.asarray(conv.dilation, dtype=int).ravel(), (2,))
            if any((di * (ki - 1)) % 2 for ki, di in zip(k, d)):
                return None                   # asymmetric 'same' padding: not a Lava Conv
            pad = (int(d[1] * (k[1] - 1) // 2), int(d[0] * (k[0] - 1) // 2))
    else:
        pad = pair(conv.padding)
    return {"stride": pair(conv.stride), "padding": pad, "dilation": pair(conv.dilation),
            "groups": int(np.asarray(conv.groups))}


def fits_one_core(structure: Structure, pop: str, target: Target) -> bool:
    """A kept convolution holds its source and target whole (one group, one core): their
    other inputs must fit one core's synaptic memory (estimated from synapse counts,
    convolutions that can stay kernels as kernels)."""
    bits = 0
    nwb = target.numeric.weight_bits_max
    c = target.core
    for q in structure.into(pop):
        if q.kind == "conv" and structure.size(q.source) <= c.fan_in_axons_max and \
                max(structure.size(q.source), structure.size(pop)) <= c.neurons_max:
            bits += int(np.asarray(q.conv.weight).size) * nwb
            continue
        n_src = structure.size(q.source)
        idx = max(1, math.ceil(math.log2(max(n_src, 2))))
        bits += min(q.synapses * (nwb + idx), structure.size(pop) * n_src * nwb)
    return bits <= target.core.synapse_memory_bits


def keepable(p: Projection, structure: Structure, target: Target) -> bool:
    """A convolution that can stay a kernel on ``target`` (module docstring)."""
    c = target.core
    return p.conv is not None and conv_params(p.conv) is not None \
        and len(structure.shapes[p.source]) == 3 \
        and max(structure.size(p.source), structure.size(p.target)) <= c.neurons_max \
        and structure.size(p.source) <= c.fan_in_axons_max \
        and all(fits_one_core(structure, q, target) for q in (p.source, p.target))


def kept_convs(structure: Structure, dyns: dict[str, Any], target: Target, keep_conv: bool
               ) -> set[str]:
    """Convolutions a LIF network keeps: keepable, no synaptic delay, each end one group
    with one gain per output channel (the kernel is shared by every position)."""
    if not (keep_conv and target.connectivity.conv):
        return set()
    kept = set()
    for p in structure.projections:
        if p.delay or not keepable(p, structure, target):
            continue
        singles = all(p2 not in dyns or len(group_sets(dyns[p2])) == 1
                      for p2 in (p.source, p.target))
        gain = dyns[p.target].gain.reshape(structure.shapes[p.target])
        if singles and np.allclose(gain, gain.reshape(gain.shape[0], -1)[:, :1, None]):
            kept.add(p.name)
    return kept


def layouts(structure: Structure, kept: set[str]
            ) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """Per population: hardware index -> NIR flat index, and the hardware shape."""
    order: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for pop in structure.populations:
        shape = structure.shapes[pop]
        convy = any(p.name in kept and pop in (p.source, p.target) for p in structure.projections)
        order[pop] = whc_perm(shape) if convy else np.arange(structure.size(pop))
        shapes[pop] = tuple(reversed(shape)) if convy else (structure.size(pop),)
    return order, shapes


__all__ = ["conv_params", "fits_one_core", "group_sets", "keepable", "kept_convs", "layouts",
           "split_by_magnitude", "whc_perm"]
