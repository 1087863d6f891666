"""Quantise a sigma-delta graph (:mod:`snn2hw.sdnn`): per layer an integer grid, then
weights, bias, threshold and the payload shift in Lava's SigmaDelta integers.

Units. The graph's layer values are floats of order 1 (the converter's normalisation);
the Input carries integer payloads. Layer t holds its state (sigma, act, residue) on a
grid of ``G_t`` integer units per unit and sends ``s >> state_exp_t``, so its payloads
count ``P_t = G_t / 2^state_exp_t`` units per unit (the port: ``P = 1``). A block from
s into t then has real weights ``W * G_t / P_s``, written as 8-bit mantissas times
``2^weight_exp`` (dense; the exponent is applied to the int32 sum, docs/sigma_delta.md
§4) or as integer kernels (conv: Lava ignores the exponent). Bias and threshold are the
process arguments ``round(b * G_t / 2^k)``, ``max(1, round(vth * G_t / 2^k))`` with
``k = spike_exp + state_exp`` (``spike_exp`` is 0: the state grid needs no extra scaling).

Choice, layer by layer in execution order (bounds: the maxima observed on calibration
data, or stored by the converter, times :data:`MARGIN`; else worst case):

* ``G_t``: the largest grid whose state, per-step input and payloads stay inside the
  state width (24 bits) -- and, for a kept convolution, no larger than its kernel allows
  at the full 8-bit mantissa (no exponent to absorb the rest), for a dense block no
  larger than its mantissas allow at the largest weight exponent;
* ``state_exp_s`` of each source s: the smallest shift (0..7) that lets every consumer
  reach its full mantissa with a non-negative weight exponent (dense) or its full kernel
  range (conv) within the consumer's grid. The shift drops the low ``state_exp`` bits
  of each payload (Lava 0.10 does not keep them in the residue): at most
  ``2^state_exp / G_s`` per payload, below 2^-13 of the layer's scale here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw import sdnn, sdnn_sim
from snn2hw.errors import DesignRuleError, UnsupportedError, UserInputError
from snn2hw.passes import layout
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.passes.integers import round_to as _round
from snn2hw.passes.integers import sign_mode as _sign_mode
from snn2hw.passes.structure import Projection, Structure
from snn2hw.targets import Target

MARGIN = 2.0            # observed maxima are doubled before they size a grid
SPIKE_EXP = 0


@dataclass(frozen=True)
class Bounds:
    """Largest magnitudes of one layer in its own units: per-step input, state, payload."""

    input: float
    state: float
    payload: float


# --------------------------------------------------------------------------- bounds


STORED = "observed at conversion"


def layer_bounds(graph: Any, structure: Structure, port_bits: dict[str, int]
                 ) -> tuple[dict[str, Bounds], str]:
    """Per sigma-delta population: the bounds stored in the nodes by the converter (on all
    of its calibration data), else the worst case; and which of the two it was."""
    _refuse_unsupported(structure)
    names = sdnn.sd_nodes(graph)
    stored = {n: sdnn.params(n, graph.nodes[n]).observed for n in names}
    if all(v is not None for v in stored.values()):
        return {n: Bounds(**v) for n, v in stored.items()}, STORED
    return _worst_case(graph, structure, port_bits), "worst case"


def calibrated_bounds(graph: Any, structure: Structure, calibration: np.ndarray
                      ) -> dict[str, Bounds]:
    """Per sigma-delta population: the bounds the float reference reaches on
    ``calibration`` payloads."""
    shape = structure.shapes[graph.inputs()[0]]
    if calibration.ndim != 2 + len(shape) or tuple(calibration.shape[2:]) != shape:
        raise UserInputError(f"calibration data has shape {calibration.shape}; expected "
                             f"(batch, time, {', '.join(map(str, shape))}) payloads")
    seen = sdnn_sim.observe(graph, calibration)
    return {n: Bounds(**seen[n]) for n in sdnn.sd_nodes(graph)}


def _abs_rows(p: Projection) -> np.ndarray:
    pos, neg, _ = p.row_extremes(np.ones(int(np.prod(p.bias.shape))))
    return pos + neg


def _worst_case(graph: Any, structure: Structure, port_bits: dict[str, int]
                ) -> dict[str, Bounds]:
    """Bounds while every input's accumulated value stays inside its payload range:
    a layer's state is at most its weights' row sums times its sources' values plus
    |bias|, and a payload at most twice the state (a change from one extreme to the
    other) plus the threshold."""
    value = {p: float(2 ** (b - 1)) if b else 1.0 for p, b in port_bits.items()}  # 0: 0/1
    payload = dict(value)
    out = {}
    for pop in structure.populations:
        if pop in port_bits:
            continue
        prm = sdnn.params(pop, graph.nodes[pop])
        projs = structure.into(pop)
        total = sum(_abs_rows(p) * value[p.source] for p in projs)
        step = sum(_abs_rows(p) * payload[p.source] for p in projs)
        state = float(np.max(total + np.abs(prm.bias), initial=0.0))
        value[pop], payload[pop] = state, 2 * state + prm.vth
        out[pop] = Bounds(float(np.max(step, initial=0.0)), state, payload[pop])
    return out


# --------------------------------------------------------------------------- grids


def _weights(p: Projection) -> np.ndarray:
    if p.conv is not None:
        return np.asarray(p.conv.weight, dtype=float)
    return p.matrix if p.matrix is not None else p.sparse.data


def _fit(w: np.ndarray, bits: int, n: Any) -> float:
    """Largest factor that keeps ``w``'s mantissas inside the signed grid at exponent 0."""
    lo, hi, _ = n.grid(_sign_mode(w), bits)
    pos, neg = float(w.max(initial=0.0)), float(-w.min(initial=0.0))
    return min(hi / pos if pos > 0 else math.inf, -lo / neg if neg > 0 else math.inf)


