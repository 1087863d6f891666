"""Range analysis: integer bounds on the per-step input sum, u and v of every group.

From the quantised integer weights and a 0/1 input (every source spiking at once)
the pass bounds, per neuron, the weighted sum ``a`` (Loihi 1's dendritic
accumulator wraps beyond ``accumulator_bits``; specs §5.1.3), ``u`` (wraps beyond
``state_bits``) and ``v`` (saturates), in the target family record's widths
(``target.numeric``: act_shift, decay_bits, du_offset). With calibration data the observed float
values (scaled, with a margin) replace the worst case. A bound over the limit is a
:class:`DesignRuleError` unless saturation is allowed, then a warning.

When the source is already in the target's integers (``integer=True``: a netx file, which
netx runs as it is), the worst-case bounds are information (a warning and the report);
refused is only what overflows in one step from rest, every input spiking once: the
input sum shifted into u (``a << act_shift``) beyond u's range.

Sigma-delta groups (``delta``, ``sigma_delta``, ``sigma``) have no u or v and take graded
payloads, which a 0/1 worst case does not bound. Those the sigma-delta quantiser made
(``passes/quantise_sdnn.py``) carry its bounds (observed maxima with a margin, or the
worst case), checked here: state inside ``state_bits``, payloads inside their message
bits, a dense block's sum inside Lava's int32 dot product (``register_bits``), a
convolution's inside its ``conv_bits`` register. Others (netx files) are reported as not bounded (their state is int32
and wraps as in Lava, docs/sigma_delta.md §3).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import DesignRuleError
from snn2hw.passes.bounds import Stats, state_bounds
from snn2hw.passes.hwmodel import SIGMA_DELTA_MODELS, HwBlock, HwGroup, HwNet
from snn2hw.targets import Target


def _row_sums(block: HwBlock, n: int) -> tuple[np.ndarray, np.ndarray]:
    if block.kind == "conv":          # every kernel tap of an output channel at once
        w = block.effective()
        c_out = w.shape[0]
        pos = np.clip(w, 0, None).reshape(c_out, -1).sum(axis=1)
        neg = np.clip(-w, 0, None).reshape(c_out, -1).sum(axis=1)
        reps = n // c_out
        return np.tile(pos, reps), np.tile(neg, reps)   # (W, H, C) order: channel fastest
    return block.row_sums()


def bounds(net: HwNet, group: HwGroup, stats: Stats | None, f: LoihiLif = LAVA
           ) -> dict[str, float]:
    """Worst-case (or calibrated) |input sum|, |u|, v above and below zero of ``group``,
    in the widths of ``f`` (the target's family record; default: Lava's)."""
    n = group.size
    act = f.act_scale
    pos = np.zeros(n)
    neg = np.zeros(n)
    for b in net.blocks_into(group.name):
        p, q = _row_sums(b, n)
        if b.num_message_bits and b.source in net.inputs:   # signed graded input payloads
            p = q = (p + q) * 2 ** (b.num_message_bits - 1)
        pos, neg = pos + p, neg + q
    if stats is not None:
        lam = group.scale / act
        pos = np.minimum(pos, stats.input_pos[group.index] * lam)
        neg = np.minimum(neg, stats.input_neg[group.index] * lam)
    bias = (group.bias_mant << group.bias_exp).astype(float)
    u_pos, u_neg, high, low = state_bounds(act * pos, act * neg, bias, group.du, group.dv,
                                           group.vth * act, group.model == "lif", f)
    if stats is not None and stats.v_max is not None:
        v_obs = stats.v_max[group.index] * group.scale
        cap = v_obs if group.model == "readout" else np.maximum(v_obs, group.vth * act)
        low, high = np.minimum(low, v_obs), np.minimum(high, cap)
    return {"input_sum": float(np.maximum(pos, neg).max(initial=0)),
            "u": float(np.maximum(u_pos, u_neg).max(initial=0)),
            "v_high": float(np.max(high, initial=0)), "v_low": float(np.max(low, initial=0))}


def _over(value: float, limit: float) -> bool:
    """value > limit, ignoring float rounding: a scale chosen as limit / bound makes the
    scaled bound equal the limit up to an ulp or two."""
    return value > limit * (1 + 1e-9)


def _one_step(net: HwNet, g: HwGroup, f: LoihiLif) -> str | None:
    a = max((float(np.max(np.maximum(*_row_sums(b, g.size)), initial=0))
             for b in net.blocks_into(g.name)), default=0.0) * f.act_scale
    state_max = f.v_max
    if _over(a, state_max):
        return (f"'{g.name}': one step with every input spiking gives u = {a:.0f}, "
                f"beyond the {state_max} of its state")
    return None


def _sigma_delta(name: str, sd: dict[str, Any], num: Any, net: HwNet) -> list[str]:
    """The sigma-delta quantiser's bounds against the registers they must fit."""
    out = []
    if _over(sd["state"], num.state_half - 1):
        out.append(f"'{name}': state up to {sd['state']:.0f} exceeds the {num.state_bits}-bit "
                   "state")
    if _over(sd["payload"], 2 ** (sd["message_bits"] - 1) - 1):
        out.append(f"'{name}': payloads up to {sd['payload']:.0f} exceed "
                   f"{sd['message_bits']} bits")
    kinds = {b.name: b.kind for b in net.blocks}
    for block, top in sd["sums"].items():
        # Lava: Conv's register; Dense's int32 W.dot(s) wraps before the weight exponent
        bits = num.conv_bits if kinds.get(block) == "conv" else num.register_bits
        if _over(top, 2 ** (bits - 1) - 1):
            out.append(f"'{block}': its sum can reach {top:.3g}, beyond the {bits}-bit "
                       "register")
    return out


