"""Normative reference kernels: the living definition of the Loihi arithmetic family.

Plain Python integers, one neuron or synapse at a time, so that every shift and
clip is visible. They reproduce Lava 0.10's fixed-point CPU models
(``PyDenseModelBitAcc``, ``PyLifModelBitAcc``, ``PyLifResetModelBitAcc``,
``PyConvModelFixed``, ``PySigmaDeltaModelFixed``); specs/loihi_fixed_point.md §1 and
docs/sigma_delta.md give the source lines.
The vectorised engine (engine.py) is tested against these on random programs,
and these against Lava itself.

Every width, shift and offset comes from the arithmetic family's record (``f``, a
family.LoihiLif); the default is :data:`family.LAVA`, the record Lava's models hard-wire:
24-bit u and v (``state_bits``), decays as 12-bit fractions of 4096 (``decay_bits``),
synaptic input and threshold scaled by 2^6 into u/v units (``act_shift``), full-scale
weights of 8 bits + sign (``weight_bits_max``), a 24-bit Conv output register
(``conv_bits``). A target with other widths runs these same rules in its own widths.
"""

from __future__ import annotations

from collections.abc import Sequence

from snn2hw_emulator.family import LAVA, LoihiLif

SD_STATE = ("sigma", "act", "residue", "error")   # a sigma-delta neuron's state variables
#: The state variables each neuron model has (and records besides its spikes/payloads):
#: Lava's SigmaDelta, Delta (netx SDNN input layers) and Sigma (netx sigma_output layers).
STATE_VARS = {"lif": ("u", "v"), "lif_reset": ("u", "v"), "sigma_delta": SD_STATE,
              "delta": ("act", "residue", "error"), "sigma": ("sigma",)}
GRADED_MODELS = ("sigma_delta", "delta", "sigma")


def wrap32(x: int) -> int:
    """Lava keeps a_in, u and v in int32 numpy arrays: sums wrap at 32 bits."""
    return ((x + 2**31) % 2**32) - 2**31


def floor_shift(x: int, exp: int) -> int:
    """x * 2^exp with an arithmetic (floor) right shift for negative exp."""
    return x << exp if exp >= 0 else x >> -exp


def trunc_decay(x: int, keep: int, f: LoihiLif = LAVA) -> int:
    """x * keep / 2^decay_bits rounded toward zero (the hardware decays magnitudes)."""
    p = x * keep
    return -((-p) >> f.decay_bits) if p < 0 else p >> f.decay_bits


# --------------------------------------------------------------------------- synapses


def sign_mode(weights: Sequence[Sequence[int]], given: str = "auto") -> str:
    """Lava's determine_sign_mode: exc if all >= 0 (all-zero too), inh if all <= 0."""
    if given != "auto":
        return given
    flat = [w for row in weights for w in row]
    if not flat or min(flat) >= 0:
        return "exc"
    return "inh" if max(flat) <= 0 else "mixed"


def codebook_weights(indices: Sequence[Sequence[int]], table: Sequence[Sequence[int]]
                     ) -> list[list[int]]:
    """A codebook block's full-scale weight matrix: row i looks its indices up in table
    row 0 (one table per block) or row i (one table per post-synaptic neuron); index -1 is
    "no synapse" (weight 0). The result then goes through sign_mode/effective_weight
    exactly like a dense matrix."""
    out = []
    for i, row in enumerate(indices):
        entries = table[0] if len(table) == 1 else table[i]
        out.append([entries[j] if j >= 0 else 0 for j in row])
    return out


def effective_weight(w: int, mode: str, num_weight_bits: int, f: LoihiLif = LAVA) -> int:
    """What a stored weight becomes: clip to the weight_bits_max (+sign) range of the sign
    mode (Lava: -256..255 mixed, 0..255 on the magnitude otherwise), then clear the low
    ``weight_bits_max - nwb + mixed`` bits (floor): Loihi stores only the top bits."""
    if mode == "inh":
        w = -w                                      # inhibitory: work on the magnitude
    lo, hi = f.clip_range("mixed" if mode == "mixed" else "exc")
    w = max(lo, min(hi, w))
    n = f.dropped_bits(mode, num_weight_bits)
    w = (w >> n) << n
    return -w if mode == "inh" else w


def dense_activation(weights: Sequence[Sequence[int]], spikes: Sequence[int],
                     weight_exp: int, graded: bool, int32_dot: bool = True) -> list[int]:
    """One Dense step: sum weights of active inputs (or W @ payload when graded), then
    apply weight_exp to the *sum* with a floor shift; sent as int32. Lava's Dense and
    Sparse compute the graded product as an int32 ``weights.dot(s)``, which wraps before
    the shift (``int32_dot``); the binary sum is exact (numpy sums int32 in int64).
    DelayDense (``int32_dot=False``) sums in int64."""
    out = []
    for row in weights:
        acc = 0
        for w, s in zip(row, spikes):
            if graded:
                acc += w * s
            elif s != 0:
                acc += w
        out.append(wrap32(floor_shift(wrap32(acc) if graded and int32_dot else acc,
                                       weight_exp)))
    return out


