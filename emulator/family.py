"""Arithmetic families: one frozen record type per family, holding every width, shift and
encoding its arithmetic needs.

A target file names its family (``[target] family``) and states the family's widths in
its ``[numeric]`` table; :mod:`snn2hw_emulator.target` parses that table into the
family's record (``target.numeric``). The kernels, the engines, the compiler's passes,
the design rules and the devices read the record, never a literal.

A family is three things: its record type here (the ``[numeric]`` keys it reads, the
facts it fixes, the values it cannot honour), its rules (``rules.py``) and its kernels.
A second family (``xylo-iaf``) is one more record type registered in :data:`FAMILIES`,
with its own validation and kernels; the Loihi code paths do not change.

``loihi-lif`` covers Loihi's CUBA LIF *and* its sigma-delta neurons (Lava's SigmaDelta,
Delta and Sigma, which netx's SDNN files use): on Loihi 2 both run on the same neuron
cores with the same state and message widths, and the shipped ``loihi2.toml`` (whose text
every program image embeds) names one family. Their one extra fact, the 3-bit spike and
state exponents, is :attr:`LoihiLif.sd_exp_bits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import numpy as np


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format as a value: width, fraction bits, sign, rounding, overflow."""

    bits: int
    frac_bits: int = 0
    signed: bool = True
    rounding: Literal["floor", "trunc", "nearest"] = "trunc"
    overflow: Literal["saturate", "wrap", "error"] = "saturate"

    @property
    def min_int(self) -> int:
        return -(2 ** (self.bits - 1)) + 1 if self.signed else 0

    @property
    def max_int(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def contains(self, values: Any) -> bool:
        arr = np.asarray(values)
        return bool(np.all((arr >= self.min_int) & (arr <= self.max_int)))


@dataclass(frozen=True)
class Family:
    """Base of the family records: the keys of ``[numeric]`` are the record's init
    fields; fields with ``init=False`` are facts the family fixes (not in the file)."""

    family: ClassVar[str] = ""
    #: The keys whose values change the arithmetic (not only a limit), with the values
    #: Lava's fixed-point models hard-wire; a family Lava does not model leaves it empty.
    LAVA_FIXED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.init]

    @classmethod
    def key_types(cls) -> dict[str, Any]:
        return {f.name: f.type for f in fields(cls) if f.init}

    def problems(self) -> list[tuple[str, str]]:
        """(key, what it must be) for every value this family cannot honour."""
        return []

    def lava_mismatches(self) -> list[tuple[str, Any, Any]]:
        """(key, this value, Lava's value) where Lava's models could not run this
        arithmetic (empty: they compute exactly what the record says)."""
        return []


