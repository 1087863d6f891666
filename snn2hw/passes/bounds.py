"""Bounds on a neuron's input sum, u and v: one formula for quantise (choosing a scale, in
float v-units) and ranges (checking the integers), and the statistics they start from.

For a Loihi CUBA-LIF neuron with per-step input sums in ``[-input_neg, input_pos]`` and a
constant ``bias``, in the widths of ``f`` (the target's family record): u decays by
``keep_u = (du + du_offset) / 2^decay_bits`` per step, so ``|u| <= input / keep_u``; v
decays by ``alpha_v = dv / 2^decay_bits``, so below zero ``v >= -(u_neg + bias-) /
alpha_v``; above zero a spiking neuron resets past its threshold (``v <= threshold + u_pos
+ bias+``), a readout settles at ``(u_pos + bias+) / alpha_v``. Without a leak (alpha_v =
0) any drive in that direction is unbounded.

The statistics (:class:`Stats`) are the worst case (every source spiking at once:
:func:`worst_case_stats`) or what the float reference shows on calibration data
(:func:`calibrated_stats`, the ``calibrate`` step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from snn2hw_emulator.family import LoihiLif

CALIBRATION_MARGIN = 1.25


@dataclass(frozen=True)
class Stats:
    """Per-neuron float bounds for one population (v-units)."""

    input_pos: np.ndarray     # largest positive per-step input sum
    input_neg: np.ndarray     # largest negative per-step input sum (magnitude)
    v_max: np.ndarray | None  # observed |v| (calibration) or None (worst case)


class StateBounds(NamedTuple):
    u_pos: np.ndarray
    u_neg: np.ndarray
    v_high: np.ndarray        # v above zero
    v_low: np.ndarray         # v below zero (magnitude)


def state_bounds(input_pos: Any, input_neg: Any, bias: Any, du: Any, dv: Any, threshold: Any,
                 spiking: bool, f: LoihiLif) -> StateBounds:
    """Per neuron: |u| above and below zero and v above and below zero (module docstring),
    in the units of the inputs, the bias and the threshold."""
    keep_u = (du + f.du_offset) / f.decay_one
    alpha_v = dv / f.decay_one
    u_pos, u_neg = input_pos / keep_u, input_neg / keep_u
    up = u_pos + np.clip(bias, 0, None)
    down = u_neg + np.clip(-bias, 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(alpha_v > 0, down / alpha_v, np.where(down > 0, np.inf, 0.0))
        high = np.where(spiking, threshold + up,
                        np.where(alpha_v > 0, up / alpha_v, np.where(up > 0, np.inf, 0.0)))
    return StateBounds(u_pos, u_neg, high, low)


def worst_case_stats(projections: list[Any], gain: np.ndarray,
                     payload_max: dict[str, int] | None = None) -> Stats:
    """Input sums with every source spiking at once; a graded port's signed payloads up to
    ``payload_max[port]`` meet weights of either sign with either sign."""
    pos = np.zeros(gain.size)
    neg = np.zeros(gain.size)
    for p in projections:
        p_pos, p_neg, _ = p.row_extremes(gain)
        m = (payload_max or {}).get(p.source)
        if m:
            p_pos = p_neg = (p_pos + p_neg) * m
        pos += p_pos
        neg += p_neg
    return Stats(pos, neg, None)


def calibrated_stats(structure: Any, dyns: dict[str, Any], graph: Any, data: np.ndarray,
                     dt: float) -> dict[str, Stats]:
    """Observed per-step input sums and |v| on calibration data (float reference)."""
    from snn2hw.errors import UserInputError
    from snn2hw.reference import simulate

    inputs = structure.populations[0] if len(graph.inputs()) == 1 else None
    if inputs is None:
        raise UserInputError("calibration data for graphs with several inputs is not supported",
                             hint="Compile without --calibrate.")
    shape = structure.shapes[inputs]
    if data.ndim != 2 + len(shape) or tuple(data.shape[2:]) != tuple(shape):
        raise UserInputError(f"calibration data has shape {data.shape}; expected "
                             f"(batch, time, {', '.join(map(str, shape))})")
    res = simulate(graph, data, dt=dt, record=("spikes", "states"))
    acts = {inputs: data.reshape(data.shape[0], data.shape[1], -1).astype(float)}
    for name, s in res.spikes.items():
        acts[name] = s.reshape(s.shape[0], s.shape[1], -1)
    out = {}
    for name, dyn in dyns.items():
        total = 0.0
        for p in structure.into(name):
            total = total + p.apply(acts[p.source]) * dyn.gain
        v = res.states[name]["v"].reshape(data.shape[0], data.shape[1], -1)
        out[name] = Stats(np.clip(total, 0, None).max(axis=(0, 1)) * CALIBRATION_MARGIN,
                          np.clip(-total, 0, None).max(axis=(0, 1)) * CALIBRATION_MARGIN,
                          np.abs(v).max(axis=(0, 1)) * CALIBRATION_MARGIN)
    return out


def v_bound(dyn: Any, idx: np.ndarray, st: Stats, bias: np.ndarray, f: LoihiLif) -> float:
    """Bound on |v| (float) for neurons ``idx`` of a population with dynamics ``dyn``; inf
    when it cannot be bounded."""
    if st.v_max is not None:
        return float(st.v_max[idx].max(initial=0.0))
    theta = np.where(np.isfinite(dyn.threshold[idx]), dyn.threshold[idx], 0.0)
    b = state_bounds(st.input_pos[idx], st.input_neg[idx], bias[idx], dyn.du[idx],
                     dyn.dv[idx], theta, dyn.model == "lif", f)
    return float(np.maximum(b.v_low, b.v_high).max(initial=0.0))


__all__ = ["CALIBRATION_MARGIN", "StateBounds", "Stats", "calibrated_stats", "state_bounds",
           "v_bound", "worst_case_stats"]
