"""Normative reference kernels of the Xylo IAF family: the living definition.

Plain Python integers, one neuron and one event at a time, in the order the chip (and
SynSense's bit-accurate simulator xylosim 0.1.3, ``xylosim.v2``) processes them, so that
every shift, clip and wrap is visible. docs/xylo.md gives the source lines
(``src/v2/cpp/XyloIAFNeuron.{h,cpp}``, ``XyloLayer.cpp``). The vectorised engine
(xylo_engine.py) is tested against these on random programs, and both against xylosim.

The numbers (state width 16, 15 input events, 31 hidden and 1 output spike per step) are
arguments with xylosim's values as defaults; a target's ``xylo-iaf`` family record
(family.XyloIaf) supplies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STATE_BITS = 16          # V and every I_syn are int16 registers (XyloIAFNeuron.h:1)
INPUT_EVENTS_MAX = 15    # input events per channel and step (XyloIAFNeuron.h:3)
HIDDEN_SPIKES_MAX = 31   # spikes per hidden neuron and step (XyloIAFNeuron.h:4)
OUTPUT_SPIKES_MAX = 1    # spikes per output neuron and step (XyloIAFNeuron.h:5)


def sat(x: int, bits: int = STATE_BITS) -> int:
    """xylosim's ``safe_add`` result: clamp to [-2^(bits-1), 2^(bits-1) - 1] (asymmetric:
    the register's full two's-complement range)."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lo if x < lo else min(x, hi)


def wrap(x: int, bits: int = STATE_BITS) -> int:
    """A plain int16 store (no saturation): two's-complement wrap."""
    half = 2 ** (bits - 1)
    return ((x + half) % (2 * half)) - half


def decay(x: int, dash: int) -> int:
    """The bit-shift decay step ``x >> dash`` (arithmetic, so floor for negative x); where
    it is 0 for a non-zero x the step is sign(x), so a state always moves toward 0. Only a
    positive x can shift to 0: a negative one floors to -1 at least."""
    d = x >> dash
    if d == 0 and x != 0:
        return 1 if x > 0 else -1
    return d


def shifted_weight(w: int, shift: int, bits: int = STATE_BITS) -> int:
    """An 8-bit weight as it reaches a synapse: ``w << shift`` stored in an int16
    argument (wraps for shifts past 8; targets keep shifts small enough not to)."""
    return wrap(w << shift, bits)


def receive(i_syn: int, weight: int, count: int, bits: int = STATE_BITS) -> int:
    """``count`` events through one synapse: each adds the shifted weight to I_syn with
    saturation, one at a time (saturating adds do not associate, so order matters)."""
    for _ in range(count):
        i_syn = sat(i_syn + weight, bits)
    return i_syn


def evolve(v: int, i_syns: Sequence[int], dash_mem: int, dash_syns: Sequence[int],
           threshold: int, bias: int, n0: int, max_spikes: int, bits: int = STATE_BITS
           ) -> tuple[int, list[int], int]:
    """One neuron's update after this step's events arrived; returns (V, I_syns, spike
    count). ``n0`` is the count alias sources already put in this neuron's spike buffer
    this step: it fills the same buffer, so the neuron itself can add only up to
    ``max_spikes - n0``."""
    # synaptic currents decay first; the subtraction cannot overflow (|d| <= |I|)
    i_syns = [i - decay(i, d) for i, d in zip(i_syns, dash_syns)]
    # dv is an int16: negating decay(-32768, 0) = -32768 wraps back to -32768
    dv = wrap(-decay(v, dash_mem), bits)
    dv = sat(dv + sum(i_syns), bits)        # currents summed exactly, then one clip
    dv = sat(dv + bias, bits)               # the bias joins dv, not V
    v = sat(v + dv, bits)
    n = n0
    # threshold ">=", subtractive reset, at most max_spikes in the buffer; the subtraction
    # is a plain int16 store (a threshold <= 0 raises V and may wrap it)
    while v >= threshold and n < max_spikes:
        n += 1
        v = wrap(v - threshold, bits)
    return v, i_syns, n