@dataclass(frozen=True)
class LoihiLif(Family):
    """Loihi's neuron arithmetic as Lava 0.10's fixed-point CPU models compute it
    (specs/loihi_fixed_point.md §1; kernels.py is its living definition).

    Per step: ``u = trunc0(u * (2^decay_bits - (du + du_offset)) >> decay_bits) +
    (a << act_shift)``, wrapped once into the ``state_bits`` range; ``v = trunc0(v *
    (2^decay_bits - dv) >> decay_bits) + u + (bias_mant << bias_exp)``, clipped to
    +-(2^(state_bits-1) - 1); a spike when ``v > vth << act_shift``. Synapses: full-scale
    weights clipped to ``weight_bits_max`` bits + sign by sign mode, their low
    ``weight_bits_max - num_weight_bits + mixed`` bits cleared, the sum shifted by
    ``weight_exp`` (floor).
    """

    family: ClassVar[str] = "loihi-lif"
    LAVA_FIXED: ClassVar[tuple[str, ...]] = ("weight_bits_max", "state_bits", "decay_bits",
                                             "act_shift")

    # ---- the target file's [numeric] keys
    weight_bits_max: int      # full-scale weight magnitude bits (+ sign); mantissas <= this
    weight_exp_min: int       # weight_exp range (shift of the weighted sum)
    weight_exp_max: int
    state_bits: int           # u and v registers, signed
    decay_bits: int           # du, dv are fractions of 2^decay_bits
    vth_mant_bits: int        # unsigned threshold mantissa, scaled by << act_shift
    bias_mant_bits: int       # signed bias mantissa (sign included), << bias_exp
    bias_exp_max: int
    act_shift: int            # a_in and vth << act_shift into u/v units
    accumulator_bits: int     # per-step weighted sum (dendritic accumulator), signed
    message_bits_max: int     # graded spike payload (0: binary spikes only)
    delay_max: int            # synaptic delay in steps
    # ---- facts of the family (Lava's models; not keys of the file)
    du_offset: int = field(default=1, init=False)          # Loihi adds 1 to decayU
    u_overflow: str = field(default="wrap", init=False)     # one conditional wrap
    v_overflow: str = field(default="clip", init=False)     # saturation
    decay_rounding: str = field(default="trunc", init=False)       # toward zero
    weight_exp_rounding: str = field(default="floor", init=False)  # arithmetic shift
    sign_modes: tuple[str, ...] = field(default=("mixed", "exc", "inh"), init=False)
    conv_bits: int = field(default=24, init=False)         # Lava Conv's output register
    register_bits: int = field(default=32, init=False)     # Lava's int32 a_in, u, v arrays
    weight_word_bits: int = field(default=16, init=False)  # a stored full-scale weight
    sd_exp_bits: int = field(default=3, init=False)        # SigmaDelta spike/state_exp
    delay_field_bits: int = field(default=6, init=False)   # delay field: delay_max <= 63

    # ---- derived values (what code reads instead of literals)
    @property
    def decay_one(self) -> int:
        """A decay of 1.0: 2^decay_bits (4096 in Lava)."""
        return 1 << self.decay_bits

    @property
    def decay_max(self) -> int:
        return self.decay_one - 1

    @property
    def du_forget(self) -> int:
        """The du with which u keeps nothing of the last step (u = a): decay_one -
        du_offset (4095 in Lava)."""
        return self.decay_one - self.du_offset

    @property
    def act_scale(self) -> float:
        """u/v units per unit of weighted input (2^act_shift: 64 in Lava)."""
        return float(1 << self.act_shift)

    @property
    def state_half(self) -> int:
        """u wraps into (-state_half, state_half] (2^23 in Lava)."""
        return 1 << (self.state_bits - 1)

    @property
    def v_max(self) -> int:
        """v saturates at +-v_max (2^23 - 1 in Lava)."""
        return self.state_half - 1

    @property
    def vth_max(self) -> int:
        return (1 << self.vth_mant_bits) - 1

    @property
    def bias_mant_max(self) -> int:
        return (1 << (self.bias_mant_bits - 1)) - 1

    @property
    def acc_max(self) -> int:
        return (1 << (self.accumulator_bits - 1)) - 1

    @property
    def weight_max(self) -> int:
        """Largest full-scale weight (255 in Lava); mixed blocks reach -(weight_max + 1)."""
        return (1 << self.weight_bits_max) - 1

    @property
    def weight_bound(self) -> int:
        """Largest |effective weight| of any sign mode (256 in Lava)."""
        return 1 << self.weight_bits_max

    @property
    def weight_word_max(self) -> int:
        return (1 << (self.weight_word_bits - 1)) - 1

    @property
    def sd_exp_max(self) -> int:
        return (1 << self.sd_exp_bits) - 1

    def clip_range(self, mode: str) -> tuple[int, int]:
        """Lava's clip_weights: the full-scale range of a sign mode."""
        if mode == "mixed":
            return -self.weight_bound, self.weight_max
        return (0, self.weight_max) if mode == "exc" else (-self.weight_max, 0)

    def dropped_bits(self, mode: str, num_weight_bits: int) -> int:
        """Low bits Lava's truncate_weights clears: weight_bits_max - nwb + mixed."""
        return self.weight_bits_max - num_weight_bits + (1 if mode == "mixed" else 0)

    def grid(self, mode: str, bits: int) -> tuple[int, int, int]:
        """(m_min, m_max, log2 step) of the full-scale grid of ``bits`` mantissa bits:
        the stored weight is ``m << step``."""
        if mode == "mixed":
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1, self.dropped_bits(mode, bits)
        if mode == "exc":
            return 0, (1 << bits) - 1, self.dropped_bits(mode, bits)
        return -((1 << bits) - 1), 0, self.dropped_bits(mode, bits)

    @property
    def formats(self) -> dict[str, FixedFormat]:
        """The family's registers as fixed-point formats."""
        return {
            "weight": FixedFormat(self.weight_bits_max + 1, rounding="floor"),
            "u": FixedFormat(self.state_bits, frac_bits=self.act_shift, overflow="wrap"),
            "v": FixedFormat(self.state_bits, frac_bits=self.act_shift),
            "decay": FixedFormat(self.decay_bits, frac_bits=self.decay_bits, signed=False),
            "vth_mant": FixedFormat(self.vth_mant_bits, signed=False),
            "bias_mant": FixedFormat(self.bias_mant_bits),
        }

    # ---- validation
    def problems(self) -> list[tuple[str, str]]:
        """Values the kernels cannot compute as stated: the state must hold the largest
        threshold and bias, live inside Lava's int32 registers, and the rest fit the
        family's fields."""
        reg = self.register_bits - 1
        checks = [
            (1 <= self.weight_bits_max < self.weight_word_bits, "weight_bits_max",
             (f"in 1..{self.weight_word_bits - 1} (stored weights are "
              f"{self.weight_word_bits}-bit words)")),
            (-reg <= self.weight_exp_min <= self.weight_exp_max <= reg, "weight_exp_min",
             f"<= weight_exp_max, both in -{reg}..{reg}"),
            (2 <= self.state_bits <= reg, "state_bits",
             f"in 2..{reg} (u wraps inside Lava's int{self.register_bits} registers)"),
            (1 <= self.decay_bits <= reg, "decay_bits",
             f"in 1..{reg} (a decay multiplies an int{self.register_bits} state in 64 bits)"),
            (0 <= self.act_shift <= self.state_bits - 2, "act_shift",
             "in 0..state_bits - 2"),
            (1 <= self.vth_mant_bits and self.vth_mant_bits + self.act_shift < self.state_bits,
             "vth_mant_bits", ("at least 1, with vth_mant_bits + act_shift < state_bits (the "
                               "largest threshold must be reachable by v)")),
            (2 <= self.bias_mant_bits, "bias_mant_bits", "at least 2 (sign and magnitude)"),
            (0 <= self.bias_exp_max and
             self.bias_mant_bits - 1 + self.bias_exp_max < self.state_bits, "bias_exp_max",
             (">= 0, with bias_mant_bits - 1 + bias_exp_max < state_bits (the largest bias "
              "must fit v)")),
            (1 <= self.accumulator_bits <= self.register_bits, "accumulator_bits",
             f"in 1..{self.register_bits}"),
            (0 <= self.message_bits_max <= self.register_bits, "message_bits_max",
             f"in 0..{self.register_bits}"),
            (0 <= self.delay_max < 1 << self.delay_field_bits, "delay_max",
             (f"in 0..{(1 << self.delay_field_bits) - 1} (a {self.delay_field_bits}-bit "
              "delay field)")),
        ]
        return [(key, want) for ok, key, want in checks if not ok]

    def lava_mismatches(self) -> list[tuple[str, Any, Any]]:
        return [(key, getattr(self, key), getattr(LAVA, key)) for key in self.LAVA_FIXED
                if getattr(self, key) != getattr(LAVA, key)]


