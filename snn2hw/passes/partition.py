"""Partition: split neuron groups into parts that fit a core, counting axons the way the
hardware spends them, and pack parts onto cores.

* A part's *fan-in* is the number of distinct source neurons with a synapse into it
  (one input axon each); its *fan-out* is, summed over its neurons, the number of
  destination parts each neuron actually reaches (one output axon per destination core;
  counted per part, an upper bound that packing can only lower).
* A group with a spatial shape (C, H, W) that is unrolled (not a kept convolution) is
  cut into spatial tiles holding all channels, so a source neuron with a local
  receptive field reaches few tiles; other groups are cut into contiguous slices.
* Parts are chosen downstream first: a group's fan-out depends on how its targets are
  cut, so every group is cut into as few parts as keep neurons, synaptic memory,
  fan-in and fan-out of every part within the core's limits.
* A group fed by a kept convolution stays whole (one shared kernel per group), and so
  does a group a kept convolution reads. Where such a group exceeds a core
  (:meth:`Partitioner.kept_whole_over_limits`), ``passes/unroll.py`` first unrolls those
  convolutions into exact csr blocks, which are then cut like any unrolled layer.
* Blocks held as scipy csr matrices (unrolled convolutions) are counted and sliced as
  csr matrices, never densified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.targets import Target

Storage = Callable[[HwBlock, Target], tuple[str, int]]


@dataclass(frozen=True)
class Plan:
    """How one group is cut: ``rows`` (positions in the group) per part, the limit that
    set the number of parts, and a lower bound on that number."""

    group: str
    population: str
    rows: tuple[np.ndarray, ...]
    binding: str
    lower_bound: int


def present_columns(b: HwBlock, n_source: int) -> np.ndarray:
    """Source neurons (flat NIR index) with at least one synapse in ``b``."""
    if b.kind == "conv":
        return np.ones(n_source, dtype=bool)
    if sp.issparse(b.weights):
        return np.bincount(b.weights.indices, minlength=n_source) > 0
    present = (b.weights >= 0) if b.kind == "codebook" else (b.weights != 0)
    return present.any(axis=0)


def _entries(w: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``w.data``/``w.indices`` of the entries of ``rows`` (in that order),
    and each row's entry count."""
    starts = w.indptr[rows]
    lens = w.indptr[np.asarray(rows) + 1] - starts
    before = np.cumsum(lens) - lens
    return np.arange(int(lens.sum())) + np.repeat(starts - before, lens), lens


def rows_of(w: np.ndarray | sp.spmatrix, rows: np.ndarray | slice) -> np.ndarray | sp.spmatrix:
    """``w[rows]``; for a csr matrix gathered directly (scipy's fancy indexing is slow
    for the thousands of candidate parts the partitioner measures)."""
    if not sp.issparse(w) or isinstance(rows, slice):
        return w[rows]
    pos, lens = _entries(w, np.asarray(rows))
    indptr = np.concatenate([[0], np.cumsum(lens)])
    return sp.csr_matrix((w.data[pos], w.indices[pos], indptr), shape=(len(rows), w.shape[1]))


def _columns_of_rows(b: HwBlock, rows: np.ndarray, n_source: int) -> np.ndarray:
    """present_columns of ``b`` restricted to ``rows``."""
    if b.kind == "conv":
        return np.ones(n_source, dtype=bool)
    if sp.issparse(b.weights):
        used = np.zeros(n_source, dtype=bool)
        used[b.weights.indices[_entries(b.weights, np.asarray(rows))[0]]] = True
        return used
    return present_columns(replace(b, weights=b.weights[rows]), n_source)


def slice_block(b: HwBlock, rows: np.ndarray | slice, name: str, k: int) -> HwBlock:
    return replace(b, name=f"{b.name}[{k}]", target=name, weights=rows_of(b.weights, rows),
                   codebook=b.codebook[rows] if b.codebook is not None
                   and b.codebook.shape[0] > 1 else b.codebook)


def slice_group(g: HwGroup, rows: np.ndarray | slice, k: int) -> HwGroup:
    idx = g.index[rows]
    return replace(g, name=f"{g.name}[{k}]", index=idx, shape=(idx.size,),
                   bias_mant=g.bias_mant[rows], bias_exp=g.bias_exp[rows], v0=g.v0[rows])


