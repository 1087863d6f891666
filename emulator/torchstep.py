"""The torch engine's time loop: neuron updates of a stage's groups, step by step, every
sample at once, with recordings, saturation and cost counts kept on the device until the
run ends (no host round trip per step).

The updates are engine.lif_update (kernels.lif_step) and sigma_delta.update
(kernels.sigma_delta_step, delta_step), operation for operation, on int64 tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from snn2hw_emulator import torchops as ops
from snn2hw_emulator.image import target_of
from snn2hw_emulator.kernels import GRADED_MODELS, SD_STATE, STATE_VARS
from snn2hw_emulator.result import RECORDABLE, Result
from snn2hw_emulator.torchblocks import activation


class Run:
    """One run's recordings and counts (on the device), filled stage by stage."""

    def __init__(self, torch: Any, dev: Any, program: Any, batch: int, steps: int,
                 record: Sequence[str], cost: bool) -> None:
        self.torch, self.dev, self.program = torch, dev, program
        self.arith = target_of(program).numeric       # the family record's widths
        self.batch, self.steps, self.cost = batch, steps, cost
        self.rec = {var: {g.name: torch.zeros((batch, steps, g.size), device=dev, dtype=(
            torch.int8 if var == "spikes" and g.model not in GRADED_MODELS else torch.int32))
            for g in program.groups if var == "spikes" or var in STATE_VARS[g.model]}
            for var in RECORDABLE if var in record or var == "spikes"}
        # per group: u wraps and v clips per step; active and firing neurons per (b, t)
        self.events = {g.name: torch.zeros((2, steps), dtype=torch.int64, device=dev)
                       for g in program.groups}
        self.neurons = {g.name: torch.zeros((2, batch, steps), dtype=torch.int64, device=dev)
                        for g in program.groups}
        self.syn: dict[int, Any] = {}

    def _state(self, g: Any) -> dict[str, Any]:
        torch, b = self.torch, self.batch

        def tile(x: Any) -> Any:
            row = torch.as_tensor(np.asarray(x, np.int64), device=self.dev)
            return row.reshape(1, -1).repeat(b, 1)
        if g.model in GRADED_MODELS:
            k = g.spike_exp + g.state_exp
            return {"vth": int(g.vth) << k,
                    "bias": ops.wrap32(tile(np.asarray(g.bias_mant, np.int64) << k)),
                    **{var: torch.zeros((b, g.size), dtype=torch.int64, device=self.dev)
                       for var in STATE_VARS[g.model]}}
        exp = np.asarray(g.bias_exp, np.int64)
        mant = np.asarray(g.bias_mant, np.int64)
        bias = np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0))
        return {"u": tile(g.u0), "v": tile(g.v0), "bias": tile(bias)}

    def stage(self, stage: list[Any], a_all: dict[str, Any], inner: list[int], ctx: Any,
              shapes: dict, payload: dict) -> dict[str, Any]:
        """Step the stage's groups over the run; returns what each sent (B, T, n)."""
        torch, steps = self.torch, self.steps
        state = {g.name: self._state(g) for g in stage}
        depth = max([k for i in inner for k, _ in ctx.mats[i]] + [0]) + 2
        ring = {g.name: torch.zeros((self.batch, steps + depth, g.size), dtype=torch.int64,
                                    device=self.dev) for g in stage
                if any(ctx.blocks[i].spec.target == g.name for i in inner)}
        for t in range(1, steps + 1):
            sent = {}
            for g in stage:
                a = a_all[g.name][:, t - 1]
                if g.name in ring:
                    a = ops.wrap32(a + ring[g.name][:, t - 1])
                sent[g.name] = self._step(g, state[g.name], a, t)
            for i in inner:
                spec = ctx.blocks[i].spec
                for k, act in activation(ctx, i, sent[spec.source], shapes,
                                         payload[spec.source]):
                    ring[spec.target][:, t + k] += act
        return {g.name: self.rec["spikes"][g.name] for g in stage}

    def _step(self, g: Any, st: dict[str, Any], a: Any, t: int) -> Any:
        """One step of group g (neurons.step_group); records it, returns what it sends."""
        torch = self.torch
        if g.model in GRADED_MODELS:
            active = a != 0
            for var in STATE_VARS[g.model]:
                active = active | (st[var] != 0)
            s = sigma_delta(torch, g, st, a)
            fired = s != 0
        else:
            active = (a != 0) | (st["u"] != 0) | (st["v"] != 0)
            s = self._lif(g, st, a, t)
            fired = s
        counts = self.neurons[g.name]
        counts[0, :, t - 1] = active.sum(dim=1)
        counts[1, :, t - 1] = fired.sum(dim=1)
        self.rec["spikes"][g.name][:, t - 1] = s.to(self.rec["spikes"][g.name].dtype)
        for var in STATE_VARS[g.model]:
            if var in self.rec:
                self.rec[var][g.name][:, t - 1] = st[var].to(torch.int32)
        return s

    def _lif(self, g: Any, st: dict[str, Any], a: Any, t: int) -> Any:
        """engine.lif_update: spikes (bool), st's u and v updated."""
        torch = self.torch
        u, v = st["u"], st["v"]
        if g.model == "lif_reset" and t % g.reset_interval == g.reset_offset % g.reset_interval:
            u, v = torch.zeros_like(u), torch.zeros_like(v)
        f = self.arith
        one, bits, half = f.decay_one, f.decay_bits, f.state_half
        u = ops.wrap32(ops.trunc_decay(u, one - (g.du + f.du_offset), torch, bits) +
                       ops.wrap32(a << f.act_shift))
        hi, lo = u > half, u <= -half
        u = u - (2 * half) * hi + (2 * half) * lo
        v = ops.wrap32(ops.trunc_decay(v, one - g.dv, torch, bits) + u + st["bias"])
        clipped = (v > f.v_max) | (v < -f.v_max)
        v = v.clamp(-f.v_max, f.v_max)
        s = v > (int(g.vth) << f.act_shift)
        st["u"], st["v"] = u, torch.where(s, 0, v)
        ev = self.events[g.name]
        ev[0, t - 1] = (hi | lo).sum()
        ev[1, t - 1] = clipped.sum()
        return s

    def synops(self, ctx: Any, sent: dict[str, Any], counter: Any) -> None:
        """Synaptic events per (b, t) of every block: its source's non-zero values times
        their synapse counts (exact: the counts sum below 2^53)."""
        torch = self.torch
        for i, blk in enumerate(ctx.blocks):
            nnz = torch.as_tensor(np.asarray(counter.nnz[i], np.float64), device=self.dev)
            nz = (sent[blk.spec.source] != 0).to(torch.float64)
            self.syn[i] = (nz @ nnz).to(torch.int64)

    def result(self, counter: Any) -> Result:
        """The run's Result on the host."""
        def host(x: Any) -> np.ndarray:
            return x.cpu().numpy()
        rec = {var: {g: host(x) for g, x in d.items()} for var, d in self.rec.items()}
        sat = {}
        for g in self.program.groups:
            ev = host(self.events[g.name])
            hit = np.flatnonzero(ev.sum(axis=0))
            sat[g.name] = {"v_clip": int(ev[1].sum()), "u_wrap": int(ev[0].sum()),
                           "first_step": int(hit[0]) + 1 if hit.size else 0}
        report = None
        if counter is not None:
            self._count(counter, host)
            report = counter.report()
        outputs = {o.name: rec["spikes"][o.group] for o in self.program.outputs}
        return Result(rec["spikes"], rec.get("u", {}), rec.get("v", {}), outputs, sat,
                      report, **{var: rec.get(var, {}) for var in SD_STATE})

    def _count(self, counter: Any, host: Any) -> None:
        counts = counter.counts
        for g in self.program.groups:
            c = counter.group_core[g.name]
            active, fired = host(self.neurons[g.name])
            counts["active"][:, :, c] += active
            counts["inactive"][:, :, c] += g.size - active
            counts["spikes"][:, :, c] += fired
            counts["hops"][:, :, c] += fired * counter.hops[g.name]
            counts["chip_hops"][:, :, c] += fired * counter.chip_hops[g.name]
            counts["payload_bits"][:, :, c] += fired * counter.width[g.name]
        for i, syn in self.syn.items():
            counts["synops"][:, :, counter.block_core[i]] += host(syn)


def sigma_delta(torch: Any, g: Any, st: dict[str, Any], a: Any) -> Any:
    """sigma_delta.update on tensors: the payloads sent (B, n); st updated."""
    if g.model == "sigma":
        st["sigma"] = ops.wrap32(st["sigma"] + a)
        return st["sigma"]
    if g.model == "delta":
        sigma = None
        new = ops.wrap32(a << (g.spike_exp + g.state_exp))
    else:
        sigma = ops.wrap32(st["sigma"] + a)
        y = ops.wrap32(sigma + st["bias"])
        new = y.clamp(min=0) if g.act_mode == "relu" else y
    delta = ops.wrap32(new - st["act"] + st["residue"])
    error = st["error"]
    if g.cum_error:
        error = ops.wrap32(error + delta)
        s = torch.where(ops.wrap32(error.abs()) >= st["vth"], delta, 0)
        error = torch.where(s != 0, 0, error)
    else:
        s = torch.where(ops.wrap32(delta.abs()) >= st["vth"], delta, 0)
    st["act"], st["residue"], st["error"] = new, ops.wrap32(delta - s), error
    if sigma is not None:
        st["sigma"] = sigma
    return s >> g.state_exp


__all__ = ["Run", "sigma_delta"]