#: The record Lava 0.10's fixed-point models hard-wire (lif/models.py, dense/models.py,
#: utils/weightutils.py): 8-bit (+ sign) full-scale weights, 24-bit u and v, 12-bit
#: decays, ``<< 6`` on a_in and vth; the limits are Loihi 2's (targets/loihi2.toml).
#: Kernels default to it; netx files are written in it.
LAVA = LoihiLif(weight_bits_max=8, weight_exp_min=-8, weight_exp_max=7, state_bits=24,
                decay_bits=12, vth_mant_bits=17, bias_mant_bits=13, bias_exp_max=7,
                act_shift=6, accumulator_bits=16, message_bits_max=32, delay_max=62)

@dataclass(frozen=True)
class XyloIaf(Family):
    """SynSense Xylo's IAF neuron as xylosim 0.1.3 computes it (docs/xylo.md;
    xylo_kernels.py is its living definition), and the Xylo core's fixed structure.

    Per step: each input event (at most ``input_events_max`` per channel) and each hidden
    spike of the last step (at most ``hidden_spikes_max``) adds ``w << weight_shift`` to a
    synaptic current, saturating at the ``state_bits`` range each time; then ``I -=
    decay(I, dash_syn)``, ``dv = sat(sat(-decay(V, dash_mem) + sum I) + bias)``, ``V =
    sat(V + dv)``, and ``while V >= threshold`` (up to the spike cap): ``V -= threshold``.
    ``decay(x, d) = x >> d``, or sign(x) where that is 0. Hidden neurons are
    ``core.neurons_max``, their recurrent fan-out ``core.fan_out_axons_max``.
    """

    family: ClassVar[str] = "xylo-iaf"

    # ---- arithmetic
    state_bits: int              # V and I_syn, signed, saturating
    weight_bits: int             # signed weights
    weight_shift_max: int        # left shift of each weight matrix: 0..this
    dash_bits: int               # bit-shift decays: 0..2^dash_bits - 1
    threshold_bits: int          # signed thresholds
    bias_bits: int               # signed biases, added to dv each step
    input_events_max: int        # input events per channel and step (more are clipped)
    hidden_spikes_max: int       # spikes per hidden neuron and step
    output_spikes_max: int       # spikes per output neuron and step
    # ---- the core's structure (hidden neurons and fan-out are in [core])
    inputs_max: int              # input channels
    outputs_max: int             # output neurons (one synaptic current each)
    synapses_max: int            # synaptic currents per hidden neuron
    recurrent_weights_max: int   # hidden-to-hidden weights stored in all
    input_expansion_max: int     # input weights reach hidden neurons 0..this-1 only
    output_expansion_max: int    # output weights leave the last this hidden neurons only

    @staticmethod
    def signed(bits: int) -> tuple[int, int]:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    @property
    def state_range(self) -> tuple[int, int]:
        """V and I_syn saturate here: the register's full two's-complement range."""
        return self.signed(self.state_bits)

    @property
    def dash_max(self) -> int:
        return (1 << self.dash_bits) - 1

    def ranges(self) -> dict[str, tuple[int, int]]:
        """The inclusive value range of every Xylo program array and weight shift."""
        w, th, b = (self.signed(self.weight_bits), self.signed(self.threshold_bits),
                    self.signed(self.bias_bits))
        dash = (0, self.dash_max)
        shift = (0, self.weight_shift_max)
        return {"weights_in": w, "weights_rec": w, "weights_out": w, "dash_mem": dash,
                "dash_syn": dash, "dash_mem_out": dash, "dash_syn_out": dash,
                "threshold": th, "threshold_out": th, "bias": b, "bias_out": b,
                "weight_shift_in": shift, "weight_shift_rec": shift, "weight_shift_out": shift}

    def problems(self) -> list[tuple[str, str]]:
        """The engine holds states in int64 and a shifted weight must fit the state
        register (xylosim passes ``w << shift`` as an int16); the caps fit a byte."""
        room = self.state_bits - self.weight_bits
        checks = [
            (2 <= self.state_bits <= 16, "state_bits", "in 2..16"),
            (2 <= self.weight_bits <= self.state_bits, "weight_bits", "in 2..state_bits"),
            (0 <= self.weight_shift_max <= room, "weight_shift_max",
             f"in 0..state_bits - weight_bits = {room} (a shifted weight fits the state)"),
            (1 <= self.dash_bits <= 4, "dash_bits", "in 1..4"),
            (2 <= self.threshold_bits <= self.state_bits, "threshold_bits",
             "in 2..state_bits"),
            (2 <= self.bias_bits <= self.state_bits, "bias_bits", "in 2..state_bits"),
            (1 <= self.input_events_max <= 255, "input_events_max", "in 1..255"),
            (1 <= self.hidden_spikes_max <= 255, "hidden_spikes_max", "in 1..255"),
            (1 <= self.output_spikes_max <= 255, "output_spikes_max", "in 1..255"),
            (self.inputs_max >= 1, "inputs_max", ">= 1"),
            (self.outputs_max >= 1, "outputs_max", ">= 1"),
            (self.synapses_max in (1, 2), "synapses_max", "1 or 2"),
            (self.recurrent_weights_max >= 0, "recurrent_weights_max", ">= 0"),
            (self.input_expansion_max >= 1, "input_expansion_max", ">= 1"),
            (self.output_expansion_max >= 1, "output_expansion_max", ">= 1"),
        ]
        return [(key, want) for ok, key, want in checks if not ok]


#: What xylosim 0.1.3 implements, with Xylo Audio 2's structure (targets/xylo-audio2.toml);
#: the Xylo kernels and engine default to it.
XYLOSIM = XyloIaf(state_bits=16, weight_bits=8, weight_shift_max=7, dash_bits=4,
                  threshold_bits=16, bias_bits=8, input_events_max=15, hidden_spikes_max=31,
                  output_spikes_max=1, inputs_max=16, outputs_max=8, synapses_max=2,
                  recurrent_weights_max=32000, input_expansion_max=1000,
                  output_expansion_max=1000)

#: Family name (``[target] family``) -> its record type.
FAMILIES: dict[str, type[Family]] = {LoihiLif.family: LoihiLif, XyloIaf.family: XyloIaf}

__all__ = ["FAMILIES", "LAVA", "XYLOSIM", "Family", "FixedFormat", "LoihiLif", "XyloIaf"]
