"""A slow, obviously correct run of a program image built only from kernels.py.

One sample, Python integers, neuron by neuron (a csr block is densified here: it is
meant for small test programs), in the widths of the program's embedded target (its
family record). The engine must agree with it on every state variable at every step
(tests/test_emulator_engine.py, tests/test_target_widths.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from snn2hw_emulator import kernels as k
from snn2hw_emulator.program import NeuronGroup, Program, is_sparse
from snn2hw_emulator.validate import target_of


def run_one(program: Program, inputs: Mapping[str, np.ndarray], steps: int
            ) -> dict[str, dict[str, np.ndarray]]:
    """inputs: port -> (T_in, size) ints (payloads already clamped). Returns
    {"spikes"|"u"|"v": {LIF group: (T, n)}, "spikes"|"sigma"|"act"|"residue"|"error":
    {sigma-delta group: (T, n)}} (a sigma-delta group's spikes are its payloads)."""
    f = target_of(program).numeric
    u = {g.name: [int(x) for x in g.u0] for g in program.groups}
    v = {g.name: [int(x) for x in g.v0] for g in program.groups}
    spikes = {g.name: [0] * g.size for g in program.groups}
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    weights, buffers = {}, {}
    for b in program.blocks:
        w = (b.weights.toarray() if is_sparse(b.weights) else np.asarray(b.weights)).tolist()
        if b.kind == "codebook":
            w = k.codebook_weights(w, np.asarray(b.codebook).tolist())
        if b.kind != "conv":
            mode = k.sign_mode(w, b.sign_mode)
            w = [[k.effective_weight(x, mode, b.num_weight_bits, f) for x in row] for row in w]
        weights[b.name] = w
        n_out = int(np.prod(shapes[b.target]))
        depth = int(np.max(b.delays)) + 1 if b.kind == "delay_dense" else 1
        buffers[b.name] = [[0] * depth for _ in range(n_out)]
    sd = {g.name: g for g in program.groups if g.model in k.GRADED_MODELS}
    state = {g: {var: [0] * sd[g].size for var in k.SD_STATE} for g in sd}
    out = {var: {g.name: np.zeros((steps, g.size), np.int64) for g in program.groups
                 if var == "spikes" or var in k.STATE_VARS[g.model]}
           for var in ("spikes", "u", "v", *k.SD_STATE)}
    for t in range(1, steps + 1):
        for g in program.groups:
            a = [0] * g.size
            for b in program.blocks:
                if b.target == g.name:
                    a = [k.wrap32(x + buf[0]) for x, buf in zip(a, buffers[b.name])]
            if g.name in sd:
                _sigma_delta(g, state[g.name], a, spikes[g.name])
                for var in ("spikes", *k.STATE_VARS[g.model]):
                    src = spikes[g.name] if var == "spikes" else state[g.name][var]
                    out[var][g.name][t - 1] = src
                continue
            if g.model == "lif_reset" and k.lif_reset_due(t, g.reset_interval, g.reset_offset):
                u[g.name] = [0] * g.size
                v[g.name] = [0] * g.size
            for i in range(g.size):
                u[g.name][i], v[g.name][i], spikes[g.name][i] = k.lif_step(
                    u[g.name][i], v[g.name][i], a[i], g.du, g.dv, g.vth,
                    int(g.bias_mant[i]), int(g.bias_exp[i]), f)
            for var, src in (("spikes", spikes), ("u", u), ("v", v)):
                out[var][g.name][t - 1] = src[g.name]
        for b in program.blocks:
            if b.source in spikes:
                s = spikes[b.source]
            else:
                data = inputs[b.source]
                s = data[t - 1].tolist() if t - 1 < len(data) else [0] * data.shape[1]
            graded = b.num_message_bits > 0
            bufs = buffers[b.name]
            for buf in bufs:                # shift the delay line: slot 0 was sent
                buf.pop(0)
                buf.append(0)
            if b.kind == "conv":
                c = b.conv or {}
                act = k.conv_activation(weights[b.name], s, shapes[b.source], shapes[b.target],
                                        c["stride"], c["padding"], c["dilation"],
                                        int(c["groups"]), graded, f)
                for buf, x in zip(bufs, act):
                    buf[0] += x
                continue
            delays = (np.asarray(b.delays).tolist() if b.kind == "delay_dense"
                      else [[0] * len(s)] * len(bufs))
            for d in sorted({x for row in delays for x in row}):
                w_d = [[w if dd == d else 0 for w, dd in zip(row, drow)]
                       for row, drow in zip(weights[b.name], delays)]
                act = k.dense_activation(w_d, s, b.weight_exp, graded,
                                         int32_dot=b.kind != "delay_dense")
                for buf, x in zip(bufs, act):
                    buf[d] += x
    return out


def _sigma_delta(g: NeuronGroup, st: dict[str, list[int]], a: list[int], out: list[int]
                 ) -> None:
    """kernels.sigma_delta_step / delta_step (or a running sum, ``sigma``) neuron by
    neuron; payloads go to ``out``."""
    for i in range(g.size):
        if g.model == "sigma":
            st["sigma"][i] = out[i] = k.wrap32(st["sigma"][i] + a[i])
            continue
        vth_s, bias_s = k.sigma_delta_scaled(g.vth, int(g.bias_mant[i]), g.spike_exp,
                                             g.state_exp)
        if g.model == "delta":
            st["act"][i], st["residue"][i], st["error"][i], out[i] = k.delta_step(
                st["act"][i], st["residue"][i], st["error"][i], a[i], vth_s,
                bool(g.cum_error), g.spike_exp, g.state_exp)
            continue
        (st["sigma"][i], st["act"][i], st["residue"][i], st["error"][i],
         out[i]) = k.sigma_delta_step(st["sigma"][i], st["act"][i], st["residue"][i],
                                      st["error"][i], a[i], vth_s, bias_s,
                                      g.act_mode == "relu", bool(g.cum_error), g.state_exp)
