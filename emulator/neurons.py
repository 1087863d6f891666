"""Neuron updates of the engines, vectorised over a group and a batch: LIF in the
target's widths (kernels.lif_step) and sigma-delta (sigma_delta.py), with recording,
saturation and cost counting."""

from __future__ import annotations

import numpy as np
from snn2hw_emulator import cost as costmod
from snn2hw_emulator import sigma_delta as sdmod
from snn2hw_emulator.family import LoihiLif
from snn2hw_emulator.kernels import GRADED_MODELS
from snn2hw_emulator.program import NeuronGroup, Program
from snn2hw_emulator.vector import trunc_decay, wrap32

__all__ = ["State", "lif_update", "step_group"]


class State:
    def __init__(self, program: Program, batch: int, arith: LoihiLif) -> None:
        self.arith = arith
        self.u = {g.name: np.tile(np.asarray(g.u0, np.int64), (batch, 1)) for g in program.groups}
        self.v = {g.name: np.tile(np.asarray(g.v0, np.int64), (batch, 1)) for g in program.groups}
        self.bias: dict[str, np.ndarray] = {}
        for g in program.groups:  # bias_mant << bias_exp, floor shift for negative exponents
            exp = np.asarray(g.bias_exp, np.int64)
            mant = np.asarray(g.bias_mant, np.int64)
            self.bias[g.name] = np.where(exp >= 0, mant << np.maximum(exp, 0),
                                         mant >> np.maximum(-exp, 0))
        self.sd = {g.name: sdmod.SigmaDeltaState(g, batch) for g in program.groups
                   if g.model in GRADED_MODELS}


def lif_update(g: NeuronGroup, st: State, a: np.ndarray, t: int,
               sat: dict[str, int]) -> np.ndarray:
    """Vectorised kernels.lif_step for a whole group and batch, in the target's widths
    (``st.arith``); returns spikes."""
    f = st.arith
    u, v = st.u[g.name], st.v[g.name]
    if g.model == "lif_reset" and t % g.reset_interval == g.reset_offset % g.reset_interval:
        u[:] = 0
        v[:] = 0
    u = wrap32(trunc_decay(u, f.decay_one - (g.du + f.du_offset), f.decay_bits)
               + wrap32(a << f.act_shift))
    half = f.state_half
    wrapped = (u > half) | (u <= -half)
    u = np.where(u > half, u - 2 * half, np.where(u <= -half, u + 2 * half, u))
    v = wrap32(trunc_decay(v, f.decay_one - g.dv, f.decay_bits) + u + st.bias[g.name])
    clipped = (v > f.v_max) | (v < -f.v_max)
    v = np.clip(v, -f.v_max, f.v_max)
    s = v > (g.vth << f.act_shift)
    v = np.where(s, 0, v)
    st.u[g.name], st.v[g.name] = u, v
    n_wrap, n_clip = int(wrapped.sum()), int(clipped.sum())
    if (n_wrap or n_clip) and not sat["first_step"]:
        sat["first_step"] = t
    sat["u_wrap"] += n_wrap
    sat["v_clip"] += n_clip
    return s


def step_group(g: NeuronGroup, st: State, a: np.ndarray, t: int, sat: dict[str, int],
                counter: costmod.Counter | None, rec: dict[str, dict[str, np.ndarray]]
                ) -> np.ndarray:
    """Update one group for step t, count and record it; returns what it sends (B, n):
    0/1 spikes (LIF) or payloads (sigma-delta)."""
    if g.model in GRADED_MODELS:
        sd = st.sd[g.name]
        active = sd.active(a)
        s = sdmod.update(g, sd, a)
        state = sd.vars
    else:
        active = (a != 0) | (st.u[g.name] != 0) | (st.v[g.name] != 0)
        s = lif_update(g, st, a, t, sat).astype(np.int64)
        state = {"u": st.u[g.name], "v": st.v[g.name]}
    if counter is not None:
        counter.neurons(g.name, t, active, s != 0)
    rec["spikes"][g.name][:, t - 1] = s
    for var, value in state.items():
        if var in rec:
            rec[var][g.name][:, t - 1] = value
    return s