@dataclass
class Net:
    """A Xylo network as plain lists: w_in[channel][hidden][syn], w_rec[pre][post][syn],
    w_out[hidden][out] (8-bit weights), per-matrix shifts, per-neuron dashes, thresholds,
    biases; alias[i] = the hidden neuron that neuron i's spikes are copied to, or -1."""

    w_in: list
    w_rec: list
    w_out: list
    shift_in: int
    shift_rec: int
    shift_out: int
    dash_mem: list
    dash_syn: list            # [hidden][syn]
    dash_mem_out: list
    dash_syn_out: list
    threshold: list
    threshold_out: list
    bias: list
    bias_out: list
    alias: list


@dataclass
class NetState:
    """V and I_syn of every hidden ([n][syn]) and output neuron, and the hidden spike
    counts of the last step (what the recurrent and output weights deliver next)."""

    v: list
    i_syn: list
    v_out: list
    i_out: list
    counts: list

    @classmethod
    def zeros(cls, net: Net) -> NetState:
        nh, no = len(net.threshold), len(net.threshold_out)
        n_syn = len(net.dash_syn[0]) if nh else 1
        return cls([0] * nh, [[0] * n_syn for _ in range(nh)], [0] * no, [0] * no, [0] * nh)


def _deliver(i_syn: list, weights: list, counts: Sequence[int], shift: int, cap: int,
             bits: int) -> None:
    """Events of every source in index order, each clipped to ``cap`` events, through its
    synapses (zero weights are no synapse). I_syn is updated in place."""
    for pre, count in enumerate(counts):
        count = min(count, cap)
        for post, syns in enumerate(weights[pre]):
            for s, w in enumerate(syns):
                if w and count:
                    i_syn[post][s] = receive(i_syn[post][s], shifted_weight(w, shift, bits),
                                             count, bits)


def step(net: Net, st: NetState, inputs: Sequence[int], bits: int = STATE_BITS,
         input_max: int = INPUT_EVENTS_MAX, hidden_max: int = HIDDEN_SPIKES_MAX,
         output_max: int = OUTPUT_SPIKES_MAX) -> list[int]:
    """One time step of the whole network (XyloLayer::evolve's loop body), updating ``st``
    in place; returns the output spike counts.

    Order: this step's input events reach the hidden synapses (no delay); then the hidden
    spikes of the previous step reach hidden (recurrent weights) and output neurons; then
    hidden neurons update in index order, each copying its count to its alias target's
    buffer at once (clipped to the maximum); then output neurons update."""
    _deliver(st.i_syn, net.w_in, inputs, net.shift_in, input_max, bits)
    _deliver(st.i_syn, net.w_rec, st.counts, net.shift_rec, hidden_max, bits)
    out_syn = [[i] for i in st.i_out]
    _deliver(out_syn, [[[w] for w in row] for row in net.w_out], st.counts, net.shift_out,
             hidden_max, bits)
    buf = [0] * len(st.v)                   # the spike buffer is cleared before updates
    for n in range(len(st.v)):
        st.v[n], st.i_syn[n], buf[n] = evolve(st.v[n], st.i_syn[n], net.dash_mem[n],
                                              net.dash_syn[n], net.threshold[n], net.bias[n],
                                              buf[n], hidden_max, bits)
        a = net.alias[n]
        if a >= 0:                          # a source after its target adds after the
            buf[a] = min(buf[a] + buf[n], hidden_max)   # target's own update
    st.counts = buf
    out = []
    for k in range(len(st.v_out)):
        st.v_out[k], (st.i_out[k],), c = evolve(st.v_out[k], [out_syn[k][0]],
                                                net.dash_mem_out[k], [net.dash_syn_out[k]],
                                                net.threshold_out[k], net.bias_out[k], 0,
                                                output_max, bits)
        out.append(c)
    return out