def _grids(structure: Structure, b: dict[str, Bounds], kept: set[str], ports: set[str],
           target: Target, bits: int) -> tuple[dict[str, float], dict[str, int], dict]:
    """(G per population, state_exp per population, what limited each G)."""
    n = target.numeric
    smax = n.state_half - 1
    cap = {p: smax / (MARGIN * max(v.input, v.state, v.payload, 1e-30)) for p, v in b.items()}
    g: dict[str, float] = {p: 1.0 for p in ports}
    shift: dict[str, int] = {p: 0 for p in ports}
    why: dict[str, str] = {}
    for pop in structure.populations:
        if pop in ports:
            continue
        limits = {"state width": cap[pop]}
        for p in structure.into(pop):
            pay, w = g[p.source] / 2 ** shift[p.source], _weights(p)
            if p.name in kept:
                limits[f"kernel of {p.source}"] = pay * _fit(w, bits, n)
            else:                        # the largest weight_exp must still hold the weights
                step = n.grid(_sign_mode(w), bits)[2]
                limits[f"weights of {p.source}"] = pay * _fit(w, bits, n) * 2.0 ** (
                    n.weight_exp_max + step)
        why[pop] = min(limits, key=limits.get)
        g[pop] = limits[why[pop]]
        need = [math.log2(g[pop] * _fit(_weights(q), bits, n) / cap[q.target])
                for q in structure.projections if q.source == pop]
        shift[pop] = int(min(max(math.ceil(max(need, default=0.0) - 1e-9), 0), n.sd_exp_max))
    return g, shift, why


# --------------------------------------------------------------------------- blocks


def _mantissas(x: np.ndarray, bits: int, target: Target, rounding: str
               ) -> tuple[np.ndarray, int, str, int]:
    """Full-scale ints, weight_exp, sign mode and the exponent e of real weights x
    (mantissa * 2^e): the smallest e in the target's range that fits the mantissa."""
    n = target.numeric
    mode = _sign_mode(x)
    lo, hi, step = n.grid(mode, bits)
    top = float(np.abs(x).max(initial=0.0))
    e = math.ceil(math.log2(top / hi) - 1e-12) if top > 0 else 0
    e = min(max(e, n.weight_exp_min + step), n.weight_exp_max + step)
    m = np.clip(_round(x / 2.0**e, rounding), lo, hi).astype(np.int64)
    return m * 2**step, e - step, mode, e


