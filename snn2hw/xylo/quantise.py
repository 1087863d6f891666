"""Quantise a float Xylo network: one scale per population (V units per model unit),
8-bit weights with one left shift per matrix, 16-bit thresholds, 8-bit biases.

A population's scale is the largest that keeps everything in range (the limiting one is
reported): its threshold within ``threshold_bits``; V and I_syn within the state range
(calibrated: the float reference's largest |v| on the data, times a margin; otherwise a
bound from the threshold and the largest positive input per step); its biases within
``bias_bits``; its largest incoming weight within ``127 << weight_shift_max``. Each
matrix then gets the smallest shift that holds the largest scaled weight of every
population it feeds, and every weight is rounded to the nearest integer step of
``2^shift``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.xylo.lower import XyloNet

CALIBRATION_MARGIN = 1.25        # as the Loihi path (passes/quantise.py)
FIT_MARGIN = 1 - 2.0**-6         # a scale kept clear of rounding up past a limit


@dataclass
class Quantised:
    """Integer arrays of a Xylo program (hardware order) and the per-population report."""

    arrays: dict[str, np.ndarray]
    shifts: dict[str, int]
    scales: dict[str, float]
    report: dict[str, Any] = field(default_factory=dict)


def _incoming(net: XyloNet, pop: str) -> dict[str, np.ndarray]:
    """The matrices feeding ``pop``, sliced to its neurons: name -> (n_src, n_pop)."""
    if pop == net.output:
        return {"weights_out": net.weights_out}
    rows = net.rows(pop)
    return {"weights_in": net.weights_in[:, rows, 0], "weights_rec": net.weights_rec[:, rows, 0]}


def _bounds(net: XyloNet, pop: str, v_max: float | None, in_max: float) -> dict[str, float]:
    """The largest float value of each quantity the scale multiplies into a register:
    threshold, steady I_syn, V (calibrated or bounded), bias, and each incoming matrix's
    largest weight."""
    d = net.dyn[pop]
    mats = _incoming(net, pop)
    counts = {"weights_in": in_max, "weights_rec": 1.0, "weights_out": 1.0}
    pos = sum(np.clip(w, 0, None).sum(axis=0) * counts[k] for k, w in mats.items())
    neg = sum(np.clip(-w, 0, None).sum(axis=0) * counts[k] for k, w in mats.items())
    steady = np.maximum(pos, neg) / 2.0 ** -d.dash_syn.astype(float)   # I from steady input
    theta = float(d.threshold.max())
    return {"threshold": theta, "state_i": float(steady.max(initial=0.0)),
            "state_v": v_max if v_max is not None else theta + float(steady.max(initial=0.0)),
            "bias": float(np.abs(d.bias).max(initial=0.0)),
            **{k: float(np.abs(w).max(initial=0.0)) for k, w in mats.items()}}


def _scale(bounds: dict[str, float], rec: Any) -> tuple[float, str]:
    """The largest scale that keeps every bounded quantity within its register."""
    top = rec.state_range[1]
    caps = {"threshold": (1 << (rec.threshold_bits - 1)) - 1, "state_i": top, "state_v": top,
            "bias": (1 << (rec.bias_bits - 1)) - 1}
    wcap = ((1 << (rec.weight_bits - 1)) - 1) << rec.weight_shift_max
    limits = {k: (caps.get(k, wcap)) / b for k, b in bounds.items() if b > 0}
    key = min(limits, key=lambda k: limits[k])
    return limits[key] * FIT_MARGIN, key


def quantise(net: XyloNet, rec: Any, v_max: dict[str, float] | None = None,
             in_max: float = 1.0) -> Quantised:
    """The integer program arrays of ``net`` for a target's record ``rec``."""
    pops = (*net.hidden, net.output)
    scales, limiting = {}, {}
    for p in pops:
        b = _bounds(net, p, None if v_max is None else v_max.get(p), in_max)
        scales[p], limiting[p] = _scale(b, rec)
    wtop = (1 << (rec.weight_bits - 1)) - 1
    shifts = {}
    for m in ("weights_in", "weights_rec", "weights_out"):
        need = max((scales[p] * np.abs(_incoming(net, p)[m]).max(initial=0.0)
                    for p in pops if m in _incoming(net, p)), default=0.0)
        shifts[m] = 0 if need <= wtop else min(rec.weight_shift_max,
                                               math.ceil(math.log2(need / wtop)))
    arrays = _integers(net, rec, scales, shifts)
    report = {p: _layer_report(net, p, arrays, scales[p], limiting[p]) for p in pops}
    return Quantised(arrays, shifts, scales, {"populations": report,
                                              "weight_shifts": shifts})


def _layer_report(net: XyloNet, pop: str, arrays: dict[str, np.ndarray], scale: float,
                  limited_by: str) -> dict[str, Any]:
    th = arrays["threshold_out" if pop == net.output else "threshold"][net.rows(pop)]
    d = net.dyn[pop]
    return {"neurons": int(th.size), "scale": scale, "limited_by": limited_by,
            "threshold": [int(th.min()), int(th.max())],
            "dash_mem": sorted({int(x) for x in d.dash_mem}),
            "dash_syn": sorted({int(x) for x in d.dash_syn})}


def _integers(net: XyloNet, rec: Any, scales: dict[str, float], shifts: dict[str, int]
              ) -> dict[str, np.ndarray]:
    wlo, whi = rec.signed(rec.weight_bits)
    blo, bhi = rec.signed(rec.bias_bits)
    tmax = rec.signed(rec.threshold_bits)[1]
    nh = net.n_hidden
    col = np.ones(nh)                               # scale of each hidden neuron
    for p in net.hidden:
        col[net.rows(p)] = scales[p]
    so = scales[net.output]

    def q(w: np.ndarray, scale: np.ndarray | float, shift: int) -> np.ndarray:
        return np.clip(np.rint(w * scale / 2.0**shift), wlo, whi).astype(np.int64)

    out: dict[str, np.ndarray] = {
        "weights_in": q(net.weights_in, col[None, :, None], shifts["weights_in"]),
        "weights_rec": q(net.weights_rec, col[None, :, None], shifts["weights_rec"]),
        "weights_out": q(net.weights_out, so, shifts["weights_out"]),
        "aliases": np.full(nh, -1, np.int64)}
    hidden = {k: np.zeros(nh, np.int64) for k in ("dash_mem", "dash_syn", "threshold", "bias")}
    for p in net.hidden:
        r, d = net.rows(p), net.dyn[p]
        hidden["dash_mem"][r], hidden["dash_syn"][r] = d.dash_mem, d.dash_syn
        hidden["threshold"][r] = np.clip(np.rint(d.threshold * scales[p]), 1, tmax)
        hidden["bias"][r] = np.clip(np.rint(d.bias * scales[p]), blo, bhi)
    d = net.dyn[net.output]
    out |= {"dash_mem": hidden["dash_mem"], "dash_syn": hidden["dash_syn"][:, None],
            "threshold": hidden["threshold"], "bias": hidden["bias"],
            "dash_mem_out": d.dash_mem.astype(np.int64),
            "dash_syn_out": d.dash_syn.astype(np.int64),
            "threshold_out": np.clip(np.rint(d.threshold * so), 1, tmax).astype(np.int64),
            "bias_out": np.clip(np.rint(d.bias * so), blo, bhi).astype(np.int64)}
    return out
