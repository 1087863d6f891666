"""Cycle and energy model: event counts per core and step, priced by the target file.

Per timestep, per sample and per core the engine counts synaptic operations (one per
active synapse: a non-zero effective weight, or in a codebook block any existing synapse,
index >= 0, whose source sent a spike or payload), neuron updates (active: non-zero
input or state; inactive otherwise), spikes sent (a sigma-delta group's graded spike is
a non-zero payload), payload bits (graded spikes times the widest num_message_bits of the
blocks the group feeds; counted, not priced: no target publishes a per-bit figure) and
mesh hops (Manhattan distance
between the source core and each distinct destination core on the same chip; a hop to
another chip counts as one chip hop). Host input is not priced. A core's time for a
step is the sum of its counts times the per-event times; the step's latency is the
slowest core plus the barrier. Energy adds the per-event energies and static power over
the latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EVENTS = ("synops", "active", "inactive", "spikes", "hops", "chip_hops", "payload_bits")
#: Events the target's [cost] table prices; payload_bits (graded spikes times their message
#: width) is counted but has no published figure.
PRICED = EVENTS[:6]
_TIME = {"synops": "synop_time_ns", "active": "neuron_active_time_ns",
         "inactive": "neuron_inactive_time_ns", "spikes": "spike_time_ns",
         "hops": "hop_time_ns", "chip_hops": "chip_hop_time_ns"}
_ENERGY = {"synops": "synop_energy_pj", "active": "neuron_active_energy_pj",
           "inactive": "neuron_inactive_energy_pj", "spikes": "spike_energy_pj",
           "hops": "hop_energy_pj", "chip_hops": "chip_hop_energy_pj"}


@dataclass
class CostReport:
    """``counts[event]``: (B, T, cores) ints; ``latency_ns``: (B, T); ``energy_pj``: (B,);
    ``energy_step_pj``: (B, T), whose sum over steps is ``energy_pj``."""

    counts: dict[str, np.ndarray]
    latency_ns: np.ndarray
    energy_pj: np.ndarray
    estimated: bool
    core_ids: tuple[int, ...]
    energy_step_pj: np.ndarray | None = None

    def per_core(self) -> dict[str, np.ndarray]:
        """Totals per core over samples and steps."""
        return {e: c.sum(axis=(0, 1)) for e, c in self.counts.items()}

    def summary(self) -> str:
        b, t = self.latency_ns.shape
        tot = {e: int(c.sum()) for e, c in self.counts.items()}
        flag = " (target cost figures are estimates)" if self.estimated else ""
        energy = (f"{self.energy_pj.mean() / 1e6:.4f} uJ" if self.energy_pj.any() else
                  "energy not modelled (no published figures)")
        return (f"cost per sample: {energy}, "
                f"{self.latency_ns.sum(axis=1).mean() / 1e3:.2f} us over {t} steps "
                f"(mean step {self.latency_ns.mean():.0f} ns, max {self.latency_ns.max():.0f} ns)"
                f"; totals over {b} sample(s): {tot['synops']} synops, {tot['spikes']} spikes "
                f"({tot['payload_bits']} payload bits), "
                f"{tot['hops']} hops, {tot['active']} active neuron updates{flag}")


def concatenate(parts: Sequence[CostReport]) -> CostReport:
    return CostReport({e: np.concatenate([p.counts[e] for p in parts]) for e in EVENTS},
                      np.concatenate([p.latency_ns for p in parts]),
                      np.concatenate([p.energy_pj for p in parts]), parts[0].estimated,
                      parts[0].core_ids,
                      np.concatenate([p.energy_step_pj for p in parts])
                      if all(p.energy_step_pj is not None for p in parts) else None)


class Counter:
    """Accumulates event counts while the engine runs."""

    def __init__(self, program: Any, target: Any, batch: int, steps: int, blocks: list
                 ) -> None:
        self.target = target
        self.core_ids = tuple(c.index for c in program.cores)
        col = {c.index: k for k, c in enumerate(program.cores)}
        self.group_core = {g: col[c.index] for c in program.cores for g in c.groups}
        block_core = {b: col[c.index] for c in program.cores for b in c.blocks}
        self.block_core = [block_core.get(b.spec.name, self.group_core[b.spec.target])
                           for b in blocks]
        self.nnz = [b.nnz_col if b.spec.kind != "conv" else
                    conv_fanout(b.weights, _shape(program, b.spec.source),
                                _shape(program, b.spec.target), b.spec.conv)
                    for b in blocks]
        self.counts = {e: np.zeros((batch, steps, len(self.core_ids)), np.int64) for e in EVENTS}
        self.hops, self.chip_hops = self._routes(program, blocks, col)
        # payload width of a group's graded spikes: the widest graded block it feeds
        self.width = {g.name: max([b.spec.num_message_bits for b in blocks
                                   if b.spec.source == g.name] + [0])
                      if g.model in ("sigma_delta", "delta", "sigma") else 0
                      for g in program.groups}

    def _routes(self, program: Any, blocks: list, col: dict[int, int]
                ) -> tuple[dict[str, int], dict[str, int]]:
        cols = int(self.target.chip.mesh[1])
        where = {col[c.index]: (c.chip, c.index % self.target.chip.cores_max) for c in
                 program.cores}
        hops: dict[str, int] = {}
        chip_hops: dict[str, int] = {}
        for g in program.groups:
            src = self.group_core[g.name]
            dests = {self.block_core[i] for i, b in enumerate(blocks) if b.spec.source == g.name}
            h = ch = 0
            for d in dests - {src}:
                (c1, k1), (c2, k2) = where[src], where[d]
                if c1 != c2:
                    ch += 1
                else:
                    h += abs(k1 // cols - k2 // cols) + abs(k1 % cols - k2 % cols)
            hops[g.name], chip_hops[g.name] = h, ch
        return hops, chip_hops

    def neurons(self, group: str, t: int, active: np.ndarray, spikes: np.ndarray) -> None:
        c = self.group_core[group]
        n_active = active.sum(axis=1)
        n_spikes = spikes.sum(axis=1)
        self.counts["active"][:, t - 1, c] += n_active
        self.counts["inactive"][:, t - 1, c] += active.shape[1] - n_active
        self.counts["spikes"][:, t - 1, c] += n_spikes
        self.counts["hops"][:, t - 1, c] += n_spikes * self.hops[group]
        self.counts["chip_hops"][:, t - 1, c] += n_spikes * self.chip_hops[group]
        self.counts["payload_bits"][:, t - 1, c] += n_spikes * self.width[group]

    def synapses(self, block: int, t: int, src: np.ndarray) -> None:
        self.counts["synops"][:, t - 1, self.block_core[block]] += (src != 0) @ self.nnz[block]

    def report(self) -> CostReport:
        cost = self.target.cost
        core_time = sum(self.counts[e] * getattr(cost, _TIME[e]) for e in PRICED)
        latency = (core_time.max(axis=2) if core_time.shape[2] else
                   np.zeros(core_time.shape[:2])) + cost.barrier_time_ns
        dynamic = sum(self.counts[e].sum(axis=2) * getattr(cost, _ENERGY[e]) for e in PRICED)
        per_step = dynamic + latency * cost.static_power_mw  # mW * ns = pJ
        return CostReport(self.counts, latency, per_step.sum(axis=1), cost.estimated,
                          self.core_ids, per_step)


def conv_fanout(weights: np.ndarray, size_in: tuple[int, ...], size_out: tuple[int, ...],
                conv: dict[str, Any]) -> np.ndarray:
    """Synapses per source neuron of a conv block, in the block's (X, Y, C) input order:
    the (output pixel, output channel) pairs that input (x, y, c) reaches through a
    non-zero weight, with the block's stride, padding, dilation and groups (so a stride-2
    layer counts a quarter of the taps, and border pixels fewer). Tap (i, j) of output
    channel k is weights[k, Kw-1-i, Kh-1-j] (Lava's flipped kernel, kernels.conv_activation),
    and input x reaches output x' = (x + padding - i * dilation) / stride where that is a
    whole number inside the output."""
    w = np.asarray(weights)
    co, kw, kh, _ = w.shape
    (sx, sy), (px, py), (dx, dy) = (tuple(int(v) for v in conv[k])
                                    for k in ("stride", "padding", "dilation"))
    groups = int(conv["groups"])
    xin, yin, cin = size_in
    xo, yo = size_out[0], size_out[1]
    og = co // groups
    nz = w[:, ::-1, ::-1, :] != 0                     # nz[k, i, j, c]: tap (i, j) exists
    taps = np.concatenate([nz[g * og:(g + 1) * og].sum(axis=0) for g in range(groups)],
                          axis=2)                     # (Kw, Kh, C_in): output channels
    out = np.zeros((xin, yin, cin), np.int64)
    for i in range(kw):
        xs = np.arange(xin) + px - i * dx             # x' * stride
        okx = (xs >= 0) & (xs % sx == 0) & (xs // sx < xo)
        for j in range(kh):
            ys = np.arange(yin) + py - j * dy
            oky = (ys >= 0) & (ys % sy == 0) & (ys // sy < yo)
            out += (okx[:, None] & oky[None, :])[:, :, None] * taps[i, j][None, None, :]
    return out.reshape(-1)


def _shape(program: Any, name: str) -> tuple[int, ...]:
    for p in (*program.ports, *program.groups):
        if p.name == name:
            return p.shape
    raise KeyError(name)