def _rms(x: np.ndarray, deq: np.ndarray) -> float:
    norm = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return float(np.sqrt(np.mean((deq - x) ** 2))) / (norm or 1.0) if x.size else 0.0


def _block(p: Projection, pop: str, idx: np.ndarray, ratio: float, kept: bool, bits: int,
           msg: int, target: Target, rounding: str) -> tuple[HwBlock, dict[str, Any]]:
    """The block of projection ``p`` into ``pop`` (rows ``idx``, hardware order) with real
    weights ``W * ratio``, and its report entry."""
    name = f"{p.name}:{pop}"
    if kept:                                           # Lava's Conv: no exponent
        x = np.asarray(p.conv.weight, dtype=float) * ratio
        mode = _sign_mode(x)
        lo, hi, _ = target.numeric.grid(mode, bits)
        k = np.clip(_round(x, rounding), lo, hi).astype(np.int64)
        w = np.ascontiguousarray(k[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))   # Lava layout
        blk = HwBlock(name, p.source, pop, "conv", w, 0, bits, mode,
                      conv=layout.conv_params(p.conv), num_message_bits=msg)
        deq, e, mant = k.astype(float), 0, k
    else:
        rows = sp.csr_matrix(p.csr()[idx]) if p.kind != "dense" else p.rows(idx)
        x = (rows.data if sp.issparse(rows) else rows) * ratio
        full, wexp, mode, e = _mantissas(x, bits, target, rounding)
        deq, mant = full * 2.0**wexp, full >> target.numeric.grid(mode, bits)[2]
        if sp.issparse(rows):
            w = sp.csr_matrix((full, rows.indices, rows.indptr), shape=rows.shape)
            w.eliminate_zeros()
        else:
            w = full
        blk = HwBlock(name, p.source, pop, "dense", w, wexp, bits, mode, num_message_bits=msg)
    top = max(int(mant.max(initial=0)), -int(mant.min(initial=0)) - (mode == "mixed"), 0)
    return blk, {"kind": blk.kind, "weight_exp": blk.weight_exp, "exponent": e,
                 "sign_mode": mode, "message_bits": msg, "rms_error": _rms(x, deq),
                 "bits_used": top.bit_length() + (mode == "mixed"), "delay": 0}


# --------------------------------------------------------------------------- the pass


def check_target(graph: Any, target: Target) -> None:
    """Sigma-delta layers send graded payloads: a target without them is refused."""
    names = sdnn.sd_nodes(graph)
    if names and not target.connectivity.graded_spikes:
        raise UnsupportedError(f"target '{target.name}' has no graded spikes, which the "
                               f"sigma-delta node '{names[0]}' sends", node=names[0],
                               hint="Compile sigma-delta networks for loihi2 (--target loihi2).")


def kept_convs(structure: Structure, target: Target, keep_conv: bool) -> set[str]:
    """Convolutions that stay kernels (as the LIF pass decides, one group per layer)."""
    if not (keep_conv and target.connectivity.conv):
        return set()
    return {p.name for p in structure.projections if layout.keepable(p, structure, target)}


def _refuse_unsupported(structure: Structure) -> None:
    for p in structure.projections:
        if p.recurrent or p.delay:
            raise UnsupportedError(f"'{p.source}' reaches sigma-delta node '{p.target}' "
                                   f"{'recurrently' if p.recurrent else 'over a longer path'}"
                                   ", which the sigma-delta compiler does not map",
                                   node=p.target, hint="Convert feed-forward chains.")
        if np.any(p.bias != 0):
            raise UnsupportedError(f"the input of sigma-delta node '{p.target}' has a "
                                   f"per-step bias (from {', '.join(p.nodes) or p.source}), "
                                   "which its sigma would add up every step", node=p.target,
                                   hint="Put the bias in the node's metadata "
                                        f"'{sdnn.KEY}' (bias), and none on its input.")


