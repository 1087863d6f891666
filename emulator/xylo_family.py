"""The ``xylo-iaf`` arithmetic family record, and the checks of a program's values against it.

One frozen record holds every width and count the Xylo IAF arithmetic needs; the kernels,
the engine, the program checks and the compiler read it, never a literal. Defaults are
xylosim 0.1.3's (``src/v2/cpp/XyloIAFNeuron.h:1-5``) and SynSense's Xylo register widths
(docs/xylo.md gives each source).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from snn2hw_emulator.xylo_program import ARRAYS, SHIFTS, XyloProgram


@dataclass(frozen=True)
class XyloIaf:
    """Widths and per-step caps of the Xylo IAF neuron (all integers)."""

    state_bits: int = 16          # V and I_syn: int16, saturating adds
    weight_bits: int = 8          # signed weights, -128..127
    weight_shift_max: int = 7     # left shift of each weight matrix, 0..7 (3-bit field)
    dash_bits: int = 4            # bit-shift decays 0..15
    threshold_bits: int = 16      # signed int16 thresholds
    bias_bits: int = 8            # signed 8-bit biases, added to dv
    input_events_max: int = 15    # input events per channel and step
    hidden_spikes_max: int = 31   # spikes per hidden neuron and step
    output_spikes_max: int = 1    # spikes per output neuron and step

    def signed_range(self, bits: int) -> tuple[int, int]:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    @property
    def state_range(self) -> tuple[int, int]:
        return self.signed_range(self.state_bits)

    def ranges(self) -> dict[str, tuple[int, int]]:
        """The inclusive value range of every program array and shift."""
        w = self.signed_range(self.weight_bits)
        dash = (0, 2 ** self.dash_bits - 1)
        th = self.signed_range(self.threshold_bits)
        b = self.signed_range(self.bias_bits)
        return {"weights_in": w, "weights_rec": w, "weights_out": w, "dash_mem": dash,
                "dash_syn": dash, "dash_mem_out": dash, "dash_syn_out": dash,
                "threshold": th, "threshold_out": th, "bias": b, "bias_out": b,
                **{s: (0, self.weight_shift_max) for s in SHIFTS}}


#: What xylosim 0.1.3 implements; the shipped Xylo targets state the same values.
XYLOSIM = XyloIaf()
#: Limits no record may exceed: the engine holds states in int32 and shifted weights in
#: the state width (xylosim stores ``w << shift`` in an int16).
_BOUNDS = {"state_bits": (2, 16), "weight_bits": (2, 8), "weight_shift_max": (0, 8),
           "dash_bits": (1, 4), "threshold_bits": (2, 16), "bias_bits": (2, 16),
           "input_events_max": (1, 255), "hidden_spikes_max": (1, 255),
           "output_spikes_max": (1, 255)}


def record_problems(record: XyloIaf) -> Iterator[tuple[str, Any, str]]:
    """(key, value, what it must be) for every field the arithmetic cannot honour."""
    for f in fields(record):
        lo, hi = _BOUNDS[f.name]
        value = getattr(record, f.name)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            yield f.name, value, f"an integer in {lo}..{hi}"
    if record.weight_bits + record.weight_shift_max > record.state_bits:
        room = record.state_bits - record.weight_bits
        want = f"at most state_bits - weight_bits = {room} (a shifted weight fits the state)"
        yield "weight_shift_max", record.weight_shift_max, want


def value_problems(program: XyloProgram, record: XyloIaf) -> Iterator[str]:
    """One sentence per array or shift of ``program`` outside the record's ranges, or of
    the wrong shape or type."""
    yield from _shape_problems(program)
    for name, (lo, hi) in record.ranges().items():
        raw = np.asarray(getattr(program, name))
        if raw.dtype.kind not in "iub" or raw.size == 0:
            continue                      # shape/type problems are reported above
        bad = (raw < lo) | (raw > hi)
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(np.atleast_1d(bad))[0])
            value = int(np.atleast_1d(raw)[where])
            yield (f"{name}{list(where) if raw.ndim else ''} = {value} is outside "
                   f"{lo}..{hi}")
    a = np.asarray(program.aliases)
    if a.dtype.kind in "iu" and a.size and (a.min() < -1 or a.max() >= program.n_hidden):
        yield (f"aliases hold {int(a.min())}..{int(a.max())}; an alias is a hidden neuron "
               f"0..{program.n_hidden - 1}, or -1 for none")


def _shape_problems(program: XyloProgram) -> Iterator[str]:
    for name, ndim in ARRAYS.items():
        arr = np.asarray(getattr(program, name))
        if arr.ndim != ndim or arr.dtype.kind not in "iub":
            yield f"{name} must be a {ndim}-d integer array, got {arr.dtype} {arr.shape}"
            return
    for name in SHIFTS:
        v = getattr(program, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            yield f"{name} must be an integer, got {v!r}"
            return
    n_in, nh, ns = np.shape(program.weights_in)
    no = np.shape(program.weights_out)[1]
    want = {"weights_rec": (nh, nh, ns), "weights_out": (nh, no), "dash_mem": (nh,),
            "dash_syn": (nh, ns), "dash_mem_out": (no,), "dash_syn_out": (no,),
            "threshold": (nh,), "threshold_out": (no,), "bias": (nh,), "bias_out": (no,),
            "aliases": (nh,)}
    if ns not in (1, 2):
        yield f"weights_in has {ns} synapses per hidden neuron; Xylo has 1 or 2"
    for name, shape in want.items():
        got = tuple(np.shape(getattr(program, name)))
        if got != shape:
            yield (f"{name} has shape {got}; {n_in} inputs, {nh} hidden neurons with {ns} "
                   f"synapse(s) and {no} outputs need {shape}")
