"""The integer grid of a Loihi-family core, in the widths of the target's family record
(``f``: family.LoihiLif; Lava's figures in brackets): weight mantissas and exponents, the
scale that maps a group's float voltages onto its integers, bias mantissa/exponent pairs,
and initial voltages that absorb a bias during a group's first steps.

A synapse contributes ``m * 2**e`` to the weighted sum ``a`` and the core adds ``a <<
act_shift`` to u (<< 6), so ``m * 2**e ~ scale*G/act_scale`` for a float gain G. Mantissas
are full-scale Lava weights ``m * step`` with ``weight_exp = e - log2(step)``; ``e >= 0``
keeps every block where Lava's shift-after-sum equals Loihi's per-synapse shift
(specs/loihi_fixed_point.md §5.1.2); a convolution has no exponent on Loihi/Lava.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.passes.hwmodel import values
from snn2hw.targets import Target

FIT_MARGIN = 1 - 2.0**-6    # a scale fitted to a float bound, kept clear of weight rounding


def sign_mode(g: np.ndarray) -> str:
    if g.size == 0 or g.min() >= 0:
        return "exc"
    return "inh" if g.max() <= 0 else "mixed"


def grid(mode: str, bits: int, f: LoihiLif = LAVA) -> tuple[int, int, int]:
    """(m_min, m_max, log2 step) of the family's full-scale grid for ``bits`` weight bits
    (family.LoihiLif.grid; default: Lava's)."""
    return f.grid(mode, bits)


def round_to(x: np.ndarray, how: str) -> np.ndarray:
    """``nearest`` (half up) or ``floor``."""
    return np.floor(x + 0.5) if how == "nearest" else np.floor(x)


def choose_scale(blocks: list[tuple[np.ndarray, bool]], theta: float, v_bound: float,
                 acc: float, bias: float, target: Target, bits: int, readout: bool,
                 netx: bool = False) -> tuple[float, dict[str, float]]:
    """A group's scale and what capped it: start where the largest block fills its mantissa
    at e = 0, grow by powers of two (only raising exponents) while the threshold, bias,
    u, v and the per-step input sum stay in range."""
    n = target.numeric
    top, caps = math.inf, {}
    base = math.inf
    for g, is_conv in blocks:
        g = values(g)
        pos, neg = float(g.max(initial=0.0)), float(-g.min(initial=0.0))
        if pos <= 0 and neg <= 0:
            continue
        lo, hi, step = grid(sign_mode(g), bits, n)
        lam0 = n.act_scale * min(hi / pos if pos > 0 else math.inf,
                                 -lo / neg if neg > 0 else math.inf)
        base = min(base, lam0)
        e_max = (1 if sign_mode(g) == "mixed" else 0) if netx else n.weight_exp_max + step
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


def quantise_block(g: np.ndarray, lam: float, bits: int, how: str, is_conv: bool,
                   f: LoihiLif = LAVA) -> tuple[np.ndarray, int, str, float]:
    """Full-scale ints, weight_exp, sign mode and relative RMS error for block gains g
    (a sparse g keeps its structure; entries that round to 0 are dropped)."""
    if sp.issparse(g):
        w, wexp, mode, err = quantise_block(g.data, lam, bits, how, is_conv, f)
        out = sp.csr_matrix((w, g.indices, g.indptr), shape=g.shape)
        out.eliminate_zeros()
        return out, wexp, mode, err
    mode = sign_mode(g)
    lo, hi, step = grid(mode, bits, f)
    x = lam * g / f.act_scale
    e = 0
    if not is_conv:
        while x.max(initial=0.0) / 2.0**e > hi + 0.5 or x.min(initial=0.0) / 2.0**e < lo - 0.5:
            e += 1
    m = np.clip(round_to(x / 2.0**e, how), lo, hi).astype(np.int64)
    deq = m * 2.0**e
    norm = float(np.sqrt(np.mean(x**2))) or 1.0
    err = float(np.sqrt(np.mean((deq - x) ** 2))) / norm
    if is_conv:
        return m, 0, mode, err
    return m * 2**step, e - step, mode, err


def encode_bias(values: np.ndarray, target: Target, exp_min: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Bias mantissas and exponents: the smallest exponent >= ``exp_min`` whose mantissa
    fits, per neuron."""
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


__all__ = ["FIT_MARGIN", "choose_scale", "encode_bias", "grid", "prephase_v0",
           "quantise_block", "round_to", "sign_mode"]