def message_bits(bound: float) -> int:
    """Bits of a signed payload up to ``bound`` in magnitude."""
    return math.ceil(bound).bit_length() + 1


def quantise(graph: Any, structure: Structure, target: Target, *, weight_bits: int,
             rounding: str = "nearest", keep_conv: bool = True,
             port_bits: dict[str, int], bounds: dict[str, Bounds], bounds_source: str
             ) -> HwNet:
    """The hardware model of a sigma-delta graph (module docstring) whose layers have
    ``bounds`` (:func:`layer_bounds`, :func:`calibrated_bounds`)."""
    check_target(graph, target)
    b, source = bounds, bounds_source
    kept = kept_convs(structure, target, keep_conv)
    layouts, shapes = layout.layouts(structure, kept)
    g, shift, why = _grids(structure, b, kept, set(port_bits), target, weight_bits)
    pay = {p: g[p] / 2 ** shift[p] for p in g}
    msg = dict(port_bits)
    msg.update({p: message_bits(pay[p] * b[p].payload * MARGIN) for p in b})
    top = min(target.numeric.message_bits_max, target.numeric.state_bits)
    wide = [p for p in b if msg[p] > top]
    if wide:
        raise DesignRuleError(f"sigma-delta node '{wide[0]}' needs {msg[wide[0]]}-bit payloads; "
                              f"target '{target.name}' carries {top}", node=wide[0],
                              hint="This is a compiler bug if the graph came from snn2hw "
                                   "import; report it.")
    groups, blocks, report = [], [], {}
    for pop in b:
        prm, idx = sdnn.params(pop, graph.nodes[pop]), layouts[pop]
        unit = g[pop] / 2 ** (SPIKE_EXP + shift[pop])       # process-argument units
        vth = max(1, int(_round(np.array(prm.vth * unit), rounding)))
        bias = _round(prm.bias[idx] * unit, rounding).astype(np.int64)
        zeros = np.zeros(idx.size, dtype=np.int64)
        groups.append(HwGroup(pop, pop, idx, shapes[pop], "sigma_delta", 0, 0, vth, g[pop],
                              bias, zeros, zeros.copy(), 0,     # the reference has the hops
                              act_mode=prm.act_mode, spike_exp=SPIKE_EXP,
                              state_exp=shift[pop], payload_scale=pay[pop]))
        inputs, sums = {}, {}
        for p in structure.into(pop):
            blk, rep = _block(p, pop, idx, g[pop] / pay[p.source], p.name in kept, weight_bits,
                              msg[p.source], target, rounding)
            blocks.append(blk)
            inputs[p.source] = rep
            a = g[pop] * b[pop].input * MARGIN       # the block's output, state units
            sums[blk.name] = a if blk.kind == "conv" else a * 2.0 ** -blk.weight_exp
        report[pop] = {"population": pop, "neurons": int(idx.size), "scale": g[pop],
                       "payload_scale": pay[pop], "limited_by": why[pop], "vth": vth,
                       "du": 0, "dv": 0,
                       "state_exp": shift[pop], "bias_max": int(np.abs(bias).max(initial=0)),
                       "bounds": vars(b[pop]), "inputs": inputs,
                       "sd_bounds": {"state": g[pop] * MARGIN * max(b[pop].state,
                                                                   b[pop].input),
                                     "payload": pay[pop] * b[pop].payload * MARGIN,
                                     "message_bits": msg[pop], "sums": sums}}
    inputs = tuple(p for p in structure.populations if p in port_bits or p not in b)
    return HwNet(tuple(groups), tuple(blocks), layouts, shapes, inputs,
                 dict(structure.outputs), {"source": "sigma-delta", "bounds": source,
                                           "quantise": report},
                 spatial={p: structure.shapes[p] for p in structure.populations},
                 port_bits=dict(port_bits))


__all__ = [
    "MARGIN",
    "STORED",
    "Bounds",
    "calibrated_bounds",
    "check_target",
    "kept_convs",
    "layer_bounds",
    "message_bits",
    "quantise",
]
