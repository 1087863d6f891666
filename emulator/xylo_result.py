"""What a Xylo run returns (XyloResult), how it is recorded and joined, and the input
contract (event counts per channel and step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator.cost import CostReport
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.xylo_program import HIDDEN, OUTPUT, XyloProgram

__all__ = ["XyloResult", "check_inputs", "concatenate"]


@dataclass(frozen=True)
class XyloResult:
    """``spikes``/``v``/``i_syn``: group ("hidden", "output") -> (B, T, n); ``i_syn2``: the
    hidden neurons' second synaptic current (programs with two synapses). ``saturation``:
    group -> {"i_clip": synapse updates that saturated, "v_clip": neuron updates whose dv
    or V saturated, "first_step": the first step with either, or 0}. ``cost``: the
    target's cost model (xylo_cost.py), when the run was priced."""

    spikes: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    i_syn: dict[str, np.ndarray]
    i_syn2: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    saturation: dict[str, dict[str, int]]
    cost: CostReport | None = None


def check_inputs(program: XyloProgram, inputs: Any, steps: int | None
                 ) -> tuple[np.ndarray, int]:
    """Input events: (B, T, n_in) non-negative integers (counts per channel and step; the
    chip takes at most 15 per step, more are clipped as xylosim clips them). A dict with
    one entry (any name) is accepted for the device interface."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise InputError(f"a Xylo program has one input port; got {len(inputs)} arrays",
                             hint="Pass one (batch, time, channels) array.")
        inputs = next(iter(inputs.values()))
    arr = np.asarray(inputs)
    if arr.ndim != 3 or arr.shape[2] != program.n_in:
        raise InputError(f"input has shape {arr.shape}; expected (batch, time, "
                         f"{program.n_in})", hint="One event count per input channel.")
    if arr.dtype.kind not in "biu" and not (arr.dtype.kind == "f" and
                                             np.all(arr == np.round(arr))):
        raise InputError(f"input must hold integer event counts (got {arr.dtype})",
                         hint="Pass 0/1 spikes or counts 0..15.")
    if arr.size and arr.min() < 0:
        raise InputError(f"input holds a negative event count ({int(arr.min())})",
                         hint="Event counts are 0..15 per channel and step.")
    steps = arr.shape[1] if steps is None else int(steps)
    if steps < 0:
        raise InputError(f"steps={steps} must be >= 0")
    return arr.astype(np.int64), steps


class _Recorder:
    def __init__(self, program: XyloProgram, b: int, steps: int,
                 record: Sequence[str]) -> None:
        self.record = set(record) | {"spikes"}
        nh, no = program.n_hidden, program.n_out
        z = np.zeros
        self.spikes = {HIDDEN: z((b, steps, nh), np.int8), OUTPUT: z((b, steps, no), np.int8)}
        self.v = {HIDDEN: z((b, steps, nh), np.int16), OUTPUT: z((b, steps, no), np.int16)}
        self.i_syn = {HIDDEN: z((b, steps, nh), np.int16), OUTPUT: z((b, steps, no), np.int16)}
        self.i_syn2 = {HIDDEN: z((b, steps, nh), np.int16)} if program.n_syn == 2 else {}

    def store(self, t: int, st: Any, out: np.ndarray) -> None:
        k = t - 1
        self.spikes[HIDDEN][:, k] = st.counts
        self.spikes[OUTPUT][:, k] = out
        if "v" in self.record:
            self.v[HIDDEN][:, k], self.v[OUTPUT][:, k] = st.v, st.v_out
        if "i_syn" in self.record:
            self.i_syn[HIDDEN][:, k], self.i_syn[OUTPUT][:, k] = st.i_syn[:, :, 0], st.i_out
        if "i_syn2" in self.record and self.i_syn2:
            self.i_syn2[HIDDEN][:, k] = st.i_syn[:, :, 1]

    def result(self, sat: dict[str, dict[str, int]]) -> XyloResult:
        keep = self.record
        return XyloResult(self.spikes, self.v if "v" in keep else {},
                          self.i_syn if "i_syn" in keep else {},
                          self.i_syn2 if "i_syn2" in keep else {},
                          {OUTPUT: self.spikes[OUTPUT]}, sat)


def concatenate(parts: Sequence[XyloResult]) -> XyloResult:
    """Join results of consecutive batch slices."""
    def cat(attr: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts])
                for k in getattr(parts[0], attr)}

    sat: dict[str, dict[str, int]] = {}
    for p in parts:
        for g, d in p.saturation.items():
            s = sat.setdefault(g, {"i_clip": 0, "v_clip": 0, "first_step": 0})
            s["i_clip"] += d["i_clip"]
            s["v_clip"] += d["v_clip"]
            firsts = [x for x in (s["first_step"], d["first_step"]) if x]
            s["first_step"] = min(firsts) if firsts else 0
    return XyloResult(cat("spikes"), cat("v"), cat("i_syn"), cat("i_syn2"), cat("outputs"),
                      sat)
