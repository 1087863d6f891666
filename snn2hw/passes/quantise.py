"""Quantise: one scale per neuron group, weights on the target's mantissa/exponent grid.

Every width, shift and offset is the target's family record's (``target.numeric``, a
family.LoihiLif; Lava's figures in brackets). For a group with float effective weights G
(v-units per spike: gain * W) the hardware holds ``v_int = scale * v``. A synapse
contributes ``m * 2**e`` to the weighted sum ``a`` and the core adds ``a << act_shift``
to u (<< 6), so ``m * 2**e ~ scale*G/act_scale`` (scale*G/64).

* Mantissas ``m`` use ``weight_bits`` bits (signed for mixed-sign blocks), as
  full-scale Lava weights ``m * step`` with ``weight_exp = e - log2(step)``; ``e >= 0``
  keeps every block in the region where Lava's shift-after-sum equals Loihi's
  per-synapse shift (specs/loihi_fixed_point.md §5.1.2). A convolution has no
  exponent on Loihi/Lava, so a kept convolution needs ``e = 0``.
* ``scale`` starts where the largest block uses its full mantissa range at e = 0,
  and grows by powers of two (which only raises ``e``, never loses mantissa bits)
  while the threshold, bias, u, v and the per-step input sum stay in range. Those
  bounds come from the weights and a 0/1 input (worst case), or from the float
  reference on calibration data when given.
* Round to nearest; thresholds, biases and decays to their widths.
* A neuron group starts ``offset`` steps late on hardware; if it has a bias, its
  initial voltage is chosen so that exactly zero is reached at its first real step
  without a spike (else it uses LIFReset at that step).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.passes.discretise import Dynamics
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet, values
from snn2hw.passes.structure import Projection, Structure
from snn2hw.targets import Target

ONE_SHOT_INTERVAL = 2**30   # LIFReset interval for "reset once, at the group's first step"
CALIBRATION_MARGIN = 1.25
FIT_MARGIN = 1 - 2.0**-6    # a scale fitted to a float bound, kept clear of weight rounding


@dataclass(frozen=True)
class QuantOptions:
    weight_bits: int
    rounding: str = "nearest"          # nearest | floor
    keep_conv: bool = True
    approximations: tuple[str, ...] = ()
    scale_groups: int = 1              # split populations into this many scale groups
    netx: bool = False                 # effective weights within the full scale, biases
                                       # in weight units (<< act_shift), as netx holds them
    payload_max: tuple[tuple[str, int], ...] = ()   # graded input ports: (port, |payload|)


@dataclass(frozen=True)
class Stats:
    """Per-neuron float bounds for one population (v-units)."""

    input_pos: np.ndarray     # largest positive per-step input sum
    input_neg: np.ndarray     # largest negative per-step input sum (magnitude)
    v_max: np.ndarray | None  # observed |v| (calibration) or None (worst case)


# --------------------------------------------------------------------------- groups and layouts


def _group_sets(dyn: Dynamics) -> list[np.ndarray]:
    keys = np.stack([dyn.du, dyn.dv, dyn.threshold], axis=1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == k) for k in range(int(inverse.max()) + 1)]


def _split_by_magnitude(sets: list[np.ndarray], projs: list[Projection], gain: np.ndarray,
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


def _conv_params(conv: nir.Conv2d) -> dict[str, Any] | None:
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


def _block_gains(p: Projection, dyn: Dynamics, members: np.ndarray, kept: bool,
                 structure: Structure) -> tuple[np.ndarray, bool]:
    """Float gains of a block: a kept convolution's kernel (never unrolled); the
    group's rows of an unrolled convolution or sparse chain as a csr matrix (one entry
    per synapse); else dense rows."""
    if kept:
        gc = dyn.gain.reshape(structure.shapes[p.target])[:, 0, 0]
        return gc[:, None, None, None] * np.asarray(p.conv.weight, dtype=float), True
    if p.kind != "dense":
        return sp.csr_matrix(sp.diags(dyn.gain[members]) @ p.csr()[members]), False
    return dyn.gain[members, None] * p.rows(members), False


def _fits_one_core(structure: Structure, pop: str, target: Target) -> bool:
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


def _kept_convs(structure: Structure, dyns: dict[str, Dynamics], target: Target,
                opts: QuantOptions) -> set[str]:
    if not (opts.keep_conv and target.connectivity.conv):
        return set()
    kept = set()
    limit = target.core.neurons_max
    for p in structure.projections:
        if p.conv is None or p.delay or _conv_params(p.conv) is None:
            continue
        if len(structure.shapes[p.source]) != 3 or max(structure.size(p.source),
                                                      structure.size(p.target)) > limit \
                or structure.size(p.source) > target.core.fan_in_axons_max \
                or not all(_fits_one_core(structure, q, target) for q in (p.source, p.target)):
            continue
        singles = all(p2 not in dyns or len(_group_sets(dyns[p2])) == 1
                      for p2 in (p.source, p.target))
        gain = dyns[p.target].gain.reshape(structure.shapes[p.target])
        if singles and np.allclose(gain, gain.reshape(gain.shape[0], -1)[:, :1, None]):
            kept.add(p.name)
    return kept


# --------------------------------------------------------------------------- bounds


def worst_case_stats(projections: list[Projection], gain: np.ndarray,
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


def calibrated_stats(structure: Structure, dyns: dict[str, Dynamics], graph: Any,
                     data: np.ndarray, dt: float) -> dict[str, Stats]:
    """Observed per-step input sums and |v| on calibration data (float reference)."""
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


def _v_bound(dyn: Dynamics, idx: np.ndarray, st: Stats, bias: np.ndarray, f: LoihiLif
             ) -> float:
    """Bound on |v| (float) for neurons ``idx``; inf when it cannot be bounded."""
    if st.v_max is not None:
        return float(st.v_max[idx].max(initial=0.0))
    alpha_v = dyn.dv[idx] / f.decay_one
    alpha_u = (dyn.du[idx] + f.du_offset) / f.decay_one
    pos = st.input_pos[idx] / alpha_u + np.clip(bias[idx], 0, None)
    neg = st.input_neg[idx] / alpha_u + np.clip(-bias[idx], 0, None)
    theta = np.where(np.isfinite(dyn.threshold[idx]), dyn.threshold[idx], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(alpha_v > 0, neg / alpha_v, np.where(neg > 0, np.inf, 0.0))
        high = np.where(dyn.model == "lif", theta + pos,
                        np.where(alpha_v > 0, pos / alpha_v, np.where(pos > 0, np.inf, 0.0)))
    return float(np.maximum(low, high).max(initial=0.0))


# --------------------------------------------------------------------------- integer grid


def _sign_mode(g: np.ndarray) -> str:
    if g.size == 0 or g.min() >= 0:
        return "exc"
    return "inh" if g.max() <= 0 else "mixed"


def grid(mode: str, bits: int, f: LoihiLif = LAVA) -> tuple[int, int, int]:
    """(m_min, m_max, log2 step) of the family's full-scale grid for ``bits`` weight bits
    (family.LoihiLif.grid; default: Lava's)."""
    return f.grid(mode, bits)


def _round(x: np.ndarray, how: str) -> np.ndarray:
    return np.floor(x + 0.5) if how == "nearest" else np.floor(x)


def _choose_scale(blocks: list[tuple[np.ndarray, bool]], theta: float, v_bound: float,
                  acc: float, bias: float, target: Target, bits: int, readout: bool,
                  netx: bool = False) -> tuple[float, dict[str, float]]:
    n = target.numeric
    top, caps = math.inf, {}
    base = math.inf
    for g, is_conv in blocks:
        g = values(g)
        pos, neg = float(g.max(initial=0.0)), float(-g.min(initial=0.0))
        if pos <= 0 and neg <= 0:
            continue
        lo, hi, step = grid(_sign_mode(g), bits, n)
        lam0 = n.act_scale * min(hi / pos if pos > 0 else math.inf, -lo / neg if neg > 0 else math.inf)
        base = min(base, lam0)
        e_max = (1 if _sign_mode(g) == "mixed" else 0) if netx else n.weight_exp_max + step
        top = min(top, lam0 if is_conv else lam0 * 2.0 ** e_max)
    act = n.act_scale
    caps["exponent"] = top
    if math.isfinite(theta):
        caps["threshold"] = act * n.vth_max / theta
    if acc > 0:
        caps["input sum"] = act * n.acc_max / acc * FIT_MARGIN
    if v_bound > 0 and math.isfinite(v_bound):
        caps["voltage"] = (act * n.vth_max if readout else float(n.v_max)) / v_bound \
            * FIT_MARGIN
    if bias > 0:
        caps["bias"] = n.bias_mant_max * 2.0**n.bias_exp_max / bias
    cap = min(caps.values())
    if not math.isfinite(base):
        base = act / theta * 2 ** (n.vth_mant_bits - 1) if math.isfinite(theta) else act
    if cap >= base:
        lam = base * 2.0 ** math.floor(math.log2(cap / base) + 1e-12)
    else:
        lam = cap
    return lam, caps


def _quantise_block(g: np.ndarray, lam: float, bits: int, how: str, is_conv: bool,
                    f: LoihiLif = LAVA) -> tuple[np.ndarray, int, str, float]:
    """Full-scale ints, weight_exp, sign mode and relative RMS error for block gains g
    (a sparse g keeps its structure; entries that round to 0 are dropped)."""
    if sp.issparse(g):
        w, wexp, mode, err = _quantise_block(g.data, lam, bits, how, is_conv, f)
        out = sp.csr_matrix((w, g.indices, g.indptr), shape=g.shape)
        out.eliminate_zeros()
        return out, wexp, mode, err
    mode = _sign_mode(g)
    lo, hi, step = grid(mode, bits, f)
    x = lam * g / f.act_scale
    e = 0
    if not is_conv:
        while x.max(initial=0.0) / 2.0**e > hi + 0.5 or x.min(initial=0.0) / 2.0**e < lo - 0.5:
            e += 1
    m = np.clip(_round(x / 2.0**e, how), lo, hi).astype(np.int64)
    deq = m * 2.0**e
    norm = float(np.sqrt(np.mean(x**2))) or 1.0
    err = float(np.sqrt(np.mean((deq - x) ** 2))) / norm
    if is_conv:
        return m, 0, mode, err
    return m * 2**step, e - step, mode, err


def _bias(values: np.ndarray, target: Target, exp_min: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    n = target.numeric
    mant_max = n.bias_mant_max
    exp = np.full(values.size, exp_min, dtype=np.int64)
    for k in range(exp_min, n.bias_exp_max + 1):
        need = np.abs(np.floor(values / 2.0**exp + 0.5)) > mant_max
        exp = np.where(need & (exp == k), k + 1, exp)
    exp = np.minimum(exp, n.bias_exp_max)
    mant = np.clip(np.floor(values / 2.0**exp + 0.5), -mant_max, mant_max).astype(np.int64)
    return mant, exp


def prephase_v0(bias: np.ndarray, dv: int, steps: int, vth: int, f: LoihiLif = LAVA
                ) -> np.ndarray | None:
    """Initial v such that ``steps`` steps of decay + bias (no input) end exactly at 0
    without a spike or saturation, in the widths of ``f`` (default: Lava's); None when no
    such value exists."""
    keep = f.decay_one - dv
    y = np.zeros(bias.size, dtype=np.int64)
    seen = []
    for _ in range(steps):
        want = y - bias                          # trunc0(x * keep >> decay_bits) == want
        guess = np.floor(want * f.decay_one / keep).astype(np.int64)
        best = np.full(bias.size, np.iinfo(np.int64).max)
        for delta in range(-3, 4):
            x = guess + delta
            p = x * keep
            ok = np.sign(p) * (np.abs(p) >> f.decay_bits) == want
            best = np.where(ok & (np.abs(x) < np.abs(best)), x, best)
        if np.any(best == np.iinfo(np.int64).max):
            return None
        y = best
        seen.append(y)
    if any(np.any(s > vth << f.act_shift) or np.any(np.abs(s) > f.v_max)
           for s in seen[:-1] + [y]):
        return None
    return y


# --------------------------------------------------------------------------- the pass


def quantise(structure: Structure, dyns: dict[str, Dynamics], target: Target,
             opts: QuantOptions, stats: dict[str, Stats] | None = None) -> HwNet:
    n = target.numeric
    if not 2 <= opts.weight_bits <= n.weight_bits_max:
        raise UserInputError(f"--weight-bits {opts.weight_bits} is outside 2..{n.weight_bits_max} "
                             f"for target '{target.name}'")
    kept = _kept_convs(structure, dyns, target, opts)
    layouts: dict[str, np.ndarray] = {}
    hw_shapes: dict[str, tuple[int, ...]] = {}
    for pop in structure.populations:
        shape = structure.shapes[pop]
        convy = any(p.name in kept and pop in (p.source, p.target) for p in structure.projections)
        layouts[pop] = whc_perm(shape) if convy else np.arange(structure.size(pop))
        hw_shapes[pop] = tuple(reversed(shape)) if convy else (structure.size(pop),)
    for p in structure.projections:
        src = p.source
        if src in dyns and dyns[src].model != "lif":
            raise UnsupportedError(
                f"'{src}' is a non-spiking readout but feeds '{p.target}'", node=src,
                hint="On Loihi only spikes travel between cores; use a spiking neuron.")
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    report: dict[str, Any] = {}
    for pop, dyn in dyns.items():
        projs = structure.into(pop)
        st = (stats or {}).get(pop) or worst_case_stats(projs, dyn.gain,
                                                        dict(opts.payload_max))
        bias = dyn.bias + dyn.gain * sum((p.bias for p in projs), np.zeros(dyn.gain.size))
        if dyn.cuba and any(np.any(p.bias != 0) for p in projs):
            if "cuba-bias" not in opts.approximations:
                raise UnsupportedError(
                    f"'{pop}' is a current-based neuron with a bias on its input current; "
                    "Loihi adds biases to the voltage", node=pop,
                    hint="Use --approximate cuba-bias (exact once the current settles, "
                         "different during its first tau_syn).")
            warnings.warn(f"'{pop}': input-current bias applied to the voltage (steady-state "
                          "equivalent; differs during the first tau_syn)", stacklevel=2)
            alpha_s = (dyn.du + n.du_offset) / n.decay_one
            extra = dyn.gain / alpha_s * sum(p.bias for p in projs)
            bias = dyn.bias + extra
        sets = _group_sets(dyn)
        if opts.scale_groups > 1 and not any(p.name in kept for p in structure.projections
                                             if pop in (p.source, p.target)):
            sets = _split_by_magnitude(sets, projs, dyn.gain, opts.scale_groups)
        order = np.argsort(layouts[pop])                   # NIR index -> hardware position
        for k, members in enumerate(sets):
            members = members[np.argsort(order[members])]  # hardware order
            name = pop if len(sets) == 1 else f"{pop}#{k}"
            gsub = [_block_gains(p, dyn, members, p.name in kept, structure) for p in projs]
            theta = float(dyn.threshold[members[0]])
            acc_f = float(np.maximum(st.input_pos[members], st.input_neg[members]).max())
            lam, caps = _choose_scale(
                gsub, theta, _v_bound(dyn, members, st, bias, n), acc_f,
                float(np.abs(bias[members]).max(initial=0.0)), target, opts.weight_bits,
                dyn.model != "lif", opts.netx)
            vth = n.vth_max if dyn.model != "lif" else \
                int(min(max(round(lam * theta / n.act_scale), 1), n.vth_max))
            # netx: biases in weight units (netx's bias_exp is Lava's act_shift, 6)
            mant, exp = _bias(lam * bias[members], target, n.act_shift if opts.netx else 0)
            offset = structure.offsets[pop]
            v0 = np.zeros(members.size, dtype=np.int64)
            reset = (0, 0)
            ints = mant << exp
            if offset and np.any(ints != 0):
                sol = prephase_v0(ints, int(dyn.dv[members[0]]), offset, vth, n)
                if sol is None:
                    reset = (ONE_SHOT_INTERVAL, offset + 1)
                else:
                    v0 = sol
            shape = hw_shapes[pop] if len(sets) == 1 else (members.size,)
            groups.append(HwGroup(name, pop, members, shape, dyn.model, int(dyn.du[members[0]]),
                                  int(dyn.dv[members[0]]), vth, lam, mant, exp, v0, offset,
                                  *reset))
            rep_blocks = {}
            for p, (g, is_conv) in zip(projs, gsub):
                w, wexp, mode, err = _quantise_block(g, lam, opts.weight_bits, opts.rounding,
                                                     is_conv, n)
                conv = None
                if is_conv:
                    kernel = np.asarray(p.conv.weight, dtype=float)
                    gc = dyn.gain.reshape(structure.shapes[pop])[:, 0, 0]
                    kw, _, mode, err = _quantise_block(gc[:, None, None, None] * kernel, lam,
                                                       opts.weight_bits, opts.rounding, True, n)
                    w = kw[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).copy()
                    conv = _conv_params(p.conv)
                blocks.append(HwBlock(f"{p.name}:{name}", p.source, name,
                                      "conv" if is_conv else "dense", w, wexp,
                                      opts.weight_bits, mode, p.delay, p.recurrent, None, conv))
                mant = w if is_conv else values(w) // 2 ** n.grid(mode, opts.weight_bits)[2]
                top = max(int(mant.max(initial=0)), -int(mant.min(initial=0)) -
                          (mode == "mixed"), 0)
                bits_used = top.bit_length() + (mode == "mixed")
                rep_blocks[p.source] = {"weight_exp": wexp, "sign_mode": mode,
                                        "bits_used": bits_used, "rms_error": err,
                                        "kind": "conv" if is_conv else "dense",
                                        "delay": p.delay}
            report[name] = {"population": pop, "neurons": int(members.size), "scale": lam,
                            "limited_by": min(caps, key=caps.get) if caps else "none",
                            "vth": vth, "du": int(dyn.du[members[0]]),
                            "dv": int(dyn.dv[members[0]]),
                            "bias_max": int(np.abs(ints).max(initial=0)),
                            "v0": "reset" if reset[0] else ("solved" if v0.any() else "zero"),
                            "inputs": rep_blocks}
    inputs = tuple(p for p in structure.populations if p not in dyns)
    return HwNet(tuple(groups), tuple(blocks), layouts, hw_shapes, inputs,
                 dict(structure.outputs), {"quantise": report},
                 spatial={p: structure.shapes[p] for p in structure.populations})


__all__ = [
    "ONE_SHOT_INTERVAL",
    "QuantOptions",
    "Stats",
    "calibrated_stats",
    "grid",
    "prephase_v0",
    "quantise",
    "whc_perm",
    "worst_case_stats",
]