def conv_activation(weights: list, spikes: list, size_in: tuple[int, int, int],
                    size_out: tuple[int, int, int], stride: tuple[int, int],
                    padding: tuple[int, int], dilation: tuple[int, int], groups: int,
                    graded: bool, f: LoihiLif = LAVA) -> list[int]:
    """Lava Conv (true convolution, kernel flipped) in (X, Y, C) layout, flattened in C
    order; weights[k][i][j][c] is (C_out, Kw, Kh, C_in/groups). The output register
    (``conv_bits``: 24 in Lava) wraps; weight_exp is ignored (as Lava does)."""
    half = 1 << (f.conv_bits - 1)
    xin, yin, cin = size_in
    xo, yo, co = size_out
    kw, kh = len(weights[0]), len(weights[0][0])
    cg, og = cin // groups, co // groups
    out = []
    for x in range(xo):
        for y in range(yo):
            for k in range(co):
                g = k // og
                acc = 0
                for i in range(kw):
                    for j in range(kh):
                        xi = x * stride[0] + i * dilation[0] - padding[0]
                        yj = y * stride[1] + j * dilation[1] - padding[1]
                        if not (0 <= xi < xin and 0 <= yj < yin):
                            continue
                        for c in range(cg):
                            s = spikes[(xi * yin + yj) * cin + g * cg + c]
                            if s:
                                acc += weights[k][kw - 1 - i][kh - 1 - j][c] * (s if graded
                                                                               else 1)
                out.append(((acc + half) % (2 * half)) - half)
    return out


# --------------------------------------------------------------------------- neurons


def lif_step(u: int, v: int, a: int, du: int, dv: int, vth: int, bias_mant: int,
             bias_exp: int, f: LoihiLif = LAVA) -> tuple[int, int, int]:
    """One CUBA LIF step; returns (u, v, spike)."""
    bias = floor_shift(bias_mant, bias_exp)             # in v units: NOT shifted by act_shift
    # current: decay by (4096 - (du + 1)) / 4096 toward zero (Lava's widths); Loihi adds
    # du_offset = 1 to decayU; the input is scaled by << act_shift (<< 6)
    u = wrap32(trunc_decay(u, f.decay_one - (du + f.du_offset), f) + wrap32(a << f.act_shift))
    # a single conditional wrap into (-2^23, 2^23] (state_half; Lava's model, not a
    # true modulo)
    if u > f.state_half:
        u -= 2 * f.state_half
    elif u <= -f.state_half:
        u += 2 * f.state_half
    # voltage: decay the OLD v, add the NEW u and the bias, saturate at +-(2^23 - 1)
    v = max(-f.v_max, min(f.v_max, wrap32(trunc_decay(v, f.decay_one - dv, f) + u + bias)))
    spike = 1 if v > (vth << f.act_shift) else 0       # strict comparison
    if spike:
        v = 0                                           # hard reset, no refractory on CPU
    return u, v, spike


def lif_reset_due(t: int, interval: int, offset: int) -> bool:
    """LIFReset zeroes u and v before the update when t % interval == offset % interval."""
    return t % interval == offset % interval


def sigma_delta_scaled(vth: int, bias: int, spike_exp: int, state_exp: int) -> tuple[int, int]:
    """SigmaDelta's constructor scales threshold and bias by 2^(spike_exp + state_exp)
    (proc/sdn/process.py:179-180); a_in is never scaled."""
    k = spike_exp + state_exp
    return vth << k, wrap32(bias << k)


def sigma_delta_step(sigma: int, act: int, residue: int, error: int, a: int, vth_s: int,
                     bias_s: int, relu: bool, cum_error: bool, state_exp: int
                     ) -> tuple[int, int, int, int, int]:
    """One PySigmaDeltaModelFixed step (int32 numpy arithmetic); returns
    (sigma, act, residue, error, payload sent)."""
    sigma = wrap32(sigma + a)                           # sigma dendrite: accumulate input
    y = wrap32(sigma + bias_s)
    new = max(y, 0) if relu else y                      # RELU (default) or UNIT activation
    delta = wrap32(new - act + residue)                 # change since the last activation
    if cum_error:                                       # fire on the accumulated error
        error = wrap32(error + delta)
        s = delta if abs32(error) >= vth_s else 0       # non-strict, unlike the docstring
        error = 0 if s != 0 else error
    else:
        s = delta if abs32(delta) >= vth_s else 0
    residue = wrap32(delta - s)                         # the low state_exp bits of s are
    return sigma, new, residue, error, s >> state_exp  # lost: Lava 0.10 (floor shift)


def delta_step(act: int, residue: int, error: int, a: int, vth_s: int, cum_error: bool,
               spike_exp: int, state_exp: int) -> tuple[int, int, int, int]:
    """One PyDeltaModelFixed step (proc/sdn/models.py:223-231): the input itself, shifted
    left by spike_exp + state_exp, is the activation; no bias, no ReLU. Returns
    (act, residue, error, payload sent)."""
    x = wrap32(a << (spike_exp + state_exp))
    _, _, residue, error, s = sigma_delta_step(0, act, residue, error, x, vth_s, 0, False,
                                               cum_error, state_exp)
    return x, residue, error, s


def abs32(x: int) -> int:
    """numpy's int32 abs: -2^31 stays -2^31."""
    return wrap32(abs(x))
