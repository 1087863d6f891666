"""Quantise: one scale per neuron group, weights on the target's mantissa/exponent grid.

Every width, shift and offset is the target's family record's (``target.numeric``, a
family.LoihiLif; Lava's figures in brackets). For a group with float effective weights G
(v-units per spike: gain * W) the hardware holds ``v_int = scale * v``; weights become
``m * 2**e ~ scale*G/act_scale`` (scale*G/64) on the grid of :mod:`.integers`.

Per population (:func:`quantise`), in steps:

1. its input statistics and bias (:func:`_population_inputs`): calibrated or worst case
   (:mod:`.bounds`), the bias of its input projections folded in;
2. its scale groups (:func:`_groups`, :mod:`.layout`);
3. per group, its neuron parameters (:func:`_group`): ``scale`` starts where the largest
   block uses its full mantissa range at e = 0 and grows by powers of two while the
   threshold, bias, u, v and the per-step input sum stay in range (bounds from
   :func:`.bounds.v_bound`, the formula ``ranges`` checks the integers with); threshold,
   bias and decays to their widths; a group that starts ``offset`` steps late on hardware
   with a bias gets an initial voltage that reaches exactly zero at its first real step
   without a spike (else it uses LIFReset at that step);
4. per group, its blocks (:func:`_blocks`): rounded to nearest, a kept convolution as one
   kernel at exponent 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.passes import layout
from snn2hw.passes.bounds import (
    CALIBRATION_MARGIN,
    Stats,
    calibrated_stats,
    v_bound,
    worst_case_stats,
)
from snn2hw.passes.discretise import Dynamics
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet, values
from snn2hw.passes.integers import (
    FIT_MARGIN,
    choose_scale,
    encode_bias,
    grid,
    prephase_v0,
    quantise_block,
)
from snn2hw.passes.layout import whc_perm
from snn2hw.passes.structure import Projection, Structure
from snn2hw.targets import Target

ONE_SHOT_INTERVAL = 2**30   # LIFReset interval for "reset once, at the group's first step"


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
class _Job:
    """What every step of one quantise run reads."""

    structure: Structure
    target: Target
    opts: QuantOptions
    kept: set[str]
    layouts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]


# --------------------------------------------------------------------------- per population


def _refuse_readout_sources(structure: Structure, dyns: dict[str, Dynamics]) -> None:
    for p in structure.projections:
        src = p.source
        if src in dyns and dyns[src].model != "lif":
            raise UnsupportedError(
                f"'{src}' is a non-spiking readout but feeds '{p.target}'", node=src,
                hint="On Loihi only spikes travel between cores; use a spiking neuron.")


def _population_inputs(job: _Job, pop: str, dyn: Dynamics, stats: dict[str, Stats] | None
                       ) -> tuple[list[Projection], Stats, np.ndarray]:
    """The projections into ``pop``, their statistics, and the bias per step (v-units):
    the population's own plus its inputs' (a current bias on a CuBa neuron only with
    ``--approximate cuba-bias``, as its steady state)."""
    n = job.target.numeric
    projs = job.structure.into(pop)
    st = (stats or {}).get(pop) or worst_case_stats(projs, dyn.gain,
                                                    dict(job.opts.payload_max))
    bias = dyn.bias + dyn.gain * sum((p.bias for p in projs), np.zeros(dyn.gain.size))
    if dyn.cuba and any(np.any(p.bias != 0) for p in projs):
        if "cuba-bias" not in job.opts.approximations:
            raise UnsupportedError(
                f"'{pop}' is a current-based neuron with a bias on its input current; "
                "Loihi adds biases to the voltage", node=pop,
                hint="Use --approximate cuba-bias (exact once the current settles, "
                     "different during its first tau_syn).")
        warnings.warn(f"'{pop}': input-current bias applied to the voltage (steady-state "
                      "equivalent; differs during the first tau_syn)", stacklevel=4)
        alpha_s = (dyn.du + n.du_offset) / n.decay_one
        bias = dyn.bias + dyn.gain / alpha_s * sum(p.bias for p in projs)
    return projs, st, bias


def _groups(job: _Job, pop: str, dyn: Dynamics, projs: list[Projection]
            ) -> list[tuple[str, np.ndarray]]:
    """(group name, members in hardware order) of ``pop``."""
    sets = layout.group_sets(dyn)
    if job.opts.scale_groups > 1 and not any(p.name in job.kept for p in
                                             job.structure.projections
                                             if pop in (p.source, p.target)):
        sets = layout.split_by_magnitude(sets, projs, dyn.gain, job.opts.scale_groups)
    order = np.argsort(job.layouts[pop])                   # NIR index -> hardware position
    return [(pop if len(sets) == 1 else f"{pop}#{k}", members[np.argsort(order[members])])
            for k, members in enumerate(sets)]


# --------------------------------------------------------------------------- per group


def _block_gains(job: _Job, p: Projection, dyn: Dynamics, members: np.ndarray
                 ) -> tuple[Any, bool]:
    """Float gains of a block: a kept convolution's kernel (never unrolled); the
    group's rows of an unrolled convolution or sparse chain as a csr matrix (one entry
    per synapse); else dense rows."""
    if p.name in job.kept:
        gc = dyn.gain.reshape(job.structure.shapes[p.target])[:, 0, 0]
        return gc[:, None, None, None] * np.asarray(p.conv.weight, dtype=float), True
    if p.kind != "dense":
        return sp.csr_matrix(sp.diags(dyn.gain[members]) @ p.csr()[members]), False
    return dyn.gain[members, None] * p.rows(members), False


def _initial_state(job: _Job, pop: str, ints: np.ndarray, dv: int, vth: int
                   ) -> tuple[np.ndarray, tuple[int, int]]:
    """(v0, (reset interval, reset offset)) of a group whose integer bias is ``ints``."""
    offset = job.structure.offsets[pop]
    if offset and np.any(ints != 0):
        sol = prephase_v0(ints, dv, offset, vth, job.target.numeric)
        if sol is None:
            return np.zeros(ints.size, dtype=np.int64), (ONE_SHOT_INTERVAL, offset + 1)
        return sol, (0, 0)
    return np.zeros(ints.size, dtype=np.int64), (0, 0)


def _group(job: _Job, name: str, pop: str, dyn: Dynamics, members: np.ndarray, st: Stats,
           bias: np.ndarray, gains: list[tuple[Any, bool]], single: bool
           ) -> tuple[HwGroup, dict[str, float]]:
    """The group's scale, threshold, bias and initial state; and the scale's caps."""
    n, opts = job.target.numeric, job.opts
    theta = float(dyn.threshold[members[0]])
    acc_f = float(np.maximum(st.input_pos[members], st.input_neg[members]).max())
    lam, caps = choose_scale(
        gains, theta, v_bound(dyn, members, st, bias, n), acc_f,
        float(np.abs(bias[members]).max(initial=0.0)), job.target, opts.weight_bits,
        dyn.model != "lif", opts.netx)
    vth = n.vth_max if dyn.model != "lif" else \
        int(min(max(round(lam * theta / n.act_scale), 1), n.vth_max))
    # netx: biases in weight units (netx's bias_exp is Lava's act_shift, 6)
    mant, exp = encode_bias(lam * bias[members], job.target, n.act_shift if opts.netx else 0)
    dv = int(dyn.dv[members[0]])
    v0, reset = _initial_state(job, pop, mant << exp, dv, vth)
    shape = job.shapes[pop] if single else (members.size,)
    group = HwGroup(name, pop, members, shape, dyn.model, int(dyn.du[members[0]]), dv, vth,
                    lam, mant, exp, v0, job.structure.offsets[pop], *reset)
    return group, caps


def _block(job: _Job, p: Projection, group: HwGroup, dyn: Dynamics, gains: Any,
           is_conv: bool) -> tuple[HwBlock, dict[str, Any]]:
    """One block into ``group`` and its report entry."""
    n, opts = job.target.numeric, job.opts
    w, wexp, mode, err = quantise_block(gains, group.scale, opts.weight_bits, opts.rounding,
                                        is_conv, n)
    conv = None
    if is_conv:
        kernel = np.asarray(p.conv.weight, dtype=float)
        gc = dyn.gain.reshape(job.structure.shapes[group.population])[:, 0, 0]
        kw, _, mode, err = quantise_block(gc[:, None, None, None] * kernel, group.scale,
                                          opts.weight_bits, opts.rounding, True, n)
        w = kw[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).copy()
        conv = layout.conv_params(p.conv)
    block = HwBlock(f"{p.name}:{group.name}", p.source, group.name,
                    "conv" if is_conv else "dense", w, wexp, opts.weight_bits, mode, p.delay,
                    p.recurrent, None, conv)
    mant = w if is_conv else values(w) // 2 ** n.grid(mode, opts.weight_bits)[2]
    top = max(int(mant.max(initial=0)), -int(mant.min(initial=0)) - (mode == "mixed"), 0)
    return block, {"weight_exp": wexp, "sign_mode": mode,
                   "bits_used": top.bit_length() + (mode == "mixed"), "rms_error": err,
                   "kind": "conv" if is_conv else "dense", "delay": p.delay}


def _report(group: HwGroup, dyn: Dynamics, caps: dict[str, float],
            inputs: dict[str, Any]) -> dict[str, Any]:
    return {"population": group.population, "neurons": group.size, "scale": group.scale,
            "limited_by": min(caps, key=caps.get) if caps else "none",
            "vth": group.vth, "du": group.du, "dv": group.dv,
            "bias_max": int(np.abs(group.bias_mant << group.bias_exp).max(initial=0)),
            "v0": "reset" if group.reset_interval else ("solved" if group.v0.any()
                                                         else "zero"),
            "inputs": inputs}


# --------------------------------------------------------------------------- the pass


def quantise(structure: Structure, dyns: dict[str, Dynamics], target: Target,
             opts: QuantOptions, stats: dict[str, Stats] | None = None) -> HwNet:
    """The hardware model of ``structure`` with discrete dynamics ``dyns`` (module
    docstring); ``stats``: calibrated statistics per population (else the worst case)."""
    n = target.numeric
    if not 2 <= opts.weight_bits <= n.weight_bits_max:
        raise UserInputError(f"--weight-bits {opts.weight_bits} is outside 2..{n.weight_bits_max} "
                             f"for target '{target.name}'")
    kept = layout.kept_convs(structure, dyns, target, opts.keep_conv)
    job = _Job(structure, target, opts, kept, *layout.layouts(structure, kept))
    _refuse_readout_sources(structure, dyns)
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    report: dict[str, Any] = {}
    for pop, dyn in dyns.items():
        projs, st, bias = _population_inputs(job, pop, dyn, stats)
        parts = _groups(job, pop, dyn, projs)
        for name, members in parts:
            gains = [_block_gains(job, p, dyn, members) for p in projs]
            group, caps = _group(job, name, pop, dyn, members, st, bias, gains,
                                 len(parts) == 1)
            groups.append(group)
            inputs = {}
            for p, (g, is_conv) in zip(projs, gains):
                block, inputs[p.source] = _block(job, p, group, dyn, g, is_conv)
                blocks.append(block)
            report[name] = _report(group, dyn, caps, inputs)
    inputs = tuple(p for p in structure.populations if p not in dyns)
    return HwNet(tuple(groups), tuple(blocks), job.layouts, job.shapes, inputs,
                 dict(structure.outputs), {"quantise": report},
                 spatial={p: structure.shapes[p] for p in structure.populations})


__all__ = ["CALIBRATION_MARGIN", "FIT_MARGIN", "ONE_SHOT_INTERVAL", "QuantOptions", "Stats",
           "calibrated_stats", "grid", "prephase_v0", "quantise", "whc_perm",
           "worst_case_stats"]