def cut(g: HwGroup, parts: int, spatial: tuple[int, ...] | None) -> tuple[np.ndarray, ...]:
    """Rows of each of (at least) ``parts`` parts: spatial tiles with all channels where
    the population has a (C, H, W) shape, contiguous slices otherwise."""
    if parts <= 1:
        return (np.arange(g.size),)
    if spatial is None or len(spatial) != 3:
        bounds = np.linspace(0, g.size, parts + 1).round().astype(int)
        return tuple(np.arange(bounds[k], bounds[k + 1]) for k in range(parts)
                     if bounds[k + 1] > bounds[k])
    _, h, w = spatial
    ty = min(h, max(1, round(math.sqrt(parts * h / w))))
    tx = min(w, math.ceil(parts / ty))
    ty = min(h, math.ceil(parts / tx))
    _, y, x = np.unravel_index(g.index, spatial)
    tile = (y * ty // h) * tx + (x * tx // w)
    order = np.argsort(tile, kind="stable")
    edges = np.searchsorted(tile[order], np.arange(ty * tx + 1))
    return tuple(order[edges[k]:edges[k + 1]] for k in range(ty * tx)
                 if edges[k + 1] > edges[k])


def _fan_in(blocks: list[HwBlock], rows: np.ndarray, sizes: dict[str, int]) -> int:
    used: dict[str, np.ndarray] = {}
    for b in blocks:
        cols = _columns_of_rows(b, rows, sizes[b.source])
        used[b.source] = used.get(b.source, np.zeros(cols.size, dtype=bool)) | cols
    return int(sum(int(c.sum()) for c in used.values()))


def _tightest(measured: dict[str, float], limits: dict[str, float]) -> str:
    """For a group that fits one core: the limit it comes closest to."""
    key = max(limits, key=lambda k: measured[k] / limits[k])
    return f"none ({key} {100 * measured[key] / limits[key]:.0f}%)"


def _widest_rows(blocks: list[HwBlock]) -> list[int]:
    """Rows with the most synapses in each non-conv block (a neuron's own fan-in is a
    floor no cut can go below)."""
    out = []
    for b in blocks:
        if b.kind != "conv" and b.weights.shape[0]:
            if sp.issparse(b.weights):
                out.append(int(np.argmax(np.diff(b.weights.indptr))))
                continue
            present = (b.weights >= 0) if b.kind == "codebook" else (b.weights != 0)
            out.append(int(np.argmax(present.sum(axis=1))))
    return out


class Partitioner:
    """Cuts every group of ``net`` (see the module docstring)."""

    def __init__(self, net: HwNet, target: Target, storage: Storage):
        self.net, self.target, self.storage = net, target, storage
        self.sizes = {p: int(np.prod(s)) for p, s in net.shapes.items()}
        self.plans: dict[str, Plan] = {}
        self.reach: dict[str, np.ndarray] = {}     # source population -> parts reached
        self.conv_sources = {b.source for b in net.blocks if b.kind == "conv"}

    def _measure(self, g: HwGroup, rows: np.ndarray) -> dict[str, float]:
        into = self.net.blocks_into(g.name)
        part = [b if b.kind == "conv" else slice_block(b, rows, "part", 0) for b in into]
        reach = self.reach.get(g.population)
        return {"neurons": rows.size,
                "synaptic memory": sum(self.storage(b, self.target)[1] for b in part),
                "fan-in": _fan_in(into, rows, self.sizes),
                "fan-out": float(reach[g.index[rows]].sum()) if reach is not None else 0.0}

    def _limits(self) -> dict[str, float]:
        c = self.target.core
        return {"neurons": c.neurons_max, "synaptic memory": c.synapse_memory_bits,
                "fan-in": c.fan_in_axons_max, "fan-out": c.fan_out_axons_max}

    def plan(self, g: HwGroup) -> Plan:
        limits = self._limits()
        whole = self._measure(g, np.arange(g.size))
        lower = max(1, math.ceil(whole["neurons"] / limits["neurons"]),
                    math.ceil(whole["synaptic memory"] / limits["synaptic memory"]))
        if self._conv_bound(g):
            over = [k for k, v in whole.items() if v > limits[k]]
            return Plan(g.name, g.population, (np.arange(g.size),),
                        over[0] if over else _tightest(whole, limits), lower)
        single = max((self._measure(g, np.array([r]))["fan-in"] for r in
                      _widest_rows(self.net.blocks_into(g.name))), default=0)
        spatial = self.net.spatial.get(g.population)
        parts, binding = lower, "neurons" if lower > 1 else _tightest(whole, limits)
        if lower > 1 and whole["synaptic memory"] / limits["synaptic memory"] > \
                whole["neurons"] / limits["neurons"]:
            binding = "synaptic memory"
        while True:
            rows = cut(g, parts, spatial)
            measured = [self._measure(g, r) for r in rows]
            worst = {k: max(m[k] for m in measured) for k in limits}
            over = [k for k in limits if worst[k] > limits[k]]
            if not over or parts >= g.size or single > limits["fan-in"]:
                return Plan(g.name, g.population, rows, binding, lower)
            binding = over[0]
            parts = max(parts + 1, math.ceil(parts * max(worst[k] / limits[k] for k in over)))
            parts = min(parts, g.size)

    def _conv_bound(self, g: HwGroup) -> bool:
        return any(b.kind == "conv" for b in self.net.blocks_into(g.name)) or \
            g.population in self.conv_sources

    def kept_whole_over_limits(self) -> dict[str, tuple[str, float, float]]:
        """Plan every group (as :meth:`run` does) and return the groups kept whole by a
        kept convolution that exceed a core: name -> (limit, measured, allowed)."""
        limits, out = self._limits(), {}
        for g in reversed(self.net.groups):
            plan = self.plan(g)
            self.plans[g.name] = plan
            self._add_reach(g, plan)
            if self._conv_bound(g):
                whole = self._measure(g, np.arange(g.size))
                over = [k for k in limits if whole[k] > limits[k]]
                if over:
                    out[g.name] = (over[0], whole[over[0]], limits[over[0]])
        return out

    def _add_reach(self, g: HwGroup, plan: Plan) -> None:
        for b in self.net.blocks_into(g.name):
            n = self.sizes[b.source]
            acc = self.reach.setdefault(b.source, np.zeros(n))
            for rows in plan.rows:
                acc += _columns_of_rows(b, rows, n)

    def run(self) -> tuple[HwNet, dict[str, Plan]]:
        for g in reversed(self.net.groups):          # targets are cut before their sources
            if g.name in self.plans:                 # planned by kept_whole_over_limits
                continue
            plan = self.plan(g)
            self.plans[g.name] = plan
            self._add_reach(g, plan)
        groups: list[HwGroup] = []
        blocks: list[HwBlock] = []
        for g in self.net.groups:
            plan, into = self.plans[g.name], self.net.blocks_into(g.name)
            if len(plan.rows) == 1:
                groups.append(g)
                blocks.extend(into)
                continue
            for k, rows in enumerate(plan.rows):
                part = slice_group(g, rows, k)
                groups.append(part)
                blocks.extend(slice_block(b, rows, part.name, k) for b in into)
        return self.net.with_(groups=tuple(groups), blocks=tuple(blocks)), self.plans


def fan_out_estimate(net: HwNet) -> dict[str, int]:
    """Per group: its neurons' destination groups summed (an upper bound on its fan-out
    axons, reached when every destination group is on a core of its own)."""
    sizes = {p: int(np.prod(s)) for p, s in net.shapes.items()}
    reach = {p: np.zeros(n) for p, n in sizes.items()}
    for b in net.blocks:
        reach[b.source] += present_columns(b, sizes[b.source])
    return {g.name: int(reach[g.population][g.index].sum()) for g in net.groups}


def pack(net: HwNet, target: Target, storage: Storage) -> list[list[str]]:
    """Groups in order share a core while neurons, memory, fan-in and (estimated)
    fan-out all fit."""
    c = target.core
    sizes = {p: int(np.prod(s)) for p, s in net.shapes.items()}
    fan_out = fan_out_estimate(net)
    cores: list[list[str]] = []
    cur: list[str] = []
    n = mem = out = 0
    for g in net.groups:
        into = net.blocks_into(g.name)
        g_mem = sum(storage(b, target)[1] for b in into)
        trial = [b for name in cur for b in net.blocks_into(name)] + into
        fits = (cur and n + g.size <= c.neurons_max and mem + g_mem <= c.synapse_memory_bits
                and out + fan_out[g.name] <= c.fan_out_axons_max
                and fan_in(trial, sizes) <= c.fan_in_axons_max)
        if not fits and cur:
            cores.append(cur)
            cur, n, mem, out = [], 0, 0, 0
        cur.append(g.name)
        n, mem, out = n + g.size, mem + g_mem, out + fan_out[g.name]
    if cur:
        cores.append(cur)
    return cores


def fan_in(blocks: list[HwBlock], sizes: dict[str, int]) -> int:
    """Distinct source neurons with at least one synapse into these blocks."""
    used: dict[str, np.ndarray] = {}
    for b in blocks:
        cols = present_columns(b, sizes[b.source])
        used[b.source] = used.get(b.source, np.zeros(cols.size, dtype=bool)) | cols
    return int(sum(int(c.sum()) for c in used.values()))


__all__ = [
    "Partitioner",
    "Plan",
    "cut",
    "fan_in",
    "fan_out_estimate",
    "pack",
    "present_columns",
]