def check(net: HwNet, target: Target, stats: dict[str, Stats] | None,
          allow_saturation: bool, *, integer: bool = False) -> HwNet:
    num = target.numeric
    state_max, acc_max = num.v_max, num.acc_max
    problems: list[str] = []
    report: dict[str, Any] = {}
    for g in net.groups:
        sd = net.report.get("quantise", {}).get(g.name, {}).get("sd_bounds")
        if g.model in SIGMA_DELTA_MODELS and sd is not None:
            report[g.name] = sd
            problems += _sigma_delta(g.name, sd, num, net)
            continue
        if g.model in SIGMA_DELTA_MODELS:     # no u or v: nothing this analysis bounds
            report[g.name] = {"graded": "not bounded: sigma-delta state, int32 as in Lava"}
            continue
        b = bounds(net, g, (stats or {}).get(g.population), num)
        report[g.name] = b
        if _over(b["input_sum"], acc_max):
            problems.append(f"'{g.name}': per-step input sum up to {b['input_sum']:.0f} exceeds "
                            f"the {num.accumulator_bits}-bit accumulator ({acc_max})")
        if _over(b["u"], state_max):
            problems.append(f"'{g.name}': |u| up to {b['u']:.0f} exceeds {state_max}")
        if _over(b["v_high"], state_max) or _over(b["v_low"], state_max):
            worst = max(b["v_high"], b["v_low"])
            problems.append(f"'{g.name}': |v| can reach {worst:.3g}, beyond the "
                            f"{num.state_bits}-bit range ({state_max}) and saturate")
        if g.model == "readout" and _over(b["v_high"], g.vth * num.act_scale):
            problems.append(f"'{g.name}': readout voltage can reach the threshold and reset")
    overflow = [m for g in net.groups if integer and g.model not in SIGMA_DELTA_MODELS
                for m in [_one_step(net, g, num)] if m]
    if overflow and not allow_saturation:
        raise DesignRuleError(f"range analysis: {'; '.join(overflow)}",
                              hint="The integers overflow on this target in a single step; "
                                   "retrain with smaller weights, or --allow-saturation.")
    if problems and integer:
        warnings.warn("range analysis (information; the integers are the source's own): "
                      "worst-case " + "; ".join(problems), stacklevel=2)
        problems = []
    if problems:
        text = "; ".join(problems)
        hint = ("Pass calibration data (--calibrate X.npy) so bounds use observed activity, "
                "lower --weight-bits' scale, or accept with --allow-saturation.")
        if not allow_saturation:
            raise DesignRuleError(f"range analysis: {text}", hint=hint)
        warnings.warn(f"range analysis (allowed): {text}", stacklevel=2)
    rep = dict(net.report)
    rep["ranges"] = report
    return net.with_(report=rep)


__all__ = ["bounds", "check"]
