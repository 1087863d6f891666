"""Graded neuron groups, vectorised for a whole group and batch: ``sigma_delta``
(kernels.sigma_delta_step, Lava 0.10's ``PySigmaDeltaModelFixed``), ``delta``
(kernels.delta_step, ``PyDeltaModelFixed``) and ``sigma`` (``PySigmaModelFixed``: sends
its running sum). The rules and their source lines are in docs/sigma_delta.md. All
arithmetic wraps at 32 bits as Lava's int32 arrays do.
"""

from __future__ import annotations

import numpy as np
from snn2hw_emulator.kernels import STATE_VARS
from snn2hw_emulator.program import NeuronGroup


def wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + 2**31) & (2**32 - 1)) - 2**31


class SigmaDeltaState:
    """sigma, act, residue, error (B, n) int64 holding int32 values, all 0 at the start
    (Lava's Var inits), and the scaled threshold and bias (process.py:179-180)."""

    def __init__(self, g: NeuronGroup, batch: int) -> None:
        k = g.spike_exp + g.state_exp
        self.vth = int(g.vth) << k
        self.bias = wrap32(np.asarray(g.bias_mant, np.int64) << k)
        self.vars = {var: np.zeros((batch, g.size), np.int64) for var in STATE_VARS[g.model]}

    def active(self, a: np.ndarray) -> np.ndarray:
        """Neurons with input or any non-zero state (for the cost model)."""
        out = a != 0
        for arr in self.vars.values():
            out = out | (arr != 0)
        return out


def update(g: NeuronGroup, st: SigmaDeltaState, a: np.ndarray) -> np.ndarray:
    """One step for the group; returns the payloads sent (B, n): ``s >> state_exp``, or
    a sigma group's sum."""
    x = st.vars
    if g.model == "sigma":
        x["sigma"] = wrap32(x["sigma"] + a)
        return x["sigma"]
    if g.model == "delta":
        sigma = None
        new = wrap32(a << (g.spike_exp + g.state_exp))
    else:
        sigma = wrap32(x["sigma"] + a)
        y = wrap32(sigma + st.bias)
        new = np.maximum(y, 0) if g.act_mode == "relu" else y
    delta = wrap32(new - x["act"] + x["residue"])
    error = x["error"]
    if g.cum_error:
        error = wrap32(error + delta)
        s = np.where(wrap32(np.abs(error)) >= st.vth, delta, 0)
        error = np.where(s != 0, 0, error)
    else:
        s = np.where(wrap32(np.abs(delta)) >= st.vth, delta, 0)
    x["act"], x["residue"], x["error"] = new, wrap32(delta - s), error
    if sigma is not None:
        x["sigma"] = sigma
    return s >> g.state_exp
